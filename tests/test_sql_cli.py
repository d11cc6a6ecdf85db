"""`affectflow sql`: parameters, formats, files, the statement shell and its instructions."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from affectflow.flows.cli import main
from affectflow.tasks.storage.store import Store
from tests.tablegen import write_video

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("out")
    write_video(Store(str(root)), "clip", duration_s=12, seed=5)
    return str(root)


def test_param_is_read_with_getvariable_and_formats_as_csv(capsys, out: str) -> None:
    sql = "SELECT video_id, count(*) AS n FROM emotions WHERE video_id = getvariable('v') GROUP BY 1"
    assert main(["sql", "--out", out, "--param", "v=clip", "--format", "csv", sql]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header == "video_id,n" and row.startswith("clip,")


def test_file_with_several_statements_shows_the_last(capsys, tmp_path: Path, out: str) -> None:
    script = tmp_path / "q.sql"
    script.write_text(
        "SET VARIABLE n = coalesce(getvariable('n'), '2');\nSELECT range AS i FROM range(getvariable('n')::INT);\n"
    )
    assert main(["sql", "--out", out, "-f", str(script), "--param", "n=3", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_table_format_shows_every_column_when_piped(capsys, out: str) -> None:
    assert main(["sql", "--out", out, "SELECT * FROM video_summary"]) == 0
    text = capsys.readouterr().out
    assert "calm_s" in text and "clip" in text


def test_a_malformed_param_is_a_one_line_usage_error(capsys, out: str) -> None:
    assert main(["sql", "--out", out, "--param", "video_id", "SELECT 1"]) == 2
    err = capsys.readouterr().err
    assert "NAME=VALUE" in err and err.count("\n") == 1


def test_shell_runs_statements_piped_on_stdin(capsys, monkeypatch, out: str) -> None:
    monkeypatch.setattr(
        "sys.stdin", io.StringIO("SELECT 41 + 1 AS answer;\nSELECT count(*) AS n\n  FROM videos;\n.views\n")
    )
    assert main(["sql", "--out", out, "--format", "csv"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[:4] == ["answer", "42", "n", "1"]
    assert "timeline_minute" in printed and "emotion_timeline(bin_s)" in printed


def test_shell_stops_at_the_first_error_when_piped(capsys, monkeypatch, out: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("SELECT nope;\nSELECT 1;\n"))
    assert main(["sql", "--out", out, "--format", "csv"]) == 2  # a query error: the usage status
    printed = capsys.readouterr().out
    assert "error:" in printed and printed.count("\n") == 1  # one line, and SELECT 1 never ran


def test_no_query_and_no_input_prints_how_to_attach_the_views(capsys, monkeypatch, out: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["sql", "--out", out]) == 0
    text = capsys.readouterr().out
    assert (
        "--print-views" in text
        and "duckdb -init" in text
        and "from affectflow.tasks.query.views import connect" in text
    )
    assert "speaker_summary" in text


def test_print_views_gives_a_script_for_the_duckdb_cli(capsys, out: str) -> None:
    import duckdb

    assert main(["sql", "--out", out, "--print-views"]) == 0
    con = duckdb.connect()
    con.execute(capsys.readouterr().out)
    assert con.execute("SELECT count(*) FROM video_summary").fetchone() == (1,)


def test_a_syntax_error_is_a_one_line_usage_error(capsys, out: str) -> None:
    assert main(["sql", "--out", out, "SELEC 1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Parser Error: syntax error") and err.count("\n") == 1


def test_csv_lines_end_in_lf_only(capsys, out: str) -> None:
    assert main(["sql", "--out", out, "--format", "csv", "SELECT video_id FROM videos"]) == 0
    printed = capsys.readouterr().out
    assert printed == "video_id\nclip\n"  # `vid=$(... | tail -1)` must not end in \r


@pytest.mark.parametrize("command", [["sql", "SELECT 1"], ["plot", "clip"]])
def test_an_out_that_is_not_an_output_root_is_refused(capsys, tmp_path: Path, command: list[str]) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not tables")
    elsewhere = tmp_path / "photos"
    (elsewhere / "2024").mkdir(parents=True)
    for out in (a_file, elsewhere, tmp_path / "typo"):
        verb, *rest = command
        assert main([verb, "--out", str(out), *rest]) == 3
        err = capsys.readouterr().err
        assert "give the --out folder or URL of a run" in err and err.count("\n") == 1
