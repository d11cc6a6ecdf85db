"""`affectflow sql` (DuckDB over the output tables) and `affectflow plot` (timeline PNG/HTML).

DuckDB, fsspec and the views are imported by the commands that use them, not with the
module: `affectflow --help` reads this module's ``COMMANDS`` without them.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import re
import shutil
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from affectflow.flows.parameters import UsageError

if TYPE_CHECKING:
    import duckdb

PROMPT, CONTINUE = "affectflow> ", "       ...> "
QUIT = {".quit", ".exit", "\\q", "quit", "exit"}
COMMANDS = {  # each command's line in `affectflow --help`
    "sql": "query the output tables with DuckDB SQL (a shell when no query is given)",
    "plot": "draw one video's valence/arousal timeline with speaker turns and words",
}


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    _add_sql(subparsers)
    _add_plot(subparsers)


def _add_sql(subparsers: argparse._SubParsersAction) -> None:
    sql = subparsers.add_parser(
        "sql",
        help=COMMANDS["sql"],
        description=(
            "Run SQL over the views of sql/views.sql: the tables (videos, faces, speaker_turns, words, "
            "emotions, runs) and derived views (timeline_second, timeline_minute, emotion_timeline(bin_s), "
            "speech_segments, utterances, emotion_speech, emotion_summary, video_summary, track_summary, "
            "speaker_summary). With no query and no -f, reads statements from a shell (a terminal) or stdin."
        ),
        epilog="Examples: sql/examples/*.sql, e.g. -f sql/examples/minute_timeline.sql --param video_id=ID",
    )
    sql.add_argument("query", nargs="?", help="SQL text (or use -f FILE)")
    sql.add_argument("--out", required=True, help="output root of a run (local dir or s3://bucket/prefix)")
    sql.add_argument("-f", "--file", help="read the SQL from this file (several statements: the last one is shown)")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sql.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a query parameter, read in SQL as getvariable('NAME') (VARCHAR; repeatable)",
    )
    sql.add_argument(
        "--attach",
        action="append",
        default=[],
        metavar="SCHEMA=OUT",
        help="also expose the views of another output root as SCHEMA.view (e.g. baseline=old-out)",
    )
    sql.add_argument("--print-views", action="store_true", help="print the views as SQL for the DuckDB CLI and exit")
    sql.add_argument(
        "--safe",
        action="store_true",
        help="for SQL you did not write: read the output roots only; no other file, bucket, COPY, ATTACH or SET "
        "that undoes it (docs/sql.md)",
    )
    sql.set_defaults(func=run_sql)


def _add_plot(subparsers: argparse._SubParsersAction) -> None:
    plot = subparsers.add_parser(
        "plot",
        help=COMMANDS["plot"],
        description=(
            "Write a PNG (and optionally a self-contained HTML report) of valence and arousal over time per "
            "face track, speaker turns as coloured bands and the words along the time axis. Long videos are "
            "drawn as binned means with their min-max range."
        ),
    )
    plot.add_argument(
        "video_id", help='the video (list them: affectflow sql --out OUT "SELECT video_id, name FROM videos")'
    )
    plot.add_argument("--out", required=True, help="output root of a run (local dir or s3://bucket/prefix)")
    plot.add_argument("--png", help="where to write the PNG (default ./timeline-VIDEO_ID.png)")
    plot.add_argument("--html", help="also write an HTML report (plot, per-speaker summary, transcript) here")
    plot.set_defaults(func=run_plot)


def run_sql(args: argparse.Namespace) -> int:
    import duckdb

    from affectflow.tasks.query import views

    text = _read(args.file) if args.file else args.query
    for root in [args.out, *_attached(args.attach).values()]:
        require_output_root(root)
    if args.print_views:
        print(views.view_sql(args.out))
        return 0
    try:
        con = views.connect(
            args.out, attach=_attached(args.attach), params=views.parse_params(args.param), safe=args.safe
        )
    except views.QueryError as err:
        raise QueryError(str(err)) from None
    if text:
        try:
            relation = con.sql(text)
            show(relation, args.format, sys.stdout)
        except duckdb.CatalogException as err:
            raise QueryError(f"{_first_line(err)} (the views: {', '.join(view_names(con))})") from err
        except duckdb.BinderException as err:
            raise QueryError(f"{_first_line(err)} (a view's columns: DESCRIBE view_name; docs/sql.md)") from err
        except duckdb.IOException:
            raise  # reading the output root failed: nothing could run (exit 3)
        except duckdb.Error as err:  # syntax, a refused file in --safe, a bad cast: the query's fault
            raise QueryError(query_error_line(err)) from err
        return 0
    return shell(con, sys.stdin, sys.stdout, args.format, out=args.out)


def _attached(pairs: list[str]) -> dict[str, str]:
    from affectflow.tasks.query.views import QueryError as SetupError
    from affectflow.tasks.query.views import parse_params

    try:
        return parse_params(pairs)
    except SetupError as err:
        raise QueryError(str(err)) from None


def query_error_line(err: Exception) -> str:
    """One line for a failed statement; a Python error from a filesystem (a refused write) is its last line."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("Traceback"):
        raised = [line for line in lines if re.match(r"\w+(Error|Exception):", line)]
        return raised[-1] if raised else lines[-1]
    return lines[0] if lines else type(err).__name__


def run_plot(args: argparse.Namespace) -> int:
    from affectflow.tasks.query.plots import plot_timeline

    require_output_root(args.out)
    png = args.png or f"timeline-{args.video_id}.png"
    print(plot_timeline(args.out, args.video_id, png, html_path=args.html))
    if args.html:
        print(args.html)
    return 0


