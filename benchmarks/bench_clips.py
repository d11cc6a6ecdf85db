"""Benchmark: many short clips through `affectflow run` (issue 23, item 2).

    .venv/bin/python benchmarks/bench_clips.py [--clips 500] [--talking 20] [--keep DIR]

Two corpora, each run as a user runs it (`affectflow run … --no-reports` in a fresh process,
its own PREFECT_HOME):

1. ``--clips`` N clips of 5–10 s (ffmpeg test pattern + tone, 320×240), ``--stages none``:
   everything a video costs outside the models: the Prefect task runs, the lease, staging
   (copy + hash), probe, audio extraction and the commit (tables, ``videos`` row, manifest).
   Per-clip overhead = (wall time − time to the first video's line) / (N − 1), against the
   target ≤ 0.3 s; files written per clip; the ``videos`` rows' own step times beside it.
2. ``--talking`` M generated talking clips (tasks/synth/talking.py: real face photos with
   espeak-ng speech, 1–2 people, 5–10 s) with every stage: RTF (run time after the first
   video ÷ media seconds) against the target of 2× the long-video RTF (README, "Pipeline
   benchmark": 0.13–0.22 on 5–30 min videos), and where the time goes (the ``videos`` rows'
   ``stage_seconds`` summed per stage).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from affectflow.tasks.query.views import connect

REPO = Path(__file__).resolve().parent.parent
TARGET_OVERHEAD_S = 0.3
LONG_VIDEO_RTF = 0.22  # the slowest whole-pipeline RTF the README measured on long videos
TARGET_RTF = 2 * LONG_VIDEO_RTF


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=500, help="test-pattern clips for the overhead run (default 500)")
    parser.add_argument("--talking", type=int, default=20, help="talking clips for the all-stages run (default 20)")
    parser.add_argument("--keep", help="work here and keep it (default: a temp dir, removed)")
    parser.add_argument("--workers", type=int, help="`affectflow run --workers` for the talking run (default: its own)")
    parser.add_argument("--language", help="`affectflow run --language` for the talking run (default: detected)")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="affectflow-clips-"))
    try:
        if args.clips:
            overhead(work, args.clips)
        if args.talking:
            all_stages(work, args.talking, args.workers, args.language)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def overhead(work: Path, n: int) -> None:
    corpus, out = work / "patterns", work / "patterns-out"
    started = time.perf_counter()
    seconds = make_patterns(corpus, n)
    print(f"made {n} test-pattern clips ({seconds:.0f} s of media) in {time.perf_counter() - started:.1f} s")
    wall, first = run(corpus, out, work / "prefect-a", "--stages", "none")
    per_clip = (wall - first) / max(n - 1, 1)
    files = sum(1 for path in out.rglob("*") if path.is_file())
    steps = step_seconds(out)
    print(f"--stages none: {wall:.1f} s for {n} clips, first video after {first:.1f} s")
    print(
        f"  per-clip overhead: {per_clip:.3f} s ({per_clip / TARGET_OVERHEAD_S:.2f}× the {TARGET_OVERHEAD_S} s target, "
        f"{'met' if per_clip <= TARGET_OVERHEAD_S else 'NOT met'}); {files / n:.1f} files written per clip"
    )
    print("  inside each video (videos.stage_seconds, mean s): " + ", ".join(f"{k} {v / n:.3f}" for k, v in steps))


def all_stages(work: Path, n: int, workers: int | None = None, language: str | None = None) -> None:
    corpus, out = work / "talking", work / f"talking-out-{workers or 'default'}-{language or 'detected'}"
    started = time.perf_counter()
    media_s = make_talking(corpus, n) if not corpus.exists() else talking_seconds(corpus)
    print(f"made {n} talking clips ({media_s:.0f} s of media) in {time.perf_counter() - started:.1f} s")
    options = [*(["--workers", str(workers)] if workers else []), *(["--language", language] if language else [])]
    wall, first = run(corpus, out, work / "prefect-b", *options)
    con = connect(str(out))
    rows = con.execute("SELECT duration_s, status FROM videos ORDER BY started").fetchall()
    assert all(status == "ok" for _, status in rows), rows
    after_first = sum(duration for duration, _ in rows[1:])
    rtf = (wall - first) / after_first
    print(
        f"every stage, {' '.join(options) or 'default options'}: {wall:.1f} s for {n} clips ({media_s:.0f} s), first video after {first:.1f} s"
    )
    print(
        f"  RTF after the first video: {rtf:.3f} ({rtf / TARGET_RTF:.2f}× the target {TARGET_RTF:.2f} = 2× the "
        f"long-video {LONG_VIDEO_RTF}, {'met' if rtf <= TARGET_RTF else 'NOT met'})"
    )
    steps = step_seconds(out)
    total = sum(v for _, v in steps)
    print(
        "  where the time goes (videos.stage_seconds, s of all clips): " + ", ".join(f"{k} {v:.1f}" for k, v in steps)
    )
    print(f"  sum of the steps {total:.1f} s against the wall time after start-up {wall - first:.1f} s")


def run(corpus: Path, out: Path, prefect_home: Path, *options: str) -> tuple[float, float]:
    """Wall seconds of one `affectflow run`, and seconds until its first video's line on stderr."""
    env = {**os.environ, "PREFECT_HOME": str(prefect_home), "AFFECTFLOW_PROGRESS": "never"}
    env["AFFECTFLOW_KEEP_WARM"] = (
        "off"  # the run in its own process, as measured before (bench_startup has the service)
    )
    command = [sys.executable, "-m", "affectflow", "run", str(corpus), "--out", str(out), "--no-reports", *options]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    first = None
    lines = []
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)
        if first is None and line.split()[:1] in (["ok"], ["failed"]):
            first = time.perf_counter() - started
    if process.wait() != 0:
        raise SystemExit(f"affectflow run failed:\n{''.join(lines[-30:])}")
    return time.perf_counter() - started, first or 0.0


