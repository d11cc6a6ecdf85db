"""Crash and resume: a corpus run killed with SIGKILL mid-way loses nothing and shows nothing partial.

The run is a real ``affectflow run`` in its own process group (its own Prefect home, as a
user's shell would have); SIGKILL gives it no chance to clean up, like a machine going away.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from affectflow.tasks.query.views import connect
from affectflow.tasks.synth.faces import make_face_video

pytestmark = pytest.mark.integration

N_VIDEOS = 4


def _affectflow(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "affectflow", *args],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the kill takes everything it started
    )


def _committed(out: Path) -> list[Path]:
    return list(out.glob("videos/video_id=*/part-0.parquet"))


def _visible(out: Path, query: str) -> list[tuple]:
    return connect(str(out)).execute(query).fetchall()


def test_killed_run_resumes_without_partial_or_duplicate_rows(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    for k in range(N_VIDEOS):
        make_face_video(corpus / f"clip{k}.mp4", seconds=6.0 + k)  # distinct bytes: distinct videos
    out = tmp_path / "out"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    run = ["run", str(corpus), "--out", str(out), "--stages", "faces,emotions"]

    first = _affectflow(*run, env=env)
    deadline = time.monotonic() + 240
    while not _committed(out):  # kill right after the first video is committed, while the next runs
        assert first.poll() is None, f"the run ended before it could be killed:\n{first.communicate()[0]}"
        assert time.monotonic() < deadline, "no video finished in time"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    first.stdout.close()  # type: ignore[union-attr]

    done_before_kill = _visible(out, "SELECT video_id, name FROM videos")
    assert 1 <= len(done_before_kill) < N_VIDEOS
    assert all(status == "ok" for (status,) in _visible(out, "SELECT status FROM videos"))
    # Rows of the video that was being written when the kill came are never visible.
    visible_ids = {row[0] for row in done_before_kill}
    for table in ("faces", "emotions"):
        assert {r[0] for r in _visible(out, f"SELECT DISTINCT video_id FROM {table}")} <= visible_ids

    second = subprocess.run(
        [sys.executable, "-m", "affectflow", *run], env=env, capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 0, second.stderr[-2000:]
    lines = {line.split()[-1]: line.split()[0] for line in second.stderr.splitlines() if line.strip().endswith(".mp4")}
    finished_names = {name for _, name in done_before_kill}
    assert {n for n, s in lines.items() if s == "skipped"} == finished_names  # finished videos are skipped
    assert {n for n, s in lines.items() if s == "ok"} == {f"clip{k}.mp4" for k in range(N_VIDEOS)} - finished_names

    assert _visible(out, "SELECT count(*), count(DISTINCT video_id) FROM videos") == [(N_VIDEOS, N_VIDEOS)]
    for table, key in (("faces", "track_id, frame"), ("emotions", "track_id, frame")):
        ((rows, distinct),) = _visible(out, f"SELECT count(*), count(DISTINCT (video_id, {key})) FROM {table}")
        assert rows == distinct > 0, f"duplicate rows in {table}"
    # Every video has its faces: one face on screen in (nearly) every analysed frame.
    per_video = _visible(
        out,
        "SELECT v.name, v.n_frames_analysed, count(DISTINCT f.frame) FROM videos v "
        "JOIN faces f USING (video_id) GROUP BY ALL",
    )
    assert len(per_video) == N_VIDEOS
    assert all(with_face >= 0.95 * analysed for _, analysed, with_face in per_video)
    assert not list(out.rglob(".tmp-*"))
