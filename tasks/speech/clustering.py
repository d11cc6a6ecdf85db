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

from typing import Any

import numpy as np
import torch
from pyannote.audio import Model
from pyannote.audio.pipelines.clustering import BaseClustering
from resemblyzer import VoiceEncoder, normalize_volume, wav_to_mel_spectrogram
from resemblyzer.hparams import audio_norm_target_dBFS, model_embedding_size, partials_n_frames
from scipy.sparse.csgraph import laplacian
from sklearn.cluster import SpectralClustering

from affectflow.tasks.speech.agglomeration import Calibration, cluster_calibrated, unit_centroids

MAX_CLUSTERED = 1500  # embeddings clustered at once (≈ 20 min of speech); similarities are n × n
MIN_SPEECH_S = 0.1  # less masked speech than this gives no embedding (NaN)
MIN_SPEECH_RMS = 1e-4  # masked "speech" quieter than this (digital silence) gives no embedding either:
# Resemblyzer's volume normalisation divides by its level, and all-zero samples made the mel
# spectrogram NaN (librosa raised on a benchmark conversation whose mask fell into a pause)
PARTIAL_HOP = 80  # mel frames (10 ms) between GE2E partial windows of 160 frames (1.6 s)
MAX_PARTIALS = 3  # partial windows averaged per embedding: 3 cover a 5 s chunk
TURN_PARTIAL_HOP = 40  # mel frames (0.4 s) between the partials of a turn's embedding: all of them are averaged
ENCODER_BATCH = 256  # partials per GE2E forward pass


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

    def embed_speeches(self, speeches: list[np.ndarray]) -> np.ndarray:
        """One d-vector per stretch of speech, from all its partials ``TURN_PARTIAL_HOP`` apart:
        [(num_samples,) float32 at 16 kHz] → (n, 256) unit norm. Each must be :meth:`embeddable`."""
        means: list[np.ndarray] = []
        group: list[np.ndarray] = []  # partials of the speeches not yet encoded: memory stays bounded on long videos
        for k, speech in enumerate(speeches):
            group.append(self.partials(speech, TURN_PARTIAL_HOP, None))
            if sum(len(p) for p in group) >= ENCODER_BATCH or k == len(speeches) - 1:
                means += self.mean_embeddings(group)
                group = []
        if not means:
            return np.zeros((0, self.dimension), np.float32)
        stacked = np.stack(means)
        return stacked / np.linalg.norm(stacked, axis=1, keepdims=True)

    def mean_embeddings(self, partials: list[np.ndarray]) -> list[np.ndarray]:
        """The mean GE2E embedding of each speech's partials: [(m, 160, 40)] → [(256,)], one forward pass."""
        device = next(self.encoder.parameters()).device
        with torch.inference_mode():
            embedded = self.encoder(torch.from_numpy(np.concatenate(partials)).to(device)).cpu().numpy()
        ends = np.cumsum([len(p) for p in partials])
        return [part.mean(0) for part in np.split(embedded, ends[:-1])]

    @staticmethod
    def partials(speech: np.ndarray, hop: int = PARTIAL_HOP, limit: int | None = MAX_PARTIALS) -> np.ndarray:
        """Mel windows ``hop`` frames apart (at most ``limit``, spread over the speech): (n, 160, 40),
        as Resemblyzer embeds them."""
        mel = wav_to_mel_spectrogram(normalize_volume(speech, audio_norm_target_dBFS, increase_only=True))
        if len(mel) < partials_n_frames:
            mel = np.pad(mel, ((0, partials_n_frames - len(mel)), (0, 0)))
        starts = np.arange(0, len(mel) - partials_n_frames + 1, hop)
        if limit is not None and len(starts) > limit:
            starts = starts[np.linspace(0, len(starts) - 1, limit).round().astype(int)]
        return np.stack([mel[s : s + partials_n_frames] for s in starts])


def weights_or_none(weights: torch.Tensor | None, batch: int) -> list[torch.Tensor | None]:
    return [None] * batch if weights is None else list(weights)


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
        return cluster_calibrated(unit, cannot, self.calibration, min_k, max_k)


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
