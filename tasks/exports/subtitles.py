"""SRT and WebVTT: one cue per utterance with its speaker, or one per word (``word_cues``).

SRT has no escaping: the text goes in as it was said, the speaker as a ``NAME:`` prefix
(the convention of whisperx's ``--highlight_words`` off). WebVTT marks the speaker with a
voice span (``<v NAME>``) and its text is HTML-escaped as the spec requires: ``-->``, ``<``
and ``&`` never reach a cue raw.
"""

from __future__ import annotations

import datetime
import html
from pathlib import Path

import srt
import webvtt

from affectflow.tasks.exports.cues import Cue, cues
from affectflow.tasks.exports.results import VideoResults

MIN_CUE_S = 0.05  # decoders emit zero-length words; a cue must end after it starts


def subtitle_cues(results: VideoResults, word_cues: bool = False) -> list[Cue]:
    utterances = cues(results.words)
    if not word_cues:
        return utterances
    return [Cue(w["start"], w["end"], c.speaker, [w]) for c in utterances for w in c.words]


def _no_blank_lines(text: str) -> str:
    """A blank line ends a cue in both formats: keep the line breaks, drop the empty lines."""
    return "\n".join(line for line in text.splitlines() if line.strip()) or "…"


def _span(cue: Cue) -> tuple[float, float]:
    return cue.start, max(cue.end, cue.start + MIN_CUE_S)


def write_srt(results: VideoResults, path: Path, word_cues: bool = False) -> None:
    subtitles = []
    for index, cue in enumerate(subtitle_cues(results, word_cues), start=1):
        start, end = _span(cue)
        text = _no_blank_lines(cue.text)
        content = f"{cue.speaker}: {text}" if cue.speaker else text
        subtitles.append(
            srt.Subtitle(index, datetime.timedelta(seconds=start), datetime.timedelta(seconds=end), content)
        )
    path.write_text(srt.compose(subtitles, reindex=False), encoding="utf-8")


def write_vtt(results: VideoResults, path: Path, word_cues: bool = False) -> None:
    captions = []
    for cue in subtitle_cues(results, word_cues):
        start, end = _span(cue)
        text = html.escape(_no_blank_lines(cue.text), quote=False)
        voice = f"<v {html.escape(cue.speaker, quote=False)}>" if cue.speaker else ""
        captions.append(webvtt.Caption(_vtt_time(start), _vtt_time(end), voice + text))
    path.write_text(webvtt.WebVTT(captions=captions).content, encoding="utf-8")


def _vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
