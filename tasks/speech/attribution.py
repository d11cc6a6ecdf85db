"""Speaker attribution: which diarized voice said each transcribed word."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from affectflow.tasks.records import SpeakerTurn, Word

MIN_WORD_S = 0.02  # a zero-length word still lies in one turn


def assign_speakers(words: Iterable[Word], turns: list[SpeakerTurn]) -> list[Word]:
    """Each word gets the speaker whose turns overlap it most; words in silence get None.

    As whisperx's ``assign_word_speakers``, plus a rule for overlapped speech: when two
    speakers cover a word equally (both talking), the one whose turn began last wins —
    the decoder emits the earlier speaker's words before, so a word decoded inside the
    overlap is the newcomer's.
    """
    attributed = []
    for word in words:
        end = max(word.end, word.start + MIN_WORD_S)  # decoders emit some zero-length words
        overlap: dict[str, float] = {}
        latest_start: dict[str, float] = {}
        for turn in turns:
            shared = min(end, turn.end) - max(word.start, turn.start)
            if shared > 0:
                overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
                latest_start[turn.speaker] = max(latest_start.get(turn.speaker, turn.start), turn.start)
        best = max(overlap, key=lambda speaker: (round(overlap[speaker], 3), latest_start[speaker]), default=None)
        attributed.append(replace(word, speaker=best))
    return attributed
