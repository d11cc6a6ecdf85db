"""RCMA: recursive joint cross-modal attention over visual, audio and text features.

Praveen & Alam, "Recursive Joint Cross-Modal Attention for Multimodal Fusion in
Dimensional Emotion Recognition", ABAW6 (CVPR-W 2024), arXiv 2403.13659.

Per-frame features of each modality go through a TCN; the encoded sequences
X_v, X_a, X_t attend to their joint representation J = [X_v ; X_a ; X_t], L times;
a small head maps the concatenation to valence/arousal in [-1, 1] for every frame.
Defaults follow the authors' code (github.com/praveena2j/RJCMA); see docs/rcma.md.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from affectflow.model.tcn import TCN

MODALITIES = ("visual", "audio", "text")


@dataclass(frozen=True)
class RCMAConfig:
    # per-frame input feature sizes (authors: ResNet-50 IR 512, VGGish 128, BERT 768)
    visual_dim: int = 512
    audio_dim: int = 128
    text_dim: int = 768
    # TCN widths per level. The authors' config gives 4 levels of 512 / 128 / 512 but their
    # fusion (DCNLayer(256, 128, 128), head Linear(512, 256)) needs 256 / 128 / 128 out:
    # the forward pass wins, so the last level is narrowed to the fusion's sizes.
    visual_channels: tuple[int, ...] = (512, 512, 512, 256)
    audio_channels: tuple[int, ...] = (128, 128, 128, 128)
    text_channels: tuple[int, ...] = (512, 512, 512, 128)
    kernel_size: int = 5
    tcn_dropout: float = 0.1
    causal: bool = True  # the authors' TCN only looks back in time
    seq_len: int = 300  # T: fixed, because the attention keys are a linear map along time
    iterations: int = 2  # L: attention steps, each on the previous one's output
    share_weights: bool = False  # the authors' code gives each step its own weights
    dropout: float = 0.6  # on the correlation C_m and on each residual branch
    head_dim: int = 256
    outputs: int = 2  # (valence, arousal); the authors train one model per dimension (1)

    def __post_init__(self) -> None:
        for name in ("visual_channels", "audio_channels", "text_channels"):
            object.__setattr__(self, name, tuple(getattr(self, name)))  # lists from JSON → tuples
        if self.iterations < 1 or self.seq_len < 1 or self.outputs < 1:
            raise ValueError("iterations, seq_len and outputs must be at least 1")

    def input_dims(self) -> dict[str, int]:
        return {m: getattr(self, f"{m}_dim") for m in MODALITIES}

    def fusion_dims(self) -> dict[str, int]:
        """d_m: the width of each modality's TCN output, which the attention works on."""
        return {m: getattr(self, f"{m}_channels")[-1] for m in MODALITIES}

    @classmethod
    def from_dict(cls, values: dict) -> RCMAConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class Encoder(nn.Module):
    """One modality: standardise (training-set statistics), zero invalid frames, TCN."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, in_dim: int, channels: tuple[int, ...], config: RCMAConfig):
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim))  # set from the training data before training
        self.register_buffer("std", torch.ones(in_dim))
        self.tcn = TCN(in_dim, channels, config.kernel_size, config.tcn_dropout, config.causal)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:  # (B, T, D) -> (B, T, d_m)
        x = (x - self.mean) / self.std
        if mask is not None:
            x = x * mask.unsqueeze(-1).to(x.dtype)  # a missing frame reads as the training mean
        return self.tcn(x)


class JointCrossAttention(nn.Module):
    """One step of joint cross-modal attention, for every modality m, with J = [X_v ; X_a ; X_t]:

        K_m = W_k,m X_mᵀ                      (d_m, T)  linear map along time, T×T
        V_m = X_m W_v,m                        (T, d_m)
        C_m = Dropout(tanh(K_m J / √d))        (d_m, d)  correlation of m with the joint features
        H_m = ReLU(tanh(V_m C_m))              (T, d)    attended features
        X_m ← X_m + Dropout(ReLU(H_m W_o,m))   (T, d_m)  W_o,m: d → d_m

    J itself is the query (the authors' code builds a projection of J but never uses it).
    """

    def __init__(self, dims: list[int], seq_len: int, dropout: float):
        super().__init__()
        d = sum(dims)
        self.scale = d**-0.5
        self.keys = nn.ModuleList(nn.Linear(seq_len, seq_len) for _ in dims)
        self.values = nn.ModuleList(nn.Linear(d_m, d_m) for d_m in dims)
        self.outs = nn.ModuleList(nn.Linear(d, d_m) for d_m in dims)
        self.dropout = nn.Dropout(dropout)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:  # each (B, T, d_m)
        J = torch.cat(xs, dim=-1)  # (B, T, d)
        attended = []
        for X, key, value, out in zip(xs, self.keys, self.values, self.outs, strict=True):
            K = key(X.transpose(1, 2))  # (B, d_m, T)
            V = value(X)  # (B, T, d_m)
            C = self.dropout(torch.tanh(K @ J * self.scale))  # (B, d_m, d)
            H = F.relu(torch.tanh(V @ C))  # (B, T, d)
            attended.append(X + self.dropout(F.relu(out(H))))  # (B, T, d_m)
        return attended


class Head(nn.Module):
    """Linear d→256 → BatchNorm → LeakyReLU → Linear 256→outputs → tanh, per frame."""

    def __init__(self, in_dim: int, hidden: int, outputs: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.norm = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, T, outputs)
        h = self.norm(self.fc1(x).transpose(1, 2)).transpose(1, 2)  # BatchNorm1d wants (B, C, T)
        return torch.tanh(self.fc2(F.leaky_relu(h)))


class RCMA(nn.Module):
    """``RCMA(visual_dim=…, audio_dim=…, text_dim=…, **config)`` or ``RCMA(RCMAConfig(…))``."""

    def __init__(self, config: RCMAConfig | None = None, **overrides: Any):
        super().__init__()
        self.config = replace(config or RCMAConfig(), **overrides)
        cfg = self.config
        self.encoders = nn.ModuleDict(
            {m: Encoder(cfg.input_dims()[m], getattr(cfg, f"{m}_channels"), cfg) for m in MODALITIES}
        )
        dims = list(cfg.fusion_dims().values())
        steps = 1 if cfg.share_weights else cfg.iterations
        self.attention = nn.ModuleList(JointCrossAttention(dims, cfg.seq_len, cfg.dropout) for _ in range(steps))
        self.head = Head(sum(dims), cfg.head_dim, cfg.outputs)

    @property
    def seq_len(self) -> int:
        return self.config.seq_len

    def forward(
        self,
        visual: torch.Tensor,
        audio: torch.Tensor,
        text: torch.Tensor,
        visual_mask: torch.Tensor | None = None,
        audio_mask: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Features (B, T, D_m) and masks (B, T), True = valid frame → predictions (B, T, outputs) in [-1, 1]."""
        inputs = {"visual": (visual, visual_mask), "audio": (audio, audio_mask), "text": (text, text_mask)}
        self._check_shapes(inputs)
        xs = [self.encoders[m](x, mask) for m, (x, mask) in inputs.items()]  # each (B, T, d_m)
        for step in range(self.config.iterations):
            xs = self.attention[0 if self.config.share_weights else step](xs)
        return self.head(torch.cat(xs, dim=-1))  # (B, T, outputs)

    @torch.no_grad()
    def set_feature_stats(self, stats: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Per-modality (mean, std) of the training features, applied before the TCNs."""
        for m, (mean, std) in stats.items():
            encoder = cast(Encoder, self.encoders[m])
            encoder.mean.copy_(torch.as_tensor(mean))
            encoder.std.copy_(torch.as_tensor(std).clamp_min(1e-6))

    def _check_shapes(self, inputs: dict[str, tuple[torch.Tensor, torch.Tensor | None]]) -> None:
        B, T = inputs["visual"][0].shape[:2]
        if self.seq_len != T:
            raise ValueError(
                f"RCMA takes windows of exactly seq_len={self.seq_len} frames, got T={T}; "
                "cut or pad the sequence (and pass masks) to that length"
            )
        dims = self.config.input_dims()
        for m, (x, mask) in inputs.items():
            if x.dim() != 3 or tuple(x.shape) != (B, T, dims[m]):
                raise ValueError(f"{m} features must have shape (B={B}, T={T}, {dims[m]}), got {tuple(x.shape)}")
            if mask is not None and tuple(mask.shape) != (B, T):
                raise ValueError(f"{m}_mask must have shape (B={B}, T={T}), got {tuple(mask.shape)}")
