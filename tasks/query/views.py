"""DuckDB over the store: one connection with the views of sql/views.sql.

Works on local and ``s3://`` output roots alike: remote filesystems are registered
with DuckDB through fsspec, because DuckDB's own httpfs extension would have to be
downloaded.

Parameters: ``--param name=value`` becomes ``SET VARIABLE name = 'value'`` and queries
read it with ``getvariable('name')`` (always VARCHAR; cast where a number is meant, and
NULL when not given). DuckDB folds ``getvariable`` to a constant before planning, so
``video_id = getvariable('video_id')`` still prunes partitions.

A second output root (for instance last week's run) can be attached as a schema:
``connect(out, attach={"baseline": old_out})`` gives ``baseline.video_summary`` etc.

Paths reach DuckDB as globs (``<root>/<table>/*/*.parquet``), so the root's own glob
characters are escaped (``out[1]`` → ``out[[]1]``): it reads its own rows, never ``out1``'s.

``safe=True`` is for SQL that is not the user's own (a shared service, someone else's ``-f``
file): the views read the roots through :class:`ReadOnlyRoots` (one fsspec filesystem,
``affectflow://<schema>/…``, that opens files for reading only and never leaves the roots), then
external access is switched off with only that filesystem allowed and the configuration locked.
So ``COPY … TO``, ``read_text('/proc/self/environ')``, ``ATTACH``, ``INSTALL``/``LOAD`` and any
path or bucket outside the roots fail, and no ``SET`` gives them back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import fsspec
import pyarrow as pa
from fsspec.spec import AbstractFileSystem

from affectflow.tasks.storage.fs import check_root, glob_escape, is_local
from affectflow.tasks.storage.store import COMPACTED, TOMBSTONES, Store
from affectflow.tasks.storage.tables import SCHEMAS, VIDEO_TABLES

SQL_DIR = Path(str(resources.files("affectflow") / "sql"))  # package data: views.sql, examples/
VIEWS = SQL_DIR / "views.sql"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SAFE_PROTOCOL = "affectflow"
MAIN = "main"


class QueryError(Exception):
    """A query could not be set up (bad parameter or schema name)."""


def connect(
    out: str,
    *,
    views: Path = VIEWS,
    attach: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    safe: bool = False,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the views of ``views`` over the tables under ``out``.

    ``attach`` maps schema names to further output roots that get the same views;
    ``params`` are set as DuckDB variables (see the module docstring); ``safe`` reads the
    roots only and locks everything else away (the module docstring).
    """
    roots = {MAIN: out, **(attach or {})}
    for schema in roots:
        _check_name(schema, "schema")
    con = duckdb.connect()
    if safe:
        con.register_filesystem(ReadOnlyRoots(roots))
    for schema, root in roots.items():
        if schema != MAIN:
            con.execute(f"CREATE SCHEMA {schema}")
        con.execute(f"SET schema = '{schema}'")
        _create_views(con, root, views, f"{SAFE_PROTOCOL}://{schema}" if safe else None)
    con.execute(f"SET schema = '{MAIN}'")
    set_params(con, params or {})
    if safe:
        lock_down(con)
    return con


