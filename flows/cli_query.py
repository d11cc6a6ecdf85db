"""`affectflow sql`: DuckDB over the output tables."""

from __future__ import annotations

import argparse
import csv
import json
import sys

from tasks.query import connect


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    sql = subparsers.add_parser(
        "sql",
        help="query the output tables with DuckDB SQL",
        description="Run SQL over the views videos, faces, speaker_turns, words, emotions, runs.",
    )
    sql.add_argument("query", nargs="?", help="SQL text (or use -f FILE)")
    sql.add_argument("--out", required=True, help="output root of a run (local dir or s3://bucket/prefix)")
    sql.add_argument("-f", "--file", help="read the SQL from this file")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sql.set_defaults(func=run_sql)


def run_sql(args: argparse.Namespace) -> int:
    text = open(args.file).read() if args.file else args.query
    if not text:
        print("error: give a query or -f FILE", file=sys.stderr)
        return 2
    relation = connect(args.out).sql(text)
    if relation is None:
        return 0
    if args.format == "table":
        relation.show(max_rows=100, max_width=200)
        return 0
    columns = relation.columns
    rows = relation.fetchall()
    if args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        json.dump([dict(zip(columns, row)) for row in rows], sys.stdout, default=str, indent=1)
        print()
    return 0
