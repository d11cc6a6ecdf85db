"""The warm service (flows/warm.py): a plain run leaves it, the next plain run uses it, it leaves by itself.

Real processes throughout: `affectflow run` as a user types it, the detached service with its
Prefect server and Dask worker, `affectflow service status|stop`. Every service started here
is stopped by the test (and leaves after a few idle seconds if the test dies first).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from affectflow.flows import warm

pytestmark = pytest.mark.integration

AFFECTFLOW = str(Path(sys.executable).with_name("affectflow"))
IDLE_S = 20.0  # long enough for the next run to find it, short enough to watch it leave


def clip(folder: Path, name: str = "talk.mp4") -> Path:
    """One real face and two espeak-ng turns (about 5 s): every stage has something to give."""
    from affectflow.tasks.synth.corpus import talking_clip

    talking_clip(folder, name, n_faces=1, n_turns=2)
    return folder


@pytest.fixture
def environ(tmp_path: Path) -> Iterator[dict[str, str]]:
    """This test's environment (its own PREFECT_HOME: its own fingerprint); its services stopped after."""
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "AFFECTFLOW_KEEP_WARM": "on"}
    env["AFFECTFLOW_WARM_IDLE_S"] = str(IDLE_S)
    env.pop("PREFECT_API_URL", None)
    yield env
    service = _find(env)
    if service is not None:
        warm.stop(service)


def _find(env: dict[str, str]) -> warm.Service | None:
    return warm.find(warm.fingerprint(env))


def affectflow(*argv: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AFFECTFLOW, *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def results(out: Path) -> list[tuple[Any, ...]]:
    from affectflow.tasks.query.views import connect

    tables = connect(str(out))
    rows = tables.sql("SELECT frame, track_id, valence, arousal FROM emotions ORDER BY ALL").fetchall()
    return rows + tables.sql("SELECT start, word, speaker FROM words ORDER BY ALL").fetchall()


def flow_runs(api_url: str) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        f"{api_url}/flow_runs/filter", data=b"{}", headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        runs: list[dict[str, Any]] = json.loads(response.read())
    return runs


def test_a_plain_run_leaves_the_service_the_next_uses_it_with_the_same_result_and_it_leaves_when_unused(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    source = clip(tmp_path / "source")
    first = affectflow("run", str(source), "--out", str(tmp_path / "in-process"), "--no-reports", env=environ)
    assert first.returncode == 0, first.stderr
    assert "left a warm service" in first.stderr and "on the warm service" not in first.stderr
    service = warm.wait_for(warm.fingerprint(environ))
    before = len(flow_runs(service.api_url))  # its server shares the PREFECT_HOME database: run 1 is there
    ephemeral_log = Path(environ["PREFECT_HOME"]) / "ephemeral-server.log"
    ephemeral_bytes = ephemeral_log.stat().st_size

    # a relative --out, from another directory than the service's: the run's own directory counts
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    second = affectflow("run", str(source), "--out", "on-service", "--no-reports", env=environ, cwd=elsewhere)
    assert second.returncode == 0, second.stderr
    assert "on the warm service" in second.stderr and "left a warm service" not in second.stderr
    assert len(flow_runs(service.api_url)) == before + 1
    assert ephemeral_log.stat().st_size == ephemeral_bytes, "the run started its own Prefect server"
    in_process, on_service = results(tmp_path / "in-process"), results(elsewhere / "on-service")
    assert on_service == in_process and len(in_process) > 10  # the same frames' V/A and the same words

    status = affectflow("service", "status", env=environ)
    assert status.returncode == 0 and str(service.pid) in status.stdout and "this environment" in status.stdout

    # unused, it leaves by itself: its process, its Prefect server and its state file are gone
    deadline = time.monotonic() + IDLE_S + 60
    while _alive(service.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(service.pid), "the service did not leave when unused"
    assert _find(environ) is None and not warm._listening(service.api_url)


def test_service_start_and_stop(tmp_path: Path, environ: dict[str, str]) -> None:
    started = affectflow("service", "start", env=environ)
    assert started.returncode == 0 and "started" in started.stdout, started.stderr
    service = _find(environ)
    assert service is not None and warm._listening(service.dask_address)
    again = affectflow("service", "start", env=environ)
    assert "already running" in again.stdout and str(service.pid) in again.stdout
    stopped = affectflow("service", "stop", env=environ)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not _alive(service.pid) and _find(environ) is None
    assert affectflow("service", "status", env=environ).returncode == 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie (exited, not yet reaped) is gone for us
        return stat.read().split()[2] != "Z"
