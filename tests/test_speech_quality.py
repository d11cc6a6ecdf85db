"""Speech stages on real models: espeak-ng dialogues with known words, turns and speakers.

Targets (issue 5): WER ≤ 15 % with the default ASR, DER ≤ 15 % with a 0.25 s collar
with the default diarizer, the right number of speakers, ≥ 95 % of words labelled with
the right speaker. The pyannote-pipeline and wav2vec2-alignment paths run on small
checkpoints these tests build, so their loading and inference code runs for real.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tasks.diarize import Diarization, DiarizeConfig, diarize, segmentation_checkpoint
from tasks.transcribe import TranscribeConfig, Transcript, Word, assign_speakers, transcribe
from tests.mediagen.speech import DialogueTruth, dialogue_turns, make_dialogue

pytestmark = pytest.mark.slow

TWO, THREE = ["en-us+m3", "en-us+f2"], ["en-us+m3", "en-us+f2", "en-us+m7"]
DIALOGUES = {  # name: (voices, number of turns, first sentence, pause_s, overlap_s)
    "2 speakers, pause": (TWO, 6, 0, 0.7, 0.0),
    "2 speakers, overlap": (TWO, 6, 12, 0.0, 0.25),
    "3 speakers, pause": (THREE, 7, 3, 0.5, 0.0),
    "3 speakers, overlap": (THREE, 7, 6, 0.0, 0.25),
}


@pytest.fixture(scope="module")
def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[DialogueTruth, Transcript, Diarization, list[Word]]]:
    directory = tmp_path_factory.mktemp("dialogues")
    out = {}
    for name, (voices, n_turns, first, pause_s, overlap_s) in DIALOGUES.items():
        truth = make_dialogue(
            directory / f"{len(out)}.wav", dialogue_turns(n_turns, voices, first), pause_s=pause_s, overlap_s=overlap_s
        )
        transcript = transcribe(truth.wav, TranscribeConfig())
        diarization = diarize(truth.wav, DiarizeConfig())
        out[name] = (truth, transcript, diarization, assign_speakers(transcript.words, diarization.turns))
    return out


def tokens(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float:
    from nltk.metrics.distance import edit_distance

    ref = tokens(reference)
    return edit_distance(ref, tokens(hypothesis)) / len(ref)


def annotation(turns: list[tuple[str, float, float]]):  # type: ignore[no-untyped-def]
    from pyannote.core import Annotation, Segment

    result = Annotation()
    for speaker, start, end in turns:
        result[Segment(start, end), len(result)] = speaker
    return result


def der(truth: DialogueTruth, diarization: Diarization) -> float:
    """Diarization error rate, ignoring ±0.125 s around reference boundaries (0.25 s collar)."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    reference = annotation([(t.speaker, t.start, t.end) for t in truth.turns])
    hypothesis = annotation([(t.speaker, t.start, t.end) for t in diarization.turns])
    return DiarizationErrorRate(collar=0.25)(reference, hypothesis)


