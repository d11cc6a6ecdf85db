"""Agglomerative clustering of voice embeddings under cannot-link constraints, in numpy alone.

Shared by both passes of the constrained diarizer: pyannote's window embeddings
(tasks/speech/clustering.py, ``ConstrainedClustering``) and one embedding per turn
(tasks/speech/turn_clustering.py). Each pass has its own :class:`Calibration`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Calibration:
    """What the clustering of one embedding model was calibrated to, on the tuning voices only.

    ``centre``: the mean embedding of the tuning conversations (256,); subtracting it removes
    what every espeak-ng voice shares, so cosine similarity measures what tells voices apart.
    ``threshold`` and ``size_bonus``: two clusters are one speaker while the cosine similarity of
    their centred unit centroids plus ``size_bonus / sqrt(smaller size)`` reaches ``threshold``
    (:func:`merge`). ``min_cluster_size``: embeddings a cluster needs to count as a speaker
    (for the turn calibration: seconds of speech).
    ``cannot_tolerance``: cannot-linked pairs two clusters may have, per embedding of the
    smaller one, and still merge (0: none). Written by ``benchmarks/bench_diarization.py --calibrate windows|turns``.
    """

    centre: np.ndarray
    threshold: float
    size_bonus: float
    min_cluster_size: float
    cannot_tolerance: float = 0.0

    @classmethod
    def load(cls, path: Path) -> Calibration:
        with np.load(path) as saved:
            return cls(
                saved["centre"],
                float(saved["threshold"]),
                float(saved["size_bonus"]),
                float(saved["min_cluster_size"]),
                float(saved["cannot_tolerance"]) if "cannot_tolerance" in saved else 0.0,
            )

    def save(self, path: Path) -> None:
        np.savez(
            path,
            centre=self.centre.astype(np.float32),
            threshold=self.threshold,
            size_bonus=self.size_bonus,
            min_cluster_size=self.min_cluster_size,
            cannot_tolerance=self.cannot_tolerance,
        )


def merge(
    unit: np.ndarray,
    clusters: np.ndarray,
    cannot: np.ndarray,
    stop_k: int,
    threshold: float,
    size_bonus: float,
    cannot_tolerance: float = 0.0,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Merge the best-scoring pair of clusters until ``stop_k`` remain or no score reaches ``threshold``.

    A pair's score is the cosine similarity of their unit centroids plus
    ``size_bonus / sqrt(smaller cluster's size)``: a centroid of few embeddings is a noisy
    estimate of a voice, so it must be much less similar before it counts as a speaker of
    its own. Cannot-linked clusters merge only while their cannot-linked embedding pairs
    number at most ``cannot_tolerance`` × the smaller cluster's number of embeddings: one
    window where the segmentation split a voice in two must not keep that voice apart for
    the whole recording. ``weights`` (n,): what each embedding counts for in its cluster's
    centroid and size (default 1 each; seconds of speech for turn embeddings).
    clusters: (n,) → (n,).
    """
    k = clusters.max() + 1
    weights = np.ones(len(unit)) if weights is None else np.asarray(weights, dtype=np.float64)
    members = np.eye(k, dtype=np.float32)[clusters]  # (n, k)
    sums = members.T.astype(np.float64) @ (unit * weights[:, None])  # (k, 256): centroid linkage on unit vectors
    sizes = members.T.astype(np.float64) @ weights  # (k,)
    counts = members.sum(0).astype(np.float64)  # (k,) embeddings per cluster
    conflicts = (members.T @ cannot.astype(np.float32) @ members).astype(np.float64)  # (k, k): cannot-linked pairs
    smaller = np.minimum(sizes[:, None], sizes[None])  # (k, k)
    blocked = conflicts > cannot_tolerance * np.minimum(counts[:, None], counts[None])
    np.fill_diagonal(blocked, True)
    alive = np.ones(k, dtype=bool)
    centroids = sums / np.linalg.norm(sums, axis=1, keepdims=True)
    score = np.where(blocked, -np.inf, centroids @ centroids.T + size_bonus / np.sqrt(smaller))  # (k, k), per merge
    owner = np.arange(k)
    while alive.sum() > stop_k:
        a, b = np.unravel_index(np.argmax(score), score.shape)
        if not np.isfinite(score[a, b]) or score[a, b] < threshold:
            break
        sums[a] += sums[b]
        sizes[a] += sizes[b]
        counts[a] += counts[b]
        alive[b] = False
        owner[owner == b] = a
        conflicts[a] += conflicts[b]
        conflicts[:, a] = conflicts[a]
        centroids[a] = sums[a] / np.linalg.norm(sums[a])
        row = centroids @ centroids[a] + size_bonus / np.sqrt(np.minimum(sizes, sizes[a]))
        row[(conflicts[a] > cannot_tolerance * np.minimum(counts, counts[a])) | ~alive] = -np.inf
        row[a] = -np.inf
        score[a], score[:, a] = row, row
        score[b], score[:, b] = -np.inf, -np.inf
    return np.unique(owner[clusters], return_inverse=True)[1]


def cluster_calibrated(
    unit: np.ndarray,
    cannot: np.ndarray,
    calibration: Calibration,
    min_k: int,
    max_k: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Clusters (n,) of (n, 256) unit embeddings as calibrated, within the bounds ``min_k``–``max_k``.

    Merge from singletons while the calibrated score allows (:func:`merge`), give clusters
    under ``min_cluster_size`` to their nearest (:func:`absorb_small`), then enforce the bounds:
    a maximum the user gave outranks the cannot-links; under the minimum, merge only down to it.
    ``cannot`` (n, n) bool; ``weights`` (n,) as in :func:`merge`.
    """
    c = calibration
    singletons = np.arange(len(unit))
    clusters = merge(unit, singletons, cannot, min_k, c.threshold, c.size_bonus, c.cannot_tolerance, weights)
    clusters = absorb_small(unit, clusters, c.min_cluster_size, min_k, weights)
    if clusters.max() + 1 > max_k:
        clusters = merge(unit, clusters, np.zeros_like(cannot), max_k, -np.inf, c.size_bonus, weights=weights)
    if clusters.max() + 1 < min_k:
        clusters = merge(unit, singletons, cannot, min_k, -np.inf, c.size_bonus, c.cannot_tolerance, weights)
    return clusters


def absorb_small(
    unit: np.ndarray, clusters: np.ndarray, min_size: float, keep: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Give the embeddings of clusters smaller than ``min_size`` to the nearest larger cluster,
    smallest first, while more than ``keep`` clusters remain. A cluster's size is its number of
    embeddings, or the sum of their ``weights`` (n,). (n,) → (n,)."""
    clusters = clusters.copy()
    while (k := clusters.max() + 1) > max(1, keep):
        sizes = np.bincount(clusters, weights=weights, minlength=k)
        smallest = int(np.argmin(sizes))
        if sizes[smallest] >= min_size:
            break
        others = [c for c in range(k) if c != smallest]
        members = clusters == smallest
        nearest = np.argmax(unit[members] @ unit_centroids(unit, clusters, weights)[others].T, axis=1)
        clusters[members] = np.array(others)[nearest]
        clusters = np.unique(clusters, return_inverse=True)[1]
    return clusters


def unit_centroids(unit: np.ndarray, clusters: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(k, 256) unit-norm (weighted) mean of each cluster's embeddings."""
    weighted = unit if weights is None else unit * np.asarray(weights)[:, None]
    sums = np.stack([weighted[clusters == c].sum(0) for c in range(clusters.max() + 1)])
    return sums / np.linalg.norm(sums, axis=1, keepdims=True)
