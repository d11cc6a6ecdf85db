"""Frame-aligned multimodal features: one timeline per face track, visual + audio + text.

Each face track gets a regular timeline at the model's frame rate, from its first to its
last face. On it:

- visual: the extractor's vector of each face row; between two faces less than
  ``max_gap_s`` apart, linear interpolation; over longer gaps, a zero vector and a False mask;
- audio: the extractor's vector of the window centred on each time (masked where the
  video has no audio track or the time is past its end);
- text: an embedding of the words spoken around each time (masked where nobody speaks).

Whose speech a track hears (``Hearing``, from ``hearings``): with the own-voice rule a track
linked to a voice reads only that voice's words, and its audio and text are masked while
another voice speaks (and its own does not), so a face is never fused with someone else's
voice or words. A track without a voice of its own hears the scene only when the video has
one face and one voice; otherwise it hears nobody (masked wherever anyone speaks).

The extractors are chosen by name from the registries below (one class per extractor
in ``features_visual`` / ``features_audio`` / ``features_text``); checkpoints record the
names and dims they were trained on, and inference refuses a mismatch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from affectflow.tasks.devices import resolve_device
from affectflow.tasks.features import audio as features_audio
from affectflow.tasks.features import text as features_text
from affectflow.tasks.features import visual as features_visual
from affectflow.tasks.features.visual import FaceBatch, FeatureError
from affectflow.tasks.media.audio import read_wav
from affectflow.tasks.progress import Hook, no_progress
from affectflow.tasks.records import SpeakerTurn

MODALITIES = ("visual", "audio", "text")
MAX_GAP_S = 1.0  # face gaps up to this long are interpolated; longer ones are masked
CHUNK = 256  # face rows per visual batch (one progress step)

__all__ = [
    "Extractors",
    "FaceRows",
    "FeatureError",
    "Hearing",
    "TrackFeatures",
    "extract_tracks",
    "hearings",
    "load_extractors",
]


class VisualExtractor(Protocol):
    name: str
    dim: int

    def __call__(self, faces: FaceBatch) -> np.ndarray: ...  # (N, 112, 112, 3) crops -> (N, dim)


class AudioExtractor(Protocol):
    name: str
    dim: int

    def __call__(self, wav: np.ndarray, times: np.ndarray) -> np.ndarray: ...  # (S,) 16 kHz, (T,) s -> (T, dim)


class TextExtractor(Protocol):
    name: str
    dim: int

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...  # -> (T, dim), (T,) mask


@dataclass(frozen=True)
class ExtractorOptions:
    """Where the user-supplied models are (each also read from its env var when None)."""

    hsemotion_onnx: str | None = None
    vggish_model: str | None = None
    text_model_dir: str | None = None
    face_embedding_dim: int = 128
    device: str = "cpu"  # a config's device (tasks/devices.py): each extractor resolves it for its runtime


VISUAL: dict[str, Callable[[ExtractorOptions], VisualExtractor]] = {
    "fer": lambda o: features_visual.shared_fer(),
    "hsemotion": lambda o: features_visual.HSEmotionOnnx(o.hsemotion_onnx, o.device),
    "face-embedding": lambda o: features_visual.FaceEmbedding(o.face_embedding_dim),
}
AUDIO: dict[str, Callable[[ExtractorOptions], AudioExtractor]] = {
    "egemaps": lambda o: features_audio.EGeMAPSProsody(),
    "vggish": lambda o: features_audio.VGGishOnnx(o.vggish_model, o.device),
}
TEXT: dict[str, Callable[[ExtractorOptions], TextExtractor]] = {
    "minilm": lambda o: features_text.minilm(resolve_device(o.device)),
    "bert": lambda o: features_text.local_bert(o.text_model_dir, resolve_device(o.device)),
}
REGISTRY: dict[str, dict[str, Any]] = {"visual": VISUAL, "audio": AUDIO, "text": TEXT}


@dataclass(frozen=True)
class FaceRows:
    """The part of the faces stage's FaceTracks the features read (also built directly by distillation)."""

    track_id: np.ndarray  # (N,) int
    frame: np.ndarray  # (N,) source frame index
    t: np.ndarray  # (N,) s
    crops_path: Path  # .npy (N, 112, 112, 3) uint8 BGR aligned crops, row-aligned
    embeddings_path: Path | None = None  # .npy (N, E) float32 identity embeddings


