"""The who-is-speaking stage: link every face track to its own voice, and mark the rows where it speaks.

Inputs are records only (FaceTracks from the faces stage, SpeakerTurns from diarization,
the WAV and the staged video): this package imports neither faces/ nor speech/, so the
two branches still meet only in flows/. Steps:

1. the mouth signal of every track where someone speaks (signal.py: decoding again at
   ``rate``, the face mesh of mouth.py);
2. the audio-visual split of a voice cluster that two alternating faces speak (split.py);
3. evidence per (track, voice) and one global assignment (link.py);
4. per face row, ``speaking`` = its track's voice has a turn at that time.

Nothing here fails a video: no audio, no speech, no faces, still mouths all end with
unlinked tracks (``speaker`` None) and ``speaking`` False. The face-mesh file missing is
a setup error (one line, like any other missing model).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from affectflow.tasks.media.audio import read_wav
from affectflow.tasks.media.frames import FrameSource, iter_frames
from affectflow.tasks.progress import Hook, no_progress
from affectflow.tasks.records import FaceTracks, MediaInfo, SpeakerTurn, Speaking, TrackLink
from affectflow.tasks.speaking.link import Assignment, LinkRules, assign, evidence, turn_mask
from affectflow.tasks.speaking.mouth import MESH_FILE, FaceMesh, load_mesh, mesh_path
from affectflow.tasks.speaking.signal import loudness_db, measure_mouths, speech_spans
from affectflow.tasks.speaking.split import SplitRules, split_turns

LINKED = "mouth activity + loudness sync"


@dataclass(frozen=True)
class SpeakingConfig:
    rate: float = 15.0  # mouth samples per second where someone speaks (lips outpace the 5 fps analysis)
    margin_s: float = 0.5  # s decoded before and after each turn
    crop_margin: float = 1.5  # the mesh's crop: this many times the face box's longer side
    min_face_logit: float = 0.0  # the mesh's face-presence logit below which a crop is not a face
    max_gap_s: float = 0.5  # s between a track's analysed rows beyond which it is not placed in between
    threads: int = 1  # the mesh's CPU threads (the stage runs after both branches; 1 is fastest on a busy machine)
    link: LinkRules = field(default_factory=LinkRules)
    split: SplitRules = field(default_factory=SplitRules)

    def __post_init__(self) -> None:
        if not 1.0 <= self.rate <= 60.0:
            raise ValueError(f"speaking rate must be in [1, 60] samples per second, got {self.rate}")
        if self.crop_margin < 1.0:
            raise ValueError(f"speaking crop_margin must be at least 1, got {self.crop_margin}")


def mesh_for(config: SpeakingConfig) -> FaceMesh:
    """The face mesh the mouth signal uses, loaded once per process (``load_mesh`` is cached)."""
    return load_mesh(mesh_path(), config.threads)


def find_speakers(
    faces: FaceTracks,
    turns: Sequence[SpeakerTurn],
    wav: Path | None,
    video: Path,
    info: MediaInfo,
    config: SpeakingConfig,
    hook: Hook = no_progress,
    *,
    max_side: int | None = 1280,
    frames: FrameSource = iter_frames,
) -> Speaking:
    """Each track's own voice (or none), ``speaking`` per face row, and the turns (split where faces say so)."""
    turns = list(turns)
    backend = describe(config)
    n_rows = len(faces.track_id)
    if n_rows == 0 or not turns:
        reason = "none: no faces" if n_rows == 0 else "none: no speech"
        return Speaking(_links(faces, {}, turns, lambda _: reason), np.zeros(n_rows, bool), turns, backend)
    mesh = mesh_for(config)
    spans = speech_spans(turns, config.margin_s, info.duration_s)
    signal = measure_mouths(
        video,
        info,
        faces,
        spans,
        mesh,
        rate=config.rate,
        margin=config.crop_margin,
        min_face_logit=config.min_face_logit,
        max_gap_s=config.max_gap_s,
        max_side=max_side,
        frames=frames,
        hook=hook,
    )
    together = on_screen_together(faces)
    turns, splits = split_turns(
        signal.opening, signal.track_ids, turns, signal.rate, config.link.activity_s, config.split, together
    )
    loudness = loudness_db(read_wav(wav), signal.rate, signal.opening.shape[1]) if wav is not None else None
    found = evidence(
        signal.opening,
        signal.track_ids,
        loudness if loudness is not None else np.zeros(signal.opening.shape[1], np.float32),
        turns,
        signal.rate,
        config.link,
    )
    result = assign(found, together, config.link)
    moving = {e.track_id for e in found if e.activity >= config.link.min_activity}
    links = _links(faces, result.links, turns, lambda track: _unlinked(track, result, moving))
    counted = "count from audio+video: " + "; ".join(f"{k} → {', '.join(v)}" for k, v in splits.items())
    backend += f"; {counted if splits else 'count from audio'}"
    return Speaking(links, speaking_rows(faces, result.links, turns), turns, backend)


