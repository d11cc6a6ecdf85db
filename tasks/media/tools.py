"""The ffmpeg/ffprobe binaries and the errors every media step raises.

Binaries: the system ``ffmpeg``/``ffprobe`` (Debian package, installed by
``scripts/setup.sh``); override with ``AFFECTFLOW_FFMPEG`` / ``AFFECTFLOW_FFPROBE``.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from affectflow.tasks.progress import time_left, timed_out
from affectflow.tasks.settings import env_name, settings


class MediaError(Exception):
    """The input file itself is bad (corrupt, empty, no video stream...).

    Deterministic: retrying will not help, so the corpus flow records it and moves on.
    """


class DecodeInterruptedError(RuntimeError):
    """ffmpeg was stopped by a signal (Ctrl-C, a kill, the OOM killer) before it finished.

    Not the file's fault: the video fails without an ``ok`` row and the next run redoes it.
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


def input_url(path: Path) -> str:
    """``path`` as an ffmpeg input that is always a file: ffmpeg reads ``a::b.mp4`` as protocol ``a``."""
    return f"file:{path}"


# ffmpeg's exit status after SIGINT/SIGTERM (it catches them, stops and exits 255)
_STOPPED_BY_SIGNAL = 255
_LOG_PREFIX = re.compile(r"^\[[^\]]+ @ 0x[0-9a-f]+\] ")  # "[h264 @ 0x55f7e4591e00] "


def run_tool(command: Sequence[str], step: str) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg or ffprobe to its end, waiting at most the running video's time left.

    The per-video timeout is cooperative between steps (tasks/progress.py); a child that never
    finishes (a pathological file, a stuck read) would hold the video past it, so past the
    deadline the child is killed and the video fails with ``VideoTimeoutError``.
    """
    try:
        return subprocess.run(list(command), capture_output=True, check=False, timeout=time_left())
    except subprocess.TimeoutExpired:  # subprocess.run has killed and reaped the child
        raise timed_out(f"during {step}: {Path(command[0]).name} did not finish; killed") from None


def check_exit(what: str, returncode: int, stderr: Sequence[str], done: str) -> None:
    """Raise the one-line error of an ffmpeg run that did not exit 0; ``done`` says how far it got.

    Killed or interrupted (a negative status, or 255): DecodeInterruptedError, redone next run.
    Any other non-zero status is ffmpeg refusing the input: MediaError with its first error line
    (the first says why; the last is usually "Error marking filters as finished").
    """
    if returncode == 0:
        return
    if returncode < 0 or returncode == _STOPPED_BY_SIGNAL:
        how = signal_name(-returncode) if returncode < 0 else "SIGINT/SIGTERM"
        raise DecodeInterruptedError(f"ffmpeg was stopped ({how}) while decoding {what}, after {done}")
    raise MediaError(f"{what} decode failed after {done}: {first_error(stderr)}")


def first_error(stderr: Sequence[str]) -> str:
    """The first non-empty line ffmpeg logged, without its ``[decoder @ 0x…]`` prefix."""
    lines = [_LOG_PREFIX.sub("", line).strip() for line in stderr]
    return next((line for line in lines if line), "ffmpeg gave no reason")[:200]


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def last_line(stderr: bytes | None) -> str:
    lines = (stderr or b"").decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "ffprobe failed"
