"""The store: exact schemas, atomic replacement, commit-last visibility, removal, manifests, error classes."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.local import LocalFileSystem

from affectflow.tasks.query.views import connect
from affectflow.tasks.records import Emotions, TrackLink
from affectflow.tasks.storage.store import Store, StoreError, temporary_path
from affectflow.tasks.storage.tables import SCHEMAS, VIDEO_TABLES, emotions_table, to_table, tracks_table

pytestmark = pytest.mark.unit


def _turns(video_id: str, n: int) -> pa.Table:
    return to_table(
        "speaker_turns",
        [dict(video_id=video_id, speaker=f"S{i}", start=float(i), end=i + 0.5, model="m") for i in range(n)],
    )


def test_every_table_has_a_schema_with_video_or_run_key() -> None:
    from affectflow.tasks.storage.tables import PEOPLE_TABLES

    tables = {"videos", "faces", "tracks", "speaker_turns", "words", "emotions", "identities", "runs"}
    assert set(SCHEMAS) == tables | set(PEOPLE_TABLES)
    for name, schema in SCHEMAS.items():
        if name in PEOPLE_TABLES:
            assert schema.field(-1).name == "link_id"  # a people link's snapshot: its Hive partition
            continue
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


def test_tracks_and_speaking_rows_come_from_the_records_and_go_when_the_stage_did_not_run(tmp_path: Path) -> None:
    links = [
        TrackLink(0, 0.0, 9.8, 50, "SPEAKER_00", 0.8, 4.2, "mouth-activity"),
        TrackLink(1, 2.0, 3.0, 6, None, None, 0.0, "no voice"),
    ]
    n = 3
    emotions = Emotions("m", np.zeros(n, np.int32), np.arange(n), np.arange(n) / 5, np.zeros(n), np.zeros(n), ["A"] * n)
    store = Store(str(tmp_path))
    tables = {"tracks": tracks_table("abc", links), "emotions": emotions_table("abc", emotions)}
    store.write_video("abc", tables, {"video_id": "abc", "status": "ok"})
    con = connect(str(tmp_path))
    rows = con.execute("SELECT * EXCLUDE (video_id) FROM tracks ORDER BY track_id").fetchall()
    assert rows == [
        (0, 0.0, 9.8, 50, "SPEAKER_00", pytest.approx(0.8), 4.2, "mouth-activity"),
        (1, 2.0, 3.0, 6, None, None, 0.0, "no voice"),
    ]
    assert con.execute("SELECT list(speaking) FROM emotions").fetchone() == ([None] * n,)  # not determined
    emotions.speaking = np.array([True, False, True])
    store.write_video("abc", {"emotions": emotions_table("abc", emotions)}, {"video_id": "abc", "status": "ok"})
    con = connect(str(tmp_path))
    assert con.execute("SELECT list(speaking ORDER BY t) FROM emotions").fetchone() == ([True, False, True],)
    assert con.execute("SELECT count(*) FROM tracks").fetchone() == (0,)  # who-is-speaking did not run this time
    assert not store.has_rows("tracks", "abc")


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


def test_a_run_removes_what_killed_writers_left_in_the_roots_own_folders_and_nothing_in_flight(
    tmp_path: Path,
) -> None:
    store = Store(str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here, elsewhere = socket.gethostname(), "another-host.example"
    left = {  # what SIGKILL between a lease's write and its link, or mid-manifest, leaves
        f"_leases/.tmp-{'a' * 32}.{dead.stdout.strip()}@{here}",
        f"_manifest/.tmp-{'b' * 32}.{dead.stdout.strip()}@{here}",
        f"runs/run_id=r1/.tmp-{'c' * 32}.{dead.stdout.strip()}@{here}",
    }
    kept = {
        f"_leases/.tmp-{'d' * 32}.{os.getpid()}@{here}",  # a live writer's, mid-write
        f"_manifest/.tmp-{'e' * 32}.{dead.stdout.strip()}@{elsewhere}",  # a pid of another host means nothing
        f"faces/video_id=v1/.tmp-{'f' * 32}.{dead.stdout.strip()}@{here}",  # a video's own: cleaned under its lease
    }
    for relative in left | kept:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"half a file")
    assert store.remove_abandoned_temporaries() == len(left)
    assert _files(tmp_path) == kept
    assert temporary_path(str(tmp_path)).endswith(f".{os.getpid()}@{here}")  # what the store's writers name


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _two_videos(root: Path) -> Store:
    """Videos abc and xyz committed with a row in every table, plus a manifest entry and a run row."""
    store = Store(str(root))
    for video_id in ("abc", "xyz"):
        tables = {name: to_table(name, [dict(video_id=video_id)]) for name in VIDEO_TABLES}
        store.write_video(video_id, tables, {"video_id": video_id, "status": "ok"})
        store.write_manifest(f"file:///corpus/{video_id}.mp4", {"video_id": video_id, "status": "ok"})
    store.write("runs", "run-1", to_table("runs", [dict(run_id="run-1")]))
    return store


def test_uncommit_hides_a_video_by_removing_only_its_videos_row(tmp_path: Path) -> None:
    store = _two_videos(tmp_path)
    before = _files(tmp_path)
    store.uncommit("abc")
    assert before - _files(tmp_path) == {"videos/video_id=abc/part-0.parquet"}  # nothing else moves
    assert not store.committed("abc") and store.committed("xyz") and store.has_rows("speaker_turns", "abc")
    con = connect(str(tmp_path))
    assert con.execute("SELECT DISTINCT video_id FROM speaker_turns").fetchall() == [("xyz",)]
    store.uncommit("abc")  # already hidden: nothing to do
    store.uncommit("never-seen")
    assert _files(tmp_path) == before - {"videos/video_id=abc/part-0.parquet"}


def test_delete_video_removes_every_table_of_that_video_and_nothing_else(tmp_path: Path) -> None:
    store = _two_videos(tmp_path)
    before = _files(tmp_path)
    store.delete_video("abc")
    gone = {f"{name}/video_id=abc/part-0.parquet" for name in ("videos", *VIDEO_TABLES)}
    assert before - _files(tmp_path) == gone and _files(tmp_path) <= before
    assert store.read_manifest("file:///corpus/abc.mp4") == {"status": "ok", "video_id": "abc"}  # the flow's job
    assert store.has_files("runs") and store.committed("xyz")
    con = connect(str(tmp_path))
    for name in ("videos", *VIDEO_TABLES):
        assert con.execute(f"SELECT DISTINCT video_id FROM {name}").fetchall() == [("xyz",)]
    store.delete_video("abc")  # twice: nothing left to remove, no error


def test_a_removal_that_fails_is_a_store_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _two_videos(tmp_path)

    def unreachable(self: object, path: str, *args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(LocalFileSystem, "rm_file", unreachable)
    with pytest.raises(StoreError, match=r"cannot remove .*videos/video_id=abc.*\[Errno 5\]") as raised:
        store.delete_video("abc")
    assert raised.value.transient


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), False),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), False),
        (OSError(errno.EROFS, "Read-only file system"), False),
        (OSError(errno.EACCES, "Permission denied"), False),
        (PermissionError("Access Denied"), False),  # what s3fs raises for a 403, without an errno
        (OSError(errno.ENAMETOOLONG, "File name too long"), False),
        (OSError(errno.EIO, "Input/output error"), True),
        (OSError(errno.ETIMEDOUT, "Connection timed out"), True),
        (OSError(errno.ECONNRESET, "Connection reset by peer"), True),
        (OSError("Service unavailable"), True),  # no errno (an S3 5xx): may pass
    ],
)
def test_errors_that_may_pass_are_transient_and_the_rest_permanent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, transient: bool
) -> None:
    store = Store(str(tmp_path))

    def failing(fd: int) -> None:
        raise error

    monkeypatch.setattr(os, "fsync", failing)  # where the operating system reports a failed write
    with pytest.raises(StoreError, match="cannot write") as raised:
        store.write("speaker_turns", "abc", _turns("abc", 1))
    assert raised.value.transient is transient
    assert _files(tmp_path) == set()  # nothing half-written either way


def test_the_manifest_is_written_before_the_commit_so_a_committed_video_always_has_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(str(tmp_path))
    seen_at_commit: list[dict | None] = []
    real_move = Store._move

    def move(self: Store, source: str, target: str) -> None:
        if target == self.file("videos", "abc"):
            seen_at_commit.append(self.read_manifest("file:///a.mp4"))
        real_move(self, source, target)

    monkeypatch.setattr(Store, "_move", move)
    entry = {"uri": "file:///a.mp4", "video_id": "abc", "status": "ok"}
    store.write_video(
        "abc", {"speaker_turns": _turns("abc", 2)}, {"video_id": "abc", "status": "ok"}, ("file:///a.mp4", entry)
    )
    assert seen_at_commit == [entry]  # killed right after the commit, the video still has its manifest
    assert store.committed("abc")