def word_speaker_accuracy(truth: DialogueTruth, diarization: Diarization, words: list[Word]) -> float:
    """Share of words whose speaker, mapped to the truth's names, is the truth word's speaker."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    reference = annotation([(t.speaker, t.start, t.end) for t in truth.turns])
    hypothesis = annotation([(t.speaker, t.start, t.end) for t in diarization.turns])
    mapping = DiarizationErrorRate().optimal_mapping(reference, hypothesis)
    correct = 0
    for word in words:
        truth_word = matching_truth_word(word, truth)
        correct += truth_word is not None and mapping.get(word.speaker) == truth_word.speaker
    return correct / len(words)


def matching_truth_word(word: Word, truth: DialogueTruth, slack_s: float = 0.3):  # type: ignore[no-untyped-def]
    """The truth word a hypothesis word stands for: same text nearby, else the one it overlaps most.

    In overlapped speech two truth words share the time, so time alone picks the wrong one.
    """

    def overlap(t) -> float:  # type: ignore[no-untyped-def]
        return min(word.end + slack_s, t.end) - max(word.start - slack_s, t.start)

    nearby = [t for t in truth.words if overlap(t) > 0]
    same_text = [t for t in nearby if tokens(t.word) == tokens(word.word)]
    return max(same_text or nearby, key=overlap, default=None)


def test_default_asr_word_error_rate_is_at_most_15_percent(results: dict) -> None:
    errors, words = 0.0, 0
    for name, (truth, transcript, _, _) in results.items():
        error = wer(truth.text, " ".join(w.word for w in transcript.words))
        print(f"{name}: WER {error:.3f}")
        # overlapped turn starts are partly lost and a few espeak-ng words are misheard (docs/speech.md)
        assert error <= (0.15 if "pause" in name else 0.3)
        errors, words = errors + error * len(tokens(truth.text)), words + len(tokens(truth.text))
    assert errors / words <= 0.15


@pytest.mark.parametrize("name", DIALOGUES)
def test_default_asr_reports_language_times_and_models(results: dict, name: str) -> None:
    truth, transcript, _, _ = results[name]
    assert transcript.language == "en"
    assert transcript.alignment.startswith("faster-whisper word timestamps")
    assert "Whisper base" in transcript.backend
    assert all(0 <= w.start <= w.end <= truth.duration + 0.5 for w in transcript.words)


@pytest.mark.parametrize("name", DIALOGUES)
def test_default_diarizer_finds_who_spoke_when(results: dict, name: str) -> None:
    truth, _, diarization, _ = results[name]
    error = der(truth, diarization)
    found = {t.speaker for t in diarization.turns}
    print(f"{name}: DER {error:.3f}, {len(found)} speakers found of {len(truth.speakers)}")
    assert error <= 0.15
    assert len(found) == len(truth.speakers)
    assert "resemblyzer" in diarization.backend


@pytest.mark.parametrize("name", DIALOGUES)
def test_words_carry_the_right_speaker(results: dict, name: str) -> None:
    truth, _, diarization, words = results[name]
    accuracy = word_speaker_accuracy(truth, diarization, words)
    print(f"{name}: word-speaker accuracy {accuracy:.3f}")
    assert accuracy >= 0.95


def test_given_number_of_speakers_is_used(results: dict) -> None:
    truth, _, _, _ = results["3 speakers, pause"]
    assert len({t.speaker for t in diarize(truth.wav, DiarizeConfig(num_speakers=2)).turns}) == 2


def test_progress_hook_reports_pipeline_steps(results: dict) -> None:
    truth, _, _, _ = results["2 speakers, pause"]
    steps: list[tuple[str, int, int | None]] = []
    diarize(truth.wav, DiarizeConfig(), hook=lambda step, done, total: steps.append((step, done, total)))
    transcribe(truth.wav, TranscribeConfig(), hook=lambda step, done, total: steps.append((step, done, total)))
    names = [s for s, _, _ in steps]
    assert {"segmentation", "embeddings", "discrete_diarization", "vad", "transcription"} <= set(names)


def test_tiny_en_is_the_fast_shipped_alternative(results: dict) -> None:
    truth, _, _, _ = results["2 speakers, pause"]
    transcript = transcribe(truth.wav, TranscribeConfig(model_dir="tiny.en"))
    assert "tiny.en" in transcript.backend
    assert wer(truth.text, " ".join(w.word for w in transcript.words)) <= 0.15


# ---------------------------------------------------------------- pyannote pipeline directory


def build_pipeline_dir(root: Path) -> Path:
    """A speaker-diarization-community-1 layout from local checkpoints: the real segmentation
    model (whisperx's copy), a randomly initialised WeSpeaker ResNet34 and a neutral PLDA."""
    import pyannote.audio
    import torch
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34

    (root / "segmentation").mkdir(parents=True)
    shutil.copy(segmentation_checkpoint(), root / "segmentation" / "pytorch_model.bin")
    torch.manual_seed(0)
    model = WeSpeakerResNet34()
    model.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=5.0)
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": "2.6.6",
    }
    model.on_save_checkpoint(checkpoint)
    (root / "embedding").mkdir()
    torch.save(checkpoint, root / "embedding" / "pytorch_model.bin")
    (root / "plda").mkdir()
    lda = np.linalg.qr(np.random.default_rng(0).normal(size=(256, 128)))[0]
    np.savez(root / "plda" / "xvec_transform.npz", mean1=np.zeros(256), mean2=np.zeros(128), lda=lda)
    np.savez(root / "plda" / "plda.npz", mu=np.zeros(128), tr=np.eye(128), psi=np.ones(128))
    (root / "config.yaml").write_text(
        f"dependencies:\n  pyannote.audio: {pyannote.audio.__version__}\n"
        "pipeline:\n  name: pyannote.audio.pipelines.SpeakerDiarization\n  params:\n"
        "    clustering: VBxClustering\n    embedding: $model/embedding\n    embedding_batch_size: 16\n"
        "    embedding_exclude_overlap: true\n    plda: $model/plda\n    segmentation: $model/segmentation\n"
        "    segmentation_batch_size: 16\n    segmentation_step: 0.5\n"
        "params:\n  clustering:\n    threshold: 0.6\n    Fa: 0.07\n    Fb: 0.8\n"
        "  segmentation:\n    min_duration_off: 0.0\n    threshold: 0.5\n"
    )
    return root


