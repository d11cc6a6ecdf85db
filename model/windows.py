"""Windowed prediction: how a sequence of any length is scored by a fixed-window network.

RCMA sees windows of exactly ``seq_len`` (L) steps. A sequence of T steps is predicted by

1. cutting it into windows that start every L // 2 steps, the last one ending at the
   sequence's end (a sequence shorter than L is one window, padded and masked past its end);
2. running all windows of all sequences through the network in batches of ``batch_size``;
3. blending each step's predictions from the (one or two) windows that cover it, weighted by
   a Hann window, so a window's edges — where the TCN has the least context — count least.

This one procedure serves ``affectflow run`` (tasks/emotions/infer.py, through ONNX Runtime
or PyTorch) and ``affectflow evaluate`` / model selection (model/train.py), so the reported CCC
is the CCC of what users run. The network is any callable on a batch of windows, so no
runtime is assumed here; numpy only at import (torch is imported by ``torch_runner`` alone).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

# A batch of windows → predictions: {m: (B, L, D_m) float32, f"{m}_mask": (B, L) bool} → (B, L, K).
RunWindows = Callable[[dict[str, np.ndarray]], np.ndarray]
OnBatch = Callable[[int, int], None]  # (windows done, windows in all)


class Windowable(Protocol):
    """A sequence to predict: per-modality features on one timeline of T steps."""

    @property
    def features(self) -> Mapping[str, np.ndarray]: ...  # modality -> (T, D_m)

    @property
    def masks(self) -> Mapping[str, np.ndarray]: ...  # modality -> (T,) bool, True = a real feature


def window_starts(n_steps: int, seq_len: int, hop: int | None = None) -> list[int]:
    """Starts of windows ``hop`` apart (default L // 2: half overlap) covering every step.

    The last window ends at the sequence's end when the sequence is longer than one window,
    so only a sequence shorter than ``seq_len`` is ever padded.
    """
    hop = max(hop or seq_len // 2, 1)
    starts = list(range(0, max(n_steps - seq_len, 0) + 1, hop))
    if n_steps > seq_len and starts[-1] + seq_len < n_steps:
        starts.append(n_steps - seq_len)
    return starts


def hann_weights(seq_len: int) -> np.ndarray:
    """(L,) blending weight of each position in a window: > 0 everywhere, highest mid-window."""
    return np.hanning(seq_len + 2)[1:-1]


def window_batch(
    windows: Sequence[tuple[Windowable, int]], seq_len: int, modalities: Sequence[str]
) -> dict[str, np.ndarray]:
    """The network's inputs for (sequence, start) windows; steps past a sequence's end are zero and masked."""
    batch: dict[str, np.ndarray] = {}
    for m in modalities:
        dim = windows[0][0].features[m].shape[1]
        x = np.zeros((len(windows), seq_len, dim), np.float32)  # (B, L, D_m)
        mask = np.zeros((len(windows), seq_len), bool)  # (B, L)
        for j, (seq, start) in enumerate(windows):
            span = slice(start, start + seq_len)
            n = len(seq.masks[m][span])
            x[j, :n], mask[j, :n] = seq.features[m][span], seq.masks[m][span]
        batch[m], batch[f"{m}_mask"] = x, mask
    return batch


def blend(n_steps: int, starts: Sequence[int], predictions: np.ndarray) -> np.ndarray:
    """(T, K) per-step predictions from (W, L, K) window predictions starting at ``starts``.

    Each step's value is the Hann-weighted mean of the windows covering it; window positions
    past the sequence's end (padding) are dropped.
    """
    seq_len = predictions.shape[1]
    weight = hann_weights(seq_len)[:, None]  # (L, 1)
    sums = np.zeros((n_steps, predictions.shape[2]))  # (T, K)
    totals = np.zeros((n_steps, 1))  # (T, 1)
    for start, pred in zip(starts, predictions, strict=True):
        n = min(seq_len, n_steps - start)
        sums[start : start + n] += weight[:n] * pred[:n]
        totals[start : start + n] += weight[:n]
    return sums / np.maximum(totals, 1e-12)


def predict_sequences(
    sequences: Sequence[Windowable],
    run: RunWindows,
    seq_len: int,
    modalities: Sequence[str],
    batch_size: int,
    on_batch: OnBatch | None = None,
) -> list[np.ndarray]:
    """Per sequence (T, K) float64 predictions: windows of all sequences run in batches, then blended."""
    lengths = [len(seq.masks[modalities[0]]) for seq in sequences]  # T per sequence
    starts = [window_starts(n, seq_len) for n in lengths]
    windows = [(i, s) for i, seq_starts in enumerate(starts) for s in seq_starts]
    outputs: list[list[np.ndarray]] = [[] for _ in sequences]  # per sequence, per window (L, K)
    for b in range(0, len(windows), batch_size):
        batch = windows[b : b + batch_size]
        out = np.asarray(run(window_batch([(sequences[i], s) for i, s in batch], seq_len, modalities)))  # (B, L, K)
        for (i, _), pred in zip(batch, out, strict=True):
            outputs[i].append(pred)
        if on_batch:
            on_batch(min(b + batch_size, len(windows)), len(windows))
    return [blend(n, s, np.stack(o)) for n, s, o in zip(lengths, starts, outputs, strict=True)]


def torch_runner(net: Any, device: Any = None) -> RunWindows:
    """``run`` for a PyTorch network (eval mode, no gradients) on ``device`` (default: the net's)."""
    import torch

    device = device or next(net.parameters()).device

    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            tensors = {name: torch.from_numpy(value).to(device) for name, value in batch.items()}
            return net(**tensors).float().cpu().numpy()

    return run