@dataclass(frozen=True)
class Extractors:
    visual: VisualExtractor
    audio: AudioExtractor
    text: TextExtractor

    def describe(self) -> dict[str, dict[str, Any]]:
        """{modality: {"extractor": name, "dim": D}}: what checkpoints record and are checked against."""
        return {m: {"extractor": getattr(self, m).name, "dim": int(getattr(self, m).dim)} for m in MODALITIES}


def load_extractors(visual: str, audio: str, text: str, options: ExtractorOptions | None = None) -> Extractors:
    """Build the named extractors; unknown names and missing weights fail here, before any work."""
    options = options or ExtractorOptions()
    chosen = {"visual": visual, "audio": audio, "text": text}
    for m, name in chosen.items():
        if name not in REGISTRY[m]:
            raise FeatureError(f"unknown {m} extractor {name!r}; choose from {', '.join(REGISTRY[m])}")
    return Extractors(*(REGISTRY[m][chosen[m]](options) for m in MODALITIES))


@dataclass(frozen=True)
class Hearing:
    """The speech one face track's audio and text features may read."""

    words: Sequence[Any]  # the words its text windows read: its own voice's (or, hearing the scene, all)
    own: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (K, 2) s, [start, end) its voice speaks
    others: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (M, 2) s, [start, end) others speak

    def muted(self, times: np.ndarray) -> np.ndarray:
        """(T,) bool: another voice speaks at each time and this track's own does not."""
        return _inside(times, self.others) & ~_inside(times, self.own)


