"""The warm service: a Prefect server and a Dask worker that keep their start-up and the models between runs.

A plain ``affectflow run`` pays before its first video Prefect's ephemeral server start-up
(5.4 s on 2 cores, used before) and the models' loading (6.8 s), 10.8 s in all
(benchmarks/bench_startup.py), and the same again in every run. So after a run that analysed
videos the CLI leaves this service in the background (``AFFECTFLOW_KEEP_WARM=off``: never),
and the next plain run on the machine sends its videos to it. The service leaves by itself
once no run has used it for ``AFFECTFLOW_WARM_IDLE_S`` (600 s), or on ``affectflow service stop``.

One service per *fingerprint*: the Python, affectflow's code, and the environment variables
that change what a video gives or where it is read and written (``AFFECTFLOW_*``, ``AWS_*``,
``PATH`` for ffmpeg, thread counts, caches). A run with another fingerprint never uses it:
its videos would be analysed with other models or credentials.

The service is one supervisor process (this module's ``serve``) holding a lock file for its
life, Prefect's server as its child, a Dask scheduler in it and one Dask worker process with
the models (``flows/scaleout.py`` runs the videos there, stop and progress relayed).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from affectflow.tasks.settings import settings

DEFAULT_IDLE_S = 600.0
START_TIMEOUT_S = 120.0  # a cold Prefect server (new database) took 9.8 s on 2 cores; margin for a busy machine
POLL_S = 2.0  # how often the supervisor looks for activity
# what changes a video's result, or where it is read from and written to (not the bar, not logging)
FINGERPRINT_PREFIXES = ("AFFECTFLOW_", "AWS_", "HF_", "TORCH_", "CUDA_", "ORT_")
FINGERPRINT_NAMES = (
    "PATH", "PREFECT_HOME", "PREFECT_API_KEY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
    "XDG_CACHE_HOME", "HOME", "TMPDIR",
)  # fmt: skip
CHECKOUT = Path(__file__).resolve().parent.parent  # flows/, tasks/, model/
NOT_FINGERPRINTED = ("AFFECTFLOW_PROGRESS", "AFFECTFLOW_KEEP_WARM", "AFFECTFLOW_WARM_IDLE_S")


@dataclass(frozen=True)
class Service:
    """A running warm service, as its state file records it."""

    pid: int  # the supervisor
    api_url: str  # its Prefect server
    dask_address: str  # its Dask scheduler
    fingerprint: str
    started: float  # epoch seconds
    idle_exit_s: float
    log: str

    def describe(self) -> str:
        age = time.time() - self.started
        return f"pid {self.pid}, up {age / 60:.0f} min, Prefect {self.api_url}, Dask {self.dask_address}"


def fingerprint(environ: dict[str, str] | None = None) -> str:
    """What a service must share with a run to analyse its videos exactly as the run itself would."""
    env = dict(os.environ if environ is None else environ)
    chosen = {
        name: value
        for name, value in sorted(env.items())
        if (name.startswith(FINGERPRINT_PREFIXES) or name in FINGERPRINT_NAMES) and name not in NOT_FINGERPRINTED
    }
    return hashlib.sha256(
        json.dumps({"python": sys.executable, "code": code_stamp(), "env": chosen}, sort_keys=True).encode()
    ).hexdigest()


def code_stamp(root: Path = CHECKOUT) -> str:
    """affectflow's version and its source files' sizes and times: an edited checkout is another service."""
    from affectflow.tasks.config import pipeline_version

    files = sorted(p for d in ("flows", "tasks", "model") for p in (root / d).rglob("*.py"))
    stamp = hashlib.sha256(pipeline_version().encode())
    for path in files:
        stat = path.stat()
        stamp.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return stamp.hexdigest()


def state_dir() -> Path:
    return settings().cache() / "warm"


def _paths(print_: str) -> tuple[Path, Path, Path]:
    """The state file, lock file and log of the service of fingerprint ``print_``."""
    base = state_dir() / print_[:16]
    return base.with_suffix(".json"), base.with_suffix(".lock"), base.with_suffix(".log")


def enabled() -> bool:
    return (settings().keep_warm or "on") == "on"


def idle_exit_s() -> float:
    return settings().warm_idle_s or DEFAULT_IDLE_S


def find(print_: str | None = None) -> Service | None:
    """The running service of this process's fingerprint (or ``print_``'s), or None.

    A state file whose supervisor is gone (killed outright, so it could not remove it) is removed.
    """
    print_ = print_ or fingerprint()
    state, lock_path, _ = _paths(print_)
    if (service := _read(state)) is None:
        return None
    if service.fingerprint == print_ and _alive(service):
        return service
    if not _locked(lock_path):  # no supervisor holds it: nobody will ever answer there
        state.unlink(missing_ok=True)
    return None


def _read(state: Path) -> Service | None:
    """The service a state file records; None for a missing, half-written or foreign file."""
    try:
        return Service(**json.loads(state.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _alive(service: Service) -> bool:
    try:
        os.kill(service.pid, 0)
    except OSError:
        return False
    return all(_listening(url) for url in (service.dask_address, service.api_url))


def _listening(url: str) -> bool:
    host_port = url.split("://", 1)[-1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def start_in_background() -> Path | None:
    """Start this fingerprint's service detached from this process; its log, None if one runs or starts.

    It outlives the run: its own session, no terminal, no parent death signal. The supervisor
    holds the lock file for its life, so a second one started meanwhile leaves at once.
    """
    print_ = fingerprint()
    _, lock_path, log = _paths(print_)
    log.parent.mkdir(parents=True, exist_ok=True)
    if _locked(lock_path):
        return None
    with open(log, "ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "affectflow.flows.warm", "serve", print_, str(idle_exit_s())],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=log.parent,
        )
    return log


def _locked(lock_path: Path) -> bool:
    """Whether a supervisor holds ``lock_path`` (a service runs or is starting)."""
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False


def wait_for(print_: str | None = None, timeout_s: float = START_TIMEOUT_S) -> Service:
    """The service once its state file says it is up; TimeoutError after ``timeout_s``."""
    print_ = print_ or fingerprint()
    deadline = time.monotonic() + timeout_s
    while (service := find(print_)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the warm service did not start in {timeout_s:g} s (see {_paths(print_)[2]})")
        time.sleep(0.2)
    return service


def stop(service: Service, timeout_s: float = 30.0) -> bool:
    """SIGTERM the supervisor and wait for it to be gone; False if it outlived ``timeout_s``."""
    try:
        os.kill(service.pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(service.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def running() -> Iterator[Service]:
    """Every live service of this machine's cache (any fingerprint)."""
    for state in sorted(state_dir().glob("*.json")):
        if (service := _read(state)) is not None and _alive(service):
            yield service


