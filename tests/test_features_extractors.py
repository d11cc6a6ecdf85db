"""Each extractor on real inputs: real faces, espeak-ng speech, real text models, and the
user-supplied model paths (exercised with tiny ONNX files / model dirs of the right shape)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from affectflow.flows.distill import Utterance, synthesize
from affectflow.tasks.features.audio import EGEMAPS_NAMES, EGeMAPSProsody, VGGishOnnx
from affectflow.tasks.features.text import SentenceEmbedding, minilm, minilm_dir
from affectflow.tasks.features.visual import (
    FER_CLASSES,
    FaceBatch,
    FeatureError,
    HSEmotionOnnx,
    fer_probabilities,
    shared_fer,
)
from tests.emotion_clips import astronaut_crop

pytestmark = pytest.mark.models


def export(module: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    torch.onnx.export(
        module, (example,), str(path), input_names=["input"], dynamic_axes={"input": {0: "n"}}, dynamo=False
    )
    return path


class TinyHSEmotion(torch.nn.Module):
    """[N, 3, 224, 224] → 8 logits + valence + arousal, like enet_b0_8_va_mtl."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(2, 3)))


def test_fer_features_of_a_smiling_face_say_happy() -> None:
    crop = astronaut_crop()
    features = shared_fer()(FaceBatch(np.stack([crop, crop[:, ::-1]])))
    assert features.shape == (2, 135)
    probs = fer_probabilities(features)
    assert (probs.argmax(1) == FER_CLASSES.index("happy")).all()


def test_egemaps_loud_fast_speech_reads_louder_and_faster_than_soft_slow_speech() -> None:
    text = "we will meet again next week to check the progress of the new garden"
    loud = synthesize(Utterance(text, "en-us+m3", 50, 220, 180))
    soft = synthesize(Utterance(text, "en-us+m3", 50, 120, 40))
    silence = np.zeros(16000 * 3, np.float32)
    extractor = EGeMAPSProsody()
    column = EGEMAPS_NAMES.index
    a = extractor(loud, np.array([1.0]))[0]
    b = extractor(soft, np.array([1.5]))[0]
    quiet = extractor(silence, np.array([1.5]))[0]
    assert extractor.dim == 29 and np.isfinite(a).all()
    assert a[column("Loudness_sma3_mean")] > b[column("Loudness_sma3_mean")]
    assert a[column("voiced_fraction")] > 0.5 and quiet[column("voiced_fraction")] == 0


def test_hsemotion_onnx_of_the_right_signature_gives_its_outputs_per_face(tmp_path: Path) -> None:
    path = export(TinyHSEmotion(), torch.zeros(1, 3, 224, 224), tmp_path / "enet.onnx")
    extractor = HSEmotionOnnx(str(path))
    out = extractor(FaceBatch(np.stack([astronaut_crop()] * 3)))
    assert extractor.dim == 10 and out.shape == (3, 10) and np.isfinite(out).all()


def test_hsemotion_missing_or_wrong_file_fails_with_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(FeatureError, match=r"no such HSEmotion ONNX file; point AFFECTFLOW_HSEMOTION_ONNX"):
        HSEmotionOnnx(str(tmp_path / "absent.onnx"))
    wrong = export(torch.nn.Linear(4, 10), torch.zeros(1, 4), tmp_path / "wrong.onnx")
    with pytest.raises(FeatureError, match=r"expected one input of shape \[N, 3, 224, 224\]") as err:
        HSEmotionOnnx(str(wrong))
    assert "\n" not in str(err.value)


def test_vggish_onnx_gets_one_log_mel_patch_per_time(tmp_path: Path) -> None:
    class TinyVGGish(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, 96, 64] -> [N, 128]
            return x.mean(dim=1).repeat(1, 2)

    path = export(TinyVGGish(), torch.zeros(1, 96, 64), tmp_path / "vggish.onnx")
    speech = synthesize(Utterance("good morning everyone", "en-us+f2", 50, 170, 100))
    out = VGGishOnnx(str(path))(speech, np.array([0.0, 0.5, 1.0, 30.0]))
    assert out.shape == (4, 128) and np.isfinite(out).all()
    assert out[1].mean() > out[3].mean() + 0.2  # speech is louder than the silence past the end
    bad = export(torch.nn.Linear(64, 128), torch.zeros(1, 64), tmp_path / "bad.onnx")
    with pytest.raises(FeatureError, match=r"expected a log-mel patch input"):
        VGGishOnnx(str(bad))


def test_minilm_embeds_speech_and_masks_silence() -> None:
    model = minilm()
    vectors, mask = model(["what a lovely day", "", "what a lovely day", "a terrible day"])
    assert model.dim == 384 and mask.tolist() == [True, False, True, True]
    assert (vectors[1] == 0).all() and np.allclose(vectors[0], vectors[2])
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-4)


def test_a_local_bert_style_dir_loads_and_a_wrong_one_fails_clearly(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    good = tmp_path / "tiny-bert"
    vocab = (minilm_dir() / "vocab.txt").read_text().splitlines()
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(good)
    (good / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (good / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True}))
    model = SentenceEmbedding(good, "tiny")
    vectors, mask = model(["hello there", ""])
    assert model.dim == 32 and vectors.shape == (2, 32) and mask.tolist() == [True, False]

    (good / "model.safetensors").unlink()
    with pytest.raises(FeatureError, match=r"not a BERT-style model directory \(missing model.safetensors or"):
        SentenceEmbedding(good, "tiny")
