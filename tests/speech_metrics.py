"""Scores of speech stages against a dialogue's truth: WER, DER, word-speaker accuracy.

WER is counted on text normalised as in the Whisper paper (transformers' copy of
Whisper's English normaliser: lower case, no punctuation, "ten" and "10" alike), so a
decoder writing numbers as digits is not charged for it. Errors and reference words
are returned apart so a test set's WER is pooled (total errors / total words), the
usual way a corpus WER is reported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence

from tasks.diarize import SpeakerTurn
from tasks.transcribe import Word
from tests.mediagen.speech import DialogueTruth, TruthWord


@functools.cache
def normaliser() -> Callable[[str], str]:
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer({})  # no British → American spelling map: the texts are American


def tokens(text: str) -> list[str]:
    return normaliser()(text).split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, number of reference words)."""
    from nltk.metrics.distance import edit_distance

    ref = tokens(reference)
    return edit_distance(ref, tokens(hypothesis)), len(ref)


def word_error_rate(reference: str, hypothesis: str) -> float:
    errors, words = word_errors(reference, hypothesis)
    return errors / words


def pooled_word_error_rate(pairs: Iterable[tuple[str, str]]) -> float:
    """WER of a test set: all errors over all reference words."""
    counts = [word_errors(reference, hypothesis) for reference, hypothesis in pairs]
    return sum(e for e, _ in counts) / sum(n for _, n in counts)


def annotation(turns: Iterable[tuple[str, float, float]]):  # type: ignore[no-untyped-def]
    from pyannote.core import Annotation, Segment

    result = Annotation()
    for speaker, start, end in turns:
        result[Segment(start, end), len(result)] = speaker
    return result


def diarization_error_rate(truth: DialogueTruth, turns: Sequence[SpeakerTurn]) -> float:
    """DER ignoring ±0.125 s around reference boundaries (a 0.25 s collar), as pyannote.metrics."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    reference = annotation((t.speaker, t.start, t.end) for t in truth.turns)
    hypothesis = annotation((t.speaker, t.start, t.end) for t in turns)
    return float(DiarizationErrorRate(collar=0.25)(reference, hypothesis))


def word_speaker_hits(truth: DialogueTruth, turns: Sequence[SpeakerTurn], words: Sequence[Word]) -> int:
    """How many words carry the truth word's speaker once cluster names are mapped to truth names."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    reference = annotation((t.speaker, t.start, t.end) for t in truth.turns)
    hypothesis = annotation((t.speaker, t.start, t.end) for t in turns)
    mapping = DiarizationErrorRate().optimal_mapping(reference, hypothesis)
    hits = 0
    for word in words:
        truth_word = matching_truth_word(word, truth)
        hits += truth_word is not None and mapping.get(word.speaker) == truth_word.speaker
    return hits


def matching_truth_word(word: Word, truth: DialogueTruth, slack_s: float = 0.3) -> TruthWord | None:
    """The truth word a hypothesis word stands for: same text nearby, else the one it overlaps most.

    In overlapped speech two truth words share the time, so time alone picks the wrong one.
    """

    def overlap(t: TruthWord) -> float:
        return min(word.end + slack_s, t.end) - max(word.start - slack_s, t.start)

    nearby = [t for t in truth.words if overlap(t) > 0]
    same_text = [t for t in nearby if tokens(t.word) == tokens(word.word)]
    return max(same_text or nearby, key=overlap, default=None)
