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
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from prefect.futures import PrefectFuture

from affectflow.flows.video import VideoResult, process_video_task, run_video
from affectflow.tasks.settings import env_name, settings

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

        def submit(*args: Any) -> PrefectFuture[VideoResult]:
            parameters = dict(inspect.signature(run_video).bind(*args).arguments)
            return runner.submit(process_video_task, parameters=parameters)

        yield submit


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