def _inside(times: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """(T,) bool: each time lies in one of the [start, end) ``spans`` (K, 2), which may overlap."""
    if len(spans) == 0:
        return np.zeros(len(times), bool)
    spans = spans[np.argsort(spans[:, 0], kind="stable")]
    reach = np.maximum.accumulate(spans[:, 1])  # (K,) the latest end among spans starting up to each
    last = np.searchsorted(spans[:, 0], times, side="right") - 1  # (T,) last span starting at or before t
    return (last >= 0) & (times < reach[last.clip(0)])


def hearings(
    track_id: np.ndarray,
    t: np.ndarray,
    voices: Mapping[int, str | None],
    turns: Sequence[SpeakerTurn] | None,
    words: Sequence[Any] | None,
) -> dict[int, Hearing]:
    """The own-voice rule for every track of the faces rows (``track_id``, ``t``: (N,)).

    ``voices`` maps a track to its own voice's label (None or absent: it has none). Speech is
    the diarized turns, else (no diarization) the words. A track with a voice reads that
    voice's words and is muted while another voice speaks; a track without one hears the
    scene when there is one face (no two tracks on screen at once) and one voice, else nobody.
    """
    words = list(words or [])
    spans = [(s.speaker, s.start, s.end) for s in turns or []] or [(w.speaker, w.start, w.end) for w in words]

    def speech(of: set[Any]) -> np.ndarray:  # (K, 2) s: the spans of the voices ``of``
        return np.array([(a, b) for speaker, a, b in spans if speaker in of], float).reshape(-1, 2)

    everyone = {speaker for speaker, _, _ in spans}
    scene = len(everyone) <= 1 and not _faces_overlap(track_id, t)
    out = {}
    for track in np.unique(track_id).tolist():
        voice = voices.get(track)
        if voice is not None:
            own_words = [w for w in words if w.speaker == voice]
            out[track] = Hearing(own_words, speech({voice}), speech(everyone - {voice}))
        elif scene:
            out[track] = Hearing(words)
        else:
            out[track] = Hearing([], others=speech(everyone))
    return out


def _faces_overlap(track_id: np.ndarray, t: np.ndarray) -> bool:
    """Whether two tracks are ever on screen at once (their first → last face spans overlap)."""
    spans = np.array(sorted((t[track_id == k].min(), t[track_id == k].max()) for k in np.unique(track_id)))
    return len(spans) > 1 and bool((spans[1:, 0] <= np.maximum.accumulate(spans[:-1, 1])).any())


@dataclass
class TrackFeatures:
    """One face track on a regular timeline (T steps at ``fps``)."""

    track_id: int
    t: np.ndarray  # (T,) seconds
    rows: np.ndarray  # (N,) indices of the track's face rows, by time
    features: dict[str, np.ndarray]  # modality -> (T, D_m) float32
    masks: dict[str, np.ndarray]  # modality -> (T,) bool, True = a real feature
    texts: list[str]  # (T,) the words around each time ("" = silence), for the text teacher

    @property
    def n_steps(self) -> int:
        return len(self.t)


def extract_tracks(
    faces: Any,
    wav_path: Path | None,
    words: Sequence[Any] | None,
    extractors: Extractors,
    fps: float,
    *,
    max_gap_s: float = MAX_GAP_S,
    hook: Hook = no_progress,
    hearing: Mapping[int, Hearing] | None = None,
) -> list[TrackFeatures]:
    """Features of every track of ``faces`` (the faces stage's FaceTracks) at ``fps``.

    ``hearing`` (track → Hearing, see ``hearings``) says whose speech each track's audio and
    text read; None: every track hears the whole scene.
    """
    track_ids = np.asarray(faces.track_id, dtype=np.int64)  # (N,)
    face_t = np.asarray(faces.t, dtype=np.float64)  # (N,) s
    visual_rows = visual_features(faces, extractors.visual, hook)  # (N, D_v)
    tracks = []
    for track in np.unique(track_ids):
        rows = np.flatnonzero(track_ids == track)
        rows = rows[np.argsort(face_t[rows], kind="stable")]
        grid = track_grid(face_t[rows], fps)  # (T,)
        x, valid = interpolate_rows(face_t[rows], visual_rows[rows], grid, max_gap_s)
        tracks.append(TrackFeatures(int(track), grid, rows, {"visual": x}, {"visual": valid}, []))
    times = np.concatenate([tr.t for tr in tracks]) if tracks else np.zeros(0)  # every track's steps, one call
    audio, audio_mask = audio_features(wav_path, times, extractors.audio)  # the scene's audio at every step
    hook("features: audio", 1, 2)
    scene, muted, texts = Hearing(list(words or [])), np.zeros(len(times), bool), []  # (T,), (T,)
    start = 0
    for tr in tracks:
        heard = (hearing or {}).get(tr.track_id, scene)
        muted[start : start + tr.n_steps] = heard.muted(tr.t)
        texts += features_text.window_texts(heard.words, tr.t)
        start += tr.n_steps
    texts = ["" if m else text for text, m in zip(texts, muted, strict=True)]  # another voice speaks: silence
    audio, audio_mask = audio * ~muted[:, None], audio_mask & ~muted
    text, text_mask = extractors.text(texts) if len(times) else (np.zeros((0, extractors.text.dim)), np.zeros(0, bool))
    hook("features: text", 2, 2)
    start = 0
    for tr in tracks:
        span = slice(start, start + tr.n_steps)
        tr.features.update(audio=np.asarray(audio[span], np.float32), text=np.asarray(text[span], np.float32))
        tr.masks.update(audio=audio_mask[span], text=text_mask[span])
        tr.texts = texts[span]
        start += tr.n_steps
    return tracks


def visual_features(faces: Any, extractor: VisualExtractor, hook: Hook = no_progress) -> np.ndarray:
    """(N, D) features of every face row, CHUNK rows at a time from the crops file.

    The crops are read, not memory-mapped: mapped pages count as the process's memory
    until it ends (340 MB of crops for a 30-minute face track at 5 fps).
    """
    embeddings_path = getattr(faces, "embeddings_path", None)
    embeddings = np.load(embeddings_path, mmap_mode="r") if embeddings_path else None  # (N, E), small
    n = npy_length(faces.crops_path)
    out = np.zeros((n, extractor.dim), np.float32)
    start = 0
    for crops in npy_chunks(faces.crops_path, CHUNK):  # (≤ CHUNK, 112, 112, 3) uint8 BGR
        span = slice(start, start + len(crops))
        out[span] = extractor(FaceBatch(crops, None if embeddings is None else np.asarray(embeddings[span])))
        start = span.stop
        hook("features: visual", span.stop, n)
    return out


def npy_length(path: Path) -> int:
    """Rows of an .npy file, from its header."""
    with open(path, "rb") as handle:
        return int(_npy_header(handle, path)[0][0])


def npy_chunks(path: Path, rows: int) -> Iterator[np.ndarray]:
    """The rows of a C-order .npy file, ``rows`` at a time, each chunk a fresh array."""
    with open(path, "rb") as handle:
        shape, dtype = _npy_header(handle, path)
        for start in range(0, shape[0], rows):
            chunk = np.empty((min(rows, shape[0] - start), *shape[1:]), dtype)
            if handle.readinto(chunk.data.cast("B")) != chunk.nbytes:
                raise FeatureError(f"{path}: truncated (expected {shape[0]} rows)")
            yield chunk


def _npy_header(handle: Any, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    major, _ = np.lib.format.read_magic(handle)
    read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(handle)
    if fortran_order:
        raise FeatureError(f"{path}: expected a C-order array")
    return shape, dtype


def audio_features(
    wav_path: Path | None, times: np.ndarray, extractor: AudioExtractor
) -> tuple[np.ndarray, np.ndarray]:
    """(T, D) features and (T,) mask; all masked when there is no audio track."""
    if wav_path is None or len(times) == 0:
        return np.zeros((len(times), extractor.dim), np.float32), np.zeros(len(times), bool)
    wav = read_wav(wav_path)  # (S,) 16 kHz
    duration = len(wav) / features_audio.SAMPLE_RATE
    mask = times < duration
    return np.asarray(extractor(wav, times), np.float32) * mask[:, None], mask


def track_grid(face_t: np.ndarray, fps: float) -> np.ndarray:
    """(T,) times first, first + 1/fps, … up to the last face (inclusive within rounding)."""
    steps = int(np.floor((face_t[-1] - face_t[0]) * fps + 1e-6)) + 1
    return face_t[0] + np.arange(steps) / fps


def interpolate_rows(
    row_t: np.ndarray, x: np.ndarray, grid: np.ndarray, max_gap_s: float, tolerance_s: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Features at ``grid`` times from rows at ``row_t`` (sorted): linear across short gaps, masked across long ones."""
    after = np.searchsorted(row_t, grid, side="left").clip(0, len(row_t) - 1)  # (T,) first row at/after t
    before = np.where(row_t[after] > grid + tolerance_s, after - 1, after).clip(0, len(row_t) - 1)
    ta, tb = row_t[before], row_t[after]  # (T,)
    w = np.where(tb > ta, (grid - ta) / np.maximum(tb - ta, 1e-9), 0.0).clip(0, 1)[:, None]
    out = (1 - w) * x[before] + w * x[after]  # (T, D)
    on_face = (np.abs(grid - ta) <= tolerance_s) | (np.abs(tb - grid) <= tolerance_s)
    valid = on_face | (tb - ta <= max_gap_s)
    return np.where(valid[:, None], out, 0).astype(np.float32), valid
