"""CSV (py-feat's one table per video: emotions per face track and frame) and JSON (whisperx's shape)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from affectflow.tasks.exports.cues import cues
from affectflow.tasks.exports.results import VideoResults

CSV_COLUMNS = ["video_id", "track_id", "frame", "t", "valence", "arousal", "speaking", "speaker", "person_id", "model"]


def write_csv(results: VideoResults, path: Path) -> None:
    """One row per (face track, analysed frame); t in s, valence/arousal in [-1, 1]; LF line endings."""
    frame = results.emotions.assign(video_id=results.video_id)[CSV_COLUMNS]
    frame.to_csv(path, index=False, lineterminator="\n", float_format="%.6g")


def write_json(results: VideoResults, path: Path) -> None:
    """whisperx's ``segments`` (with ``words``) and ``word_segments``, plus speakers, tracks and emotions."""
    utterances = cues(results.words)
    segments = [
        {"start": c.start, "end": c.end, "text": c.text, "speaker": c.speaker, "words": c.words} for c in utterances
    ]
    document = {
        "video": _video(results.video),
        "segments": segments,
        "word_segments": [w for c in utterances for w in c.words],
        "speaker_turns": results.turns.drop(columns="model").to_dict("records"),
        "tracks": [_track(results, row) for row in results.tracks.to_dict("records")],
        "emotions": _series(results),
    }
    path.write_text(json.dumps(_plain(document), ensure_ascii=False, allow_nan=False, indent=1) + "\n")


def _video(row: dict[str, Any]) -> dict[str, Any]:
    video = dict(row)
    for key in ("stage_seconds", "backends"):  # JSON strings in the table: nested here
        if isinstance(video.get(key), str):
            video[key] = json.loads(video[key])
    return video


def _track(results: VideoResults, row: dict[str, Any]) -> dict[str, Any]:
    """A face track with its boxes (source pixels) over time."""
    boxes = results.faces[results.faces.track_id == row["track_id"]]
    return {**row, "faces": {k: boxes[k].tolist() for k in ("frame", "t", "x1", "y1", "x2", "y2", "score")}}


def _series(results: VideoResults) -> list[dict[str, Any]]:
    """Per face track: t (s), valence, arousal, speaking — columns, not rows (a long video stays compact)."""
    out = []
    for track_id, rows in results.emotions.groupby("track_id", sort=True):
        series = {k: rows[k].tolist() for k in ("frame", "t", "valence", "arousal", "speaking")}
        person = {"speaker": _first(rows["speaker"]), "person_id": _first(rows["person_id"])}
        out.append({"track_id": int(track_id), **person, **series})
    model = results.emotions["model"].dropna()
    return [{"model": str(model.iloc[0]) if len(model) else None, "tracks": out}] if out else []


def _first(column: Any) -> Any:
    values = column.dropna()
    return values.iloc[0] if len(values) else None


def _plain(value: Any) -> Any:
    """Numpy/pandas scalars to JSON ones; NaN and NaT to null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)
