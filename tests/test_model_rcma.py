"""RCMA as the paper and the authors' code describe it: shapes, masks, recursion, weights."""

from __future__ import annotations

import pytest
import torch

from affectflow.model import RCMA, RCMAConfig
from affectflow.model.tcn import TCN

pytestmark = pytest.mark.models

SMALL = dict(
    visual_dim=10,
    audio_dim=6,
    text_dim=12,
    visual_channels=(16, 8),
    audio_channels=(8, 4),
    text_channels=(8, 4),
    seq_len=20,
    head_dim=16,
)


def inputs(batch: int = 3, T: int = 20, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(batch, T, d, generator=g) for m, d in (("visual", 10), ("audio", 6), ("text", 12))}


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_predicts_every_frame_in_minus_one_to_one() -> None:
    model = RCMA(**SMALL).eval()
    out = model(**inputs())
    assert out.shape == (3, 20, 2)
    assert out.abs().max() <= 1
    assert RCMA(**SMALL, outputs=1).eval()(**inputs()).shape == (3, 20, 1)


def test_config_object_and_keyword_overrides_build_the_same_model() -> None:
    assert RCMA(RCMAConfig(**SMALL)).config == RCMA(**SMALL).config
    assert RCMA(RCMAConfig(**SMALL), iterations=3).config.iterations == 3
    assert RCMA(**SMALL).seq_len == 20


def test_defaults_are_the_authors_architecture() -> None:
    model = RCMA()
    assert model.seq_len == 300 and model.config.iterations == 2 and not model.config.share_weights
    assert model.config.fusion_dims() == {"visual": 256, "audio": 128, "text": 128}
    assert (model.head.fc1.in_features, model.head.fc1.out_features, model.head.fc2.out_features) == (512, 256, 2)
    assert len(model.attention) == 2
    assert model.attention[0].keys[0].in_features == 300  # keys: a linear map along time
    assert [len(model.encoders[m].tcn.levels) for m in ("visual", "audio", "text")] == [4, 4, 4]
    assert model.encoders["visual"].tcn.levels[0].conv1.kernel_size == (5,)
    assert model.attention[0].dropout.p == 0.6


def test_a_window_of_the_wrong_length_is_refused_with_the_fix() -> None:
    model = RCMA(**SMALL)
    with pytest.raises(ValueError, match="seq_len=20 frames, got T=19"):
        model(**inputs(T=19))
    wrong_dim = inputs()
    wrong_dim["audio"] = torch.randn(3, 20, 7)
    with pytest.raises(ValueError, match="audio features must have shape"):
        model(**wrong_dim)


def test_masked_frames_do_not_influence_the_output() -> None:
    model = RCMA(**SMALL).eval()
    x = inputs()
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[:, 5:9] = False
    changed = {**x, "audio": x["audio"].clone()}
    changed["audio"][:, 5:9] += 100.0
    masks = {"visual_mask": None, "audio_mask": mask, "text_mask": None}
    assert torch.allclose(model(**x, **masks), model(**changed, **masks), atol=1e-6)
    assert not torch.allclose(model(**x), model(**changed), atol=1e-3)  # unmasked, they do


def test_gradients_reach_all_three_modality_branches() -> None:
    model = RCMA(**SMALL)
    model(**inputs()).square().mean().backward()
    for m in ("visual", "audio", "text"):
        grads = [p.grad for p in model.encoders[m].parameters()]
        assert all(g is not None for g in grads), m
        assert sum(g.abs().sum() for g in grads) > 0, m


def test_recursion_count_changes_the_computation() -> None:
    once = RCMA(**SMALL, share_weights=True, iterations=1).eval()
    twice = RCMA(**SMALL, share_weights=True, iterations=2).eval()
    twice.load_state_dict(once.state_dict())  # same weights: only the number of steps differs
    assert not torch.allclose(once(**inputs()), twice(**inputs()), atol=1e-4)
    assert len(RCMA(**SMALL, iterations=3).attention) == 3


def test_shared_weights_keep_one_attention_block() -> None:
    separate, shared = RCMA(**SMALL, iterations=3), RCMA(**SMALL, iterations=3, share_weights=True)
    block = params(shared.attention[0])
    assert params(separate) - params(shared) == 2 * block > 0


def test_causal_tcn_does_not_look_ahead_and_the_centred_one_does() -> None:
    x = torch.randn(2, 40, 3)
    later = x.clone()
    later[:, 30:] += 5.0
    for causal in (True, False):
        tcn = TCN(3, (4, 4), kernel_size=5, causal=causal).eval()
        same_past = torch.allclose(tcn(x)[:, :25], tcn(later)[:, :25], atol=1e-6)
        assert same_past == causal
