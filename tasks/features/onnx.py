"""Open a user's ONNX feature model: one place for the path setting, the providers and the errors.

Both ONNX extractors (HSEmotion faces, VGGish audio) take a file the user points a setting at; a missing
setting, a missing file and a file onnxruntime cannot load each get one line that names the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from affectflow.tasks.devices import onnx_providers
from affectflow.tasks.settings import env_name, settings


class FeatureError(Exception):
    """A feature extractor cannot run: missing or wrong weights. The message says which file and the fix."""


def open_onnx(path: str | None, setting: str, what: str, hint: str, device: str = "auto") -> tuple[Path, Any]:
    """``(path, onnxruntime.InferenceSession)`` for ``path``, else the file the ``setting`` names.

    ``what`` names the model in errors ("HSEmotion"), ``hint`` says which file to point the setting at.
    """
    import onnxruntime as ort

    env = env_name(setting)
    where = path or getattr(settings(), setting)
    if not where:
        raise FeatureError(f"the {what} extractor needs an ONNX file: set {env} or {setting}")
    file = Path(where)
    if not file.is_file():
        raise FeatureError(f"{file}: no such {what} ONNX file; point {env} at {hint}")
    try:
        session = ort.InferenceSession(str(file), providers=onnx_providers(device))
    except Exception as err:  # onnxruntime raises its own untyped errors for bad files
        raise FeatureError(f"{file}: not a loadable ONNX model ({type(err).__name__})") from err
    return file, session
