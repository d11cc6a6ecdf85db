"""Benchmark: the SQL views over a big output root, before and after `affectflow compact`.

Two corpora, written by the store itself (``Store.write_video``, the layout a run leaves):

- ``--rows N`` (default 10 M emotion rows): one-hour videos, two or three face tracks at 5 fps;
- ``--videos N --clip-s S``: N short clips of S seconds (the many-clips corpora of issue 23),
  e.g. ``--videos 50000 --clip-s 10``.

Each with speaker turns and words. Then it times, as medians of repeated runs on a warm
connection, plus the connection itself (view creation: what every `affectflow sql` pays):

- the per-minute timeline of the whole corpus (every emotion row aggregated),
- the per-minute / per-second timeline of one video,
- the per-video summary and the per-speaker summary (speaker join) of the whole corpus,

on the per-video layout, then again after compaction (``--compact``), and with ``--s3`` on
the compacted root uploaded to a local S3-compatible server (moto on 127.0.0.1, read
through s3fs), against the targets: corpus-wide aggregate < 3 s, one video < 0.3 s.

    .venv/bin/python benchmarks/bench_sql.py [--rows 10000000] [--keep DIR]
    .venv/bin/python benchmarks/bench_sql.py --videos 50000 --clip-s 10 --compact --s3
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from affectflow.tasks.query.views import connect
from affectflow.tasks.storage.compaction import compact
from affectflow.tasks.storage.store import Store
from affectflow.tasks.storage.tables import to_table

FPS = 5.0
DURATION_S = 3600.0
TARGET_AGGREGATE_S = 3.0
TARGET_ONE_VIDEO_S = 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="emotion rows to generate (default 10M)")
    parser.add_argument("--videos", type=int, help="instead: this many short clips (e.g. 50000)")
    parser.add_argument("--clip-s", type=float, default=10.0, help="length of each short clip (default 10 s)")
    parser.add_argument("--writers", type=int, default=4, help="threads writing the corpus (default 4)")
    parser.add_argument("--compact", action="store_true", help="also time the queries after `affectflow compact`")
    parser.add_argument("--s3", action="store_true", help="also time the compacted root on a local S3 server")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query (default 5)")
    parser.add_argument(
        "--repeat-loose",
        type=int,
        default=None,
        help="timed runs per query on the per-video layout (default: --repeat; 1 is plenty at 50,000 videos)",
    )
    parser.add_argument(
        "--keep", help="write the corpus here and keep it (default: a temp dir, removed); reused when it holds one"
    )
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="affectflow-bench-"))
    try:
        store = Store(str(root))
        if (root / "videos").is_dir():
            print(f"reusing the corpus under {root}")
        else:
            write(store, args)
        print(f"{sum(1 for _ in root.rglob('*.parquet')):,} Parquet files under {root}")
        results = {"per-video files": run_queries(str(root), args.repeat_loose or args.repeat)}
        if args.compact:
            started = time.perf_counter()
            report = compact(store, owner="bench")
            n_files = sum(1 for path in root.rglob("*.parquet"))
            print(f"compacted {report.videos:,} videos in {time.perf_counter() - started:.1f} s ({n_files:,} files)")
            results["compacted"] = run_queries(str(root), args.repeat)
            if args.s3:
                results["compacted, S3 (moto, s3fs)"] = on_s3(root, args.repeat)
        print_targets(results)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def write(store: Store, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    if args.videos:
        n_videos, n_rows = write_clips(store, args.videos, args.clip_s, args.writers)
        what = f"{n_videos:,} clips of {args.clip_s:g} s"
    else:
        n_videos, n_rows = write_corpus(store, args.rows)
        what = f"{n_videos} one-hour videos"
    print(f"wrote {n_rows:,} emotion rows in {what} in {time.perf_counter() - started:.1f} s")


def write_corpus(store: Store, rows: int) -> tuple[int, int]:
    rng = np.random.default_rng(0)
    written, i = 0, 0
    while written < rows:
        n_tracks = int(rng.choice([2, 3], p=[0.7, 0.3]))
        n = min(int(DURATION_S * FPS) * n_tracks, rows - written)
        store.write_video(f"v{i:05d}", video_tables(rng, f"v{i:05d}", n, n_tracks), video_row(f"v{i:05d}"))
        written, i = written + n, i + 1
    return i, written


def write_clips(store: Store, n_videos: int, clip_s: float, writers: int) -> tuple[int, int]:
    """``n_videos`` clips of two face tracks, written by the store from ``writers`` threads."""
    per_clip = int(clip_s * FPS) * 2

    def write(i: int) -> None:
        rng = np.random.default_rng(i)
        video_id = f"v{i:05d}"
        store.write_video(video_id, video_tables(rng, video_id, per_clip, 2, clip_s), video_row(video_id, clip_s))

    with ThreadPoolExecutor(writers) as pool:
        for done, _ in enumerate(pool.map(write, range(n_videos)), 1):
            if done % 5000 == 0:
                print(f"  {done:,} / {n_videos:,} clips written", flush=True)
    return n_videos, n_videos * per_clip


def video_tables(
    rng: np.random.Generator, video_id: str, n: int, n_tracks: int, duration_s: float = DURATION_S
) -> dict[str, pa.Table]:
    per_track = -(-n // n_tracks)
    frame = np.tile(np.arange(per_track), n_tracks)[:n]  # shape: (n,) analysed frame index
    track = np.repeat(np.arange(n_tracks, dtype=np.int32), per_track)[:n]
    walk = lambda: np.clip(np.cumsum(rng.normal(0, 0.02, n)) % 2 - 1, -1, 1).astype(np.float32)  # noqa: E731
    starts = np.concatenate([[0.0], np.cumsum(rng.uniform(2, 8, int(duration_s / 4) + 1))])
    starts = starts[starts < max(duration_s - 1, 0.5)]
    ends = np.minimum(starts + rng.uniform(1.5, 6, len(starts)), duration_s)
    speakers = np.where(np.arange(len(starts)) % 2 == 0, "SPEAKER_00", "SPEAKER_01")
    word_starts = np.sort(rng.uniform(0, duration_s, int(duration_s * 2.5)))  # 2.5 words/s
    emotions = {
        "video_id": [video_id] * n,
        "track_id": track,
        "frame": frame * 6,
        "t": frame / FPS,
        "valence": walk(),
        "arousal": walk(),
        "speaker": [None] * n,
        "model": ["bench"] * n,
    }
    turns = {
        "video_id": [video_id] * len(starts),
        "speaker": speakers,
        "start": starts,
        "end": ends,
        "model": ["bench"] * len(starts),
    }
    words = {
        "video_id": [video_id] * len(word_starts),
        "word": ["word"] * len(word_starts),
        "start": word_starts,
        "end": word_starts + 0.3,
        "score": np.full(len(word_starts), 0.9, np.float32),
        "speaker": ["SPEAKER_00"] * len(word_starts),
        "segment": (np.arange(len(word_starts)) // 10).astype(np.int32),
        "model": ["bench"] * len(word_starts),
    }
    return {
        "emotions": to_table("emotions", emotions),
        "speaker_turns": to_table("speaker_turns", turns),
        "words": to_table("words", words),
    }


def video_row(video_id: str, duration_s: float = DURATION_S) -> dict:
    now = datetime.now(UTC)
    return dict(
        video_id=video_id,
        name=f"{video_id}.mp4",
        uri=f"file:///bench/{video_id}.mp4",
        duration_s=duration_s,
        fps=30.0,
        analysis_fps=FPS,
        status="ok",
        run_id="bench",
        started=now,
        finished=now,
    )


AGGREGATES = ("timeline_minute, whole corpus", "video_summary, whole corpus", "speaker_summary, whole corpus")
ONE_VIDEO = ("timeline_minute, one video", "timeline_second, one video")


def run_queries(out: str, repeat: int) -> dict[str, float]:
    """Seconds per query (medians) and of the connection; printed as they come."""
    started = time.perf_counter()
    con = connect(out)
    seconds = {"connect (views)": time.perf_counter() - started}
    print(f"  connect (views): {seconds['connect (views)']:.3f} s")
    started = time.perf_counter()
    total, one = con.sql("SELECT count(*), min(video_id) FROM emotions").fetchall()[0]
    seconds["first query, count(*) of emotions"] = time.perf_counter() - started
    print(f"  first query, count(*) over {total:,} emotion rows: {seconds['first query, count(*) of emotions']:.3f} s")
    queries = {
        "timeline_minute, whole corpus": "SELECT * FROM timeline_minute",
        "timeline_minute, one video": f"SELECT * FROM timeline_minute WHERE video_id = '{one}'",
        "timeline_second, one video": f"SELECT * FROM timeline_second WHERE video_id = '{one}'",
        "video_summary, whole corpus": "SELECT * FROM video_summary",
        "speaker_summary, whole corpus": "SELECT * FROM speaker_summary",
    }
    for label, sql in queries.items():
        seconds[label], n = timed(con, sql, repeat)
        print(f"  {label}: {seconds[label]:.3f} s median of {repeat} ({n:,} result rows)")
    return seconds


def on_s3(root: Path, repeat: int) -> dict[str, float]:
    """The compacted root copied to a moto S3 server on 127.0.0.1 and queried through s3fs."""
    import s3fs

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.servers import s3_server

    with s3_server() as server:
        out = f"{server.bucket('bench')}/out"
        fs = s3fs.S3FileSystem()
        started = time.perf_counter()
        files = [path for path in root.rglob("*") if path.is_file() and "_leases" not in path.parts]
        for path in files:
            fs.put_file(str(path), f"{out.removeprefix('s3://')}/{path.relative_to(root)}")
        print(f"uploaded {len(files):,} files to {out} in {time.perf_counter() - started:.1f} s")
        return run_queries(out, repeat)


def print_targets(results: dict[str, dict[str, float]]) -> None:
    print("\nagainst the targets (issue 23: corpus-wide aggregate < 3 s, one video < 0.3 s):")
    for layout, seconds in results.items():
        aggregate = max(seconds[q] for q in AGGREGATES)
        one = max(seconds[q] for q in ONE_VIDEO)
        print(
            f"  {layout}: slowest aggregate {aggregate:.3f} s ({aggregate / TARGET_AGGREGATE_S:.2f}× target, "
            f"{'met' if aggregate < TARGET_AGGREGATE_S else 'NOT met'}), one video {one:.3f} s "
            f"({one / TARGET_ONE_VIDEO_S:.2f}× target, {'met' if one < TARGET_ONE_VIDEO_S else 'NOT met'}), "
            f"connect {seconds['connect (views)']:.3f} s"
        )


def timed(con, sql: str, repeat: int) -> tuple[float, int]:
    if repeat > 1:
        con.sql(sql).to_arrow_table()  # warm: file listing and metadata caches
    times, n = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        n = con.sql(sql).to_arrow_table().num_rows
        times.append(time.perf_counter() - started)
    return statistics.median(times), n


if __name__ == "__main__":
    main()
