"""Staging: bring a video to local disk and hash its bytes (the hash is part of the video's id).

What is read (docs/orchestration.md, "Which files are read, and what one video is"):
- only regular files: a FIFO, a device (a link to ``/dev/zero``), a socket or a directory
  with a video's name is a bad input, refused from ``stat`` before anything opens it, so
  nothing blocks or reads forever;
- symlinks are followed wherever they point, also out of the source folder, but only to
  regular files; a loop, a dangling link or a vanished file is a bad input too (ELOOP,
  ENOENT, ENOTDIR, EISDIR will not change on a retry);
- a remote read that gets no bytes for ``STALL_S`` seconds fails (and is retried), so a
  stalled connection cannot hold the run.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import fsspec

from affectflow.tasks.media.tools import MediaError
from affectflow.tasks.records import StagedVideo
from affectflow.tasks.storage.fs import is_local, url_to_fs

_CHUNK = 8 * 1024 * 1024  # bytes per read while staging/hashing
STALL_S = 60.0  # seconds a remote read may go without a chunk before staging gives up
PERMANENT_ERRNOS = {errno.ELOOP, errno.ENOENT, errno.ENOTDIR, errno.EISDIR}  # a source that stays unreadable


class StagingStalledError(TimeoutError):
    """A remote read gave no bytes for STALL_S seconds (transient: the stage task retries it)."""


def stage(uri: str, work_dir: Path) -> StagedVideo:
    """Bring ``uri`` (local path or any fsspec URL) to local disk and hash it.

    Local files are hashed in place, not copied; remote ones are copied into
    ``work_dir`` while hashing, so each byte is read once.
    """
    fs, path = url_to_fs(uri)
    digest = hashlib.sha256()
    try:
        if is_local(fs):
            local = Path(path)
            with open_regular(local) as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
        else:
            work_dir.mkdir(parents=True, exist_ok=True)
            local = work_dir / Path(path).name
            with open(local, "wb") as dst:
                for chunk in _remote_chunks(fs, path):
                    digest.update(chunk)
                    dst.write(chunk)
    except OSError as err:
        if err.errno in PERMANENT_ERRNOS or isinstance(err, FileNotFoundError):
            raise MediaError(f"cannot read the source: {_reason(err)}") from None
        raise
    return StagedVideo(local, uri, digest.hexdigest(), local.stat().st_size)


def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file (or a link to one); MediaError otherwise.

    ``stat`` (which follows links and opens nothing) decides first; the file is then opened
    non-blocking and checked again, in case it was swapped in between: opening a FIFO with
    O_NONBLOCK returns at once instead of waiting for a writer.
    """
    _refuse_irregular(os.stat(path).st_mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        _refuse_irregular(os.fstat(fd).st_mode)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _refuse_irregular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise MediaError(f"not a regular file ({_kind(mode)}): only regular files and links to them are read")


def _kind(mode: int) -> str:
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO", stat.S_ISCHR: "a character device"}
    kinds |= {stat.S_ISBLK: "a block device", stat.S_ISSOCK: "a socket"}
    return next((name for test, name in kinds.items() if test(mode)), "not a file")


def _remote_chunks(fs: fsspec.AbstractFileSystem, path: str) -> Iterator[bytes]:
    """The bytes of a remote file in chunks, read by a thread; StagingStalledError when one takes over STALL_S.

    fsspec backends have no common read timeout (s3fs's botocore has its own, HTTP and others
    may have none), so the deadline is kept here: a read stuck in native code cannot be
    interrupted, but the video no longer waits for it (the daemon thread is left behind).
    """
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=2)
    stopped = threading.Event()

    def read() -> None:
        try:
            with fs.open(path, "rb") as src:
                while not stopped.is_set() and (chunk := src.read(_CHUNK)):
                    chunks.put(chunk)
            chunks.put(None)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, which raises it
            chunks.put(err)

    threading.Thread(target=read, name="staging-read", daemon=True).start()
    try:
        while True:
            try:
                item = chunks.get(timeout=STALL_S)
            except queue.Empty:
                raise StagingStalledError(f"no bytes from {path} for {STALL_S:g} s: the read stalled") from None
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopped.set()
        while not chunks.empty():  # unblock a reader waiting to put its next chunk
            chunks.get_nowait()


def _reason(err: OSError) -> str:
    """The OS's words (``[Errno 40] Too many levels of symbolic links``) without the path."""
    if err.errno and err.strerror:
        return f"[Errno {err.errno}] {err.strerror}"
    return f"not found ({err})" if isinstance(err, FileNotFoundError) else str(err)
