"""Temporal convolutional network (Bai et al., 2018), the per-modality encoder of RCMA.

Each level is a residual block of two dilated 1-D convolutions (dilation 2**level), so
4 levels of kernel 5 see 1 + 2·4·(1+2+4+8) = 121 frames. The authors' TCN is causal
(each output frame sees only the past); ``causal=False`` centres the receptive field.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


class TemporalBlock(nn.Module):
    """conv → LeakyReLU → dropout, twice, plus a (1×1-projected) skip connection."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, dropout: float, causal: bool
    ):
        super().__init__()
        span = (kernel_size - 1) * dilation  # frames of zero padding that keep the length T
        self.pad = (span, 0) if causal else (span // 2, span - span // 2)
        self.conv1 = weight_norm(nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation))
        self.conv2 = weight_norm(nn.Conv1d(out_channels, out_channels, kernel_size, dilation=dilation))
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, T) -> (B, C_out, T)
        h = self.dropout(F.leaky_relu(self.conv1(F.pad(x, self.pad))))
        h = self.dropout(F.leaky_relu(self.conv2(F.pad(h, self.pad))))
        return F.leaky_relu(h + self.skip(x))


class TCN(nn.Module):
    """Stacked temporal blocks, one per entry of ``channels``, then BatchNorm1d over the last."""

    def __init__(
        self,
        in_dim: int,
        channels: Sequence[int],
        kernel_size: int = 5,
        dropout: float = 0.1,
        causal: bool = True,
    ):
        super().__init__()
        widths = [in_dim, *channels]
        self.levels = nn.Sequential(
            *(TemporalBlock(widths[i], widths[i + 1], kernel_size, 2**i, dropout, causal) for i in range(len(channels)))
        )
        self.norm = nn.BatchNorm1d(channels[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, C)
        h = self.levels(x.transpose(1, 2))  # (B, C, T): convolutions run along time
        return self.norm(h).transpose(1, 2)
