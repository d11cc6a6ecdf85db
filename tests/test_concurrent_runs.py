"""Two runs on one output root: each video is processed by one of them, never by both at once.

Real ``affectflow run`` processes (each with its own Prefect home, as two shells or a nightly
run beside an on-demand one would have). A video whose lease another live run holds is
skipped with the holder named; a lease left by a run that died is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from affectflow.tasks.query.views import connect
from affectflow.tasks.storage.discover import discover
from affectflow.tasks.storage.leases import video_key
from affectflow.tasks.synth.faces import make_face_video

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent


def _corpus(folder: Path, n: int) -> list[Path]:
    # distinct lengths: distinct bytes, so distinct videos
    return [make_face_video(folder / f"clip{k}.mp4", seconds=1.0 + 0.2 * k, size=(320, 240)) for k in range(n)]


def _run(corpus: Path, out: Path, prefect_home: Path, *options: str) -> subprocess.Popen[str]:
    command = ["run", str(corpus), "--out", str(out), "--stages", "faces", "--no-reports", *options]
    return subprocess.Popen(
        [sys.executable, "-m", "affectflow", *command],
        cwd=REPO,
        env={**os.environ, "PREFECT_HOME": str(prefect_home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _lines(stderr: str) -> dict[str, str]:
    """clip name → its progress line (``ok 1.2s clip0.mp4`` / ``skipped clip0.mp4  held by …``)."""
    lines = {}
    for line in stderr.splitlines():
        words = line.split()
        names = [w for w in words if w.endswith(".mp4")]
        if words and words[0] in ("ok", "failed", "skipped") and names:
            lines[names[0]] = line
    return lines


def _finish(run: subprocess.Popen[str]) -> dict[str, str]:
    _, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr[-3000:]
    return _lines(stderr)


def _hold(out: Path, source: Path, holder: psutil.Process) -> Path:
    """Write the lease of ``source`` as run ``nightly-1`` in process ``holder`` would hold it."""
    (uri,) = [f.uri for f in discover(str(source))]
    path = out / "_leases" / f"{video_key(uri)}.json"
    path.parent.mkdir(parents=True)
    now = time.time()
    record = {
        "key": video_key(uri),
        "owner": "nightly-1",
        "host": socket.gethostname(),
        "pid": holder.pid,
        "pid_started": holder.create_time(),
        "token": uuid.uuid4().hex,
        "acquired": now,
        "expires": now + 3600,
    }
    path.write_text(json.dumps(record))
    return path


def test_a_video_held_by_a_live_run_is_skipped_and_taken_over_once_its_holder_dies(tmp_path: Path) -> None:
    clips = _corpus(tmp_path / "corpus", 3)
    out = tmp_path / "out"
    holder = subprocess.Popen(["sleep", "600"])
    try:
        lease = _hold(out, clips[0], psutil.Process(holder.pid))
        lines = _finish(_run(tmp_path / "corpus", out, tmp_path / "prefect"))
        assert lines["clip0.mp4"].split()[0] == "skipped"
        assert f"held by run nightly-1 on {socket.gethostname()} (pid {holder.pid})" in lines["clip0.mp4"]
        assert {lines[f"clip{k}.mp4"].split()[0] for k in (1, 2)} == {"ok"}
        assert lease.exists()  # a live holder's lease is left alone
        names = {name for (name,) in connect(str(out)).execute("SELECT name FROM videos").fetchall()}
        assert names == {"clip1.mp4", "clip2.mp4"}
    finally:
        holder.kill()
        holder.wait()

    lines = _finish(_run(tmp_path / "corpus", out, tmp_path / "prefect"))  # the holder is gone: its lease is stale
    assert lines["clip0.mp4"].split()[0] == "ok"
    assert {lines[f"clip{k}.mp4"].split()[0] for k in (1, 2)} == {"skipped"}
    assert list((out / "_leases").iterdir()) == []  # released, none left behind


def test_two_runs_started_together_process_each_video_exactly_once(tmp_path: Path) -> None:
    _corpus(tmp_path / "corpus", 6)
    out = tmp_path / "out"
    runs = [_run(tmp_path / "corpus", out, tmp_path / f"prefect-{k}") for k in range(2)]
    first, second = (_finish(run) for run in runs)

    names = {f"clip{k}.mp4" for k in range(6)}
    assert set(first) == set(second) == names
    done_by = {name: [lines[name].split()[0] for lines in (first, second)].count("ok") for name in names}
    assert done_by == dict.fromkeys(names, 1), (first, second)
    rows = connect(str(out)).execute("SELECT name, status, count(*) OVER () FROM videos").fetchall()
    assert {(name, status) for name, status, _ in rows} == {(name, "ok") for name in names}
    assert {n for _, _, n in rows} == {6}
    assert list((out / "_leases").iterdir()) == []


def test_a_run_with_compact_leaves_every_video_visible_once_and_finished(tmp_path: Path) -> None:
    _corpus(tmp_path / "corpus", 2)
    out = tmp_path / "out"
    lines = _finish(_run(tmp_path / "corpus", out, tmp_path / "prefect", "--compact"))
    assert {line.split()[0] for line in lines.values()} == {"ok"}
    assert not list(out.glob("videos/*")) and list(out.glob("_compacted/videos/*/part-0.parquet"))
    con = connect(str(out))
    assert sorted(con.execute("SELECT name, status FROM videos").fetchall()) == [
        ("clip0.mp4", "ok"),
        ("clip1.mp4", "ok"),
    ]
    assert con.execute("SELECT count(DISTINCT video_id) FROM faces").fetchone()[0] == 2

    lines = _finish(_run(tmp_path / "corpus", out, tmp_path / "prefect"))
    assert {line.split()[0] for line in lines.values()} == {"skipped"}  # compacted videos are still finished
