"""The ffmpeg/ffprobe binaries and the errors every media step raises.

Binaries: the system ``ffmpeg``/``ffprobe`` (Debian package, installed by
``scripts/setup.sh``); override with ``AFFECTFLOW_FFMPEG`` / ``AFFECTFLOW_FFPROBE``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from affectflow.tasks.settings import env_name, settings


class MediaError(Exception):
    """The input file itself is bad (corrupt, empty, no video stream...).

    Deterministic: retrying will not help, so the corpus flow records it and moves on.
    """


class ToolMissingError(RuntimeError):
    """ffmpeg/ffprobe is not installed: fatal for the whole run, reported once."""


def ffmpeg_exe() -> str:
    return _binary("ffmpeg")


def ffprobe_exe() -> str:
    return _binary("ffprobe")


def _binary(name: str) -> str:
    """The setting's binary (``AFFECTFLOW_FFMPEG`` for ffmpeg), else ``name`` on PATH."""
    exe = getattr(settings(), name) or shutil.which(name)
    if not exe or not (Path(exe).is_file() or shutil.which(exe)):
        raise ToolMissingError(
            f"{name} not found: install it (`apt-get install ffmpeg`, or run scripts/setup.sh) "
            f"or point {env_name(name)} at the binary"
        )
    return exe


def check_tools() -> None:
    """Fail fast, once, before a corpus run starts."""
    ffmpeg_exe()
    ffprobe_exe()


def last_line(stderr: bytes | None) -> str:
    lines = (stderr or b"").decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "ffprobe failed"
