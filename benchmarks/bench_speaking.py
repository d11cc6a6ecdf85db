"""Cost of the who-is-speaking stage: per analysed face frame, its share of the pipeline, its extra decoding.

    .venv/bin/python benchmarks/bench_speaking.py                 # 2- and 3-face conversations, 15 fps
    .venv/bin/python benchmarks/bench_speaking.py --rates 5,10,15 # the mouth rate's cost/accuracy trade

Media: the generated talking conversations the tests measure (tasks/synth/talking.py SCENES: 2 faces + an off-screen voice, 29 s; 3 faces + an off-screen voice,
31 s), cached under ``~/.cache/affectflow/bench/speaking-v1``. Each clip runs through the real
per-video orchestration (``flows.video.run_video`` with plain steps, after a warm-up clip
loads every model), with and without the speaking stage: "share" is the wall time it adds over the
whole run's, diarization and transcription included. Then the mouth pass alone, on the pipeline's faces
and the truth turns: decode seconds (waiting for the extra frames at the mouth rate) and mesh
milliseconds per mouth, against the faces stage's own 5 fps decode (the decode floor).

Targets (issue 17): the stage adds ≤ 10 % to the pipeline's wall time (a run with it
against one without: it runs beside transcription); reported, not asserted (a shared
machine's timings are upper bounds). Every line carries ``os.getloadavg()``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "affectflow" / "bench" / "speaking-v1"
CLIPS = ("two", "three")


def media() -> dict[str, tuple[Path, list[Any]]]:
    """{name: (clip, truth turns)} for the conversations and a short warm-up clip, generated once."""
    import pickle

    from affectflow.tasks.settings import settings
    from affectflow.tasks.synth.pyfeat import fetch_pyfeat_data
    from affectflow.tasks.synth.talking import SCENES, make_talking_clip

    CACHE.mkdir(parents=True, exist_ok=True)
    found = {}
    for name in (*CLIPS, "single"):
        path, truth_file = CACHE / f"{name}.mp4", CACHE / f"{name}.turns.pkl"
        if not truth_file.is_file():
            truth = make_talking_clip(path, SCENES[name], fetch_pyfeat_data(settings().cache()))
            truth_file.write_bytes(pickle.dumps(truth.turns))
        found[name] = (path, pickle.loads(truth_file.read_bytes()))
    return found


def pipeline(clips: dict[str, tuple[Path, list[Any]]]) -> dict[str, dict[str, Any]]:
    """Per conversation: one real run with every stage and one without speaking (models loaded first).

    The stage runs beside transcription, so its own seconds overstate what it adds: the
    cost is the wall time of the run with it minus the run without it.
    """
    from dataclasses import replace

    from affectflow.flows.video import DEFAULT_STEPS, StageTimer, run_video
    from affectflow.tasks.config import PipelineConfig
    from affectflow.tasks.storage.discover import discover

    config, steps, results = PipelineConfig(), DEFAULT_STEPS.plain(), {}
    without = replace(config, stages=tuple(s for s in config.stages if s != "speaking"))
    with tempfile.TemporaryDirectory(prefix="affectflow-bench-") as out:
        warm = run_video(discover(str(clips["single"][0]))[0], out, config, "warm", steps=steps, timer=StageTimer())
        if warm.status != "ok":
            raise SystemExit(f"warm-up failed: {warm.error}")
        for name in CLIPS:
            runs = {}
            for label, run_config in (("with", config), ("without", without)):
                source = discover(str(clips[name][0]))[0]
                result = run_video(source, f"{out}/{label}", run_config, "bench", steps=steps, timer=StageTimer())
                if result.status != "ok":
                    raise SystemExit(f"{name}: {result.error}")
                runs[label] = result
            results[name] = {
                "elapsed_s": runs["with"].elapsed_s,
                "elapsed_without_s": runs["without"].elapsed_s,
                "stages": runs["with"].stage_seconds,
                "load": os.getloadavg(),
            }
    return results


def mouth_pass(path: Path, turns: list[Any], rate: float) -> dict[str, Any]:
    """The mouth pass alone at ``rate``: decode and mesh cost, and whether every face got its voice."""
    from affectflow.tasks.faces.stage import FacesConfig, track_faces
    from affectflow.tasks.media.audio import extract_audio
    from affectflow.tasks.media.frames import iter_frames
    from affectflow.tasks.media.probe import probe
    from affectflow.tasks.records import SpeakerTurn
    from affectflow.tasks.speaking.mouth import load_mesh, mesh_path
    from affectflow.tasks.speaking.signal import measure_mouths, speech_spans
    from affectflow.tasks.speaking.stage import SpeakingConfig, find_speakers

    info = probe(path)
    with tempfile.TemporaryDirectory(prefix="affectflow-bench-") as work:
        begin = time.perf_counter()
        frames_5 = sum(1 for _ in iter_frames(path, info, 5.0))
        floor = time.perf_counter() - begin
        faces = track_faces(iter_frames(path, info, 5.0), FacesConfig(), Path(work) / "faces")
        wav = extract_audio(path, info, Path(work) / "audio.wav")
        diarized = [SpeakerTurn(t.speaker, t.start, t.end) for t in turns]
        config = SpeakingConfig(rate=rate)
        mesh = load_mesh(mesh_path(), config.threads)
        spans = speech_spans(diarized, config.margin_s, info.duration_s)
        signal = measure_mouths(
            path, info, faces, spans, mesh, rate=rate, margin=config.crop_margin,
            min_face_logit=config.min_face_logit, max_gap_s=config.max_gap_s, max_side=1280,
        )  # fmt: skip
        begin = time.perf_counter()
        result = find_speakers(faces, diarized, wav, path, info, config)
        stage_s = time.perf_counter() - begin
    return {
        "rate": rate,
        "duration_s": info.duration_s,
        "face_rows": len(faces.track_id),
        "stage_s": stage_s,
        "ms_per_face_row": 1000 * stage_s / max(len(faces.track_id), 1),
        "decode_s": signal.decode_s,
        "decode_rtf": signal.decode_s / info.duration_s,
        "frames_decoded": signal.n_frames,
        "floor_5fps_s": floor,
        "frames_5fps": frames_5,
        "mesh_ms_per_mouth": 1000 * signal.mesh_s / max(signal.n_faces, 1),
        "mouths": signal.n_faces,
        "links": {link.track_id: link.speaker for link in result.links},
        "load": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="15", help="mouth samples per second to time (comma-separated)")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the whole-pipeline runs (the share)")
    args = parser.parse_args(argv)
    clips = media()
    report: dict[str, Any] = {"mouth_pass": {}}
    for name in CLIPS:
        for rate in (float(r) for r in args.rates.split(",")):
            line = mouth_pass(*clips[name], rate)
            report["mouth_pass"][f"{name}@{rate:g}"] = line
            print(
                f"{name} @ {rate:g} fps: stage {line['stage_s']:.2f} s = {line['ms_per_face_row']:.1f} ms per analysed "
                f"face frame; mesh {line['mesh_ms_per_mouth']:.1f} ms per mouth ({line['mouths']}); extra decode "
                f"{line['decode_s']:.2f} s (RTF {line['decode_rtf']:.3f}; the 5 fps pass's floor "
                f"{line['floor_5fps_s']:.2f} s); links {line['links']}; load {line['load'][0]:.1f}",
                flush=True,
            )
    if not args.no_pipeline:
        report["pipeline"] = pipeline(clips)
        for name, run in report["pipeline"].items():
            speaking = run["stages"].get("speaking", 0.0)
            added = run["elapsed_s"] - run["elapsed_without_s"]
            print(
                f"{name}: pipeline {run['elapsed_s']:.1f} s with speaking, {run['elapsed_without_s']:.1f} s without: "
                f"it adds {added:.2f} s = {100 * added / run['elapsed_s']:.1f} % (target ≤ 10 %); its own "
                f"{speaking:.2f} s run beside transcription; stages "
                + ", ".join(f"{k} {v:.1f}" for k, v in sorted(run["stages"].items()))
                + f"; load {run['load'][0]:.1f}",
                flush=True,
            )
    print(json.dumps(report, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
