"""The store: Parquet tables on a local or fsspec output root, written atomically.

Layout (Hive-style, so DuckDB sees ``video_id`` as a column and pruning works)::

    <out>/<table>/video_id=<id>/part-0.parquet      per-video tables
    <out>/runs/run_id=<id>/part-0.parquet           one file per flow run
    <out>/_manifest/<key>.json                      per source file: what was done, with which config

Visibility rule: a video's rows count only once its ``videos`` row exists. The
``videos`` file is written last and deleted first when a video is redone, and the
SQL views semi-join on it, so a crash mid-video never shows partial rows.

Finished videos can be merged into a few large files (``affectflow compact``,
:mod:`~affectflow.tasks.storage.compaction`): a per-video layout costs one LIST entry and
one footer read per file, which at 50,000 videos is most of a query's time. Compacted rows
live under ``<out>/_compacted/<table>/compaction=<id>/part-0.parquet``, their ``videos``
rows written last; a video's loose files, when it has a ``videos`` row, always win over its
compacted rows, and among compactions the latest wins. A video deleted after compaction
leaves a tombstone (``<out>/_compacted/deleted/video_id=<id>/part-0.parquet``: hidden in
every compaction up to the tombstone's). Only this module and compaction write tables.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import mimetypes
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import fsspec
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from affectflow.tasks.storage.fs import glob_escape, is_local, is_s3, url_to_fs
from affectflow.tasks.storage.tables import SCHEMAS, VIDEO_TABLES, to_table


class StoreError(Exception):
    """Writing to the output root failed (disk full, permission, S3 error).

    ``transient`` says whether trying again may help (a network error or an S3 5xx may
    pass; a full disk or a refused permission will not, so those are not retried).
    """

    def __init__(self, message: str, transient: bool = True):
        super().__init__(message)
        self.transient = transient


PERMANENT_ERRNOS = {errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT, errno.ENAMETOOLONG}

TEMPORARY = ".tmp-"  # no reader globs names that start with a dot
OWN_FOLDERS = ("_leases", "_manifest", "runs/*")  # written outside any video's lease


def temporary_path(directory: str) -> str:
    """A fresh name in ``directory`` that no reader globs: ``.tmp-<uuid>.<pid>@<host>``.

    The writer's pid and host in the name let a later run tell what a killed writer left
    behind (its pid is gone) from a write another process is making right now.
    """
    return f"{directory}/{TEMPORARY}{uuid.uuid4().hex}.{os.getpid()}@{socket.gethostname()}"


def written_by_a_dead_process(path: str) -> bool:
    """A temporary of this host whose writer no longer runs (another host's pid says nothing here)."""
    writer = path.rsplit("/", 1)[-1].removeprefix(TEMPORARY).partition(".")[2]
    pid, _, host = writer.partition("@")
    return host == socket.gethostname() and pid.isdigit() and not psutil.pid_exists(int(pid))


def write_file(path: str, table: pa.Table) -> None:
    """One standalone Parquet file, atomically (exports such as `affectflow evaluate --out x.parquet`)."""
    Store(os.path.dirname(path) or ".")._put_atomic(path, _parquet_bytes(table))


@dataclass(frozen=True)
class Store:
    """An output root (local path or fsspec URL such as ``s3://bucket/out``)."""

    root: str

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return url_to_fs(self.root)[0]

    @property
    def _base(self) -> str:
        return url_to_fs(self.root)[1].rstrip("/")

    def partition(self, table: str, video_id: str) -> str:
        key = "run_id" if table == "runs" else "video_id"
        return f"{self._base}/{table}/{key}={video_id}"

    def file(self, table: str, video_id: str) -> str:
        return f"{self.partition(table, video_id)}/part-0.parquet"

    def path(self, relative: str) -> str:
        """The filesystem path of ``relative`` under the root (what ``fs`` takes)."""
        return f"{self._base}/{relative}"

    def remove_path(self, path: str) -> None:
        """Remove one file (a filesystem path under the root) if it exists."""
        self._remove(path)

    def prune_partition(self, table: str, video_id: str) -> None:
        """Remove a video's empty partition folder (local roots: an empty folder still costs every glob)."""
        if is_local(self.fs):
            with contextlib.suppress(OSError):  # not empty (a file came back) or gone: leave it
                os.rmdir(self.partition(table, video_id))

    def url(self, table: str) -> str:
        """Glob URL for readers (DuckDB): every partition of ``table``."""
        return f"{self.root.rstrip('/')}/{table}/*/*.parquet"

    def has_rows(self, table: str, video_id: str) -> bool:
        return bool(self.fs.exists(self.file(table, video_id)))

    def has_files(self, table: str) -> bool:
        return bool(self.glob(f"{table}/*/*.parquet"))

    def glob(self, pattern: str) -> list[str]:
        """Paths matching ``pattern`` under the root; the root's own ``[``, ``*``, ``?`` match only themselves."""
        return list(self.fs.glob(f"{glob_escape(self._base)}/{pattern}"))

    # -- writing -------------------------------------------------------------------------

    def write(self, name: str, key: str, table: pa.Table) -> None:
        """Atomically replace the one file of ``name`` for ``key`` (a video_id or run_id)."""
        self._put_atomic(self.file(name, key), _parquet_bytes(table, SCHEMAS[name]))

    def write_document(self, relative: str, data: bytes) -> str:
        """Atomically replace a file that is not a table (a report page) at ``relative`` under the root; its URL.

        On an object store the object gets the Content-Type of its name (``text/html`` for a
        page), so a browser opening it over HTTP (a presigned URL, a bucket website) renders it.
        """
        self._put_atomic(self.path(relative), data, mimetypes.guess_type(relative)[0])
        return f"{self.root.rstrip('/')}/{relative}"

    def write_video(
        self,
        video_id: str,
        tables: Mapping[str, pa.Table],
        video_row: Mapping[str, Any],
        manifest: tuple[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Commit one video: its per-video tables first, its ``videos`` row last.

        The new files are uploaded under temporary names before anything visible
        changes, so a failed write (disk full, permission, S3 5xx) leaves the video's
        previous rows exactly as they were. A table a stage did not produce is absent
        from ``tables`` and its old file (if any) is removed, so no rows survive from a
        stage that did not run this time. ``manifest`` (source URI, entry) is written after the
        tables and before the ``videos`` row: a crash between the two leaves a manifest whose video
        is not committed (redone by the next run), never a committed video without its manifest
        (also redone, for nothing: seen when a run was killed right after a commit).
        """
        new = {name: tables[name] for name in VIDEO_TABLES if name in tables}
        new["videos"] = to_table("videos", [video_row])
        staged: dict[str, str] = {}
        self._remove_leftovers(video_id)
        try:
            for name, table in new.items():
                staged[name] = self._put_temporary(self.file(name, video_id), _parquet_bytes(table, SCHEMAS[name]))
            self.uncommit(video_id)  # from here on only renames (S3: server-side copies)
            for name in VIDEO_TABLES:
                if name in staged:
                    self._move(staged.pop(name), self.file(name, video_id))
                else:
                    self._remove(self.file(name, video_id))
            if manifest is not None:
                self.write_manifest(*manifest)
            self._move(staged.pop("videos"), self.file("videos", video_id))  # the commit
        finally:
            for temporary in staged.values():
                self._remove(temporary, quiet=True)

    def _remove_leftovers(self, video_id: str) -> None:
        """Temporary files of a write that was killed before it finished (never visible, but they take space)."""
        for name in (*VIDEO_TABLES, "videos"):
            for path in self.glob(f"{name}/video_id={glob_escape(video_id)}/{TEMPORARY}*"):
                self._remove(path, quiet=True)

    def remove_abandoned_temporaries(self) -> int:
        """Delete what killed writers left in the root's own folders (leases, manifests, runs); how many.

        A video's own folders are cleaned when it is rewritten (under its lease). Local roots
        only: on an object store those files are written in one PUT and leave nothing behind.
        """
        if not is_local(self.fs):
            return 0
        found = [p for folder in OWN_FOLDERS for p in self.glob(f"{folder}/{TEMPORARY}*")]
        abandoned = [path for path in found if written_by_a_dead_process(path)]
        for path in abandoned:
            self._remove(path, quiet=True)
        return len(abandoned)

    def delete_video(self, video_id: str) -> None:
        """Remove every row of a video (its source file changed or disappeared); compacted rows get a tombstone."""
        if video_id in self.compacted_videos():
            tombstone = {"video_id": [video_id], "compaction": [new_compaction_id()]}
            self._put_atomic(
                self.path(f"{TOMBSTONES}/video_id={video_id}/part-0.parquet"), _parquet_bytes(pa.table(tombstone))
            )
        self.uncommit(video_id)
        for name in VIDEO_TABLES:
            self._remove(self.file(name, video_id))

    def uncommit(self, video_id: str) -> None:
        """Hide a video's rows (remove its ``videos`` row) before they are rewritten."""
        self._remove(self.file("videos", video_id))

    def _put_atomic(self, path: str, data: bytes, content_type: str | None = None) -> None:
        if is_local(self.fs):
            self._move(self._put_temporary(path, data), path)  # os.replace: atomic on POSIX
        else:
            self._put(path, data, content_type)  # one PUT: the object appears whole or not at all

    def _put_temporary(self, path: str, data: bytes) -> str:
        """Write ``data`` next to ``path`` under a name no reader globs (``.tmp-…``); return that name."""
        temporary = temporary_path(path.rsplit("/", 1)[0])
        self._put(temporary, data)
        return temporary

    def _put(self, path: str, data: bytes, content_type: str | None = None) -> None:
        try:
            if is_local(self.fs):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                try:
                    with open(path, "wb") as handle:
                        handle.write(data)
                        handle.flush()
                        os.fsync(handle.fileno())
                except BaseException:
                    if os.path.exists(path):
                        os.remove(path)
                    raise
            elif content_type and is_s3(self.fs):
                self.fs.pipe_file(path, data, ContentType=content_type)  # s3fs passes it to PutObject
            else:
                self.fs.pipe_file(path, data)
        except OSError as err:
            raise StoreError(f"cannot write {path}: {_reason(err)}", _transient(err)) from err

    def _move(self, source: str, target: str) -> None:
        try:
            if is_local(self.fs):
                os.replace(source, target)
            else:  # one object each: fs.mv would read `[` or `*` in a root as a glob
                self.fs.cp_file(source, target)  # server-side copy
                self.fs.rm_file(source)
        except OSError as err:
            raise StoreError(f"cannot write {target}: {_reason(err)}", _transient(err)) from err

    def _remove(self, path: str, quiet: bool = False) -> None:
        fs = self.fs
        try:
            if fs.exists(path):
                fs.rm_file(path)  # one file: fs.rm would expand `[` or `*` in the root as a glob
        except FileNotFoundError:
            pass
        except OSError as err:
            if not quiet:
                raise StoreError(f"cannot remove {path}: {_reason(err)}", _transient(err)) from err

    # -- manifest: what was done to which source file --------------------------------------

    def _manifest_path(self, uri: str) -> str:
        return f"{self._base}/_manifest/{hashlib.sha1(uri.encode()).hexdigest()}.json"

    def read_manifest(self, uri: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.fs.cat_file(self._manifest_path(uri)))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def write_manifest(self, uri: str, entry: Mapping[str, Any]) -> None:
        self._put_atomic(self._manifest_path(uri), json.dumps(dict(entry), sort_keys=True).encode())

    def committed(self, video_id: str) -> bool:
        """Has a visible ``videos`` row: its own file, or a live compacted one."""
        return bool(self.fs.exists(self.file("videos", video_id))) or video_id in self.compacted_videos()

    def committed_uri(self, video_id: str) -> str | None:
        """The source URI in a video's visible ``videos`` row; None when it has none."""
        path = self.file("videos", video_id)
        if self.fs.exists(path):
            with self.fs.open(path, "rb") as handle:
                uris = pq.read_table(handle, columns=["uri"]).column("uri").to_pylist()
            return uris[0] if uris else None
        return self.compacted_videos().get(video_id, (None, None))[1]

    # -- compacted rows: which video's compacted rows are live (read side) ---------------------

    def compacted_videos(self) -> dict[str, tuple[str, str]]:
        """video_id → (compaction id, uri) of each video whose latest compacted rows are not tombstoned.

        Loose rows may still override them (see the module docstring). Cached per output root
        until the listing of compactions or tombstones changes: one or two listings a call.
        """
        fs = self.fs
        if not fs.exists(self.path(f"{COMPACTED}/videos")):
            return {}
        compactions = sorted(self.glob(f"{COMPACTED}/videos/compaction=*/part-0.parquet"))
        tombstones = sorted(self.glob(f"{TOMBSTONES}/video_id=*/part-0.parquet"))
        key = (tuple(compactions), tuple(tombstones))
        cached = _COMPACTED_CACHE.get(self.root)
        if cached is not None and cached[0] == key:
            return cached[1]
        live: dict[str, tuple[str, str]] = {}
        for path in compactions:  # oldest first: a later compaction replaces a video's entry
            compaction = path.rsplit("/", 2)[-2].removeprefix("compaction=")
            with fs.open(path, "rb") as handle:
                table = pq.read_table(handle, columns=["video_id", "uri"])
            for video_id, uri in zip(
                table.column("video_id").to_pylist(), table.column("uri").to_pylist(), strict=True
            ):
                live[video_id] = (compaction, uri)
        for path in tombstones:
            with fs.open(path, "rb") as handle:
                row = pq.read_table(handle).to_pylist()[0]
            if row["video_id"] in live and live[row["video_id"]][0] <= row["compaction"]:
                del live[row["video_id"]]
        _COMPACTED_CACHE[self.root] = (key, live)
        return live


COMPACTED = "_compacted"
TOMBSTONES = f"{COMPACTED}/deleted"
_COMPACTED_CACHE: dict[str, tuple[tuple[Any, ...], dict[str, tuple[str, str]]]] = {}


def new_compaction_id() -> str:
    """Ids that sort by time (nanoseconds, zero-padded) and never collide (a random tail)."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


def _parquet_bytes(table: pa.Table, schema: pa.Schema | None = None, row_group_size: int | None = None) -> bytes:
    """One zstd Parquet file in memory, cast to ``schema`` (a table's exact store schema) when given."""
    if schema is not None and table.schema != schema:
        table = table.cast(schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", row_group_size=row_group_size)
    return buffer.getvalue()


def _reason(err: OSError) -> str:
    """The OS's words (``[Errno 28] No space left on device``) without the path repeated."""
    return f"[Errno {err.errno}] {err.strerror}" if err.errno and err.strerror else str(err)


def _transient(err: OSError) -> bool:
    return err.errno not in PERMANENT_ERRNOS and not isinstance(err, PermissionError)
