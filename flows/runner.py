"""Run the corpus flow from the command line: a progress bar, a printed summary, and clean stops.

SIGINT and SIGTERM stop the run within a progress step: the handler raises
:class:`~affectflow.tasks.progress.Interrupted` in the main thread (the flow) and sets
``STOP``, which the running videos' hooks see, so nothing in flight is committed; Prefect's
ephemeral server, started here in its own process group so that a Ctrl-C to the terminal's
group does not kill it under the flow, is stopped at exit (and dies with this process if it
is killed outright).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout, suppress
from functools import partial
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from affectflow.flows.corpus import (
    Preflight,
    RunSummary,
    flow_parameters,
    pipeline_config,
    preflight,
    preflight_done,
    process_corpus,
    video_done_listener,
)
from affectflow.flows.parameters import UsageError
from affectflow.flows.video import VideoResult, is_finished
from affectflow.tasks.config import PipelineConfig
from affectflow.tasks.progress import PROGRESS, STOP, Interrupted, StageProgress, describe, repeating
from affectflow.tasks.settings import settings
from affectflow.tasks.storage.store import Store

if TYPE_CHECKING:
    from affectflow.flows.warm import Service

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
POSTFIX = "affectflow-stage-postfix"  # the thread that draws the running stages into the bar
PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal a child gets when its parent dies


def run_with_progress(source: str, out: str, *, warm: bool = False, **options: Any) -> RunSummary:
    """Run ``process-corpus`` in this process and print one line per video and a summary.

    ``warm`` (``affectflow run``): a plain run (no Prefect server, no Dask cluster of its own)
    sends its videos to this machine's warm service when one runs, and leaves one for the next
    run when none did (flows/warm.py). A bad option value is a usage error: ``UsageError``.
    """
    try:
        config = pipeline_config(flow_parameters(source, out, **options))
    except ValueError as err:
        raise UsageError(str(err)) from None
    checked = preflight(source, out, config)  # before Prefect starts: a second, not a server start-up
    plain = warm and _plain(options)
    service = _warm_service() if plain else None
    if service is not None:
        source, out, options = _on_service(service, source, out, options)
    # tqdm's disable=None: a bar (with its stage postfix) only when stderr is a terminal
    disable = {"always": False, "never": True}.get(settings().progress or "auto")
    bar = tqdm(total=0, unit="video", desc="videos", file=sys.stderr, disable=disable, dynamic_ncols=True)

    def on_video_done(result: VideoResult, done: int, total: int) -> None:
        bar.total = total
        bar.update(1)
        bar.write(_line(result), file=sys.stderr)

    tokens = video_done_listener.set(on_video_done), preflight_done.set(checked)
    try:
        with stop_on_signals(), logs_to_stderr(), stage_postfix(bar, PROGRESS), _prefect_of(service):
            with models_loading(config if _needs_models(config, checked, options) else None):
                start_ephemeral_server()
            summary: RunSummary = process_corpus(source, out, **options)
    finally:
        video_done_listener.reset(tokens[0])
        preflight_done.reset(tokens[1])
        bar.close()
    print_summary(summary)
    if plain and service is None and config.stages and summary.count("ok") + summary.count("failed"):
        _leave_warm_service()
    return summary


def _plain(options: dict[str, Any]) -> bool:
    """No Prefect server and no Dask cluster chosen: what the warm service stands in for."""
    from prefect.settings import PREFECT_API_URL

    chosen = options.get("dask_address") or options.get("dask_local_workers") or settings().dask_address
    return not (chosen or PREFECT_API_URL.value())


def _warm_service() -> Service | None:
    from affectflow.flows import warm

    if not warm.enabled():
        return None
    service = warm.find()
    if service is not None:
        print(f"affectflow: on the warm service ({service.describe()})", file=sys.stderr)
    return service


def _on_service(service: Service, source: str, out: str, options: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The run's arguments for videos analysed in the service's worker (its own working directory)."""

    def absolute(path: str | None) -> str | None:
        return path if path is None or "://" in path else str(Path(path).resolve())

    options = {**options, "dask_address": service.dask_address, "work_dir": absolute(options.get("work_dir"))}
    return str(absolute(source)), str(absolute(out)), options


@contextmanager
def _prefect_of(service: Service | None) -> Iterator[None]:
    """Inside: Prefect's client talks to the warm service's server (none: as configured)."""
    if service is None:
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: service.api_url}):
        yield


def _leave_warm_service() -> None:
    from affectflow.flows import warm

    if not warm.enabled():
        return
    try:
        log = warm.start_in_background()
    except OSError as err:  # the run is done; only the next one's start-up is at stake
        print(f"affectflow: could not leave a warm service: {err}", file=sys.stderr)
        return
    if log is None:  # one is starting (another run left it)
        return
    print(
        f"affectflow: left a warm service for the next runs on this machine (models loaded; leaves after "
        f"{warm.idle_exit_s():g} s unused; `affectflow service stop`; AFFECTFLOW_KEEP_WARM=off: never; log {log})",
        file=sys.stderr,
    )


@contextmanager
def models_loading(config: PipelineConfig | None) -> Iterator[None]:
    """Load ``config``'s models in a thread while the block runs (Prefect's server start-up); wait for them after.

    The server starts in its own process, so the two overlap on two cores: the first video waits
    for the longer of the two, not for both (benchmarks/bench_startup.py). A model that fails to
    load here is left to its stage, which reports it for each video as it always does.
    """
    if config is None:
        yield
        return
    loader = threading.Thread(target=_load_quietly, args=(config,), name="affectflow-models", daemon=True)
    loader.start()
    try:
        yield
    finally:
        loader.join()  # never two loads of one model: the stages find it in its cache


