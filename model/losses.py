"""Training loss: 1 − CCC, the metric itself, as the authors train."""

from __future__ import annotations

import torch


def ccc_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """1 − CCC per output, averaged over outputs; differentiable.

    pred, target: (..., K) — all leading dims (batch, time) are pooled, so one batch's
    windows count as one series per output, like the challenge's concatenated metric.
    valid: (..., K) or (...,) bool; frames where it is False do not count.
    """
    K = pred.shape[-1]
    p, t = pred.reshape(-1, K), target.reshape(-1, K)  # (N, K)
    w = torch.ones_like(p) if valid is None else valid.reshape(p.shape[0], -1).expand_as(p).to(p.dtype)
    n = w.sum(0).clamp_min(1.0)  # (K,)
    mp, mt = (w * p).sum(0) / n, (w * t).sum(0) / n
    vp, vt = (w * (p - mp) ** 2).sum(0) / n, (w * (t - mt) ** 2).sum(0) / n
    cov = (w * (p - mp) * (t - mt)).sum(0) / n
    ccc = 2 * cov / (vp + vt + (mp - mt) ** 2 + 1e-8)  # (K,)
    return (1 - ccc).mean()
