"""RCMA (recursive joint cross-modal attention) for per-frame valence/arousal: pure PyTorch."""

from model.losses import ccc_loss
from model.metrics import ccc
from model.rcma import RCMA, RCMAConfig

__all__ = ["RCMA", "RCMAConfig", "ccc", "ccc_loss"]
