"""A signal to a run on a remote Dask cluster stops its video on the worker too (issue 21, case 2).

The signal reaches `affectflow run` (the Dask client), never the workers: before, a worker of
a running cluster went on with the video the run was stopped in and committed it, while the
run said ``interrupted``. Here a real scheduler and worker (``dask scheduler`` / ``dask worker``
processes on 127.0.0.1, in their own sessions) serve a run that is SIGINTed mid-video: the
worker must let go of the video's lease within seconds, write nothing of it, stay up, and
serve the re-run that commits it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from affectflow.tasks.synth.bad import make_testsrc_video
from tests.servers import dask_cluster

pytestmark = pytest.mark.integration

RUN = ["--stages", "faces", "--fps", "25"]  # at every frame: the cheapest stage, yet seconds of work


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a one-worker cluster of real processes; both stopped at the end."""
    with dask_cluster(tmp_path_factory.mktemp("dask")) as address:
        yield address


def _run(clips: Path, out: Path, address: str) -> list[str]:
    return [sys.executable, "-m", "affectflow", "run", str(clips), "--out", str(out), "--dask-address", address, *RUN]


def _video_leases(out: Path) -> list[dict]:
    leases = out / "_leases"
    found = []
    for path in leases.glob("*.json") if leases.exists() else []:
        try:
            found.append(json.loads(path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError):  # released or being replaced as we look
            continue
    return found


def test_a_signal_to_the_client_stops_the_video_on_the_worker_and_the_rerun_commits_it(
    scheduler: str, tmp_path: Path
) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    make_testsrc_video(clips / "clip.mp4", seconds=30.0, audio=False)  # 750 frames: 10-20 s of faces
    out = tmp_path / "out"
    run = subprocess.Popen(
        _run(clips, out, scheduler), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while not (held := _video_leases(out)):  # the worker took the video's lease: it is working on it
        assert time.monotonic() < deadline and run.poll() is None, run.communicate()
        time.sleep(0.1)
    (lease,) = held
    assert lease["pid"] != run.pid  # the worker holds it, not the client
    time.sleep(1.0)  # into the faces stage
    os.killpg(run.pid, signal.SIGINT)
    signalled = time.monotonic()
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted"

    while _video_leases(out):  # the worker lets go of the video at its next step, or gives it up
        assert time.monotonic() - signalled < 30, "the worker went on with the video of a stopped run"
        time.sleep(0.1)
    print(f"the worker let go of the video {time.monotonic() - signalled:.1f} s after the signal")
    time.sleep(1.0)  # a commit would have followed the release at once
    assert not list(out.glob("*/video_id=*")), "the worker committed the video of a stopped run"
    assert not (out / "_manifest").exists() or not list((out / "_manifest").iterdir())

    rerun = subprocess.run(_run(clips, out, scheduler), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr  # the worker is still up and serves the next run
    assert any(line.split()[:1] == ["ok"] for line in rerun.stderr.splitlines()), rerun.stderr
    assert {path.parent.name for path in out.glob("*/video_id=*")} >= {"videos", "faces"}


def test_the_stage_progress_of_a_video_on_the_worker_reaches_the_runs_bar(scheduler: str, tmp_path: Path) -> None:
    """The bar's postfix (the video's stage, frames done / total) for a video analysed on a worker."""
    import re

    clips = tmp_path / "clips"
    clips.mkdir()
    # 3000 frames. With 1500 the whole video took 5.7 s in one CI run and the bar showed one value
    # only: the worker's publish, the relay's poll and the bar's refresh each sample about once a second
    make_testsrc_video(clips / "clip.mp4", seconds=120.0, audio=False)
    env = {**os.environ, "AFFECTFLOW_PROGRESS": "always"}  # the bar on a pipe too
    done = subprocess.run(
        _run(clips, tmp_path / "out", scheduler), capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    counts = [int(n) for n in re.findall(r"clip\.mp4: faces (\d+)/3000", done.stderr)]
    assert len(set(counts)) >= 2 and max(counts) > min(counts), done.stderr[-3000:]  # it moved while it ran
