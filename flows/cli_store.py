"""`affectflow compact`: merge the finished videos of an output root into a few large files.

Safe beside a running `affectflow run` on the same root (videos a run is working on are left
for the next compaction) and after a crash at any point; see tasks/storage/compaction.py.
"""

from __future__ import annotations

import argparse
import sys
import uuid

COMMANDS = {"compact": "merge finished videos' files into a few large ones (fast SQL on big corpora)"}


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    compact = subparsers.add_parser(
        "compact",
        help=COMMANDS["compact"],
        description=(
            "Merge the per-video Parquet files of every finished video under OUT into a few large files "
            "sorted by video_id (OUT/_compacted/), so SQL opens a handful of files instead of several per "
            "video. Nothing visible changes: the same rows, before, during and after. Safe beside a running "
            "`affectflow run` on OUT; run it after a nightly run (docs/sql.md, 'Big corpora')."
        ),
    )
    compact.add_argument("--out", required=True, help="output root of a run (local dir or s3://bucket/prefix)")
    compact.add_argument(
        "--batch-videos",
        type=int,
        default=None,
        metavar="N",
        help="videos per compacted file (default 5000; memory grows with it)",
    )
    compact.set_defaults(func=run_compact)


def run_compact(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from affectflow.flows.parameters import UsageError
    from affectflow.tasks.storage import compaction
    from affectflow.tasks.storage.fs import check_root
    from affectflow.tasks.storage.leases import LeaseHeld
    from affectflow.tasks.storage.store import Store

    batch = args.batch_videos or compaction.BATCH_VIDEOS
    if batch < 1:
        raise UsageError(f"--batch-videos must be at least 1, got {batch}")
    check_root(args.out)
    store = Store(args.out)
    if not store.fs.isdir(store.path("")):
        raise FileNotFoundError(f"no output root at {args.out}")
    bar = tqdm(total=0, unit="video", desc="compacting", file=sys.stderr, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        report = compaction.compact(
            store, owner=f"compact-{uuid.uuid4().hex[:8]}", batch_videos=batch, progress=progress
        )
    except LeaseHeld as held:
        raise RuntimeError(f"another compaction is running on {args.out} ({held.holder})") from None
    finally:
        bar.close()
    rows = ", ".join(f"{n:,} {name}" for name, n in sorted(report.rows.items())) or "no rows"
    print(
        f"compacted {report.videos} videos into {len(report.compactions)} file set(s) ({rows}); "
        f"{len(report.held)} busy in a run and {len(report.changed)} redone meanwhile, left for next time"
        + (f"; removed {report.removed_orphans} files of an interrupted compaction" if report.removed_orphans else "")
    )
    return 0
