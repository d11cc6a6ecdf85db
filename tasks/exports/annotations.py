"""Annotation files of conversation research: RTTM (pyannote), ELAN (.eaf) and Praat TextGrid.

- RTTM: the diarization, written by ``pyannote.core.Annotation.write_rttm`` (the file id is
  the video_id: RTTM fields are space-separated, so a file name with spaces cannot be one).
- ELAN: per speaker a tier of utterances and a child tier of words; per face track a
  valence and an arousal tier of 1 s means (the value as text); the video as linked media.
- TextGrid: per speaker an interval tier of turns and one of words.
Times are seconds in the tables; ELAN counts integer milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectflow.tasks.exports.cues import cues
from affectflow.tasks.exports.results import VideoResults

EMOTION_BIN_S = 1.0  # ELAN annotations of valence/arousal: the mean over each second of a track


def write_rttm(results: VideoResults, path: Path) -> None:
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=results.video_id)
    for track, row in enumerate(results.turns.itertuples(index=False)):
        annotation[Segment(float(row.start), float(row.end)), track] = str(row.speaker)
    with path.open("w") as file:
        annotation.write_rttm(file)


def write_eaf(results: VideoResults, path: Path) -> None:
    from pympi.Elan import Eaf, to_eaf

    eaf = Eaf(author="affectflow")
    eaf.remove_tier("default")
    uri = str(results.video.get("uri") or "")
    if uri:
        eaf.add_linked_file(_media_url(uri), mimetype=_mimetype(uri))
    for speaker, speaker_cues in _by_speaker(cues(results.words)).items():
        tier, words = f"{speaker}", f"{speaker} words"
        eaf.add_tier(tier)
        eaf.add_tier(words, parent=tier)  # not a symbolic subdivision: words keep their own times
        for cue in speaker_cues:
            start, end = _ms(cue.start), max(_ms(cue.end), _ms(cue.start) + 1)
            eaf.add_annotation(tier, start, end, cue.text)
            for word in cue.words:
                w_start = min(max(_ms(word["start"]), start), end - 1)
                w_end = min(max(_ms(word["end"]), w_start + 1), end)
                eaf.add_annotation(words, w_start, w_end, str(word["word"]))
    for track_id, rows in results.emotions.groupby("track_id", sort=True):
        for dimension in ("valence", "arousal"):
            tier = f"face {int(track_id)} {dimension}"
            eaf.add_tier(tier)
            for bin_start, bin_end, value in _bins(rows.t.to_numpy(), rows[dimension].to_numpy(), EMOTION_BIN_S):
                eaf.add_annotation(tier, _ms(bin_start), _ms(bin_end), f"{value:.3f}")
    to_eaf(str(path), eaf, pretty=True)


def write_textgrid(results: VideoResults, path: Path) -> None:
    from praatio import textgrid
    from praatio.utilities.constants import Interval

    end_s = max(results.duration_s, _last_time(results))
    grid = textgrid.Textgrid(minTimestamp=0.0, maxTimestamp=end_s)
    turns = {speaker: rows for speaker, rows in results.turns.groupby("speaker", sort=True)}
    words = {speaker: rows for speaker, rows in results.words.groupby("speaker", sort=True)}
    for speaker in sorted(set(turns) | set(words)):
        spans = _disjoint((r.start, r.end, "") for r in turns.get(speaker, _empty()).itertuples())
        grid.addTier(
            textgrid.IntervalTier(str(speaker), [Interval(a, b, str(speaker)) for a, b, _ in spans], 0.0, end_s)
        )
        spoken = _disjoint((r.start, r.end, str(r.word)) for r in words.get(speaker, _empty()).itertuples())
        grid.addTier(textgrid.IntervalTier(f"{speaker} words", [Interval(*s) for s in spoken], 0.0, end_s))
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def _by_speaker(all_cues: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for cue in all_cues:
        out.setdefault(cue.speaker or "unknown speaker", []).append(cue)
    return out


def _bins(t: np.ndarray, values: np.ndarray, width: float) -> list[tuple[float, float, float]]:
    """(start, end, mean) of each ``width``-second bin that holds a finite value; t in s."""
    keep = np.isfinite(values)
    if not keep.any():
        return []
    index = np.floor(t[keep] / width).astype(int)
    means = pd.Series(values[keep]).groupby(index).mean()
    return [(i * width, (i + 1) * width, float(v)) for i, v in means.items()]


def _disjoint(spans: Any, min_s: float = 0.001) -> list[tuple[float, float, str]]:
    """Intervals of one tier in time order, each starting where the previous ends at the earliest.

    A TextGrid tier's intervals may not overlap or be empty; a speaker's turns or words
    sometimes touch or overlap by a few ms (word alignment), so they are clipped.
    """
    out: list[tuple[float, float, str]] = []
    for start, end, label in sorted(spans):
        start = max(float(start), out[-1][1] if out else 0.0)
        end = max(float(end), start + min_s)
        out.append((start, end, label))
    return out


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"start": [], "end": [], "word": []})


def _last_time(results: VideoResults) -> float:
    ends = [results.turns["end"].max(), results.words["end"].max()]
    return float(max([e for e in ends if pd.notna(e)], default=0.0)) + 0.01


def _ms(seconds: float) -> int:
    return round(float(seconds) * 1000)


def _media_url(uri: str) -> str:
    return uri if "://" in uri else Path(uri).resolve().as_uri()


def _mimetype(uri: str) -> str:
    suffix = Path(uri.split("?")[0]).suffix.lower()
    return {".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm", ".wav": "audio/x-wav"}.get(
        suffix, "video/*"
    )
