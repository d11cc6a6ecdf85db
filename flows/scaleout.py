"""Where the per-video tasks run: the corpus flow's own threads, or a Dask cluster (prefect-dask).

The choice is a flow parameter (``dask_address``, ``dask_local_workers``; CLI
``--dask-address`` / ``--dask-local``) or ``AFFECTFLOW_DASK_ADDRESS`` in the environment
of the process that runs the flow (a Prefect worker), so a deployment can use it too.
The flow itself (discover, skip check, runs row) stays in its process; only the
``process-video`` tasks go to the cluster. Models load once per process
(``lru_cache`` in each backend), so each Dask worker process loads them once and
reuses them for every video it is given.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from affectflow.flows.video import VideoResult, process_video_task, run_video
from affectflow.tasks.progress import PROGRESS, Interrupted, StopRequest, repeating, stopped_by
from affectflow.tasks.settings import env_name, settings

logger = logging.getLogger("affectflow")
STOP_POLL_S = 0.5  # how often a video on a Dask worker asks whether its run was stopped
PROGRESS_RELAY_S = 1.0  # how often a video on a Dask worker sends its stage, and the run reads them
DONE = "done"  # a video's last progress entry: it has ended

DASK_ADDRESS_ENV = env_name("dask_address")

Submit = Callable[..., PrefectFuture[VideoResult]]  # run_video's arguments -> a future


@contextmanager
def video_submitter(dask_address: str | None = None, dask_local_workers: int = 0) -> Iterator[Submit]:
    """A ``submit(*run_video_args)`` for the chosen runner, open for the duration of the block."""
    runner = dask_runner(dask_address or settings().dask_address, dask_local_workers)
    if runner is None:
        yield process_video_task.submit
        return
    with runner:
        run = uuid.uuid4().hex
        stop_event = f"affectflow-stop-{run}"  # this run's, on the cluster's scheduler
        relay = ProgressRelay(runner.client, run)

        def submit(*args: Any) -> PrefectFuture[VideoResult]:
            video = dict(inspect.signature(run_video).bind(*args).arguments)
            progress = relay.watch(video["source"].name)
            parameters = {"stop_event": stop_event, "video": video, "progress": progress}
            return runner.submit(process_video_on_dask, parameters=parameters)

        try:
            with repeating(PROGRESS_RELAY_S, relay.poll, "affectflow-dask-progress"):
                yield submit
        except BaseException:  # a signal (or an error) ends the run here: its videos on the cluster stop too
            _relay_stop(stop_event, runner.client)
            raise
        finally:
            relay.forget_all()


class ProgressRelay:
    """The stage progress of this run's videos on Dask workers, copied into this process's PROGRESS.

    The hooks of a video on a worker write the worker's registry; the CLI bar and the Prefect
    progress artifact read this process's. Each video's worker puts its entry in the
    scheduler's metadata under the run's key every ``PROGRESS_RELAY_S`` (``run_video_until_stopped``),
    ``DONE`` at its end; this reads the run's key in one call per poll.
    """

    def __init__(self, client: Any, run: str) -> None:
        self.client = client
        self.key = f"affectflow-progress-{run}"
        self.videos: dict[str, str] = {}  # the video's slot under the key -> its name in PROGRESS
        self._lock = threading.Lock()

    def watch(self, video_name: str) -> list[str]:
        """The metadata path a video's worker reports to (a slot of its own: two videos may share a name)."""
        slot = uuid.uuid4().hex[:12]
        with self._lock:
            self.videos[slot] = video_name
        return [self.key, slot]

    def poll(self) -> None:
        try:
            entries = self.client.get_metadata([self.key], default={})
        except Exception:  # noqa: BLE001 - a scheduler gone: the run's own wait reports it
            return
        with self._lock:
            watched = dict(self.videos)
        for slot, name in watched.items():
            entry = entries.get(slot)
            if entry == DONE:
                PROGRESS.clear(name)
                with self._lock:
                    self.videos.pop(slot, None)
            elif entry:
                step, completed, total = entry
                PROGRESS.report(name, step, completed, total)

    def forget_all(self) -> None:
        for name in self.videos.values():
            PROGRESS.clear(name)
        with suppress(Exception):  # best effort: a few bytes left on a scheduler that went away
            self.client.run_on_scheduler(_drop_metadata, key=self.key)


def _drop_metadata(key: str, dask_scheduler: Any = None) -> None:
    dask_scheduler.metadata.pop(key, None)


def run_video_until_stopped(stop_event: str, video: dict[str, Any], progress: list[str] | None = None) -> VideoResult:
    """``run_video(**video)`` on a Dask worker, stopped at its next step once its run is.

    A signal reaches the run's client, not the workers: without this, a worker of a remote
    cluster finishes and commits the video the run was stopped in. The client sets the run's
    Dask ``Event`` (``video_submitter``); the video polls it and obeys it as it obeys a signal:
    nothing of it is written and its lease is released, so the next run redoes it.
    """
    from distributed import Event, get_client

    client = get_client()  # the worker's client, found from the task's thread only
    event = Event(stop_event, client=client)
    request = StopRequest()

    def poll() -> None:
        try:
            if not request.requested and event.is_set():
                request.request(signal.SIGINT)  # which signal the client got is not relayed
        except Exception as err:  # noqa: BLE001 - a scheduler that went away: the video goes on
            logger.debug("cannot read the run's stop event %s: %s", stop_event, err)

    def publish() -> None:  # this video's stage, for the run's bar (ProgressRelay)
        if progress and (entry := PROGRESS.snapshot().get(video["source"].name)):
            with suppress(Exception):  # a scheduler that went away: the video goes on
                client.set_metadata(progress, list(entry))

    with stopped_by(request), repeating(STOP_POLL_S, poll, "affectflow-dask-stop"):
        try:
            with repeating(PROGRESS_RELAY_S, publish, "affectflow-dask-progress"):
                return run_video(**video)
        except Interrupted:  # the client has gone; this result is for the worker's log only
            return VideoResult(video["source"].uri, "failed", error="interrupted: its run was stopped, nothing written")
        finally:
            if progress:
                with suppress(Exception):
                    client.set_metadata(progress, DONE)


process_video_on_dask = task(name="process-video", cache_policy=NO_CACHE)(run_video_until_stopped)


def _relay_stop(stop_event: str, client: Any) -> None:
    """Set the run's stop event on the cluster (best effort: a cluster already gone stops nothing)."""
    try:
        from distributed import Event

        Event(stop_event, client=client).set()
    except Exception as err:  # noqa: BLE001 - the run is ending with its own error or signal
        logger.warning("could not stop the run's videos on the Dask cluster: %s", err)


def dask_runner(address: str | None, local_workers: int) -> Any:
    """A DaskTaskRunner on a running cluster (``address``) or a temporary LocalCluster; None for neither."""
    if not address and local_workers < 1:
        return None
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as err:
        raise RuntimeError("Dask scale-out needs the dask extra: pip install -e '.[dask]'") from err
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs=local_cluster_kwargs(local_workers))


def local_cluster_kwargs(n_workers: int) -> dict[str, Any]:
    """One process per worker (its own model cache), the machine's cores shared out between them.

    Dask sets OMP_NUM_THREADS=1 in its workers by default; torch and the ONNX/OpenCV
    backends would then use one core each, so each worker gets cores // n_workers.
    """
    threads = str(max(1, (os.cpu_count() or 1) // n_workers))
    return {
        "n_workers": n_workers,
        "threads_per_worker": 1,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": None,
        "env": {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads},
    }