def describe(config: SpeakingConfig) -> str:
    try:
        wheel = f"mediapipe {version('mediapipe')} wheel"
    except PackageNotFoundError:
        wheel = "AFFECTFLOW_FACE_MESH"
    return (
        f"face mesh {Path(MESH_FILE).name} ({wheel}) in ai-edge-litert {version('ai-edge-litert')}, "
        f"lips at {config.rate:g} fps where someone speaks; link: {LINKED}, one voice per face "
        "(linear_sum_assignment), ambiguous left unlinked"
    )


def on_screen_together(faces: FaceTracks) -> set[frozenset[int]]:
    """Pairs of tracks that share an analysed frame."""
    by_frame: dict[int, set[int]] = {}
    for frame, track in zip(faces.frame, faces.track_id, strict=True):
        by_frame.setdefault(frame, set()).add(track)
    return {frozenset((a, b)) for tracks in by_frame.values() for a in tracks for b in tracks if a < b}


def speaking_rows(faces: FaceTracks, links: dict[int, tuple[str, float]], turns: Sequence[SpeakerTurn]) -> np.ndarray:
    """(N,) bool per face row: its track's own voice has a turn at the row's time."""
    track, t = np.asarray(faces.track_id, int), np.asarray(faces.t, float)
    speaking = np.zeros(track.shape, bool)
    for track_id, (speaker, _) in links.items():
        rows = track == track_id
        speaking[rows] = turn_mask(turns, speaker, t[rows])
    return speaking


def _unlinked(track: int, result: Assignment, moving: set[int]) -> str:
    if track in result.ambiguous:
        return "none: ambiguous"
    return "none: no matching voice" if track in moving else "none: mouth still"


def _links(
    faces: FaceTracks,
    links: dict[int, tuple[str, float]],
    turns: Sequence[SpeakerTurn],
    why_unlinked: Callable[[int], str],
) -> list[TrackLink]:
    track, t = np.asarray(faces.track_id, int), np.asarray(faces.t, float)
    result = []
    for track_id in sorted(set(track.tolist())):
        times = np.sort(t[track == track_id])
        speaker, score = links.get(track_id, (None, None))
        speaking_s = _overlap(_seen(times), [(x.start, x.end) for x in turns if x.speaker == speaker])
        method = LINKED if speaker is not None else why_unlinked(track_id)
        result.append(
            TrackLink(track_id, float(times[0]), float(times[-1]), int(times.size), speaker, score, speaking_s, method)
        )
    return result


def _seen(times: np.ndarray, max_gap_s: float = 1.0) -> list[tuple[float, float]]:
    """The intervals a track is on screen: its row times (sorted) joined where closer than ``max_gap_s``."""
    breaks = np.flatnonzero(np.diff(times) > max_gap_s)
    starts, ends = [times[0], *times[breaks + 1]], [*times[breaks], times[-1]]
    return list(zip(starts, ends, strict=True))


def _overlap(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> float:
    return float(sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b))