def _load_quietly(config: PipelineConfig) -> None:
    from affectflow.flows.stages import load_models

    with suppress(Exception):  # the stage loads it again and reports the error, per video
        load_models(config)


def _needs_models(config: PipelineConfig, checked: Preflight, options: dict[str, Any]) -> bool:
    """Worth loading before the flow: this process runs the stages, Prefect's own server must start first
    (the overlap), and some video is not finished yet (a nightly run that skips everything loads nothing)."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value() or options.get("dask_address") or options.get("dask_local_workers"):
        return False
    store = Store(checked.out)
    return bool(options.get("force")) or any(not is_finished(store, f, config) for f in checked.files)


@contextmanager
def stage_postfix(bar: tqdm, registry: StageProgress, interval_s: float = 1.0) -> Iterator[None]:
    """While inside, a daemon thread sets ``bar``'s postfix to the running videos' stages every ``interval_s``.

    The stages' hooks only write the registry (any thread); this one thread draws, so a fast
    hook never redraws the bar. Nothing runs for a disabled bar (non-TTY stderr).
    """
    if bar.disable:
        yield
        return
    with repeating(interval_s, lambda: bar.set_postfix_str(describe(registry.snapshot()), refresh=True), POSTFIX):
        yield


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT/SIGTERM raise ``Interrupted`` here and stop the videos at their next step; a second one exits at once.

    Python runs the handler in the main thread only, when it next runs bytecode: a main thread
    blocked on a lock while another thread took the signal runs it seconds later, and a video
    whose ffmpeg died of the same signal got committed `failed` meanwhile. So the signal's
    wakeup byte (written by the C-level handler at once, in whichever thread) sets ``STOP`` from
    a watcher thread; the handler then raises in the main thread.
    """
    if not _main_thread():
        yield
        return
    STOP.clear()
    handled: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if handled:  # the second signal: the user does not want to wait for the stages
            os._exit(128 + signum)
        handled.append(signum)
        STOP.request(signum)
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    read, write = os.pipe()
    os.set_blocking(write, False)
    old_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    watcher = threading.Thread(target=_watch_wakeups, args=(read,), name="affectflow-signals", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(old_fd)
        for signum, old in previous.items():
            signal.signal(signum, old)
        os.write(write, b"\0")  # ends the watcher
        os.close(write)
        watcher.join(timeout=1.0)  # every wakeup byte read: STOP is final once this returns


def _watch_wakeups(read: int) -> None:
    """Set ``STOP`` the moment a stop signal's wakeup byte arrives (byte 0: the run is over)."""
    try:
        while (byte := os.read(read, 1)) and byte[0]:
            if byte[0] in STOP_SIGNALS:
                STOP.request(byte[0])
    finally:
        os.close(read)


@contextmanager
def logs_to_stderr() -> Iterator[None]:
    """Whatever the run prints goes to stderr; stdout carries only the summary (results are for pipes).

    Libraries print (whisperx's progress) and log to stdout, some from native code, with -v
    their INFO lines too: file descriptor 1 is pointed at stderr for the run, not just ``sys.stdout``.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def start_ephemeral_server() -> None:
    """Start Prefect's temporary API server (when no PREFECT_API_URL is set) in its own process group.

    Prefect would start it on the flow's first API call as a plain child, in the terminal's
    process group: Ctrl-C killed it before the flow could record anything, and the run went on
    ~70 s retrying a dead server (issue 21). In its own group only this process signals it: at
    exit (Prefect's atexit stop), or through PDEATHSIG when this process dies without exiting.
    Its output (the shutdown's CancelledError tracebacks) goes to ``$PREFECT_HOME/ephemeral-server.log``,
    not under the run's own lines.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME

    if PREFECT_API_URL.value():  # a real server: not ours to start or stop (nor to import: 1 s)
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # Prefect's one instance: the flow's client finds it running
    if server.running:
        return
    home = Path(PREFECT_HOME.value())
    home.mkdir(parents=True, exist_ok=True)
    popen = subprocess.Popen
    with open(home / "ephemeral-server.log", "ab") as log:  # the child keeps its own copy of the descriptor
        own_group = dict(process_group=0, preexec_fn=_die_with_parent(), stdout=log, stderr=subprocess.STDOUT)
        subprocess.Popen = partial(popen, **own_group)  # type: ignore[misc,assignment]
        try:
            server.start()
        finally:
            subprocess.Popen = popen  # type: ignore[misc]


def _die_with_parent() -> Callable[[], None] | None:
    """For the child before exec: SIGTERM when the parent dies (Linux; elsewhere the atexit stop only).

    prctl is looked up here, in the parent: the forked child only calls it (no loader locks).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return partial(prctl, PR_SET_PDEATHSIG, signal.SIGTERM)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _line(result: VideoResult) -> str:
    timing = f"{result.elapsed_s:6.1f}s" if result.status != "skipped" else "       "
    error = f"  {printable(result.error)}" if result.error else ""
    return f"{result.status:>7} {timing}  {printable(result.name)}{error}"


def printable(text: str) -> str:
    """``text`` with control characters escaped (a newline in a file name must not split its progress line)."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def print_summary(summary: RunSummary) -> None:
    print(
        f"run {summary.run_id}: {summary.count('ok')} ok, {summary.count('failed')} failed, "
        f"{summary.count('skipped')} skipped in {summary.elapsed_s:.1f}s; tables under {printable(summary.out)}"
        + (f"; report: {printable(summary.index)}" if summary.index else "")
    )