class QueryError(UsageError):
    """A query (or its parameters) that cannot run as written: exit status 2."""


def require_output_root(out: str) -> None:
    """An --out that is not a run's output (nothing there, a file, a folder of something else): say so.

    An output root is a folder holding one of the tables or the manifest; an --out that
    holds nothing is a typo more often than an empty run.
    """
    import fsspec

    from affectflow.tasks.storage.fs import check_root
    from affectflow.tasks.storage.tables import SCHEMAS

    check_root(out)  # on an object store, first: credentials, bucket and endpoint, each in one line
    fs, path = fsspec.core.url_to_fs(out)
    marks = {*SCHEMAS, "_manifest"}
    names = {entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False)} if fs.isdir(path) else set()
    if not names & marks:
        what = "a file" if fs.isfile(path) else "no affectflow output"
        raise FileNotFoundError(f"{what} at {out}: give the --out folder or URL of a run")


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0]


def show(relation: duckdb.DuckDBPyRelation | None, fmt: str, stream: TextIO) -> None:
    """Print a result as a table (first 100 rows), CSV or JSON (all rows)."""
    if relation is None:  # a statement without a result (SET, CREATE)
        return
    if fmt == "table":
        width = shutil.get_terminal_size().columns if stream.isatty() else 10_000
        with contextlib.redirect_stdout(stream):  # show() prints; make it print to `stream`
            relation.show(max_width=width, max_rows=100, max_col_width=80, null_value="NULL")
        return
    columns, rows = relation.columns, relation.fetchall()
    if fmt == "csv":
        writer = csv.writer(stream, lineterminator="\n")  # LF: `$(affectflow sql … | tail -1)` must not end in \r
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        json.dump([dict(zip(columns, row, strict=True)) for row in rows], stream, default=str, indent=1)
        stream.write("\n")


def shell(con: duckdb.DuckDBPyConnection, stdin: TextIO, stdout: TextIO, fmt: str, *, out: str) -> int:
    """Run statements from a terminal (with prompts and readline history) or from piped stdin.

    Piped statements stop at the first error (exit status 2, a query error); at a terminal errors are
    printed and the shell goes on. Empty piped input prints how to get at the views.
    """
    import duckdb

    interactive = stdin.isatty()
    if interactive:
        _enable_readline()
        stdout.write(f"DuckDB on {out}: {', '.join(view_names(con))}.\nEnd statements with ';', .quit to leave.\n")
    ran = False
    for statement in _statements(stdin, stdout if interactive else None):
        ran = True
        if statement in QUIT:
            break
        if statement in (".views", ".tables"):
            stdout.write("\n".join(view_names(con)) + "\n")
            continue
        try:
            for part in con.extract_statements(statement):
                show(con.sql(part.query), fmt, stdout)
        except duckdb.Error as err:
            stdout.write(f"error: {query_error_line(err)}\n")
            if not interactive:
                return UsageError.exit_status
    if not ran and not interactive:
        stdout.write(attach_instructions(out, view_names(con)))
    return 0


def _statements(stdin: TextIO, prompt_to: TextIO | None) -> Iterator[str]:
    """Statements ending in ';' (or a dot command on its own line)."""
    buffer: list[str] = []
    while True:
        line = _readline(stdin, prompt_to, CONTINUE if buffer else PROMPT)
        if line is None:
            break
        stripped = line.strip()
        if not buffer and (stripped.startswith(".") or stripped in QUIT):
            yield stripped
            continue
        if stripped:
            buffer.append(line.rstrip("\n"))
        if stripped.endswith(";"):
            yield "\n".join(buffer)
            buffer = []
    if buffer and "\n".join(buffer).strip():
        yield "\n".join(buffer)


def _readline(stdin: TextIO, prompt_to: TextIO | None, prompt: str) -> str | None:
    if prompt_to is None:
        line = stdin.readline()
        return line if line else None
    try:
        return input(prompt)  # readline editing and history at a terminal
    except EOFError:
        prompt_to.write("\n")
        return None


def _enable_readline() -> None:
    with contextlib.suppress(ImportError):  # not on every platform
        import readline  # noqa: F401 - importing it gives input() line editing and history


def view_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The views and table macros a user can query, by schema."""
    rows = con.execute(
        """
        SELECT CASE WHEN schema_name = 'main' THEN '' ELSE schema_name || '.' END || view_name
        FROM duckdb_views() WHERE NOT internal AND NOT temporary
        UNION ALL
        SELECT DISTINCT CASE WHEN schema_name = 'main' THEN '' ELSE schema_name || '.' END || function_name
               || '(' || array_to_string(parameters, ', ') || ')'
        FROM duckdb_functions() WHERE function_type IN ('macro', 'table_macro') AND NOT internal
        """
    ).fetchall()
    return sorted(name for (name,) in rows)


def attach_instructions(out: str, views: list[str]) -> str:
    return f"""No query given, and stdin is not a terminal. Ways to query {out}:
  one query:      affectflow sql --out {out} "SELECT * FROM video_summary"
  an example:     affectflow sql --out {out} -f sql/examples/minute_timeline.sql --param video_id=ID
  from stdin:     echo "FROM speaker_summary;" | affectflow sql --out {out}
  a shell:        run `affectflow sql --out {out}` in a terminal
  DuckDB CLI:     affectflow sql --out {out} --print-views > views.sql && duckdb -init views.sql
                  (s3:// roots need DuckDB's httpfs extension there)
  Python:         from affectflow.tasks.query.views import connect
                  con = connect("{out}", params={{"video_id": "ID"}}); con.sql("FROM timeline_minute").show()
Views and macros: {", ".join(views)}
"""


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()
