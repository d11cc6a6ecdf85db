"""Size and opening time of the report of a 30-minute video (issue 19: under 5 MB, opens in under 2 s).

    .venv/bin/python benchmarks/bench_report.py [--minutes 30] [--tracks 3]

The output root is written by the real store (tests/tablegen.py: a dialogue with words at a
natural rate and face tracks at 5 fps); the source is a generated test-pattern video of the
same length (ffmpeg lavfi, 160×120, 5 fps). Opening time is from navigation to the page's
ready flag (Bokeh has drawn the timeline and the page's script has found its cursors) in
Debian's headless Chromium through Playwright, median of 5 loads. Every line carries the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZE_TARGET_MB, OPEN_TARGET_S = 5.0, 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--tracks", type=int, default=3)
    args = parser.parse_args(argv)
    import tests.tablegen as tablegen
    from affectflow.tasks.reports import write_reports
    from affectflow.tasks.storage.store import Store
    from tests.browser import READY, chromium

    seconds = 60 * args.minutes
    with tempfile.TemporaryDirectory(prefix="affectflow-bench-report-") as folder:
        clip = Path(folder) / "long.mp4"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=5", "-t", f"{seconds}",
             "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip)],
            check=True,
        )  # fmt: skip
        original = tablegen._video_row
        tablegen._video_row = lambda *a: {**original(*a), "uri": str(clip), "name": "long.mp4"}  # type: ignore[assignment]
        tablegen.write_video(Store(f"{folder}/out"), "long000000000000", duration_s=seconds, n_tracks=args.tracks)
        tablegen._video_row = original  # type: ignore[assignment]
        begin = time.perf_counter()
        page = Path(write_reports(f"{folder}/out")["long000000000000"])
        write_s = time.perf_counter() - begin
        size_mb = page.stat().st_size / 1e6
        with chromium() as browser:
            opens = []
            for _ in range(5):
                tab = browser.new_page()
                begin = time.perf_counter()
                tab.goto(page.as_uri())
                tab.wait_for_function(READY, timeout=60_000)
                opens.append(time.perf_counter() - begin)
                tab.close()
    load = os.getloadavg()[0]
    print(
        f"{args.minutes:g}-minute video, {args.tracks} face tracks: report {size_mb:.2f} MB (target < {SIZE_TARGET_MB:g} MB), "
        f"written in {write_s:.1f} s; opens in {statistics.median(opens):.2f} s median of 5 "
        f"(min {min(opens):.2f}, max {max(opens):.2f}; target < {OPEN_TARGET_S:g} s); load {load:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
