"""Benchmark: the SQL views over 10 million emotion rows.

Writes a synthetic corpus in the store's layout (N one-hour videos, two or three face
tracks at 5 fps, speaker turns and words) to a temp dir, then times, as medians of
repeated runs on a warm connection:

- the per-minute timeline of the whole corpus (every emotion row aggregated),
- the per-minute timeline of one video (partition pruning: one file read),
- the per-video summary (percentiles, quadrant time) and the per-speaker summary (speaker
  join) of the whole corpus.

    .venv/bin/python benchmarks/bench_sql.py [--rows 10000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from affectflow.tasks.query.views import connect
from affectflow.tasks.storage.store import Store
from affectflow.tasks.storage.tables import to_table

FPS = 5.0
DURATION_S = 3600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="emotion rows to generate (default 10M)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query (default 5)")
    parser.add_argument("--keep", help="write the corpus here and keep it (default: a temp dir, removed)")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="affectflow-bench-"))
    try:
        started = time.perf_counter()
        n_videos, n_rows = write_corpus(Store(str(root)), args.rows)
        elapsed = time.perf_counter() - started
        print(f"wrote {n_rows:,} emotion rows in {n_videos} one-hour videos in {elapsed:.1f} s ({root})")
        run_queries(str(root), args.repeat)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def write_corpus(store: Store, rows: int) -> tuple[int, int]:
    rng = np.random.default_rng(0)
    written, i = 0, 0
    while written < rows:
        n_tracks = int(rng.choice([2, 3], p=[0.7, 0.3]))
        n = min(int(DURATION_S * FPS) * n_tracks, rows - written)
        store.write_video(f"v{i:05d}", video_tables(rng, f"v{i:05d}", n, n_tracks), video_row(f"v{i:05d}"))
        written, i = written + n, i + 1
    return i, written


def video_tables(rng: np.random.Generator, video_id: str, n: int, n_tracks: int) -> dict[str, pa.Table]:
    per_track = -(-n // n_tracks)
    frame = np.tile(np.arange(per_track), n_tracks)[:n]  # shape: (n,) analysed frame index
    track = np.repeat(np.arange(n_tracks, dtype=np.int32), per_track)[:n]
    walk = lambda: np.clip(np.cumsum(rng.normal(0, 0.02, n)) % 2 - 1, -1, 1).astype(np.float32)  # noqa: E731
    starts = np.cumsum(rng.uniform(2, 8, 900))
    starts = starts[starts < DURATION_S - 1]
    ends = np.minimum(starts + rng.uniform(1.5, 6, len(starts)), DURATION_S)
    speakers = np.where(np.arange(len(starts)) % 2 == 0, "SPEAKER_00", "SPEAKER_01")
    word_starts = np.sort(rng.uniform(0, DURATION_S, 9000))
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


def video_row(video_id: str) -> dict:
    now = datetime.now(UTC)
    return dict(
        video_id=video_id,
        name=f"{video_id}.mp4",
        uri=f"file:///bench/{video_id}.mp4",
        duration_s=DURATION_S,
        fps=30.0,
        analysis_fps=FPS,
        status="ok",
        run_id="bench",
        started=now,
        finished=now,
    )


def run_queries(out: str, repeat: int) -> None:
    started = time.perf_counter()
    con = connect(out)
    print(f"connect (views): {time.perf_counter() - started:.3f} s")
    total = con.sql("SELECT count(*) FROM emotions").fetchall()[0][0]
    queries = {
        f"per-minute timeline, whole corpus ({total:,} rows)": "SELECT * FROM timeline_minute",
        "per-minute timeline, one video (pruned)": "SELECT * FROM timeline_minute WHERE video_id = 'v00042'",
        "per-second timeline, one video (pruned)": "SELECT * FROM timeline_second WHERE video_id = 'v00042'",
        "video_summary, whole corpus": "SELECT * FROM video_summary",
        "speaker_summary, whole corpus (speaker join)": "SELECT * FROM speaker_summary",
    }
    for label, sql in queries.items():
        seconds, n = timed(con, sql, repeat)
        print(f"{label}: {seconds:.3f} s median of {repeat} ({n:,} result rows)")


def timed(con, sql: str, repeat: int) -> tuple[float, int]:
    con.sql(sql).to_arrow_table()  # warm: file listing and metadata caches
    times, n = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        n = con.sql(sql).to_arrow_table().num_rows
        times.append(time.perf_counter() - started)
    return statistics.median(times), n


if __name__ == "__main__":
    main()
