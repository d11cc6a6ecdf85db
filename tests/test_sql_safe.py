"""`affectflow sql --safe`: the views over the output root work; nothing else can be read or written.

Each attack of issue 21 (case 10) is tried on a safe connection and must fail with one line,
while the same views return the same rows as an unrestricted connection.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from affectflow.flows.cli import main
from affectflow.tasks.query.views import connect
from affectflow.tasks.storage.store import Store
from tests.tablegen import write_video

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("safe-out")
    write_video(Store(str(root)), "clip", duration_s=12, seed=5)
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_the_views_return_the_same_rows_as_without_safe(out: Path) -> None:
    for view in ("videos", "emotions", "timeline_second", "video_summary", "speaker_summary"):
        query = f"SELECT * FROM {view} ORDER BY ALL"
        assert connect(str(out), safe=True).sql(query).fetchall() == connect(str(out)).sql(query).fetchall()


ATTACKS = {
    "copy to a file": "COPY (SELECT 1) TO '{tmp}/leak.csv'",
    "copy over a table file": "COPY (SELECT 1 AS x) TO 'affectflow://main/videos/video_id=clip/part-0.parquet'",
    "copy into the root": "COPY (SELECT 1) TO 'affectflow://main/new.csv'",
    "read the environment": "SELECT * FROM read_text('/proc/self/environ')",
    "read a file": "SELECT * FROM read_csv('/etc/passwd')",
    "list a directory": "SELECT * FROM glob('/etc/*')",
    "leave the root": "SELECT * FROM read_text('affectflow://main/../../etc/passwd')",
    "attach a database": "ATTACH '{tmp}/db.duckdb'",
    "turn access back on": "SET enable_external_access = true",
    "unlock": "SET lock_configuration = false",
    "more threads": "SET threads = 4",
    "install an extension": "INSTALL httpfs",
    "load an extension": "LOAD httpfs",
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_an_attack_fails_and_changes_nothing(out: Path, tmp_path: Path, attack: str) -> None:
    before = _files(out)
    con = connect(str(out), safe=True)
    with pytest.raises(duckdb.Error):
        con.sql(ATTACKS[attack].format(tmp=tmp_path)).fetchall()
    assert _files(out) == before
    assert list(tmp_path.iterdir()) == []
    assert con.execute("SELECT count(*) FROM videos").fetchone() == (1,)  # the views still work after it


def test_an_attached_root_is_readable_and_nothing_else(out: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_video(Store(str(other)), "other", duration_s=4, seed=1)
    con = connect(str(out), attach={"base": str(other)}, safe=True)
    assert con.sql("SELECT video_id FROM base.videos UNION ALL SELECT video_id FROM videos ORDER BY 1").fetchall() == [
        ("clip",),
        ("other",),
    ]
    with pytest.raises(duckdb.Error):
        con.sql("COPY (SELECT 1) TO 'affectflow://base/x.csv'").fetchall()
    assert not (other / "x.csv").exists()


def test_the_cli_refuses_with_one_line_and_the_usage_status(capsys, out: Path, tmp_path: Path) -> None:
    assert main(["sql", "--out", str(out), "--safe", f"COPY (SELECT 1) TO '{tmp_path}/leak.csv'"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Permission Error") and err.count("\n") == 1
    assert main(["sql", "--out", str(out), "--safe", "COPY (SELECT 1) TO 'affectflow://main/x.csv'"]) == 2
    err = capsys.readouterr().err
    assert "read-only" in err and err.count("\n") == 1
    assert main(["sql", "--out", str(out), "--safe", "--format", "csv", "SELECT count(*) AS n FROM videos"]) == 0
    assert capsys.readouterr().out == "n\n1\n"


def test_without_safe_the_connection_is_unrestricted(out: Path, tmp_path: Path) -> None:
    """The default is the user's own shell: the same COPY works (what --safe is for)."""
    connect(str(out)).execute(f"COPY (SELECT 1) TO '{tmp_path}/mine.csv'")
    assert (tmp_path / "mine.csv").exists()
