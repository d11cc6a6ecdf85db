"""The team setup, for real: Prefect server + process work pool + `prefect deploy --all` + worker, over S3.

Everything runs as the README tells a team to run it, each in its own process on
127.0.0.1: a Prefect server (temporary home and SQLite DB), a worker on the
`affectflow` pool, and moto's S3-compatible server for the corpus and the tables.
The `folder` deployment is triggered twice over the same prefix (the second run
processes nothing new); the tables are read back with `affectflow sql`; the nightly
schedule is read back from the server. Every process is stopped in teardown.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.servers import S3Server, free_port, s3_server, start, stop, wait_until_healthy

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SOURCE, OUT = "s3://corpus/videos", "s3://results/out"


@dataclass
class Team:
    api: str  # http://127.0.0.1:PORT/api
    env: dict[str, str]
    logs: Path

    def cli(self, *args: str, timeout: float = 120) -> str:
        """Run a command (prefect, affectflow) as a team member would, against this server."""
        done = subprocess.run(
            [str(BIN / args[0]), *args[1:]], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.api}{path}", timeout=10) as response:
            return json.load(response)

    def sql(self, query: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.cli("affectflow", "sql", "--out", OUT, "--format", "csv", query))))

    def run_folder_deployment(self) -> dict[str, Any]:
        """`prefect deployment run 'process-corpus/folder' -p source=… -p out=…`; wait for a final state."""
        text = self.cli(
            "prefect", "deployment", "run", "process-corpus/folder", "-p", f"source={SOURCE}", "-p", f"out={OUT}"
        )
        match = re.search(r"UUID:\s*([0-9a-f-]{36})", text)
        assert match, text
        return self.wait(match.group(1))

    def wait(self, flow_run_id: str, timeout_s: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = self.get(f"/flow_runs/{flow_run_id}")
            if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                return dict(run)
            time.sleep(1)
        raise TimeoutError(f"flow run {flow_run_id} not finished after {timeout_s:g} s:\n{self.worker_log()}")

    def worker_log(self) -> str:
        return (self.logs / "worker.log").read_text()[-4000:]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def team(s3: S3Server, corpus) -> Iterator[Team]:  # type: ignore[no-untyped-def]
    """Server up, pool created, deployments deployed, worker polling; one short clip on S3."""
    s3.bucket("corpus")
    s3.bucket("results")
    s3.upload([corpus.root / "no_audio.mp4"], SOURCE)  # 3 s, one face: the smallest real clip
    home = Path(tempfile.mkdtemp(prefix="affectflow-team-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_CLI_PROMPT": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "AFFECTFLOW_SOURCE": SOURCE,
        "AFFECTFLOW_OUT": OUT,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    team = Team(env["PREFECT_API_URL"], env, home)
    server = start(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, home / "server.log"
    )
    worker = None
    try:
        wait_until_healthy(f"{team.api}/health", server, home / "server.log")
        team.cli("prefect", "work-pool", "create", "affectflow", "--type", "process")
        team.cli("prefect", "concurrency-limit", "create", "gpu", "1")  # the README's one GPU per server
        team.cli("prefect", "--no-prompt", "deploy", "--all")
        worker = start(
            [str(BIN / "prefect"), "worker", "start", "--pool", "affectflow"], env, home / "worker.log", cwd=ROOT
        )
        yield team
    finally:
        for process in (worker, server):
            if process is not None:
                stop(process)
        shutil.rmtree(home, ignore_errors=True)


def test_folder_deployment_processes_a_prefix_on_s3_then_skips_it(team: Team) -> None:
    first = team.run_folder_deployment()
    assert first["state"]["type"] == "COMPLETED", team.worker_log()
    videos = team.sql("SELECT name, status FROM videos")
    assert videos == [{"name": "no_audio.mp4", "status": "ok"}]
    assert int(team.sql("SELECT count(*) AS n FROM emotions")[0]["n"]) > 0

    second = team.run_folder_deployment()
    assert second["state"]["type"] == "COMPLETED", team.worker_log()
    runs = team.sql("SELECT run_id, n_ok, n_failed, n_skipped FROM runs ORDER BY started")
    assert [r["run_id"] for r in runs] == [first["id"], second["id"]]  # the runs table keys by flow run
    assert [(r["n_ok"], r["n_skipped"]) for r in runs] == [("1", "0"), ("0", "1")]


def test_gpu_tag_limit_is_in_force_on_the_server(team: Team) -> None:
    limit = team.get("/concurrency_limits/tag/gpu")
    assert (limit["tag"], limit["concurrency_limit"]) == ("gpu", 1)


def test_nightly_schedule_as_deployed_is_a_cron_in_paris(team: Team) -> None:
    from cronsim import CronSim
    from prefect.client.schemas.schedules import CronSchedule

    deployment = team.get("/deployments/name/process-corpus/nightly-corpus")
    (schedule,) = [s["schedule"] for s in deployment["schedules"] if s["active"]]
    CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])  # Prefect's own validation
    assert schedule["timezone"] == "Europe/Paris"
    fire = next(CronSim(schedule["cron"], datetime(2026, 6, 1, 12, tzinfo=ZoneInfo(schedule["timezone"]))))
    assert (fire.day, fire.hour, fire.minute) == (2, 2, 0)
    assert deployment["parameters"] == {"source": SOURCE, "out": OUT, "workers": 2, "compact": True}  # compacts nightly
    assert deployment["work_pool_name"] == "affectflow"
