"""Staging: bring a video to local disk and hash its bytes (the hash is the video's id)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import fsspec

from affectflow.tasks.records import StagedVideo
from affectflow.tasks.storage.fs import is_local

_CHUNK = 8 * 1024 * 1024  # bytes per read while staging/hashing


def stage(uri: str, work_dir: Path) -> StagedVideo:
    """Bring ``uri`` (local path or any fsspec URL) to local disk and hash it.

    Local files are hashed in place, not copied; remote ones are copied into
    ``work_dir`` while hashing, so each byte is read once.
    """
    fs, path = fsspec.core.url_to_fs(uri)
    digest = hashlib.sha256()
    if is_local(fs):
        local = Path(path)
        with open(local, "rb") as src:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
    else:
        work_dir.mkdir(parents=True, exist_ok=True)
        local = work_dir / Path(path).name
        with fs.open(path, "rb") as src, open(local, "wb") as dst:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
    return StagedVideo(local, uri, digest.hexdigest(), local.stat().st_size)
