"""Compaction: merge finished videos' per-video files into a few large files, beside a running run.

Why: SQL over per-video files pays per file (a LIST entry, a footer read, a row-group scan
set-up), so at 50,000 short videos a query over a handful of rows costs tens of seconds
(benchmarks/bench_sql.py). One compaction turns N videos × 7 files into 7 files sorted by
``video_id`` (row groups of ``ROW_GROUP_ROWS`` rows: a one-video query reads one or two).

Each round, for a batch of committed videos (the store's visibility rules are in store.py):

1. read each video's ``videos`` file (kept as bytes) and its tables, optimistically: the
   ``videos`` file again after the tables, and the read counts only if it did not change;
2. write ``<out>/_compacted/<table>/compaction=<id>/part-0.parquet`` for every table, the
   ``videos`` file last: until it exists the new files are invisible;
3. drop: under each video's lease, its loose ``videos`` file is removed only if it is still
   byte for byte what step 1 read (a run that redid the video meanwhile keeps its new rows,
   which win over the compacted ones), then its loose tables; a video a run holds is left
   loose for a later compaction.

A crash at any point leaves every video visible exactly once: before step 2 ends the loose
rows are visible; after, a video whose loose ``videos`` file is gone shows its compacted
rows. Only one compaction runs on a root at a time (the ``compaction`` lease); it also
removes what a crashed compaction left (data files of a compaction without ``videos``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from affectflow.tasks.storage import leases
from affectflow.tasks.storage.store import COMPACTED, Store, _parquet_bytes, new_compaction_id
from affectflow.tasks.storage.tables import SCHEMAS, VIDEO_TABLES

READERS = 8  # threads reading and dropping videos' files
BATCH_VIDEOS = 5000  # videos per compaction file: bounds memory (≈ 150 MB of Arrow at 150 emotion rows each)
ROW_GROUP_ROWS = 64 * 1024  # a one-video query reads the row groups whose video_id range holds it
COMPACTION_KEY = "compaction"
log = logging.getLogger("affectflow")

Progress = Callable[[int, int], None]  # (videos done, videos to do)


@dataclass
class CompactionReport:
    """What one ``compact`` did; ``held`` videos were busy in a run and stay loose for now."""

    compactions: list[str] = field(default_factory=list)
    videos: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # redone by a run while being compacted: left loose
    removed_orphans: int = 0


@dataclass
class _Read:
    video_id: str
    uri: str  # its source: runs lease a video by its URI
    videos_bytes: bytes
    tables: dict[str, pa.Table]


def compact(
    store: Store, *, owner: str, batch_videos: int = BATCH_VIDEOS, progress: Progress | None = None
) -> CompactionReport:
    """Compact every committed loose video of ``store`` (see the module docstring); raises ``LeaseHeld``
    when another compaction is running on this root."""
    report = CompactionReport()
    with leases.held(store, COMPACTION_KEY, owner=owner):
        report.removed_orphans = _remove_orphans(store)
        loose = loose_videos(store)
        for start in range(0, len(loose), batch_videos):
            batch = loose[start : start + batch_videos]
            with ThreadPoolExecutor(READERS) as pool:  # small files: the time is in round trips, not bytes
                found = list(pool.map(lambda video_id: _read_video(store, video_id), batch))
                read = [item for item in found if item is not None]
                if read:
                    report.compactions.append(_write_compaction(store, read, report))
                    dropped = pool.map(lambda item: _drop_loose(store, item, owner, report), read)
                    report.videos += sum(dropped)
            if progress is not None:
                progress(min(start + batch_videos, len(loose)), len(loose))
    return report


def loose_videos(store: Store) -> list[str]:
    """The ids of videos committed in the per-video layout (a ``videos`` file of their own)."""
    paths = store.glob("videos/video_id=*/part-0.parquet")
    return sorted(path.rsplit("/", 2)[-2].removeprefix("video_id=") for path in paths)


def _read_video(store: Store, video_id: str) -> _Read | None:
    """A committed video's ``videos`` bytes and tables, read without its lease (a run may be redoing it).

    Optimistic: the ``videos`` file is read before and after the tables, and the read counts
    only if both are the same bytes. A run redoing the video removes that file before it moves
    any new table in and writes a different one (new times) last, so tables read while a run
    rewrote them are never taken as the committed ones.
    """
    fs = store.fs
    path = store.file("videos", video_id)
    try:
        videos_bytes = fs.cat_file(path)
        tables = {
            name: _parquet(fs.cat_file(store.file(name, video_id))).cast(SCHEMAS[name])
            for name in VIDEO_TABLES
            if fs.exists(store.file(name, video_id))
        }
        unchanged = fs.cat_file(path) == videos_bytes
    except FileNotFoundError:
        return None  # uncommitted meanwhile (redone or deleted): nothing to compact this time
    if not unchanged:
        return None
    uri = _parquet(videos_bytes, ["uri"]).column("uri")[0].as_py()
    return _Read(video_id, uri, videos_bytes, tables)


def _write_compaction(store: Store, read: Sequence[_Read], report: CompactionReport) -> str:
    compaction = new_compaction_id()
    for name in VIDEO_TABLES:
        parts = [item.tables[name] for item in read if name in item.tables]
        if parts:
            table = _sorted(pa.concat_tables(parts))
            store.write_document(_file(name, compaction), _parquet_bytes(table, SCHEMAS[name], ROW_GROUP_ROWS))
            report.rows[name] = report.rows.get(name, 0) + table.num_rows
    videos = pa.concat_tables(
        [pq.read_table(pa.BufferReader(item.videos_bytes), schema=SCHEMAS["videos"]) for item in read]
    )
    store.write_document(_file("videos", compaction), _parquet_bytes(_sorted(videos), SCHEMAS["videos"]))  # the commit
    log.info("compaction %s: %d videos", compaction, len(read))
    return compaction


def _drop_loose(store: Store, item: _Read, owner: str, report: CompactionReport) -> bool:
    """Under the video's lease: its loose files go if its ``videos`` file is still what was compacted."""
    try:
        with leases.held(store, leases.video_key(item.uri), owner=owner):
            return _drop_if_unchanged(store, item, report)
    except leases.LeaseHeld:  # a run is redoing it: its new files will be compacted next time
        report.held.append(item.video_id)
        return False


