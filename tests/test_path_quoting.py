"""Output roots whose names hold glob or URL characters read their own rows, never a look-alike's.

DuckDB reads the tables through globs (``<out>/<table>/*/*.parquet``): unescaped, ``out[1]``
matches ``out1``, ``out*`` matches ``outX``, ``o?t`` matches ``oXt``. Each root below has
such a decoy next to it, holding another video.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from affectflow.flows.cli import main
from affectflow.tasks.query.views import connect
from affectflow.tasks.storage.fs import glob_escape
from affectflow.tasks.storage.store import Store
from tests.tablegen import write_video

pytestmark = pytest.mark.unit

# name of the output root -> a sibling its unescaped glob would match instead (or as well)
ROOTS = {
    "out[1]": "out1",
    "out*": "outX",
    "o?t": "oXt",
    "a]b[c": "a]bc",
    "p#q": None,
    "r%20s": None,
    "w x": None,
    "it's": None,
}


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("quoting")
    for name, decoy in ROOTS.items():
        write_video(Store(str(base / name)), "mine", duration_s=4, seed=1)
        if decoy:
            write_video(Store(str(base / decoy)), "decoy", duration_s=4, seed=2)
    return base


@pytest.mark.parametrize("name", list(ROOTS))
@pytest.mark.parametrize("safe", [False, True], ids=["plain", "safe"])
def test_sql_reads_its_own_root_only(capsys, roots: Path, name: str, safe: bool) -> None:
    out = str(roots / name)
    query = "SELECT DISTINCT video_id FROM emotions UNION ALL SELECT video_id FROM videos"
    assert main(["sql", "--out", out, "--format", "csv", *(["--safe"] if safe else []), query]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["video_id"] for row in rows] == ["mine", "mine"]


def test_an_empty_root_with_a_look_alike_reads_no_rows(tmp_path: Path) -> None:
    write_video(Store(str(tmp_path / "run1")), "decoy", duration_s=4, seed=2)
    (tmp_path / "run[1]").mkdir()
    con = connect(str(tmp_path / "run[1]"))
    assert con.execute("SELECT count(*) FROM videos").fetchone() == (0,)  # not run1's video


def test_an_attached_root_is_escaped_too(capsys, roots: Path) -> None:
    query = "SELECT video_id FROM other.videos"
    assert main(["sql", "--out", str(roots / "p#q"), "--attach", f"other={roots / 'out[1]'}", query]) == 0
    printed = capsys.readouterr().out
    assert "mine" in printed and "decoy" not in printed


def test_glob_escape_brackets_every_glob_character() -> None:
    assert glob_escape("/data/out[1]/a*b?c]") == "/data/out[[]1[]]/a[*]b[?]c[]]"
    assert glob_escape("s3://bucket/plain/path") == "s3://bucket/plain/path"