# --- the supervisor --------------------------------------------------------------------------------


def serve(print_: str, idle_s: float) -> int:
    """Run the service until it has been idle ``idle_s`` seconds or gets SIGTERM; 0, or 1 if one runs."""
    state, lock_path, log = _paths(print_)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(lock_path, "w")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("another warm service of this fingerprint runs or starts; leaving", flush=True)
        return 1
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    import dask
    from distributed import Client, LocalCluster
    from prefect.server.api.server import SubprocessASGIServer

    from affectflow.flows.scaleout import local_cluster_kwargs

    server = SubprocessASGIServer(port=_free_port())
    server.start(timeout=int(START_TIMEOUT_S))
    # the worker's threads as a run's own process has them: Dask would set OMP_NUM_THREADS=1, and
    # floats depend on threads per process (tests/test_dask.py); the runs bound videos in flight
    cluster_kwargs = local_cluster_kwargs(1) | {"threads_per_worker": max(4, os.cpu_count() or 1)}
    cluster_kwargs["env"] = {"PREFECT_API_URL": server.api_url}
    dask.config.set({"distributed.nanny.pre-spawn-environ": {}})  # for the life of the service (restarts too)
    cluster = LocalCluster(**cluster_kwargs)
    client = Client(cluster)
    try:
        client.run(_load_default_models)
        service = Service(os.getpid(), server.api_url, cluster.scheduler_address, print_, time.time(), idle_s, str(log))
        _write_atomically(state, json.dumps(asdict(service)))
        print(f"warm service up: {service.describe()}; leaves after {idle_s:g} s unused", flush=True)
        last_used = time.monotonic()
        while not stopping.wait(POLL_S):
            if _in_use(cluster, client.id):
                last_used = time.monotonic()
            elif time.monotonic() - last_used > idle_s:
                print(f"unused for {idle_s:g} s; leaving", flush=True)
                break
    finally:
        state.unlink(missing_ok=True)
        client.close()
        cluster.close()
        server.stop()
        print("warm service stopped", flush=True)
    return 0


def _load_default_models() -> list[str]:
    from affectflow.flows.stages import load_models
    from affectflow.tasks.config import PipelineConfig

    return load_models(PipelineConfig())


def _in_use(cluster: Any, own_client: str) -> bool:
    """A run is connected (a Dask client of its own) or a task is on the scheduler."""
    scheduler = cluster.scheduler
    # not runs: the scheduler's "fire-and-forget", ours, and the worker's own (``get_client`` in a task)
    runs = [
        c for c in scheduler.clients if c not in ("fire-and-forget", own_client) and not c.startswith("Client-worker-")
    ]
    return bool(runs or scheduler.tasks)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_atomically(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        sys.exit(serve(sys.argv[2], float(sys.argv[3])))
    sys.exit("usage: python -m affectflow.flows.warm serve FINGERPRINT IDLE_S")