def lock_down(con: duckdb.DuckDBPyConnection) -> None:
    """No file, bucket or extension but the ``affectflow://`` roots from now on, and no SET undoes it.

    One thread: DuckDB's bridge to a Python filesystem seeks and reads a shared handle in two
    calls, so two threads reading one Parquet file interleave (seen: wrong row counts and
    "TProtocolException: Invalid data" at 2 threads). Measured on 2M emotion rows (51 videos,
    2 cores): the whole-corpus per-minute timeline 0.41 s against 0.25 s unsafe, one video
    0.025 s against 0.022 s, video_summary 0.76 s against 0.70 s.
    """
    con.execute("SET threads = 1")
    con.execute(f"SET allowed_directories = ['{SAFE_PROTOCOL}://']")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def view_sql(out: str, *, views: Path = VIEWS, location: str | None = None) -> str:
    """The views with their placeholders filled in for ``out``: a script for the DuckDB CLI.

    Tables without files yet read as empty typed relations, so the script always runs.
    ``location`` is the glob prefix the views read ``out`` through (default: ``out``
    itself, its glob characters escaped). Where the root holds compacted rows (store.py),
    a per-video table reads its loose rows (of videos with their own ``videos`` file) and
    the live compacted ones (helper views ``_loose_videos`` and ``_compacted_videos``).
    """
    store = Store(out)
    prefix = location or glob_escape(store.root.rstrip("/"))

    def has_files(glob: str) -> bool:
        return bool(store.glob(glob))

    def scan(glob: str, by_name: bool = False) -> str:
        # by name: a table whose files may predate a column (runs); it reads every file's schema
        union = ", union_by_name = true" if by_name else ""
        return f"read_parquet('{_quote(f'{prefix}/{glob}')}', hive_partitioning = true{union})"

    def empty(table: str) -> str:
        columns = ", ".join(f'NULL::{_duckdb_type(f.type)} AS "{f.name}"' for f in SCHEMAS[table])
        return f"(SELECT {columns} LIMIT 0)"

    loose = {table: has_files(f"{table}/*/*.parquet") for table in SCHEMAS}
    compacted = has_files(f"{COMPACTED}/videos/*/*.parquet")
    helpers = ""
    sources = {}
    for table in SCHEMAS:
        sources[table] = scan(f"{table}/*/*.parquet", by_name=table == "runs") if loose[table] else empty(table)
    if compacted:
        helpers = _compacted_helpers(scan, empty, loose["videos"], has_files(f"{TOMBSTONES}/*/*.parquet"))
        sources["videos"] = (
            "(SELECT * FROM _loose_videos UNION ALL BY NAME SELECT * EXCLUDE (compaction) FROM _compacted_videos)"
        )
        for table in VIDEO_TABLES:
            parts = []
            if loose[table]:
                parts.append(f"SELECT rows.* FROM {sources[table]} AS rows SEMI JOIN _loose_videos USING (video_id)")
            if has_files(f"{COMPACTED}/{table}/*/*.parquet"):
                parts.append(
                    f"SELECT rows.* EXCLUDE (compaction) FROM {scan(f'{COMPACTED}/{table}/*/*.parquet')} AS rows "
                    "JOIN (SELECT video_id, compaction FROM _compacted_videos) USING (video_id, compaction)"
                )
            sources[table] = f"({' UNION ALL BY NAME '.join(parts)})" if parts else empty(table)
    return helpers + re.sub(r"\{(\w+)\}", lambda m: sources.get(m.group(1), m.group(0)), views.read_text())


def _compacted_helpers(scan: Any, empty: Any, has_loose_videos: bool, has_tombstones: bool) -> str:
    """``_loose_videos`` and ``_compacted_videos`` (each video's latest compaction, not tombstoned, not loose)."""
    loose = scan("videos/*/*.parquet") if has_loose_videos else empty("videos")
    tombstoned = (
        f"AND NOT EXISTS (SELECT 1 FROM {scan(f'{TOMBSTONES}/*/*.parquet')} AS dead "
        "WHERE dead.video_id = latest.video_id AND dead.compaction >= latest.compaction)"
        if has_tombstones
        else ""
    )
    return f"""CREATE OR REPLACE VIEW _loose_videos AS SELECT * FROM {loose};
CREATE OR REPLACE VIEW _compacted_videos AS
SELECT latest.* FROM (
    SELECT * FROM {scan(f"{COMPACTED}/videos/*/*.parquet")}
    QUALIFY row_number() OVER (PARTITION BY video_id ORDER BY compaction DESC) = 1
) AS latest
WHERE NOT EXISTS (SELECT 1 FROM _loose_videos AS loose WHERE loose.video_id = latest.video_id) {tombstoned};
"""


