"""The default diarizer's speaker models, as pyannote.audio building blocks.

- :class:`ResemblyzerEmbedding`: Resemblyzer's GE2E voice encoder (weights ship in the
  resemblyzer wheel) behind pyannote's embedding-model interface, so pyannote's
  ``SpeakerDiarization`` can call it on (chunk, local speaker) masks.
- :class:`EigengapClustering`: spectral clustering with the speaker count from the eigengap,
  then a merge of close clusters (the ``default`` diarizer's).
- :class:`ConstrainedClustering`: agglomerative clustering of those embeddings, centred and
  thresholded by a :class:`Calibration` measured on generated conversations whose voices are
  kept apart from the benchmark's held-out half (docs/speech.md), with cannot-link constraints
  from the segmentation; on pyannote's clustering base (which filters embeddings, and assigns
  every chunk's speakers to the centroids). The ``constrained`` diarizer's: better speaker
  counts on the generated benchmark, worse on one test dialogue (docs/speech.md), so not the default.

Imported only when the default diarizer is built: it pulls in pyannote.audio and torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pyannote.audio import Model
from pyannote.audio.pipelines.clustering import BaseClustering
from resemblyzer import VoiceEncoder, normalize_volume, wav_to_mel_spectrogram
from resemblyzer.hparams import audio_norm_target_dBFS, model_embedding_size, partials_n_frames
from scipy.sparse.csgraph import laplacian
from sklearn.cluster import SpectralClustering

MAX_CLUSTERED = 1500  # embeddings clustered at once (≈ 20 min of speech); similarities are n × n
MIN_SPEECH_S = 0.1  # less masked speech than this gives no embedding (NaN)
MIN_SPEECH_RMS = 1e-4  # masked "speech" quieter than this (digital silence) gives no embedding either:
# Resemblyzer's volume normalisation divides by its level, and all-zero samples made the mel
# spectrogram NaN (librosa raised on a benchmark conversation whose mask fell into a pause)
PARTIAL_HOP = 80  # mel frames (10 ms) between GE2E partial windows of 160 frames (1.6 s)
MAX_PARTIALS = 3  # partial windows averaged per embedding: 3 cover a 5 s chunk


class ResemblyzerEmbedding(Model):
    """GE2E d-vectors (256-d, unit norm) of the speech selected by pyannote's frame masks."""

    def __init__(self) -> None:
        super().__init__(sample_rate=16000, num_channels=1)
        self.encoder = VoiceEncoder(device="cpu", verbose=False)

    @property
    def dimension(self) -> int:
        return model_embedding_size

    def forward(self, waveforms: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        # waveforms: (batch, 1, num_samples); weights: (batch, num_frames) frame masks in [0, 1]
        batch, _, num_samples = waveforms.shape
        if weights is None and num_samples < MIN_SPEECH_S * self.audio.sample_rate:
            raise ValueError(f"{num_samples} samples are too few for a voice embedding")
        speech = [
            self.masked(w[0], None if weights is None else m)
            for w, m in zip(waveforms.cpu(), weights_or_none(weights, batch), strict=True)
        ]
        partials = [self.partials(s) if self.embeddable(s) else None for s in speech]
        embeddings = torch.full((batch, self.dimension), float("nan"))
        found = [p for p in partials if p is not None]
        if not found:
            return embeddings
        device = next(self.encoder.parameters()).device
        with torch.inference_mode():
            partial_embeddings = self.encoder(torch.from_numpy(np.concatenate(found)).to(device)).cpu()
        # partial_embeddings: (total_partials, 256), unit norm
        first = 0
        for row, p in enumerate(partials):
            if p is not None:
                mean = partial_embeddings[first : first + len(p)].mean(0)
                embeddings[row] = mean / mean.norm()
                first += len(p)
        return embeddings

    def embeddable(self, speech: np.ndarray) -> bool:
        """Enough audible samples for a d-vector: (num_samples,) float32."""
        long_enough = len(speech) >= MIN_SPEECH_S * self.audio.sample_rate
        return long_enough and float(np.sqrt(np.mean(np.square(speech, dtype=np.float64)))) >= MIN_SPEECH_RMS

    @staticmethod
    def masked(waveform: torch.Tensor, mask: torch.Tensor | None) -> np.ndarray:
        """The samples whose frame is active: (num_samples,) → (num_active_samples,)."""
        audio = waveform.numpy()
        if mask is None:
            return audio
        frames = mask.cpu().numpy()
        frame_of_sample = np.minimum(np.arange(len(audio)) * len(frames) // len(audio), len(frames) - 1)
        return audio[frames[frame_of_sample] > 0.5]

    @staticmethod
    def partials(speech: np.ndarray) -> np.ndarray:
        """Up to MAX_PARTIALS mel windows spread over the speech: (n, 160, 40), as Resemblyzer embeds them."""
        mel = wav_to_mel_spectrogram(normalize_volume(speech, audio_norm_target_dBFS, increase_only=True))
        if len(mel) < partials_n_frames:
            mel = np.pad(mel, ((0, partials_n_frames - len(mel)), (0, 0)))
        starts = np.arange(0, len(mel) - partials_n_frames + 1, PARTIAL_HOP)
        if len(starts) > MAX_PARTIALS:
            starts = starts[np.linspace(0, len(starts) - 1, MAX_PARTIALS).round().astype(int)]
        return np.stack([mel[s : s + partials_n_frames] for s in starts])


def weights_or_none(weights: torch.Tensor | None, batch: int) -> list[torch.Tensor | None]:
    return [None] * batch if weights is None else list(weights)


@dataclass(frozen=True)
class Calibration:
    """What the clustering of one embedding model was calibrated to, on the tuning voices only.

    ``centre``: the mean embedding of the tuning conversations (256,); subtracting it removes
    what every espeak-ng voice shares, so cosine similarity measures what tells voices apart.
    ``threshold`` and ``size_bonus``: two clusters are one speaker while the cosine similarity of
    their centred unit centroids plus ``size_bonus / sqrt(smaller size)`` reaches ``threshold``
    (:func:`merge`). ``min_cluster_size``: embeddings a cluster needs to count as a speaker.
    ``cannot_tolerance``: cannot-linked pairs two clusters may have, per embedding of the
    smaller one, and still merge (0: none). Written by ``benchmarks/bench_diarization.py --calibrate``.
    """

    centre: np.ndarray
    threshold: float
    size_bonus: float
    min_cluster_size: int
    cannot_tolerance: float = 0.0

    @classmethod
    def load(cls, path: Path) -> Calibration:
        with np.load(path) as saved:
            return cls(
                saved["centre"],
                float(saved["threshold"]),
                float(saved["size_bonus"]),
                int(saved["min_cluster_size"]),
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


class ConstrainedClustering(BaseClustering):
    """Centroid-linkage agglomerative clustering of centred embeddings with cannot-link constraints.

    Embeddings of one segmentation window that the segmentation model calls different local
    speakers are cannot-linked; clusters merge only within the calibration's tolerance of such
    pairs. Merging stops when no pair of clusters is similar enough for its sizes (:func:`merge`,
    calibrated), or at ``min_clusters``; clusters of
    fewer than ``min_cluster_size`` embeddings are then given to their nearest cluster, and the
    bounds ``min_clusters`` / ``max_clusters`` / ``num_clusters`` are enforced by merging on.
    """

    expects_num_clusters = False

    def __init__(self, calibration: Calibration, max_speakers: int) -> None:
        super().__init__(metric="cosine", constrained_assignment=True)
        self.calibration = calibration
        self.max_speakers = max_speakers

    def __call__(  # type: ignore[override]
        self,
        embeddings: np.ndarray,
        segmentations: Any = None,
        num_clusters: int | None = None,
        min_clusters: int | None = None,
        max_clusters: int | None = None,
        **kwargs: Any,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # embeddings: (num_chunks, local_speakers, 256) → hard (num_chunks, local_speakers),
        # soft (num_chunks, local_speakers, k), centroids (k, 256), all in the centred space
        # pyannote passes max_clusters = inf when unbounded: then at most self.max_speakers
        bounded = num_clusters is not None or (max_clusters is not None and np.isfinite(max_clusters))
        centred = embeddings - self.calibration.centre
        train, chunk_idx, speaker_idx = self.filter_embeddings(centred, segmentations=segmentations)
        if len(train) == 0:  # no window with enough clean speech: one speaker, nothing to cluster
            num_chunks, local_speakers, dimension = embeddings.shape
            hard = np.zeros((num_chunks, local_speakers), dtype=np.int8)
            return hard, np.ones((num_chunks, local_speakers, 1)), np.zeros((1, dimension))
        num_clusters, min_clusters, max_clusters = self.set_num_clusters(
            len(train), num_clusters=num_clusters, min_clusters=min_clusters, max_clusters=max_clusters
        )
        max_k = max_clusters if bounded else max(min_clusters, min(max_clusters, self.max_speakers))
        clusters = self.cluster_windows(train, chunk_idx, min_clusters, max_k)
        hard, soft, centroids = self.assign_embeddings(
            centred, chunk_idx, speaker_idx, clusters, constrained=self.constrained_assignment
        )
        return hard, soft, centroids

    def cluster_windows(self, embeddings: np.ndarray, chunks: np.ndarray, min_k: int, max_k: int) -> np.ndarray:
        """Clusters (n,) in 0..k-1 of (n, 256) centred embeddings; ``chunks`` (n,): their window."""
        unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
        if len(unit) <= MAX_CLUSTERED:
            return self.cluster_unit(unit, chunks, min_k, max_k)
        # n × n similarities: for a long video cluster an even sample of the timeline (every
        # speaker who talks repeatedly is in it), then give every embedding its nearest centroid.
        every = int(np.ceil(len(unit) / MAX_CLUSTERED))
        clusters = self.cluster_unit(unit[::every], chunks[::every], min_k, max_k)
        return np.argmax(unit @ unit_centroids(unit[::every], clusters).T, axis=1)

    def cluster_unit(self, unit: np.ndarray, chunks: np.ndarray, min_k: int, max_k: int) -> np.ndarray:
        cannot = chunks[:, None] == chunks[None]  # (n, n): same window, different local speakers
        singletons = np.arange(len(unit))
        c = self.calibration
        clusters = merge(unit, singletons, cannot, min_k, c.threshold, c.size_bonus, c.cannot_tolerance)
        clusters = absorb_small(unit, clusters, c.min_cluster_size, min_k)
        if clusters.max() + 1 > max_k:  # a bound the user gave outranks the segmentation's cannot-links
            clusters = merge(unit, clusters, np.zeros_like(cannot), max_k, -np.inf, c.size_bonus)
        if clusters.max() + 1 < min_k:  # the threshold (or absorption) went below the bound: merge to it
            clusters = merge(unit, singletons, cannot, min_k, -np.inf, c.size_bonus, c.cannot_tolerance)
        return clusters


def merge(
    unit: np.ndarray,
    clusters: np.ndarray,
    cannot: np.ndarray,
    stop_k: int,
    threshold: float,
    size_bonus: float,
    cannot_tolerance: float = 0.0,
) -> np.ndarray:
    """Merge the best-scoring pair of clusters until ``stop_k`` remain or no score reaches ``threshold``.

    A pair's score is the cosine similarity of their unit centroids plus
    ``size_bonus / sqrt(smaller cluster's size)``: a centroid of few embeddings is a noisy
    estimate of a voice, so it must be much less similar before it counts as a speaker of
    its own. Cannot-linked clusters merge only while their cannot-linked embedding pairs
    number at most ``cannot_tolerance`` × the smaller cluster's size: one window where the
    segmentation split a voice in two must not keep that voice apart for the whole recording.
    clusters: (n,) → (n,).
    """
    k = clusters.max() + 1
    members = np.eye(k, dtype=np.float32)[clusters]  # (n, k)
    sums = members.T.astype(np.float64) @ unit  # (k, 256): centroid linkage on unit vectors
    sizes = members.sum(0).astype(np.float64)  # (k,)
    conflicts = (members.T @ cannot.astype(np.float32) @ members).astype(np.float64)  # (k, k): cannot-linked pairs
    smaller = np.minimum(sizes[:, None], sizes[None])  # (k, k)
    blocked = conflicts > cannot_tolerance * smaller
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
        alive[b] = False
        owner[owner == b] = a
        conflicts[a] += conflicts[b]
        conflicts[:, a] = conflicts[a]
        centroids[a] = sums[a] / np.linalg.norm(sums[a])
        smaller_a = np.minimum(sizes, sizes[a])
        row = centroids @ centroids[a] + size_bonus / np.sqrt(smaller_a)
        row[(conflicts[a] > cannot_tolerance * smaller_a) | ~alive] = -np.inf
        row[a] = -np.inf
        score[a], score[:, a] = row, row
        score[b], score[:, b] = -np.inf, -np.inf
    return np.unique(owner[clusters], return_inverse=True)[1]


def absorb_small(unit: np.ndarray, clusters: np.ndarray, min_size: int, keep: int) -> np.ndarray:
    """Give the embeddings of clusters smaller than ``min_size`` to the nearest larger cluster,
    smallest first, while more than ``keep`` clusters remain. (n,) → (n,)."""
    clusters = clusters.copy()
    while (k := clusters.max() + 1) > max(1, keep):
        sizes = np.bincount(clusters, minlength=k)
        smallest = int(np.argmin(sizes))
        if sizes[smallest] >= min_size:
            break
        others = [c for c in range(k) if c != smallest]
        members = clusters == smallest
        nearest = np.argmax(unit[members] @ unit_centroids(unit, clusters)[others].T, axis=1)
        clusters[members] = np.array(others)[nearest]
        clusters = np.unique(clusters, return_inverse=True)[1]
    return clusters


def unit_centroids(unit: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """(k, 256) unit-norm mean of each cluster's embeddings."""
    sums = np.stack([unit[clusters == c].sum(0) for c in range(clusters.max() + 1)])
    return sums / np.linalg.norm(sums, axis=1, keepdims=True)


class EigengapClustering(BaseClustering):
    """Spectral clustering with the number of speakers from the eigengap.

    The affinity keeps each embedding's nearest neighbours (cosine similarity); the number
    of clusters is where the normalised Laplacian's eigenvalues jump most. The eigengap
    cannot say "one speaker", so clusters whose unit centroids lie closer than
    ``merge_distance`` are merged afterwards (same voice split by noise).
    """

    expects_num_clusters = False

    def __init__(self, neighbour_fraction: float, merge_distance: float, max_speakers: int) -> None:
        super().__init__(metric="cosine", constrained_assignment=True)
        self.neighbour_fraction = neighbour_fraction
        self.merge_distance = merge_distance
        self.max_speakers = max_speakers

    def cluster(
        self,
        embeddings: np.ndarray,
        min_clusters: int,
        max_clusters: int,
        num_clusters: int | None = None,
    ) -> np.ndarray:
        # embeddings: (num_embeddings, dimension) → clusters: (num_embeddings,) in 0..k-1
        unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
        if len(unit) <= MAX_CLUSTERED:
            return self.cluster_unit(unit, min_clusters, max_clusters, num_clusters)
        # The affinity is (n, n): for a long video cluster an even sample of the timeline
        # (every speaker who talks repeatedly is in it) and give every embedding its
        # nearest sampled voice, so memory stays flat however long the video is.
        sample = unit[:: int(np.ceil(len(unit) / MAX_CLUSTERED))]
        clusters = self.cluster_unit(sample, min_clusters, max_clusters, num_clusters)
        centroids = np.stack([sample[clusters == c].mean(0) for c in range(clusters.max() + 1)])
        return np.argmax(unit @ centroids.T, axis=1)

    def cluster_unit(
        self, unit: np.ndarray, min_clusters: int, max_clusters: int, num_clusters: int | None
    ) -> np.ndarray:
        """Clusters of L2-normalised embeddings (all of them at once: memory grows with n²)."""
        if len(unit) < 3:
            return np.zeros(len(unit), dtype=int)
        affinity = self.affinity(unit)
        k = num_clusters or self.eigengap(affinity, min_clusters, min(max_clusters, self.max_speakers))
        if k == 1:
            return np.zeros(len(unit), dtype=int)
        clusters = SpectralClustering(
            k, affinity="precomputed", assign_labels="cluster_qr", random_state=0
        ).fit_predict(affinity)
        return clusters if num_clusters else self.merge_close(unit, clusters, min_clusters)

    def affinity(self, unit: np.ndarray) -> np.ndarray:
        """Cosine similarities pruned to each row's nearest neighbours, symmetric, ≥ 0: (n, n)."""
        similarity = unit @ unit.T
        keep = max(3, int(np.ceil(self.neighbour_fraction * len(unit))))
        pruned = np.zeros_like(similarity)
        nearest = np.argsort(-similarity, axis=1)[:, :keep]
        np.put_along_axis(pruned, nearest, np.take_along_axis(similarity, nearest, axis=1), axis=1)
        return np.maximum(0.5 * (pruned + pruned.T), 0.0)

    @staticmethod
    def eigengap(affinity: np.ndarray, min_clusters: int, max_clusters: int) -> int:
        eigenvalues = np.linalg.eigvalsh(laplacian(affinity, normed=True))[: max_clusters + 1]
        gaps = np.diff(eigenvalues)  # gaps[k - 1] = λ_k − λ_(k−1): a large one means k clusters
        window = gaps[min_clusters - 1 : max_clusters]
        return min_clusters + int(np.argmax(window)) if window.size else min_clusters

    def merge_close(self, unit: np.ndarray, clusters: np.ndarray, min_clusters: int) -> np.ndarray:
        while (k := clusters.max() + 1) > max(1, min_clusters):
            centroids = np.stack([unit[clusters == c].mean(0) for c in range(k)])
            centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
            distance = np.linalg.norm(centroids[:, None] - centroids[None], axis=2) + 3 * np.eye(k)
            a, b = np.unravel_index(np.argmin(distance), distance.shape)
            if distance[a, b] >= self.merge_distance:
                break
            clusters = np.unique(np.where(clusters == b, a, clusters), return_inverse=True)[1]
        return clusters
