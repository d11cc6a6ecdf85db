"""A tiny Aff-Wild2 in the official layout, with a features cache, for reader and CLI tests.

Labels and features come from the synthetic task (tests/synthetic_va.py); some frames are
labelled -5, frame counts are odd, some cropped faces are missing, one video has two
subjects (_left/_right), and an EXPR Train_Set sits beside the VA one as a distractor.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from affectflow.model.data import save_features
from tests.synthetic_va import make_video

ANNOTATIONS = Path("6th_ABAW_Annotations") / "VA_Estimation_Challenge"
SPLIT_VIDEOS = {
    "Train_Set": {"1-30-1280x720": 331, "10-60-1280x720_left": 257, "10-60-1280x720_right": 257, "video5": 199},
    "Validation_Set": {"118-30-640x480": 241, "video74": 173},
}
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
            save_features(cache / name, video.features)
            faces = root / "cropped_aligned" / name
            faces.mkdir(parents=True)
            for i in range(n_frames):
                if i not in MISSING_FACES:
                    cv2.imwrite(str(faces / f"{i + 1:05d}.jpg"), face)
    return written
