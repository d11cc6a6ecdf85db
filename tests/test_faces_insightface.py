"""The insightface backend through insightface's real loading, routing and inference code.

No real pack can be had offline, so the test writes a tiny one: an SCRFD-shaped detector
(9 outputs: score, box and 5-point outputs for strides 8/16/32, two anchors; it "finds"
bright squares) and a 112×112 → 512 recognizer, both built with the ``onnx`` API in a
buffalo-style folder. insightface routes them by their ONNX signatures, as it would
det_10g.onnx and w600k_r50.onnx.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from affectflow.tasks.faces.backends import FaceBackendError, load_backend
from affectflow.tasks.faces.stage import FacesConfig, track_faces
from affectflow.tasks.records import Frame

pytestmark = [
    pytest.mark.models,
    pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning"),  # skimage, in insightface
]
STRIDES = (8, 16, 32)
ANCHORS = 2
SQUARE = 32  # side of the bright squares the tiny detector finds, pixels (one stride-32 cell)
# 5 points in stride-32 units from a cell's corner: eyes, nose, mouth corners.
POINTS = np.array([[0.3, 0.3], [0.7, 0.3], [0.5, 0.5], [0.35, 0.75], [0.65, 0.75]], np.float32)


def tiny_detector(path: Path) -> Path:
    """SCRFD's output layout: score (N, 1), box (N, 4), kps (N, 10) per stride, N = h·w·anchors."""
    nodes, inits, outputs = [], [], []
    heads = {"score": 1, "bbox": 4, "kps": 10}
    for stride in STRIDES:
        nodes.append(
            helper.make_node(
                "AveragePool", ["input.1"], [f"pool{stride}"], kernel_shape=[stride] * 2, strides=[stride] * 2
            )
        )
    for head, width in heads.items():
        for stride in STRIDES:
            weight = np.zeros((ANCHORS * width, 3, 1, 1), np.float32)
            if head == "score":  # bright cells of the last stride score high, nothing else does
                weight[:] = 10.0 / 3 if stride == 32 else 0.0
                bias = np.full(ANCHORS, -5.0 if stride == 32 else -20.0, np.float32)
            elif head == "bbox":  # distances left, top, right, bottom from the cell corner, in strides
                bias = np.tile([0.5, 0.5, 1.5, 1.5], ANCHORS).astype(np.float32)
            else:
                bias = np.tile(POINTS.ravel(), ANCHORS).astype(np.float32)
            name = f"{head}{stride}"
            inits += [numpy_helper.from_array(weight, f"{name}_w"), numpy_helper.from_array(bias, f"{name}_b")]
            inits.append(numpy_helper.from_array(np.array([-1, width], np.int64), f"{name}_shape"))
            nodes.append(helper.make_node("Conv", [f"pool{stride}", f"{name}_w", f"{name}_b"], [f"{name}_conv"]))
            last = f"{name}_conv"
            if head == "score":
                nodes.append(helper.make_node("Sigmoid", [last], [f"{name}_sig"]))
                last = f"{name}_sig"
            nodes.append(helper.make_node("Transpose", [last], [f"{name}_t"], perm=[0, 2, 3, 1]))  # (1, h, w, A·width)
            nodes.append(helper.make_node("Reshape", [f"{name}_t", f"{name}_shape"], [name]))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", width]))
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "height", "width"])
    graph = helper.make_graph(nodes, "tiny_scrfd", [image], outputs, inits)
    return _save(graph, path)


