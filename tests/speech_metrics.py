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

from affectflow.tasks.speech.diarize import SpeakerTurn
from affectflow.tasks.speech.transcribe import Word
from affectflow.tasks.synth.speech import DialogueTruth, TruthWord


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


def boundary_errors(truth: DialogueTruth, turns: Sequence[SpeakerTurn], join_s: float = 0.25) -> list[float]:
    """Seconds between each true turn change and the diarizer's, one value per change boundary.

    A turn change is the start of a turn that follows another speaker's, and the end of a
    turn that another speaker's follows. Hypothesis speakers are mapped to true ones as DER
    maps them; a mapped speaker's segments closer than ``join_s`` are joined (pyannote
    splits a turn at short pauses), and the joined segment that overlaps the true turn most
    gives the predicted start or end. A turn the mapped speaker does not overlap at all
    (missed, or its speaker not found) gives no value: DER and the count already charge it.
    """
    from pyannote.metrics.diarization import DiarizationErrorRate

    reference = annotation((t.speaker, t.start, t.end) for t in truth.turns)
    hypothesis = annotation((t.speaker, t.start, t.end) for t in turns)
    mapping = {
        truth_name: hyp for hyp, truth_name in DiarizationErrorRate().optimal_mapping(reference, hypothesis).items()
    }
    joined = {speaker: joined_segments(turns, speaker, join_s) for speaker in mapping.values()}
    ordered = sorted(truth.turns, key=lambda t: t.start)
    errors = []
    for k, turn in enumerate(ordered):
        segments = joined.get(mapping.get(turn.speaker, ""), [])
        best = max(segments, key=lambda s: min(s[1], turn.end) - max(s[0], turn.start), default=None)
        if best is None or min(best[1], turn.end) <= max(best[0], turn.start):
            continue
        if k > 0 and ordered[k - 1].speaker != turn.speaker:
            errors.append(abs(best[0] - turn.start))
        if k + 1 < len(ordered) and ordered[k + 1].speaker != turn.speaker:
            errors.append(abs(best[1] - turn.end))
    return errors


def joined_segments(turns: Sequence[SpeakerTurn], speaker: str, join_s: float) -> list[tuple[float, float]]:
    """(start, end) of one speaker's turns, those closer than ``join_s`` joined."""
    out: list[tuple[float, float]] = []
    for turn in sorted((t for t in turns if t.speaker == speaker), key=lambda t: t.start):
        if out and turn.start - out[-1][1] < join_s:
            out[-1] = (out[-1][0], max(out[-1][1], turn.end))
        else:
            out.append((turn.start, turn.end))
    return out


def diarization_errors(truth: DialogueTruth, turns: Sequence[SpeakerTurn]) -> tuple[float, float]:
    """(seconds of error, seconds of reference speech) with the 0.25 s collar: a set's DER is pooled from these."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    reference = annotation((t.speaker, t.start, t.end) for t in truth.turns)
    hypothesis = annotation((t.speaker, t.start, t.end) for t in turns)
    parts = DiarizationErrorRate(collar=0.25)(reference, hypothesis, detailed=True)
    return parts["false alarm"] + parts["missed detection"] + parts["confusion"], parts["total"]


def pooled_diarization_error_rate(pairs: Iterable[tuple[DialogueTruth, Sequence[SpeakerTurn]]]) -> float:
    """DER of a test set: all error seconds over all reference seconds."""
    counts = [diarization_errors(truth, turns) for truth, turns in pairs]
    return sum(e for e, _ in counts) / sum(t for _, t in counts)


def real_call() -> DialogueTruth:
    """The real two-speaker telephone-style recording pyannote.audio ships (30 s, 16 kHz), with its RTTM truth."""
    from pathlib import Path

    import pyannote.audio.sample
    from pyannote.database.util import load_rttm

    from affectflow.tasks.synth.speech import TruthTurn

    folder = Path(pyannote.audio.sample.__file__).parent
    reference = load_rttm(folder / "sample.rttm")["sample"]
    turns = [TruthTurn(str(s), seg.start, seg.end) for seg, _, s in reference.itertracks(yield_label=True)]
    import soundfile

    return DialogueTruth(folder / "sample.wav", soundfile.info(folder / "sample.wav").duration, turns, [])
