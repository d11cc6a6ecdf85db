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
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa

from affectflow.tasks.storage.fs import check_root, is_local
from affectflow.tasks.storage.store import Store
from affectflow.tasks.storage.tables import SCHEMAS

SQL_DIR = Path(str(resources.files("affectflow") / "sql"))  # package data: views.sql, examples/
VIEWS = SQL_DIR / "views.sql"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class QueryError(Exception):
    """A query could not be set up (bad parameter or schema name)."""


def connect(
    out: str,
    *,
    views: Path = VIEWS,
    attach: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the views of ``views`` over the tables under ``out``.

    ``attach`` maps schema names to further output roots that get the same views;
    ``params`` are set as DuckDB variables (see the module docstring).
    """
    con = duckdb.connect()
    _create_views(con, out, views)
    for schema, other in (attach or {}).items():
        _check_name(schema, "schema")
        con.execute(f"CREATE SCHEMA {schema}")
        con.execute(f"SET schema = '{schema}'")
        _create_views(con, other, views)
        con.execute("SET schema = 'main'")
    set_params(con, params or {})
    return con


def view_sql(out: str, *, views: Path = VIEWS) -> str:
    """The views with their placeholders filled in for ``out``: a script for the DuckDB CLI.

    Tables without files yet read as empty typed relations, so the script always runs.
    """
    store = Store(out)
    sources = {}
    for table, schema in SCHEMAS.items():
        if store.has_files(table):
            sources[table] = f"read_parquet('{_quote(store.url(table))}', hive_partitioning = true)"
        else:
            columns = ", ".join(f'NULL::{_duckdb_type(f.type)} AS "{f.name}"' for f in schema)
            sources[table] = f"(SELECT {columns} LIMIT 0)"
    return re.sub(r"\{(\w+)\}", lambda m: sources.get(m.group(1), m.group(0)), views.read_text())


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


def _create_views(con: duckdb.DuckDBPyConnection, out: str, views: Path) -> None:
    fs = Store(out).fs
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol
    check_root(out)
    if not is_local(fs) and not set(protocols) & set(con.list_filesystems()):
        con.register_filesystem(fs)
    con.execute(view_sql(out, views=views))


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
