"""Benchmark: what each command costs before it does any work (issue 23, item 1).

    .venv/bin/python benchmarks/bench_startup.py [--repeat 3]

Measured as a user meets it, each command in a fresh process (`affectflow` from this venv):

- ``affectflow --help`` and ``affectflow sql --out OUT "SELECT count(*) FROM emotions"`` over a
  small output root (20 one-minute videos by tests/tablegen.py): target < 1.5 s each;
- loading the models of every stage alone, and decoding the clip's first frame alone (probe
  and ffmpeg's start), each in a fresh interpreter: with the server's start-up, the parts of a
  run's fixed cost;
- Prefect's ephemeral server start-up alone (``flows.runner.start_ephemeral_server`` in a fresh
  interpreter, until it answers), with a new ``PREFECT_HOME`` (cold: the database is created and
  migrated) and with the same one again (warm);
- ``affectflow run`` on one 3 s clip, ``--stages none`` (Prefect, discovery, staging, probe and
  the commit: everything but the models) and with every stage (adds loading the models and
  analysing 3 s), cold and warm; the time to the first video's progress line is read from
  stderr as it arrives. Target: first video ≤ 5 s once the machine has run once (warm);
- the same runs against a running local Prefect server (``prefect server start``, then
  ``PREFECT_API_URL``): what a machine that runs affectflow every night keeps up;
- every stage against that server and a long-lived Dask worker (``dask scheduler`` +
  ``dask worker``, ``--dask-address``) that has run one video before: the worker keeps the
  models loaded between runs, so a run pays neither the server start nor the model load;
- first of all, plain runs as they are by default (flows/warm.py): the first leaves the warm
  service, the next ones use it. Every other row runs with ``AFFECTFLOW_KEEP_WARM=off``
  (``--only-warm``: this row alone).

Every figure is a median over ``--repeat`` runs (cold ones: each with its own new
``PREFECT_HOME``), printed with the load average: on a shared machine they are upper bounds.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AFFECTFLOW = str(Path(sys.executable).with_name("affectflow"))
CLI_TARGET_S = 1.5
FIRST_VIDEO_TARGET_S = 5.0
DONE_LINE = re.compile(r"^\s*(ok|failed)\s+[\d.]+s\s+clip\.mp4")
MODELS_PROBE = "import time; t = time.perf_counter(); from affectflow.tasks.config import PipelineConfig; from affectflow.flows.stages import load_models; load_models(PipelineConfig()); print(time.perf_counter() - t)"
FRAME_PROBE = "import sys, time; from pathlib import Path; t = time.perf_counter(); from affectflow.tasks.media.probe import probe; from affectflow.tasks.media.frames import iter_frames; clip = Path(sys.argv[1]); next(iter(iter_frames(clip, probe(clip), 5.0))); print(time.perf_counter() - t)"
SERVER_PROBE = "import time; t = time.perf_counter(); from affectflow.flows.runner import start_ephemeral_server; start_ephemeral_server(); print(time.perf_counter() - t)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument("--only-warm", action="store_true", help="only the default plain runs with the warm service")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="affectflow-startup-"))
    try:
        out = small_root(work / "sql-root")
        clip = make_clip(work / "source")
        print(f"load average at start: {os.getloadavg()[0]:.2f}")
        warm_service_runs(clip, work, args.repeat)
        if args.only_warm:
            return
        report("affectflow --help", [timed([AFFECTFLOW, "--help"]) for _ in range(args.repeat)], CLI_TARGET_S)
        sql = [AFFECTFLOW, "sql", "--out", out, "SELECT count(*) FROM emotions"]
        report("affectflow sql (count over 20 videos)", [timed(sql) for _ in range(args.repeat)], CLI_TARGET_S)

        report(
            "models of every stage loaded (fresh interpreter)",
            [probe_s(MODELS_PROBE) for _ in range(args.repeat)],
            None,
        )
        first_frame = [probe_s(FRAME_PROBE, str(clip / "clip.mp4")) for _ in range(args.repeat)]
        report("first frame of the clip decoded (fresh interpreter)", first_frame, None)
        homes = [work / f"prefect-cold-{i}" for i in range(args.repeat)]
        report("Prefect ephemeral server, cold", [server_start(home) for home in homes], None)
        report("Prefect ephemeral server, warm", [server_start(homes[0]) for _ in range(args.repeat)], None)

        for stages in ("none", "all"):
            option = ["--stages", "none"] if stages == "none" else []
            cold = [first_video(clip, work / f"out-{stages}-cold-{i}", work / f"home-{stages}-{i}", option)
                    for i in range(args.repeat)]  # fmt: skip
            warm = [first_video(clip, work / f"out-{stages}-warm-{i}", work / f"home-{stages}-0", option)
                    for i in range(args.repeat)]  # fmt: skip
            for label, runs in (("cold", cold), ("warm", warm)):
                report(f"run --stages {stages}, {label}: first video line", [r[0] for r in runs],
                       FIRST_VIDEO_TARGET_S if label == "warm" else None)  # fmt: skip
                report(f"run --stages {stages}, {label}: whole command", [r[1] for r in runs], None)
        with running_server(work / "server-home") as api:
            for stages in ("none", "all"):
                option = ["--stages", "none"] if stages == "none" else []
                runs = [first_video(clip, work / f"out-{stages}-server-{i}", work / "server-home", option, api)
                        for i in range(args.repeat)]  # fmt: skip
                report(
                    f"run --stages {stages}, running server: first video", [r[0] for r in runs], FIRST_VIDEO_TARGET_S
                )
                report(f"run --stages {stages}, running server: whole command", [r[1] for r in runs], None)
            with dask_worker(work / "dask", api) as address:
                option = ["--dask-address", address]
                first_video(
                    clip, work / "out-dask-first", work / "server-home", option, api
                )  # the worker loads its models
                runs = [first_video(clip, work / f"out-dask-{i}", work / "server-home", option, api)
                        for i in range(args.repeat)]  # fmt: skip
                report(
                    "run, running server + warm Dask worker: first video", [r[0] for r in runs], FIRST_VIDEO_TARGET_S
                )
                report("run, running server + warm Dask worker: whole command", [r[1] for r in runs], None)
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def small_root(root: Path) -> str:
    from affectflow.tasks.storage.store import Store
    from tests.tablegen import write_video

    store = Store(str(root))
    for i in range(20):
        write_video(store, f"startup{i:09d}", duration_s=60.0, seed=i)
    return str(root)


def make_clip(folder: Path) -> Path:
    """3 s of a test pattern with a tone: real media, no model needed to read it."""
    folder.mkdir(parents=True)
    clip = folder / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-shortest", "-pix_fmt", "yuv420p", str(clip)],
        check=True,
    )  # fmt: skip
    return folder


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def probe_s(code: str, *argv: str) -> float:
    """The seconds ``code`` prints as its last line, run in a fresh interpreter: what one step costs a new process."""
    done = subprocess.run([sys.executable, "-c", code, *argv], check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def server_start(home: Path) -> float:
    """Seconds until Prefect's ephemeral server answers, in a fresh interpreter with ``PREFECT_HOME=home``."""
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run([sys.executable, "-c", SERVER_PROBE], check=True, capture_output=True, text=True, env=env)
    return float(done.stdout.strip().splitlines()[-1])


