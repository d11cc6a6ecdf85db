"""Benchmark: the CLI's progress inside one long video (issue 23, item 5).

    .venv/bin/python benchmarks/bench_progress.py [--video PATH]

Runs ``affectflow run`` on one video (default: bench_pipeline.py's cached 30-minute
640×480 clip, made by ``bench_pipeline.py --durations 1800 --sizes 640x480`` if missing) with
the bar forced on (``AFFECTFLOW_PROGRESS=always``) and times every redraw of stderr as it
arrives. Reports when the bar first shows the video's stage, how many redraws carried it, and
the longest and 99th-percentile gap between them, against the target: updated at least every 2 s.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

CACHED = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "affectflow/bench/v1/640x480-1800s.mp4"
AFFECTFLOW = str(Path(sys.executable).with_name("affectflow"))
TARGET_S = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=CACHED)
    args = parser.parse_args()
    if not args.video.is_file():
        raise SystemExit(f"{args.video} missing: run benchmarks/bench_pipeline.py --durations 1800 --sizes 640x480")
    with tempfile.TemporaryDirectory(prefix="affectflow-progress-") as work:
        source = Path(work) / "source"
        source.mkdir()
        (source / args.video.name).symlink_to(args.video.resolve())
        redraws, elapsed = timed_redraws(source, Path(work) / "out")
    stage = [(t, line) for t, line in redraws if f"{args.video.name}:" in line]  # the postfix names the video
    gaps = sorted(b - a for (a, _), (b, _) in pairwise(stage))
    if not gaps:
        raise SystemExit("the bar never showed the video's stage")
    print(f"{args.video.name}: run took {elapsed:.1f} s; load average {os.getloadavg()[0]:.2f}")
    print(f"  stage shown from {stage[0][0]:.1f} s to {stage[-1][0]:.1f} s in {len(stage)} redraws")
    print(
        f"  gap between redraws: longest {gaps[-1]:.2f} s, p99 {gaps[int(0.99 * (len(gaps) - 1))]:.2f} s "
        f"(target ≤ {TARGET_S} s: {'met' if gaps[-1] <= TARGET_S else 'NOT met'})"
    )
    for t, line in stage[:: max(1, len(stage) // 12)]:
        print(f"  {t:7.1f} s  {line[:140]}")


def timed_redraws(source: Path, out: Path) -> tuple[list[tuple[float, str]], float]:
    """Every non-empty piece of stderr between carriage returns and newlines, with its arrival time."""
    env = {**os.environ, "AFFECTFLOW_PROGRESS": "always", "AFFECTFLOW_KEEP_WARM": "off"}
    command = [AFFECTFLOW, "run", str(source), "--out", str(out), "--no-reports"]
    run = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    assert run.stderr is not None
    start, pending, redraws = time.monotonic(), b"", []
    while chunk := os.read(run.stderr.fileno(), 4096):
        *pieces, pending = re.split(rb"[\r\n]", pending + chunk)
        now = time.monotonic() - start
        redraws += [(now, text) for piece in pieces if (text := piece.decode(errors="replace").strip())]
    if run.wait() != 0:
        raise SystemExit(f"affectflow run failed ({run.returncode}): {redraws[-1][1] if redraws else ''}")
    return redraws, time.monotonic() - start


if __name__ == "__main__":
    main()
