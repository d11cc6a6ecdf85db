"""RCMA (recursive joint cross-modal attention) for per-frame valence/arousal: pure PyTorch.

The names below load on first use, so ``affectflow.model.windows`` (numpy only) and the
shipped checkpoint's path can be reached without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from affectflow.model.losses import ccc_loss
    from affectflow.model.metrics import ccc
    from affectflow.model.rcma import RCMA, RCMAConfig

__all__ = ["RCMA", "RCMAConfig", "ccc", "ccc_loss"]
_HOME = {"RCMA": "rcma", "RCMAConfig": "rcma", "ccc": "metrics", "ccc_loss": "losses"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