@contextmanager
def running_server(home: Path) -> Iterator[str]:
    """A local ``prefect server start`` on 127.0.0.1 (what a nightly machine keeps running); its API URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    argv = [
        str(Path(sys.executable).with_name("prefect")),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit("prefect server did not answer in 120 s")
        yield api
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@contextmanager
def dask_worker(folder: Path, api: str) -> Iterator[str]:
    """A ``dask scheduler`` and one ``dask worker`` (one thread) on 127.0.0.1 that report to ``api``; the address."""
    from tests.servers import dask_cluster

    folder.mkdir(parents=True)
    with dask_cluster(folder, {**os.environ, "PREFECT_API_URL": api}) as address:
        yield address


def run_env(home: Path, keep_warm: bool = False) -> dict[str, str]:
    """A run's environment; ``keep_warm``: the default, a plain run leaves and uses the warm service."""
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}
    env["AFFECTFLOW_KEEP_WARM"] = "on" if keep_warm else "off"
    env.pop("PREFECT_API_URL", None)
    return env


def first_video(
    source: Path, out: Path, home: Path, options: list[str], api: str | None = None, keep_warm: bool = False
) -> tuple[float, float]:
    """(seconds to the first video's line on stderr, seconds of the whole command) for one `affectflow run`.

    ``api``: the URL of a running Prefect server to use (else Prefect's ephemeral one is started).
    """
    env = run_env(home, keep_warm)
    if api:
        env["PREFECT_API_URL"] = api
    argv = [AFFECTFLOW, "run", str(source), "--out", str(out), "--no-reports", *options]
    started = time.perf_counter()
    first = None
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env) as child:
        assert child.stderr is not None
        for line in child.stderr:
            if first is None and DONE_LINE.match(line):  # "     ok    2.1s  clip.mp4" (flows/runner._line)
                first = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"affectflow run exited {child.returncode}: {' '.join(argv)}")
    whole = time.perf_counter() - started
    return (first if first is not None else whole), whole


def warm_service_runs(clip: Path, work: Path, repeat: int) -> None:
    """Plain `affectflow run`s as they are by default: the first leaves the warm service, the next use it."""
    from affectflow.flows import warm

    home = work / "home-service"
    env = run_env(home, keep_warm=True)
    first = first_video(clip, work / "out-service-first", home, [], keep_warm=True)
    report("run (every stage), plain, first on the machine: leaves the warm service", [first[0]], None)
    started = time.perf_counter()
    service = warm.wait_for(warm.fingerprint(env))
    print(f"  the service was up {time.perf_counter() - started:.1f} s after that run ended")
    try:
        runs = [first_video(clip, work / f"out-service-{i}", home, [], keep_warm=True) for i in range(repeat)]
        report("run (every stage), plain, warm service: first video line", [r[0] for r in runs], FIRST_VIDEO_TARGET_S)
        report("run (every stage), plain, warm service: whole command", [r[1] for r in runs], None)
    finally:
        warm.stop(service)


def report(label: str, seconds: list[float], target: float | None) -> None:
    median = statistics.median(seconds)
    verdict = "" if target is None else f"  target < {target:g} s: {'met' if median < target else 'NOT met'}"
    runs = ", ".join(f"{s:.2f}" for s in seconds)
    print(f"{label:<48} {median:6.2f} s  ({runs}; load {os.getloadavg()[0]:.2f}){verdict}", flush=True)


if __name__ == "__main__":
    main()