def set_params(con: duckdb.DuckDBPyConnection, params: Mapping[str, str]) -> None:
    """``SET VARIABLE name = 'value'`` for each parameter (values stay VARCHAR)."""
    for name, value in params.items():
        _check_name(name, "parameter")
        con.execute(f"SET VARIABLE {name} = '{_quote(str(value))}'")


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["video_id=abc", "top_n=5"]`` → ``{"video_id": "abc", "top_n": "5"}``."""
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise QueryError(f"parameter {pair!r} is not NAME=VALUE (e.g. --param video_id=ab12cd)")
        params[name.strip()] = value
    return params


def _create_views(con: duckdb.DuckDBPyConnection, out: str, views: Path, location: str | None) -> None:
    fs = Store(out).fs
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol
    check_root(out)
    if location is None and not is_local(fs) and not set(protocols) & set(con.list_filesystems()):
        con.register_filesystem(fs)
    con.execute(view_sql(out, views=views, location=location))


class ReadOnlyRoots(AbstractFileSystem):
    """``affectflow://<schema>/<path>``: the files under each output root, for reading only.

    What DuckDB's fsspec bridge calls (ls, info, open) maps the schema to its root on that
    root's own filesystem (local or S3, the run's credentials); a write, a ``..`` or an
    unknown schema is a PermissionError. The roots' own glob characters never reach a
    pattern: the prefix DuckDB globs is ``affectflow://main``.
    """

    protocol = SAFE_PROTOCOL
    cachable = False  # one per connection: different roots

    def __init__(self, roots: Mapping[str, str]) -> None:
        super().__init__()
        self.roots = {schema: fsspec.core.url_to_fs(root) for schema, root in roots.items()}

    def _resolve(self, path: str) -> tuple[AbstractFileSystem, str]:
        schema, _, rest = self._strip_protocol(path).strip("/").partition("/")
        if schema not in self.roots or ".." in rest.split("/"):
            raise PermissionError(f"{path}: only the output roots can be read here")
        fs, base = self.roots[schema]
        return fs, f"{base.rstrip('/')}/{rest}".rstrip("/")

    def _relative(self, schema: str, entry: dict[str, Any]) -> dict[str, Any]:
        base = self.roots[schema][1].rstrip("/")
        name = str(entry["name"]).rstrip("/")
        return {**entry, "name": f"{schema}{name[len(base) :]}"}

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        schema = self._strip_protocol(path).strip("/").partition("/")[0]
        if not schema:
            entries = [{"name": name, "size": 0, "type": "directory"} for name in self.roots]
        else:
            fs, full = self._resolve(path)
            entries = [self._relative(schema, entry) for entry in fs.ls(full, detail=True)]
        return entries if detail else [entry["name"] for entry in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        schema = self._strip_protocol(path).strip("/").partition("/")[0]
        fs, full = self._resolve(path)
        return self._relative(schema, fs.info(full))

    def modified(self, path: str) -> Any:
        fs, full = self._resolve(path)
        return fs.modified(full)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if mode != "rb":
            raise PermissionError(f"{path}: the output root is read-only here (--safe)")
        fs, full = self._resolve(path)
        return fs.open(full, "rb")


def _check_name(name: str, what: str) -> None:
    if not _NAME.fullmatch(name):
        raise QueryError(f"{what} name {name!r} must be letters, digits and _ (e.g. video_id)")


def _duckdb_type(arrow_type: pa.DataType) -> str:
    """DuckDB spelling of the Arrow types the store uses."""
    if pa.types.is_fixed_size_list(arrow_type):
        return f"{_duckdb_type(arrow_type.value_type)}[{arrow_type.list_size}]"
    if pa.types.is_list(arrow_type):
        return f"{_duckdb_type(arrow_type.value_type)}[]"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP"
    return {
        pa.string(): "VARCHAR",
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.float32(): "FLOAT",
        pa.float64(): "DOUBLE",
        pa.bool_(): "BOOLEAN",
    }[arrow_type]


def _quote(text: str) -> str:
    return text.replace("'", "''")