def step_seconds(out: Path) -> list[tuple[str, float]]:
    """Each step's seconds summed over the ``videos`` rows, largest first."""
    total: Counter[str] = Counter()
    for (stages,) in connect(str(out)).execute("SELECT stage_seconds FROM videos").fetchall():
        total.update(json.loads(stages))
    return total.most_common()


def make_patterns(folder: Path, n: int) -> float:
    """``n`` distinct 5–10 s clips (test pattern + tone), each its own bytes; total seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    total = 0.0
    for k in range(n):
        seconds = float(rng.uniform(5, 10))
        total += seconds
        subprocess.run(
            [
                *("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:d={seconds:.2f}"),
                *("-f", "lavfi", "-i", f"sine=frequency={200 + k}:d={seconds:.2f}"),
                *(
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-c:a",
                    "aac",
                    "-shortest",
                    str(folder / f"clip{k:04d}.mp4"),
                ),
            ],
            check=True,
        )
    return total


def talking_seconds(folder: Path) -> float:
    """Seconds of media of the talking clips made before (``--keep``): made once, run at several ``--workers``."""
    from affectflow.tasks.media.probe import probe

    return sum(probe(clip).duration_s for clip in sorted(folder.glob("*.mp4")))


def make_talking(folder: Path, n: int) -> float:
    """``n`` talking clips: one or two people, one to three sentences each (5–10 s); total seconds."""
    from affectflow.tasks.synth.talking import Scene, make_talking_clip

    total = 0.0
    for k in range(n):
        two = k % 2 == 1
        faces = ("astronaut", "hopper") if two else (("astronaut", "hopper")[k % 4 // 2],)
        turns = tuple((i % len(faces), k + i) for i in range(1 + k % 2))
        truth = make_talking_clip(folder / f"talk{k:03d}.mp4", Scene(faces, turns, seed=k))
        total += truth.duration
    return total


if __name__ == "__main__":
    main()
