"""Real-time factor of the offline speech models on about 5 minutes of speech.

    python benchmarks/bench_speech.py [--minutes 5] [--device auto]

Generates a three-speaker espeak-ng conversation (tasks/synth/speech.py), loads each
model once (load time reported apart), then times diarization (default diarizer) and
transcription (Whisper base and tiny.en, faster-whisper word timestamps, speech regions
from the diarization as in the pipeline) on it, and
prints RTF = processing seconds / audio seconds with WER and DER as a sanity check.
Targets on 2 CPU cores: transcription RTF ≤ 0.15, diarization RTF ≤ 0.05.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from affectflow.tasks.devices import resolve_device
from affectflow.tasks.speech.diarize import DiarizeConfig, diarize, load_pipeline
from affectflow.tasks.speech.transcribe import (
    TranscribeConfig,
    load_asr,
    resolve_compute_type,
    resolve_model_dir,
    transcribe,
)
from affectflow.tasks.synth.speech import make_long_speech
from tests.speech_metrics import diarization_error_rate, word_error_rate


def timed(function, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        truth, seconds = timed(make_long_speech, Path(tmp) / "speech.wav", args.minutes)
        print(
            f"audio: {truth.duration:.0f} s, {len(truth.speakers)} speakers, {len(truth.words)} words"
            f" (generated in {seconds:.0f} s)"
        )
        print(f"cpu cores: {os.cpu_count()}, device: {resolve_device(args.device)}")
        config = DiarizeConfig(device=args.device)
        _, load_s = timed(load_pipeline, config.backend, config.pipeline_dir, resolve_device(config.device))
        result, run_s = timed(diarize, truth.wav, config)
        found = len({t.speaker for t in result.turns})
        der = diarization_error_rate(truth, result.turns)
        print(
            f"diarization  {result.backend}\n  load {load_s:.1f} s, run {run_s:.1f} s, RTF {run_s / truth.duration:.3f}"
            f" (target ≤ 0.05), DER {der:.3f}, speakers {found}/{len(truth.speakers)}"
        )
        for model in ("base", "tiny.en"):
            asr_config = TranscribeConfig(model_dir=model, device=args.device)
            device = resolve_device(asr_config.device)
            load = (str(resolve_model_dir(model)), device, resolve_compute_type(asr_config.compute_type, device), None)
            _, load_s = timed(load_asr, *load)
            transcript, run_s = timed(
                transcribe, truth.wav, asr_config, None, result.turns
            )  # as the pipeline: VAD from the turns
            wer = word_error_rate(truth.text, " ".join(w.word for w in transcript.words))
            print(
                f"transcription  {transcript.backend}\n  load {load_s:.1f} s, run {run_s:.1f} s,"
                f" RTF {run_s / truth.duration:.3f} (target ≤ 0.15), WER {wer:.3f}"
            )


if __name__ == "__main__":
    main()
