"""The store: exact schemas, atomic replacement, commit-last visibility, manifests."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.query import connect
from tasks.store import SCHEMAS, VIDEO_TABLES, Store, StoreError, to_table


def _turns(video_id: str, n: int) -> pa.Table:
    return to_table(
        "speaker_turns",
        [dict(video_id=video_id, speaker=f"S{i}", start=float(i), end=i + 0.5, model="m") for i in range(n)],
    )


def test_every_table_has_a_schema_with_video_or_run_key() -> None:
    assert set(SCHEMAS) == {"videos", "faces", "speaker_turns", "words", "emotions", "runs"}
    for name, schema in SCHEMAS.items():
        assert schema.field(0).name == ("run_id" if name == "runs" else "video_id")


def test_to_table_rejects_rows_that_do_not_fit_the_schema() -> None:
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        to_table("speaker_turns", [dict(video_id="v", speaker="S0", start="not a number", end=1.0)])


def test_write_puts_one_hive_file_per_video_and_reads_back_exact_schema(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    store.write("speaker_turns", "abc", _turns("abc", 3))
    path = tmp_path / "speaker_turns" / "video_id=abc" / "part-0.parquet"
    assert pq.read_table(path).schema == SCHEMAS["speaker_turns"]
    assert pq.read_table(path).num_rows == 3


def test_rewrite_replaces_the_file_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    store.write("speaker_turns", "abc", _turns("abc", 3))
    store.write("speaker_turns", "abc", _turns("abc", 1))
    partition = tmp_path / "speaker_turns" / "video_id=abc"
    assert os.listdir(partition) == ["part-0.parquet"]
    assert pq.read_table(partition / "part-0.parquet").num_rows == 1


def test_failed_write_keeps_the_previous_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(str(tmp_path))
    store.write("speaker_turns", "abc", _turns("abc", 2))

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StoreError, match="No space left"):
        store.write("speaker_turns", "abc", _turns("abc", 5))
    partition = tmp_path / "speaker_turns" / "video_id=abc"
    assert os.listdir(partition) == ["part-0.parquet"]  # the temp file is gone too
    assert pq.read_table(partition / "part-0.parquet").num_rows == 2


def test_rows_are_visible_only_once_the_videos_row_is_committed(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    store.write("speaker_turns", "abc", _turns("abc", 2))  # as if a crash came before the videos row
    assert connect(str(tmp_path)).execute("SELECT count(*) FROM speaker_turns").fetchone() == (0,)
    store.write_video("abc", {"speaker_turns": _turns("abc", 2)}, {"video_id": "abc", "status": "ok"})
    assert connect(str(tmp_path)).execute("SELECT count(*) FROM speaker_turns").fetchone() == (2,)


def test_failed_rewrite_of_a_video_leaves_its_previous_rows_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(str(tmp_path))
    words = to_table("words", [dict(video_id="abc", word="hi", start=0.0, end=0.2, model="m")])
    store.write_video("abc", {"speaker_turns": _turns("abc", 2), "words": words}, {"video_id": "abc", "status": "ok"})
    real_fsync, calls = os.fsync, []

    def disk_full_on_second_file(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:  # speaker_turns went up, words hits a full disk
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", disk_full_on_second_file)
    with pytest.raises(StoreError, match=r"\[Errno 28\] No space left on device"):
        store.write_video(
            "abc", {"speaker_turns": _turns("abc", 5), "words": words}, {"video_id": "abc", "status": "ok"}
        )
    con = connect(str(tmp_path))
    assert con.execute("SELECT count(*) FROM speaker_turns").fetchone() == (2,)  # the old rows, still committed
    assert con.execute("SELECT count(*) FROM words").fetchone() == (1,)
    leftovers = [p.name for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".parquet")]
    assert leftovers == []


def test_write_video_removes_tables_of_stages_that_did_not_run(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    store.write_video("abc", {"speaker_turns": _turns("abc", 2)}, {"video_id": "abc", "status": "ok"})
    store.write_video("abc", {}, {"video_id": "abc", "status": "ok"})
    con = connect(str(tmp_path))
    assert con.execute("SELECT count(*) FROM speaker_turns").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM videos").fetchone() == (1,)
    assert "speaker_turns" in VIDEO_TABLES


def test_views_exist_with_schema_columns_even_when_tables_are_empty(tmp_path: Path) -> None:
    con = connect(str(tmp_path))
    for name, schema in SCHEMAS.items():
        assert con.sql(f"SELECT * FROM {name}").columns == schema.names


def test_manifest_round_trip_and_missing(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    assert store.read_manifest("s3://b/x.mp4") is None
    store.write_manifest("s3://b/x.mp4", {"video_id": "v", "status": "ok"})
    assert store.read_manifest("s3://b/x.mp4") == {"status": "ok", "video_id": "v"}


def test_rewriting_a_video_removes_temporary_files_of_a_killed_write(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    partition = tmp_path / "speaker_turns" / "video_id=abc"
    partition.mkdir(parents=True)
    (partition / ".tmp-0123").write_bytes(b"half an upload")  # what SIGKILL mid-write leaves
    store.write_video("abc", {"speaker_turns": _turns("abc", 2)}, {"video_id": "abc", "status": "ok"})
    assert sorted(p.name for p in partition.iterdir()) == ["part-0.parquet"]
