"""``export_videos``: check everything first, write every file into a hidden folder beside them, then rename.

Nothing is half-written: an unknown video or format, or a ``to`` that cannot be written,
fails before any file exists; the files are written into a hidden folder inside ``to`` and
renamed into place only once every file of the export has been written (the folder is
removed either way).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import pandas as pd

from affectflow.tasks.exports.annotations import write_eaf, write_rttm, write_textgrid
from affectflow.tasks.exports.results import VideoResults, committed_videos, load_results
from affectflow.tasks.exports.subtitles import write_srt, write_vtt
from affectflow.tasks.exports.tables import write_csv, write_json
from affectflow.tasks.query.views import connect
from affectflow.tasks.storage.fs import probe_writable

Writer = Callable[[VideoResults, Path], None]

FORMATS: dict[str, tuple[str, str]] = {  # name: (file suffix, what it holds)
    "csv": ("emotions.csv", "emotions per face track and frame (t s, valence/arousal in [-1, 1], speaking, speaker)"),
    "json": ("json", "whisperx-style segments and words with speakers, turns, tracks with boxes, emotion series"),
    "srt": ("srt", "subtitles: utterances with speaker names"),
    "vtt": ("vtt", "WebVTT subtitles: utterances with <v speaker> voice spans"),
    "rttm": ("rttm", "the diarization (pyannote's RTTM)"),
    "eaf": ("eaf", "ELAN: utterance and word tiers per speaker, valence/arousal tiers per face track"),
    "textgrid": ("TextGrid", "Praat: turn and word interval tiers per speaker"),
}


class ExportError(Exception):
    """An export cannot be made as asked (one line: what and why).

    ``usage`` says the request was wrong (an unknown video or format) rather than the place
    it was to be written.
    """

    def __init__(self, message: str, usage: bool = True) -> None:
        super().__init__(message)
        self.usage = usage


def export_videos(
    out: str,
    to: Path,
    formats: Sequence[str],
    video_ids: Sequence[str] = (),
    *,
    word_cues: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Files of ``formats`` for ``video_ids`` (all ok videos when empty) of output root ``out``, in ``to``."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ExportError(f"unknown format {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}")
    con = connect(out)
    chosen = _choose_videos(committed_videos(con), video_ids)
    _check_writable(to)
    writers = _writers(word_cues)
    staging = Path(tempfile.mkdtemp(dir=to, prefix=".affectflow-export-"))  # same filesystem: renames are atomic
    try:
        finals = []
        for done, (video_id, name) in enumerate(chosen, start=1):
            results = load_results(con, video_id)
            for fmt in formats:
                final = to / f"{_stem(name)}.{video_id}.{FORMATS[fmt][0]}"
                writers[fmt](results, staging / final.name)
                finals.append(final)
            if progress:
                progress(f"[{done}/{len(chosen)}] {name}: {', '.join(formats)}")
        for final in finals:
            os.replace(staging / final.name, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return finals


def _writers(word_cues: bool) -> dict[str, Writer]:
    return {
        "csv": write_csv,
        "json": write_json,
        "srt": partial(write_srt, word_cues=word_cues),
        "vtt": partial(write_vtt, word_cues=word_cues),
        "rttm": write_rttm,
        "eaf": write_eaf,
        "textgrid": write_textgrid,
    }


def _choose_videos(videos: pd.DataFrame, video_ids: Sequence[str]) -> list[tuple[str, str]]:
    """(video_id, name) to export; an unknown or failed video is an error before anything is written."""
    rows = {row.video_id: row for row in videos.itertuples(index=False)}
    if not video_ids:
        chosen = [v for v in rows.values() if v.status == "ok"]
        if not chosen:
            raise ExportError("no ok video in this output root to export")
        return [(v.video_id, v.name) for v in chosen]
    missing = [v for v in video_ids if v not in rows]
    if missing:
        raise ExportError(
            f"no video {', '.join(missing)} in this output root "
            '(list them: affectflow sql --out OUT "SELECT video_id, name, status FROM videos")'
        )
    failed = [v for v in video_ids if rows[v].status != "ok"]
    if failed:
        raise ExportError(f"video {', '.join(failed)} failed, so it has no results to export")
    return [(v, rows[v].name) for v in dict.fromkeys(video_ids)]


def _check_writable(to: Path) -> None:
    try:
        probe_writable(to)
    except OSError as err:
        raise ExportError(f"cannot write to {to}: {err.strerror or err}", usage=False) from err


def _stem(name: str) -> str:
    """A file-name-safe stem of the video's name: no folders, no control or reserved characters."""
    stem = Path(str(name).replace("\\", "/").split("/")[-1]).stem
    return re.sub(r'[\x00-\x1f<>:"/\\|?*]+', "_", stem).strip(" .") or "video"
