"""A tiny Aff-Wild2 in the official layout, for reader, CLI and release tests.

Two modes:

- ``make_affwild2``: annotations, placeholder cropped faces and a ready features cache; labels
  and features come from the synthetic task (tests/synthetic_va.py). Some frames are labelled
  -5, frame counts are odd, some cropped faces are missing, one video has two subjects
  (_left/_right), and an EXPR Train_Set sits beside the VA one as a distractor.
- ``make_release``: what the licence holder downloads, no cache: real videos (packaged face
  photos talking with espeak-ng voices, tasks/synth/talking.py) in batch folders, the
  cropped-aligned JPEGs cut from those videos' frames (some frames without one), annotation
  files with -5 rows, and one two-person video annotated as ``_left`` and ``_right``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from affectflow.model.data import save_features
from affectflow.tasks.synth.talking import Scene, make_talking_clip
from tests.synthetic_va import make_video

ANNOTATIONS = Path("6th_ABAW_Annotations") / "VA_Estimation_Challenge"
SPLIT_VIDEOS = {
    "Train_Set": {"1-30-1280x720": 331, "10-60-1280x720_left": 257, "10-60-1280x720_right": 257, "video5": 199},
    "Validation_Set": {"118-30-640x480": 241, "video74": 173},
}
FAKE_FPS = 30.0  # the frame rate the fake cache records for every video
INVALID_FRAMES = slice(20, 35)  # labelled -5,-5 in every video
MISSING_FACES = (3, 7)  # 0-based frames without a cropped-aligned jpg


def write_annotation(path: Path, labels: np.ndarray) -> None:
    lines = ["valence,arousal", *(f"{v:.3f},{a:.3f}" for v, a in labels)]
    path.write_text("\n".join(lines) + "\n")


def make_affwild2(root: Path, cache: Path, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Build the dataset and cache; returns each video's labels (T, 2) as written."""
    rng = np.random.default_rng(seed)
    (root / "6th_ABAW_Annotations" / "EXPR_Recognition_Challenge" / "Train_Set").mkdir(parents=True)
    face = np.full((8, 8, 3), 127, dtype=np.uint8)
    written = {}
    for split, videos in SPLIT_VIDEOS.items():
        folder = root / ANNOTATIONS / split
        folder.mkdir(parents=True)
        for name, n_frames in videos.items():
            video = make_video(rng, name, n_frames)
            labels = video.labels.copy()
            labels[INVALID_FRAMES] = -5
            write_annotation(folder / f"{name}.txt", labels)
            written[name] = labels
            save_features(cache / name, video.features, fps=FAKE_FPS)
            faces = root / "cropped_aligned" / name
            faces.mkdir(parents=True)
            for i in range(n_frames):
                if i not in MISSING_FACES:
                    cv2.imwrite(str(faces / f"{i + 1:05d}.jpg"), face)
    return written


# -- the release mode -----------------------------------------------------------------------

# source video -> (batch folder, split, scene): one sentence each, two people in "7-25-640x480"
RELEASE = {
    "3-25-640x480": ("batch1", "Train_Set", Scene(("astronaut",), ((0, 0),), seed=1)),
    "7-25-640x480": ("batch1", "Train_Set", Scene(("astronaut", "hopper"), ((0, 1), (1, 2)), seed=2)),
    "12-25-640x480": ("batch2", "Validation_Set", Scene(("hopper",), ((0, 4),), seed=3)),
}
RELEASE_INVALID = slice(10, 16)  # frames labelled -5,-5 in every subject
RELEASE_MISSING = (5, 6, 40)  # 0-based frames without a cropped-aligned face (besides faces off-screen)


def subjects(video: str, scene: Scene) -> list[str]:
    """Annotation names of a video: itself, or ``_left`` / ``_right`` (people from the left) for two."""
    return [video] if len(scene.faces) == 1 else [f"{video}_left", f"{video}_right"]


def make_release(root: Path) -> dict[str, np.ndarray]:
    """Write the release under ``root``; returns each subject's labels (T, 2) as written."""
    scratch = root.parent / f".{root.name}-scratch"
    written = {}
    for video, (batch, split, scene) in RELEASE.items():
        truth = make_talking_clip(scratch / f"{video}.mp4", scene)
        target = root / "videos" / batch / f"{video}.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(truth.path, target)
        n_frames = cut_faces(target, truth.boxes, [root / "cropped_aligned" / s for s in subjects(video, scene)])
        folder = root / ANNOTATIONS / split
        folder.mkdir(parents=True, exist_ok=True)
        for person, subject in enumerate(subjects(video, scene)):
            labels = release_labels(n_frames, truth.opening[person, :n_frames], phase=person)
            write_annotation(folder / f"{subject}.txt", labels)
            written[subject] = labels
    shutil.rmtree(scratch)
    return written


def cut_faces(video: Path, boxes: np.ndarray, folders: list[Path]) -> int:
    """Each person's face (``boxes`` (people, frames, 4), NaN off-screen) as a 112×112 JPEG per frame.

    Square crops around the box, from the decoded video: the release's faces come from its
    videos too. Returns the number of frames decoded.
    """
    for folder in folders:
        folder.mkdir(parents=True)
    capture = cv2.VideoCapture(str(video))
    i = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        for box, folder in zip(boxes[:, min(i, boxes.shape[1] - 1)], folders, strict=True):
            if i not in RELEASE_MISSING and not np.isnan(box).any():
                cv2.imwrite(str(folder / f"{i + 1:05d}.jpg"), square_crop(frame, box))
        i += 1
    capture.release()
    return i


def square_crop(frame: np.ndarray, box: np.ndarray, margin: float = 1.2) -> np.ndarray:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = margin * max(box[2] - box[0], box[3] - box[1]) / 2
    x0, y0 = int(max(cx - half, 0)), int(max(cy - half, 0))
    x1, y1 = int(min(cx + half, frame.shape[1])), int(min(cy + half, frame.shape[0]))
    return cv2.resize(frame[y0:y1, x0:x1], (112, 112), interpolation=cv2.INTER_AREA)


def release_labels(n_frames: int, opening: np.ndarray, phase: int) -> np.ndarray:
    """(T, 2): valence a slow wave, arousal following the mouth's opening; -5 over RELEASE_INVALID."""
    t = np.arange(n_frames) / 25
    opening = np.pad(opening, (0, n_frames - len(opening)))
    labels = np.stack([0.6 * np.sin(2 * np.pi * t / 3 + phase), np.clip(2 * opening - 0.5, -1, 1)], axis=1)
    labels[RELEASE_INVALID] = -5
    return labels.astype(np.float32)
