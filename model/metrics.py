"""Concordance correlation coefficient, the ABAW valence/arousal metric.

ρ_c = 2 s_xy / (s_x² + s_y² + (x̄ − ȳ)²), population moments over the valid frames only
(Aff-Wild2 marks unlabelled frames with -5). The challenge concatenates all videos first.
"""

from __future__ import annotations

import numpy as np
import torch

INVALID_LABEL = -5.0  # Aff-Wild2's value for "no valid annotation at this frame"

ArrayLike = np.ndarray | torch.Tensor


def ccc(pred: ArrayLike, target: ArrayLike, valid: ArrayLike | None = None) -> float | np.ndarray:
    """CCC of ``pred`` against ``target``, shape (N,) → float, or (N, K) → (K,) one per column.

    ``valid`` (same shape, bool) selects frames; by default frames whose target is -5 are
    skipped. NaN when fewer than two valid frames or both series are constant.
    """
    p, t = _numpy(pred).astype(np.float64), _numpy(target).astype(np.float64)
    if p.shape != t.shape:
        raise ValueError(f"pred and target shapes differ: {p.shape} vs {t.shape}")
    v = t != INVALID_LABEL if valid is None else np.broadcast_to(_numpy(valid).astype(bool), t.shape)
    if p.ndim == 1:
        return _ccc_1d(p[v], t[v])
    return np.array([_ccc_1d(p[v[:, k], k], t[v[:, k], k]) for k in range(p.shape[1])])


def _ccc_1d(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2:
        return float("nan")
    mx, my = x.mean(), y.mean()
    sxy = np.mean((x - mx) * (y - my))
    denominator = x.var() + y.var() + (mx - my) ** 2
    return float(2 * sxy / denominator) if denominator > 0 else float("nan")


def _numpy(a: ArrayLike) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
