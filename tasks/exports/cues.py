"""Words grouped into cues: the utterances of subtitles, JSON segments and annotation tiers.

A cue is the words of one speaker in one transcription segment, cut again at a pause or
when it grows too long to read as one subtitle (the usual 7 s / 84 characters of
subtitle guidelines: two lines of 42).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

MAX_PAUSE_S = 1.0  # a silence longer than this starts a new cue
MAX_CUE_S = 7.0
MAX_CUE_CHARS = 84


@dataclass
class Cue:
    start: float  # s
    end: float  # s
    speaker: str | None
    words: list[dict] = field(default_factory=list)  # word, start, end, score, speaker

    @property
    def text(self) -> str:
        return " ".join(str(w["word"]) for w in self.words)


def cues(words: pd.DataFrame) -> list[Cue]:
    """``words`` (sorted by start) → cues in time order."""
    out: list[Cue] = []
    segment: object = None
    for row in words.to_dict("records"):
        speaker = row["speaker"] if isinstance(row["speaker"], str) else None
        last = out[-1] if out else None
        starts_new = (
            last is None
            or row["segment"] != segment
            or speaker != last.speaker
            or row["start"] - last.end > MAX_PAUSE_S
            or row["end"] - last.start > MAX_CUE_S
            or len(last.text) + 1 + len(str(row["word"])) > MAX_CUE_CHARS
        )
        if starts_new:
            out.append(Cue(float(row["start"]), float(row["end"]), speaker))
        cue = out[-1]
        cue.words.append({k: row[k] for k in ("word", "start", "end", "score", "speaker")})
        cue.end = max(cue.end, float(row["end"]))
        segment = row["segment"]
    return out
