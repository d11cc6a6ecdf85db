"""DuckDB over the store: one connection with a view per table (sql/views.sql).

Works on local and ``s3://`` output roots alike: remote filesystems are registered
with DuckDB through fsspec, because DuckDB's own httpfs extension would have to be
downloaded.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa

from tasks.fs import is_local
from tasks.store import SCHEMAS, Store

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def connect(out: str, *, views: Path = SQL_DIR / "views.sql") -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the views of ``views`` over the tables under ``out``."""
    store = Store(out)
    con = duckdb.connect()
    if not is_local(store.fs):
        con.register_filesystem(store.fs)
    sources = {}
    for table, schema in SCHEMAS.items():
        if store.has_files(table):
            sources[table] = (
                f"read_parquet('{_quote(store.url(table))}', hive_partitioning = true, union_by_name = true)"
            )
        else:
            con.register(f"empty_{table}", pa.table({f.name: pa.array([], f.type) for f in schema}))
            sources[table] = f"empty_{table}"
    sql = re.sub(r"\{(\w+)\}", lambda m: sources.get(m.group(1), m.group(0)), views.read_text())
    con.execute(sql)
    return con


def _quote(text: str) -> str:
    return text.replace("'", "''")