def tiny_recognizer(path: Path) -> Path:
    """ArcFace's signature: (N, 3, 112, 112) → (N, 512); the embedding follows the crop's colour."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(3, 512)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(size=512).astype(np.float32), "b"),
    ]
    nodes = [
        helper.make_node("GlobalAveragePool", ["input.1"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w", "b"], ["683"]),
    ]
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["batch", 3, 112, 112])
    embedding = helper.make_tensor_value_info("683", TensorProto.FLOAT, ["batch", 512])
    return _save(helper.make_graph(nodes, "tiny_arcface", [image], [embedding], inits), path)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("buffalo_tiny")
    tiny_detector(folder / "det_tiny.onnx")
    tiny_recognizer(folder / "w600k_tiny.onnx")
    return folder


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No network and a fresh HOME: any download attempt fails loudly or leaves ~/.insightface behind."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the insightface backend tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AFFECTFLOW_INSIGHTFACE_DIR", raising=False)
    return tmp_path / "home"


def squares(positions: list[list[tuple[int, int]]]) -> Iterator[Frame]:
    """640×480 dark frames with a bright SQUARE at each (x, y), one list per frame (5 fps)."""
    for k, corners in enumerate(positions):
        bgr = np.full((480, 640, 3), 10, np.uint8)
        for x, y in corners:
            bgr[y : y + SQUARE, x : x + SQUARE] = 250
        yield Frame(k, k / 5, bgr, 1.0)


def test_a_pack_loads_by_onnx_signature_and_says_what_it_loaded(pack: Path, offline: Path) -> None:
    backend = load_backend("insightface", str(pack))
    assert backend.embedding_dim == 512
    assert (
        "det_tiny.onnx (detection)" in backend.description
        and "w600k_tiny.onnx (recognition, 512-d)" in backend.description
    )
    assert "insightface 2.1" in backend.description and "CPUExecutionProvider" in backend.description
    assert not (offline / ".insightface").exists()


def test_detect_align_embed_give_the_interface_shapes(pack: Path) -> None:
    backend = load_backend("insightface", str(pack))
    frame = next(squares([[(320, 224)]]))
    (detection,) = backend.detect(frame.bgr)
    assert np.allclose(detection.box, [320 - 16, 224 - 16, 320 + 48, 224 + 48])  # the tiny detector's box rule
    assert detection.landmarks.shape == (5, 2) and np.allclose(detection.landmarks, [320, 224] + 32 * POINTS)
    crop = backend.align(frame.bgr, detection)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8 and crop.max() == 250  # the square, warped
    embeddings = backend.embed([crop, crop // 2])  # one batch
    assert embeddings.shape == (2, 512) and np.allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)


def test_track_faces_runs_through_the_pack(pack: Path, offline: Path, tmp_path: Path) -> None:
    config = FacesConfig(backend="insightface", insightface_dir=str(pack))
    moving = [[(64 + 32 * k, 224)] for k in range(8)]  # one square moving right
    both = [[(64 + 32 * k, 224), (512, 64)] for k in range(8, 10)]  # and a second one appears
    rows = track_faces(squares([*moving, [], *both]), config, tmp_path / "work")
    assert rows.n_frames_analysed == 11 and rows.backend.startswith("insightface")
    assert sorted(rows.frame) == [*range(8), 9, 9, 10, 10]
    square = ["moving" if x1 < 480 else "still" for x1 in rows.x1]
    assert {(s, i) for s, i in zip(square, rows.track_id, strict=True)} == {("moving", 0), ("still", 1)}
    assert np.load(rows.crops_path).shape == (12, 112, 112, 3)
    assert np.load(rows.embeddings_path).shape == (12, 512)
    assert not (offline / ".insightface").exists()


def test_the_pack_dir_comes_from_the_environment(pack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFECTFLOW_INSIGHTFACE_DIR", str(pack))
    config = FacesConfig(backend="insightface")
    assert config.insightface_dir == str(pack)
    assert "det_tiny.onnx" in load_backend(config.backend, config.insightface_dir).description


def test_no_pack_given_says_which_variable_to_set() -> None:
    with pytest.raises(FaceBackendError, match=r"set AFFECTFLOW_INSIGHTFACE_DIR to a folder .*det_10g\.onnx"):
        load_backend("insightface", None)


def test_a_missing_pack_dir_is_named(tmp_path: Path) -> None:
    with pytest.raises(FaceBackendError, match=r"model pack .*nowhere does not exist: unpack"):
        load_backend("insightface", str(tmp_path / "nowhere"))


def test_an_empty_pack_dir_says_what_to_put_there(tmp_path: Path, offline: Path) -> None:
    with pytest.raises(FaceBackendError, match=r"no ONNX files in insightface model pack .*: put a folder"):
        load_backend("insightface", str(tmp_path))
    assert not (offline / ".insightface").exists()


def test_a_pack_without_a_recognizer_is_refused(tmp_path: Path) -> None:
    tiny_detector(tmp_path / "det_tiny.onnx")
    with pytest.raises(FaceBackendError, match=r"no recognizer .*112×112 input.*w600k_r50\.onnx"):
        load_backend("insightface", str(tmp_path))


def test_a_pack_without_a_detector_is_refused(tmp_path: Path) -> None:
    tiny_recognizer(tmp_path / "w600k_tiny.onnx")
    with pytest.raises(FaceBackendError, match=r"no face detector .*det_10g\.onnx"):
        load_backend("insightface", str(tmp_path))


def test_asking_for_cuda_without_the_cuda_provider_is_a_clear_error(pack: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(FaceBackendError, match="install onnxruntime-gpu"):
        load_backend("insightface", str(pack), device="cuda")