def _drop_if_unchanged(store: Store, item: _Read, report: CompactionReport) -> bool:
    path = store.file("videos", item.video_id)
    try:
        unchanged = store.fs.cat_file(path) == item.videos_bytes
    except FileNotFoundError:
        unchanged = False
    if not unchanged:
        report.changed.append(item.video_id)
        return False
    store.uncommit(item.video_id)  # from here the compacted rows are the visible ones
    for name in VIDEO_TABLES:
        store.remove_path(store.file(name, item.video_id))
    for name in (*VIDEO_TABLES, "videos"):
        store.prune_partition(name, item.video_id)
    return True


def _remove_orphans(store: Store) -> int:
    """Data files of compactions that never wrote their ``videos`` file (a compaction that crashed)."""
    committed = {path.rsplit("/", 2)[-2] for path in store.glob(f"{COMPACTED}/videos/compaction=*/part-0.parquet")}
    orphans = [
        path
        for name in VIDEO_TABLES
        for path in store.glob(f"{COMPACTED}/{name}/compaction=*/part-0.parquet")
        if path.rsplit("/", 2)[-2] not in committed
    ]
    for path in orphans:
        store.remove_path(path)
    return len(orphans)


def _parquet(data: bytes, columns: list[str] | None = None) -> pa.Table:
    """A small Parquet file's table: ParquetFile, one thread (measured 1.2 ms a file against 5 ms for
    ``pq.read_table``, whose dataset machinery and thread pool cost more than a few KB take to decode)."""
    return pq.ParquetFile(pa.BufferReader(data)).read(columns=columns, use_threads=False)


def _sorted(table: pa.Table) -> pa.Table:
    """By video_id, each video's rows in their own order: a video's rows are one contiguous range."""
    order = pc.sort_indices(
        table.append_column("_row", pa.array(range(table.num_rows), pa.int64())),
        sort_keys=[("video_id", "ascending"), ("_row", "ascending")],
    )
    return table.take(order)


def _file(name: str, compaction: str) -> str:
    return f"{COMPACTED}/{name}/compaction={compaction}/part-0.parquet"
