"""Find the videos under a corpus root (local folder or any fsspec URL)."""

from __future__ import annotations

import fsspec

from affectflow.tasks.defaults import VIDEO_EXTENSIONS
from affectflow.tasks.records import SourceFile
from affectflow.tasks.storage.fs import is_local, url_to_fs


class SourceError(Exception):
    """The corpus root does not exist, cannot be listed, or holds no videos."""


def discover(source: str, extensions: tuple[str, ...] = VIDEO_EXTENSIONS) -> list[SourceFile]:
    """Every file under ``source`` whose name ends with a video extension, sorted by URI."""
    fs, root = url_to_fs(source)
    if not fs.exists(root):
        raise SourceError(f"source not found: {source}")
    entries = {root: fs.info(root)} if fs.isfile(root) else fs.find(root, detail=True)
    files = [
        SourceFile(_uri(fs, path, source), int(info.get("size") or 0), _version(info))
        for path, info in entries.items()
        if path.lower().endswith(extensions) and not _hidden(path[len(root) :])
    ]
    if not files:
        raise SourceError(f"no videos under {source} (looked for {', '.join(extensions)} files)")
    return sorted(files, key=lambda f: f.uri)


def _uri(fs: fsspec.AbstractFileSystem, path: str, source: str) -> str:
    if is_local(fs):
        return path
    protocol = source.split("://", 1)[0]
    return f"{protocol}://{path}"


def _version(info: dict) -> str:
    for key in ("ETag", "etag", "mtime", "LastModified", "last_modified", "created"):
        if info.get(key) is not None:
            return str(info[key]).strip('"')
    return ""


def _hidden(path: str) -> bool:
    return any(part.startswith(".") for part in path.split("/") if part)
