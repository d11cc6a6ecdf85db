"""fsspec helpers shared by the stages that read sources and write outputs."""

from __future__ import annotations

import fsspec


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """True for the local filesystem, where rename is atomic and paths are plain paths."""
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol
    return bool({"file", "local"} & set(protocols))