def test_pyannote_backend_runs_a_local_pipeline_dir(results: dict, tmp_path: Path) -> None:
    truth, _, _, _ = results["2 speakers, pause"]
    config = DiarizeConfig(
        backend="pyannote", pipeline_dir=str(build_pipeline_dir(tmp_path / "pipeline")), num_speakers=2
    )
    diarization = diarize(truth.wav, config)
    assert diarization.backend.startswith("pyannote.audio 4.")
    assert len({t.speaker for t in diarization.turns}) == 2  # random embeddings: only the count is meaningful
    speech = sum(t.end - t.start for t in diarization.turns)
    assert speech >= 0.8 * sum(t.end - t.start for t in truth.turns)  # the real segmentation model finds the speech
    assert all(0 <= t.start < t.end <= truth.duration for t in diarization.turns)


# ---------------------------------------------------------------- wav2vec2 alignment directory


def build_align_dir(root: Path) -> Path:
    """A tiny randomly initialised wav2vec2 CTC model with an English character vocabulary."""
    import json

    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    root.mkdir(parents=True)
    vocab = {c: i for i, c in enumerate(["<pad>", "<s>", "</s>", "<unk>", "|", *"abcdefghijklmnopqrstuvwxyz'"])}
    (root / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(root / "vocab.json"), word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=False
    )
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(root)
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16),
        conv_stride=(5, 64),
        conv_kernel=(10, 64),
        num_conv_pos_embeddings=16,
        pad_token_id=0,
    )
    Wav2Vec2ForCTC(config).save_pretrained(root)
    return root


def test_whisperx_alignment_runs_from_a_local_model_dir(results: dict, tmp_path: Path) -> None:
    truth, _, _, _ = results["2 speakers, pause"]
    config = TranscribeConfig(align_model_dir=str(build_align_dir(tmp_path / "align")), language="en")
    transcript = transcribe(truth.wav, config)
    assert transcript.alignment == "whisperx wav2vec2 forced alignment: align"
    assert wer(truth.text, " ".join(w.word for w in transcript.words)) <= 0.15  # same words, other timing
    assert all(0 <= w.start <= w.end <= truth.duration + 0.5 for w in transcript.words)
    assert all(w.score is None or 0 <= w.score <= 1 for w in transcript.words)
