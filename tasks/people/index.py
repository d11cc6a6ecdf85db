"""Nearest neighbours by cosine similarity among unit vectors, growing as videos are added.

Exact (numpy) while small, an HNSW graph (hnswlib) once larger: measured by
``benchmarks/bench_people.py`` (docs/people.md). Labels are the caller's row numbers;
results come best first, ``-inf`` / ``-1`` where fewer than ``k`` vectors exist.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EXACT_MAX = 4096  # vectors up to which exact search is used (see the module docstring)
HNSW_M = 16  # graph degree
HNSW_EF_CONSTRUCTION = 100
HNSW_EF_SEARCH = 200  # at 20k tracks: completeness 0.986 = exact (32: 0.963, 64: 0.984); bench_people.py
THREADS = 2


class VectorIndex:
    """Unit vectors of one model (``dim`` wide) and their integer labels."""

    def __init__(self, dim: int, exact_max: int = EXACT_MAX):
        self.dim = dim
        self.exact_max = exact_max
        self._vectors = np.zeros((0, dim), np.float32)  # exact mode: (n, dim)
        self._labels = np.zeros(0, np.int64)
        self._graph: Any = None  # an hnswlib.Index once past exact_max

    def __len__(self) -> int:
        return len(self._labels)

    def add(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        """Add (n, dim) unit vectors under (n,) labels."""
        vectors = np.ascontiguousarray(vectors, np.float32).reshape(-1, self.dim)
        self._labels = np.concatenate([self._labels, np.asarray(labels, np.int64)])
        if self._graph is None:
            self._vectors = np.concatenate([self._vectors, vectors])
            if len(self._labels) > self.exact_max:
                self._to_graph()
        else:
            self._grow(len(self._labels))
            self._graph.add_items(vectors, np.asarray(labels, np.int64), num_threads=THREADS)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(q, dim) queries → similarities (q, k) and labels (q, k), best first."""
        queries = np.ascontiguousarray(queries, np.float32).reshape(-1, self.dim)
        sims = np.full((len(queries), k), -np.inf, np.float32)
        labels = np.full((len(queries), k), -1, np.int64)
        n = min(k, len(self))
        if n == 0 or len(queries) == 0:
            return sims, labels
        if self._graph is None:
            all_sims = queries @ self._vectors.T  # (q, n_stored)
            top = (
                np.argpartition(-all_sims, n - 1, axis=1)[:, :n]
                if n < all_sims.shape[1]
                else np.tile(np.arange(all_sims.shape[1]), (len(queries), 1))
            )  # the n best, unordered
            top_sims = np.take_along_axis(all_sims, top, axis=1)
            order = np.argsort(-top_sims, axis=1, kind="stable")
            sims[:, :n] = np.take_along_axis(top_sims, order, axis=1)
            labels[:, :n] = self._labels[np.take_along_axis(top, order, axis=1)]
            return sims, labels
        self._graph.set_ef(max(HNSW_EF_SEARCH, n))
        found, distances = self._graph.knn_query(queries, k=n, num_threads=THREADS)
        sims[:, :n] = 1.0 - distances  # hnswlib's "ip" distance is 1 - dot
        labels[:, :n] = found
        return sims, labels

    def _to_graph(self) -> None:
        import hnswlib

        graph = hnswlib.Index(space="ip", dim=self.dim)
        graph.init_index(max_elements=2 * len(self._labels), ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M,
                         random_seed=0)  # fmt: skip
        graph.add_items(self._vectors, self._labels, num_threads=THREADS)
        self._graph, self._vectors = graph, np.zeros((0, self.dim), np.float32)

    def _grow(self, needed: int) -> None:
        capacity = self._graph.get_max_elements()
        if needed > capacity:
            self._graph.resize_index(max(needed, 2 * capacity))
