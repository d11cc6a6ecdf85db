"""Real servers on 127.0.0.1 for integration tests: an S3-compatible object store, Prefect and Dask.

Each is a context manager that stops what it started (whole process groups for
subprocesses) and restores the environment it changed, so test modules wrap them in
their own module-scoped fixtures.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables; put the old values back afterwards."""
    old = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            _set(name, value)
        yield
    finally:
        for name, value in old.items():
            _set(name, value)


def _set(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def forget_s3_clients() -> None:
    """s3fs caches filesystems by arguments, not environment: drop them when the environment changes."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    @property
    def env(self) -> dict[str, str | None]:
        """The standard AWS variables that point every client (boto3, s3fs, a worker) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "affectflow-test",
            "AWS_SECRET_ACCESS_KEY": "affectflow-test-secret",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",  # never ask a cloud metadata service for credentials
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,  # a developer's ~/.aws must not leak in
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_PROFILE": None,
            "AWS_SESSION_TOKEN": None,
        }

    def reset(self) -> None:
        """Forget every bucket (moto's own reset endpoint)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def bucket(self, name: str) -> str:
        """Create a bucket; return its URL."""
        import s3fs

        s3fs.S3FileSystem().mkdir(name)
        return f"s3://{name}"

    def upload(self, files: list[Path], prefix: str) -> None:
        import s3fs

        fs = s3fs.S3FileSystem()
        for path in files:
            fs.put_file(str(path), f"{prefix.removeprefix('s3://').rstrip('/')}/{path.name}")

    def keys(self, prefix: str) -> list[str]:
        import s3fs

        fs = s3fs.S3FileSystem()
        fs.invalidate_cache()
        path = prefix.removeprefix("s3://")
        return sorted(key.removeprefix(path).lstrip("/") for key in fs.find(path)) if fs.exists(path) else []


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """moto's S3-compatible HTTP server on a free local port, with the AWS variables pointing at it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3 = S3Server(f"http://127.0.0.1:{port}")
    s3.reset()  # moto keeps its buckets per Python process, not per server: start empty
    try:
        with environment(s3.env):
            forget_s3_clients()
            yield s3
    finally:
        forget_s3_clients()
        server.stop()


# -- subprocesses (Prefect server, worker) ------------------------------------------------------


def start(command: list[str], env: Mapping[str, str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own process group (so ``stop`` reaches its children), output to ``log``."""
    with open(log, "wb") as handle:
        return subprocess.Popen(
            command, env=dict(env), cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``grace_s``."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(grace_s)
    _signal_group(process, signal.SIGKILL)  # children that outlived their parent
    process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 120.0) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it dies or never answers."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not healthy after {timeout_s:g} s:\n{log.read_text()[-3000:]}")


@contextmanager
def dask_cluster(folder: Path, env: Mapping[str, str] | None = None, timeout_s: float = 120.0) -> Iterator[str]:
    """A ``dask scheduler`` and one one-thread ``dask worker`` on 127.0.0.1 (real processes); the scheduler's address.

    ``env``: the worker's environment (e.g. the ``PREFECT_API_URL`` its task runs report to).
    Logs go to ``folder``; both are stopped at the end.
    """
    import json
    import sys

    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    environ = dict(env or os.environ)
    file = folder / "scheduler.json"
    scheduler_argv = [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(file)]
    processes = [start([*scheduler_argv, "--no-dashboard"], environ, folder / "scheduler.log")]
    try:
        deadline = time.monotonic() + timeout_s
        while not (file.exists() and file.stat().st_size):
            if time.monotonic() > deadline or processes[0].poll() is not None:
                raise RuntimeError(f"dask scheduler did not start:\n{(folder / 'scheduler.log').read_text()[-3000:]}")
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        worker_argv = [dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard"]
        processes.append(start(worker_argv, environ, folder / "worker.log"))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=timeout_s)
        yield address
    finally:
        for process in processes[::-1]:
            stop(process)
