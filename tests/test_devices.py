"""One device choice for every model (tasks/devices.py), with the runtimes faked: no GPU needed.

PyTorch and ONNX Runtime are replaced by stand-ins that say whether they see CUDA, so
each answer is checked on a machine with or without a GPU alike.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from affectflow.tasks.devices import CPU, CUDA, DeviceError, check_device, onnx_providers, resolve_device

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent


def fake_onnxruntime(monkeypatch: pytest.MonkeyPatch, *, cuda: bool) -> None:
    module = types.SimpleNamespace(get_available_providers=lambda: [CUDA, CPU] if cuda else [CPU])
    monkeypatch.setitem(sys.modules, "onnxruntime", module)


def fake_torch(monkeypatch: pytest.MonkeyPatch, *, cuda: bool) -> None:
    module = types.SimpleNamespace(__version__="0.0-fake", cuda=types.SimpleNamespace(is_available=lambda: cuda))
    monkeypatch.setitem(sys.modules, "torch", module)


@pytest.mark.parametrize("cuda", [True, False])
def test_cpu_never_gets_the_cuda_provider(monkeypatch: pytest.MonkeyPatch, cuda: bool) -> None:
    fake_onnxruntime(monkeypatch, cuda=cuda)
    assert onnx_providers("cpu") == [CPU]


def test_auto_takes_cuda_only_where_onnxruntime_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_onnxruntime(monkeypatch, cuda=True)
    assert onnx_providers("auto") == [CUDA, CPU]
    assert onnx_providers("cuda") == onnx_providers("cuda:0") == [CUDA, CPU]
    fake_onnxruntime(monkeypatch, cuda=False)
    assert onnx_providers("auto") == [CPU]


def test_cuda_without_the_provider_is_one_line_that_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_onnxruntime(monkeypatch, cuda=False)
    with pytest.raises(DeviceError, match="no CUDA provider: install onnxruntime-gpu") as err:
        onnx_providers("cuda")
    assert "\n" not in str(err.value)
    fake_onnxruntime(monkeypatch, cuda=True)
    with pytest.raises(DeviceError, match="CUDA_VISIBLE_DEVICES"):
        onnx_providers("cuda:1")  # sessions use the first visible GPU


def test_torch_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_torch(monkeypatch, cuda=True)
    assert [resolve_device(d) for d in ("auto", "cpu", "cuda", "cuda:1")] == ["cuda", "cpu", "cuda", "cuda:1"]
    fake_torch(monkeypatch, cuda=False)
    assert [resolve_device(d) for d in ("auto", "cpu")] == ["cpu", "cpu"]
    with pytest.raises(DeviceError, match=r"device cuda asked for, but PyTorch 0\.0-fake sees no CUDA GPU"):
        resolve_device("cuda")


def test_cpu_needs_neither_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("torch", "onnxruntime"):
        monkeypatch.setitem(sys.modules, name, None)  # importing either would raise ImportError
    assert (resolve_device("cpu"), onnx_providers("cpu")) == ("cpu", [CPU])


def test_unknown_devices_are_refused() -> None:
    for device in ("gpu", "cuda:", "CPU", "mps"):
        with pytest.raises(ValueError, match="unknown device"):
            check_device(device)


def test_every_onnx_session_and_torch_device_goes_through_the_helper() -> None:
    """No hand-picked provider lists or device guesses left in the stages."""
    found = []
    for path in sorted((ROOT / "tasks").rglob("*.py")):
        if path.name == "devices.py":
            continue
        text = path.read_text()
        if "InferenceSession(" in text and "onnx_providers(" not in text:
            found.append(f"{path.relative_to(ROOT)}: an InferenceSession without onnx_providers")
        for pattern in (r"ExecutionProvider", r"torch\.cuda\.is_available", r"get_available_providers"):
            found += [f"{path.relative_to(ROOT)}: {m}" for m in re.findall(pattern, text)]
    assert found == []
