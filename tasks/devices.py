"""Where a model runs: one answer for every PyTorch model and every ONNX Runtime session.

A config's ``device`` is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``. ``auto`` is a CUDA GPU when
the runtime that runs the model can use one, else the CPU: for PyTorch that is
``torch.cuda.is_available()``, for ONNX Runtime the CUDA execution provider
(onnxruntime-gpu). Asking for ``cuda`` where the runtime has none is a :class:`DeviceError`
in one line, never a silent fall back to the CPU; ``cpu`` never touches a GPU.

Importing this module imports neither torch nor onnxruntime (each is imported by the call
that needs it).
"""

from __future__ import annotations

import re

DEVICES = ("auto", "cpu", "cuda")  # and "cuda:N", a GPU by index
CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


class DeviceError(RuntimeError):
    """The device asked for cannot be used; the message says what to install or choose instead."""


def check_device(device: str) -> str:
    """``device`` itself, or a ValueError naming the devices there are."""
    if not _DEVICE.fullmatch(device):
        raise ValueError(f"unknown device {device!r}: use one of {', '.join(DEVICES)} or cuda:N")
    return device


def resolve_device(device: str) -> str:
    """The PyTorch device for a config's ``device``: ``cpu``, ``cuda`` or the ``cuda:N`` asked for."""
    if check_device(device) == "cpu":
        return "cpu"
    import torch

    has_cuda = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    if not has_cuda:
        raise DeviceError(
            f"device {device} asked for, but PyTorch {torch.__version__} sees no CUDA GPU: use auto or cpu"
        )
    return device


def onnx_providers(device: str) -> list[str]:
    """ONNX Runtime's execution providers for a config's ``device``, the preferred first.

    ``cuda:N`` is refused for sessions: they run on the first visible GPU, so choose it with
    ``CUDA_VISIBLE_DEVICES`` (0 is accepted as the same as ``cuda``).
    """
    if check_device(device) == "cpu":
        return [CPU]
    import onnxruntime

    has_cuda = CUDA in onnxruntime.get_available_providers()
    if device == "auto":
        return [CUDA, CPU] if has_cuda else [CPU]
    if not has_cuda:
        raise DeviceError(f"device {device} asked for, but onnxruntime has no CUDA provider: install onnxruntime-gpu")
    if device not in ("cuda", "cuda:0"):
        raise DeviceError(
            f"ONNX Runtime sessions run on device cuda (pick the GPU with CUDA_VISIBLE_DEVICES), not {device}"
        )
    return [CUDA, CPU]
