"""Compaction: the same rows visible before, during and after; redone, deleted and busy videos stay right."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from affectflow.flows.cli import main
from affectflow.flows.video import is_finished
from affectflow.tasks.config import PipelineConfig
from affectflow.tasks.query.views import connect
from affectflow.tasks.storage import compaction, leases
from affectflow.tasks.storage.compaction import compact, loose_videos
from affectflow.tasks.storage.discover import SourceFile
from affectflow.tasks.storage.store import Store
from tests.tablegen import write_video

pytestmark = pytest.mark.unit

VIEWS = (
    "videos",
    "emotions",
    "words",
    "speaker_turns",
    "tracks",
    "timeline_minute",
    "video_summary",
    "speaker_summary",
)


def snapshot(out: Path) -> dict[str, list[tuple]]:
    """Every row of the main views, sorted (compaction must not change one of them)."""
    con = connect(str(out))
    return {view: sorted(map(repr, con.execute(f"SELECT * FROM {view}").fetchall())) for view in VIEWS}


def corpus(out: Path, n: int = 6) -> Store:
    store = Store(str(out))
    for k in range(n):
        write_video(store, f"v{k}", duration_s=20.0 + k, seed=k)
    return store


def emotion_rows(out: Path, video_id: str) -> int:
    return connect(str(out)).execute("SELECT count(*) FROM emotions WHERE video_id = ?", [video_id]).fetchone()[0]


def test_compaction_keeps_every_row_and_leaves_a_few_files(tmp_path: Path) -> None:
    store = corpus(tmp_path)
    before = snapshot(tmp_path)
    assert sum(len(rows) for rows in before.values()) > 1000

    report = compact(store, owner="test", batch_videos=4)  # two compactions: 4 + 2 videos

    assert report.videos == 6 and len(report.compactions) == 2
    assert snapshot(tmp_path) == before
    assert loose_videos(store) == []
    assert not list(tmp_path.glob("emotions/*")) and not list(tmp_path.glob("videos/*"))  # no empty folders left
    assert len(list(tmp_path.glob("_compacted/*/*/part-0.parquet"))) == 2 * 5  # videos + 4 tables, twice
    assert all(store.committed(f"v{k}") for k in range(6))
    assert compact(store, owner="test").videos == 0  # nothing loose: nothing to do


def test_a_video_redone_after_compaction_shows_its_new_rows_only_then_compacts_again(tmp_path: Path) -> None:
    store = corpus(tmp_path, 3)
    compact(store, owner="test")
    old = emotion_rows(tmp_path, "v1")
    write_video(store, "v1", duration_s=5.0, seed=99)  # redone: far fewer rows
    new = emotion_rows(tmp_path, "v1")
    assert 0 < new < old
    assert connect(str(tmp_path)).execute("SELECT count(*) FROM videos WHERE video_id = 'v1'").fetchone()[0] == 1
    before = snapshot(tmp_path)

    assert compact(store, owner="test").videos == 1  # only v1 was loose
    assert snapshot(tmp_path) == before  # the newer compaction wins over the older one
    assert emotion_rows(tmp_path, "v1") == new


def test_a_deleted_video_stays_deleted_after_compaction_until_it_is_written_again(tmp_path: Path) -> None:
    store = corpus(tmp_path, 3)
    compact(store, owner="test")
    store.delete_video("v2")
    assert emotion_rows(tmp_path, "v2") == 0
    assert not store.committed("v2")
    ids = {v for (v,) in connect(str(tmp_path)).execute("SELECT video_id FROM videos").fetchall()}
    assert ids == {"v0", "v1"}
    time.sleep(0.001)
    write_video(store, "v2", duration_s=7.0, seed=5)  # the same id back (same bytes at the same path)
    assert emotion_rows(tmp_path, "v2") > 0
    before = snapshot(tmp_path)
    compact(store, owner="test")  # its new compaction is newer than the tombstone
    assert snapshot(tmp_path) == before
    assert store.committed("v2")


def test_a_compaction_killed_before_its_videos_file_shows_nothing_twice_and_is_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = corpus(tmp_path, 4)
    before = snapshot(tmp_path)
    real = Store.write_document

    def crash_on_the_commit(self: Store, relative: str, data: bytes) -> str:
        if relative.startswith("_compacted/videos/"):
            raise KeyboardInterrupt("killed")
        return real(self, relative, data)

    monkeypatch.setattr(Store, "write_document", crash_on_the_commit)
    with pytest.raises(KeyboardInterrupt):
        compact(store, owner="test")
    monkeypatch.undo()
    assert list(tmp_path.glob("_compacted/emotions/*/part-0.parquet"))  # its data files were written
    assert snapshot(tmp_path) == before  # but nothing of them is visible
    assert len(loose_videos(store)) == 4

    report = compact(store, owner="test")
    assert report.removed_orphans == 4 and report.videos == 4
    assert snapshot(tmp_path) == before
    assert len(list(tmp_path.glob("_compacted/emotions/*/part-0.parquet"))) == 1


def test_a_video_a_run_holds_or_redoes_meanwhile_stays_loose_and_visible_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = corpus(tmp_path, 3)
    busy = leases.acquire(store, leases.video_key("file:///corpus/v0.mp4"), owner="a-run")
    assert busy is not None
    uri = connect(str(tmp_path)).execute("SELECT uri FROM videos WHERE video_id = 'v0'").fetchone()[0]
    assert uri == "file:///corpus/v0.mp4", "tablegen's URI scheme changed: update this test"
    real = compaction._write_compaction

    def redo_v1_meanwhile(*args: object) -> str:
        written = real(*args)  # type: ignore[arg-type]
        write_video(store, "v1", duration_s=4.0, seed=42)  # a run redid v1 after it was read
        return written

    monkeypatch.setattr(compaction, "_write_compaction", redo_v1_meanwhile)
    report = compact(store, owner="test")
    busy.release()

    assert (report.held, report.changed, report.videos) == (["v0"], ["v1"], 1)
    assert loose_videos(store) == ["v0", "v1"]
    con = connect(str(tmp_path))
    assert con.execute("SELECT video_id, count(*) FROM videos GROUP BY 1 ORDER BY 1").fetchall() == [
        ("v0", 1),
        ("v1", 1),
        ("v2", 1),
    ]
    redone = pq.read_table(tmp_path / "emotions" / "video_id=v1" / "part-0.parquet").num_rows
    assert emotion_rows(tmp_path, "v1") == redone < 20 * 5  # the redone rows (4 s), not the first ones (21 s)


def test_a_finished_video_is_still_finished_once_compacted(tmp_path: Path) -> None:
    store = corpus(tmp_path, 1)
    source = SourceFile(uri="file:///corpus/v0.mp4", size_bytes=10, version="1")
    config = PipelineConfig()
    store.write_manifest(
        source.uri,
        {"uri": source.uri, "size_bytes": 10, "version": "1", "video_id": "v0", "config_hash": config.hash()},
    )
    assert is_finished(store, source, config)
    compact(store, owner="test")
    assert is_finished(store, source, config)  # a re-run skips it: compaction is not a change


def test_the_cli_compacts_and_refuses_a_second_compaction_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus(tmp_path, 2)
    other = leases.acquire(Store(str(tmp_path)), compaction.COMPACTION_KEY, owner="compact-other")
    assert main(["compact", "--out", str(tmp_path)]) == 3
    assert "another compaction is running" in capsys.readouterr().err
    assert other is not None
    other.release()
    assert main(["compact", "--out", str(tmp_path)]) == 0
    assert "compacted 2 videos" in capsys.readouterr().out


def test_safe_mode_and_an_attached_root_read_compacted_rows_too(tmp_path: Path) -> None:
    compacted, loose = tmp_path / "compacted", tmp_path / "loose"
    store = corpus(compacted, 3)
    corpus(loose, 3)
    compact(store, owner="test")
    expected = snapshot(loose)
    con = connect(str(compacted), safe=True)
    assert sorted(map(repr, con.execute("SELECT * FROM emotions").fetchall())) == expected["emotions"]
    con = connect(str(loose), attach={"baseline": str(compacted)})
    columns = "video_id, name, duration_s, status"  # the two corpora were written at different times
    for schema_view, query in {
        "videos": f"SELECT {columns} FROM {{schema}}videos",
        "emotions": "SELECT * FROM {schema}emotions",
        "video_summary": "SELECT * FROM {schema}video_summary",
    }.items():
        mine = con.execute(query.format(schema="")).fetchall()
        theirs = con.execute(query.format(schema="baseline.")).fetchall()
        assert sorted(map(repr, theirs)) == sorted(map(repr, mine)), schema_view


def test_a_root_with_glob_characters_compacts_its_own_videos_only(tmp_path: Path) -> None:
    mine, beside = tmp_path / "out[1]", tmp_path / "out1"  # `out[1]` as a glob matches `out1`
    store = corpus(mine, 2)
    corpus(beside, 3)
    before = snapshot(mine)
    report = compact(store, owner="test")
    assert report.videos == 2 and loose_videos(store) == []
    assert snapshot(mine) == before
    assert len(loose_videos(Store(str(beside)))) == 3 and not (beside / "_compacted").exists()
    store.delete_video("v0")
    assert {v for (v,) in connect(str(mine)).execute("SELECT video_id FROM videos").fetchall()} == {"v1"}
