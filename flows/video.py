"""The per-video DAG: stage → probe → (faces | audio → diarize, transcribe) → emotions → write.

``run_video`` composes the stage tasks; it is exposed both as the flow
``process-video`` (run one video alone) and as the task the corpus flow maps, so the
same code runs in-process, on a Prefect worker or on a Dask cluster.
A failure in any stage becomes a recorded ``failed`` row, never an exception that
stops the corpus.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from contextvars import copy_context
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from affectflow.flows.stages import PARALLEL_BRANCHES, STAGES, Stage, StageOutputs, words_follow_turns
from affectflow.tasks.config import PipelineConfig, pipeline_version
from affectflow.tasks.media import audio, staging
from affectflow.tasks.media.frames import FrameSource, iter_frames
from affectflow.tasks.media.probe import probe
from affectflow.tasks.media.tools import DecodeInterruptedError, MediaError
from affectflow.tasks.progress import (
    PROGRESS,
    Hook,
    Interrupted,
    all_of,
    counted_thread,
    not_counted,
    overdue,
    stop_request,
    timed_out,
    video_deadline,
)
from affectflow.tasks.records import MediaInfo, StagedVideo
from affectflow.tasks.storage import leases
from affectflow.tasks.storage.discover import SourceError, SourceFile
from affectflow.tasks.storage.store import Store, StoreError

T = TypeVar("T")
STUCK_AFTER_S = 10.0  # past its deadline or a stop, a stage reaching no progress step is stuck (run_stages)
MODEL_WAIT_POLL_S = 0.25  # how often a stage waiting for its model checks the deadline and a stop
SIGNAL_GRACE_S = 0.2  # how long a failed tool waits for the run's stop (see analyse; the handler takes ms)
IO_RETRIES: dict[str, Any] = dict(retries=3, retry_delay_seconds=[1, 4, 16], cache_policy=NO_CACHE)


def retry_transient_io(task: Any, task_run: Any, state: Any) -> bool:
    """Retry transient I/O; a bad file or a missing source stays so however often it is read."""
    try:
        state.result()
    except (MediaError, SourceError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return False
    except OSError as err:
        return err.errno not in staging.PERMANENT_ERRNOS  # ELOOP and the like: a source that stays unreadable
    except StoreError as err:
        return err.transient
    except Exception:  # noqa: BLE001 - anything else may be transient (network, S3 5xx)
        return True
    return False


@task(name="stage", **IO_RETRIES, retry_condition_fn=retry_transient_io)
def stage_video(uri: str, work_dir: Path) -> StagedVideo:
    return staging.stage(uri, work_dir)


@task(name="probe", cache_policy=NO_CACHE)
def probe_video(staged: StagedVideo) -> MediaInfo:
    return probe(staged.path)


@task(name="extract-audio", cache_policy=NO_CACHE)
def extract_audio(staged: StagedVideo, info: MediaInfo, work_dir: Path) -> Path | None:
    return audio.extract_audio(staged.path, info, work_dir / "audio.wav")


@task(name="write-tables", **IO_RETRIES, retry_condition_fn=retry_transient_io)
def write_tables(
    out: str,
    video_id: str,
    tables: dict[str, pa.Table],
    row: dict[str, Any],
    manifest: tuple[str, dict[str, Any]] | None = None,
) -> None:
    Store(out).write_video(video_id, tables, row, manifest)


@dataclass
class VideoResult:
    """What the corpus flow learns about one video (also its line in the run summary)."""

    uri: str
    status: str  # ok | failed | skipped
    video_id: str = ""
    error: str = ""
    elapsed_s: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class _ModelLock:
    """One stage's model, used by one video at a time; ``abandoned``: its holder was given up stuck."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    holder: threading.Thread | None = None
    abandoned: bool = False


_model_locks: dict[str, _ModelLock] = {}


@contextmanager
def _one_at_a_time(stage: str, hook: Hook) -> Iterator[None]:
    """Models are loaded once per process and shared; their runtimes are not thread-safe.

    The wait for a model is a step of its own, so a video's deadline or a stop still acts while
    another video holds the model. The wait is not the waiting video's own time (``not_counted``):
    with two videos at once, one long video must not time out the other. A model held by a
    stage given up stuck (run_stages) is another matter: that wait counts, so a video behind it
    times out instead of waiting for ever.
    """
    model = _model_locks.setdefault(stage, _ModelLock())
    while True:
        with nullcontext() if model.abandoned else not_counted():
            if model.lock.acquire(timeout=MODEL_WAIT_POLL_S):
                break
        hook(f"waiting for the {stage} model", 0, None)
    model.holder, model.abandoned = threading.current_thread(), False
    try:
        yield
    finally:
        model.holder = None
        model.lock.release()


def _abandon_models(threads: Sequence[threading.Thread]) -> None:
    """The models held by ``threads`` (given up stuck) stay held: waits for them count from now."""
    for model in _model_locks.values():
        if model.holder in threads:
            model.abandoned = True


class BranchStoppedError(Exception):
    """The other branch of the video failed: this one stops at its next step."""


def run_stages(
    outputs: StageOutputs, wanted: Sequence[str], timed: Callable[..., Any], stages: Sequence[Stage] = STAGES
) -> None:
    """(faces → speaking) ‖ (diarize → transcribe), then emotions: the DAG of docs/architecture.md.

    The faces branch runs in a thread beside the speech branch: they share only the
    staged video and its audio, and their models run in native code that releases the
    GIL, so the two overlap on a multi-core machine. A stage with ``after`` waits for
    those stages of the other branch (speaking waits for the turns, then runs beside
    transcription). When one branch fails, the other stops at its next progress step
    and the failing branch's error is raised.
    """
    deadline = outputs.hook
    shared = _Branches()
    failed = shared.failed
    finished = {stage.name: threading.Event() for stage in stages}  # set once a stage is done or will not run

    def hook(step: str, completed: int, total: int | None) -> None:
        if failed.is_set():
            raise BranchStoppedError(f"stopped during {step}: the other branch failed")
        deadline(step, completed, total)

    def wait_for(stage: Stage) -> None:
        # no progress hook while waiting (the timer would charge the wait to a step); the other
        # branch calls its own and sets `failed` when it stops, on a timeout too
        with not_counted():  # the other branch's time is counted in its own thread
            for name in stage.after:
                while not finished[name].wait(0.1):
                    if failed.is_set():
                        raise BranchStoppedError(f"stopped before {stage.name}: the other branch failed")

    def run_branch(branch: str) -> None:
        mine = [stage for stage in stages if stage.branch == branch]
        try:
            for stage in mine:
                if stage.name in wanted:
                    wait_for(stage)
                    if stage.ready(outputs):
                        shared.stage[branch] = stage.name
                        with _one_at_a_time(stage.name, hook):
                            timed(stage.name, stage.run, outputs)
                finished[stage.name].set()
        except BaseException:
            failed.set()
            raise
        finally:
            for stage in mine:  # a failed branch releases whoever waits on it (they see `failed`)
                finished[stage.name].set()

    outputs.hook = hook
    try:
        _run_branches(PARALLEL_BRANCHES, run_branch, shared)
        words_follow_turns(outputs)
        _run_branches(("fusion",), run_branch, shared)
    finally:
        if not shared.left_behind:  # a branch left running must keep this hook: it stops it at its next step
            outputs.hook = deadline


@dataclass
class _Branches:
    """What the branch threads of one video share with the thread waiting for them."""

    failed: threading.Event = field(default_factory=threading.Event)  # set: every branch stops at its next step
    stage: dict[str, str] = field(default_factory=dict)  # branch -> the stage it is in
    left_behind: bool = False  # the wait ended with a branch still running (given up, or a signal)


def _run_branches(branches: Sequence[str], run_branch: Callable[[str], None], shared: _Branches) -> None:
    """Run each branch in its own thread and wait for all, unless one is stuck in native code.

    A stage sees its deadline and a stop request only at its progress steps; one blocked inside
    a native call (a hung ONNX, torch or CTranslate2 call, a read that never returns) reaches
    none. So once the video is overdue or a stop is requested, its branches get ``STUCK_AFTER_S``
    to reach a step, then the video is given up: the timeout (or the interrupt) is raised here,
    so nothing of the video is committed but its ``failed`` row, and its threads are left to end
    on their own (daemon threads, each in a copy of this context: Prefect's run context goes
    with it). A stuck thread keeps its model's lock; a later video waits for it as a step, and
    that wait counts against its deadline (``_abandon_models``).
    """
    errors: list[BaseException] = []

    def collect(branch: str) -> None:
        try:
            with counted_thread():  # a branch's time is the video's own, unless it waits (Deadline)
                run_branch(branch)
        except BaseException as err:  # noqa: BLE001 - collected, raised by the waiting thread
            errors.append(err)

    threads = [
        threading.Thread(target=copy_context().run, args=(collect, branch), name=f"affectflow-{branch}", daemon=True)
        for branch in branches
    ]
    for thread in threads:
        thread.start()
    late_since: float | None = None
    try:
        while alive := [thread for thread in threads if thread.is_alive()]:
            alive[0].join(0.1)
            if late_since is None and (stop_request().requested or overdue()):
                late_since = time.monotonic()
            if late_since is not None and time.monotonic() - late_since > STUCK_AFTER_S:
                stuck = (
                    shared.stage.get(b, b) for b, thread in zip(branches, threads, strict=True) if thread.is_alive()
                )
                _abandon_models([thread for thread in threads if thread.is_alive()])
                raise given_up(" and ".join(stuck))
    except BaseException:  # given up, or a signal raised in this thread: the branches stop at their next step
        shared.failed.set()
        shared.left_behind = any(thread.is_alive() for thread in threads)
        raise
    if errors:  # an interrupt first, then a branch's own error, then the other's BranchStoppedError
        raise sorted(errors, key=lambda err: (isinstance(err, Exception), isinstance(err, BranchStoppedError)))[0]


def given_up(stuck: str) -> BaseException:
    """What a video whose ``stuck`` stage(s) reached no progress step in time raises."""
    if (stop := stop_request()).requested:
        return Interrupted(stop.signum)
    return timed_out(f"{stuck} stuck in native code, given up")


class StageTimer:
    """Seconds per step of one video (what ``videos.stage_seconds`` records), and per progress step.

    Called as ``timer(name, fn, *args)`` around each step. ``step`` is a progress hook: it
    charges the time since the same thread's previous mark to the step being reported, so a
    benchmark can split a stage into its parts (features, RCMA) without touching the stage.
    ``longest`` keeps, per step, the longest stretch a thread went without a progress step
    (``"<stage>: after its last step"`` for the stretch that ends the stage): a stop request or
    a timeout is seen only at a progress step, so this is how late either can act.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.steps: dict[str, float] = {}
        self.longest: dict[str, float] = {}
        self._marks = threading.local()

    def __call__(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        begin = self._marks.t = time.perf_counter()
        try:
            return fn(*args)
        finally:
            end = time.perf_counter()
            self.seconds[name] = round(self.seconds.get(name, 0.0) + end - begin, 3)
            self._longest(f"{name}: after its last step", end - self._marks.t)

    def step(self, step: str, completed: int, total: int | None) -> None:
        now = time.perf_counter()
        stretch = now - getattr(self._marks, "t", now)
        self.steps[step] = self.steps.get(step, 0.0) + stretch
        self._longest(step, stretch)
        self._marks.t = now

    def _longest(self, step: str, stretch: float) -> None:
        if stretch > self.longest.get(step, 0.0):
            self.longest[step] = stretch


@dataclass(frozen=True)
class VideoSteps:
    """The I/O steps around the stages: Prefect tasks by default, plain functions for a benchmark."""

    stage: Callable[[str, Path], StagedVideo]
    probe: Callable[[StagedVideo], MediaInfo]
    audio: Callable[[StagedVideo, MediaInfo, Path], Path | None]
    write: Callable[..., None]  # (out, video_id, tables, videos row, (uri, manifest entry))
    stages: tuple[Stage, ...] = STAGES

    def plain(self) -> VideoSteps:
        """The same steps calling their functions directly, outside Prefect's task machinery."""
        return VideoSteps(
            stage=_fn(self.stage),
            probe=_fn(self.probe),
            audio=_fn(self.audio),
            write=_fn(self.write),
            stages=tuple(stage.plain() for stage in self.stages),
        )


def _fn(step: Callable[..., T]) -> Callable[..., T]:
    """A Prefect task's own function (a plain function stays itself)."""
    return getattr(step, "fn", step)


@dataclass
class Analysis:
    """What analysing one video gave: its records (None where a step never ran) and its status."""

    staged: StagedVideo | None = None
    info: MediaInfo | None = None
    outputs: StageOutputs | None = None
    status: str = "ok"
    error: str = ""


def run_video(
    source: SourceFile,
    out: str,
    config: PipelineConfig,
    run_id: str,
    work_root: str | None = None,
    timeout_s: float | None = None,
    force: bool = False,
    *,
    steps: VideoSteps | None = None,
    timer: StageTimer | None = None,
    frames: FrameSource = iter_frames,
) -> VideoResult:
    """Process one video end to end under its lease and commit its tables; return its status.

    Two runs sharing ``out`` never work on one video at once: the video's lease
    (:mod:`~affectflow.tasks.storage.leases`) is taken first, and a video whose lease another
    live run holds is ``skipped`` ("held by run … on host (pid N)"). Under the lease the
    finished check is made again, so a video another run committed meanwhile is not redone.
    """
    store = Store(out)
    with ExitStack() as held:
        try:
            lease = held.enter_context(leases.held(store, leases.video_key(source.uri), owner=run_id))
        except leases.LeaseHeld as busy:
            return VideoResult(source.uri, "skipped", error=f"held by {busy.holder}")
        except (StoreError, OSError) as err:  # an unreachable root: the video is retried by the next run
            return VideoResult(source.uri, "failed", error=f"cannot take the video's lease: {err}")
        if not force and is_finished(store, source, config):
            return VideoResult(source.uri, "skipped", error="finished by another run meanwhile")
        return _run_video_held(source, out, config, run_id, work_root, timeout_s, lease, steps, timer, frames)


def is_finished(store: Store, source: SourceFile, config: PipelineConfig) -> bool:
    """Done before with the same bytes and the same config, and not worth retrying."""
    entry = store.read_manifest(source.uri)
    return bool(
        entry
        and entry.get("size_bytes") == source.size_bytes
        and entry.get("version") == source.version
        and entry.get("config_hash") == config.hash()
        and not entry.get("retry")
        and store.committed(entry.get("video_id", ""))
    )


def _run_video_held(
    source: SourceFile,
    out: str,
    config: PipelineConfig,
    run_id: str,
    work_root: str | None,
    timeout_s: float | None,
    lease: leases.Lease,
    steps: VideoSteps | None,
    timer: StageTimer | None,
    frames: FrameSource,
) -> VideoResult:
    """analyse (stage → probe → audio → the stages) → a failure becomes a status → commit."""
    steps = steps or DEFAULT_STEPS
    timer = timer or StageTimer()
    started = datetime.now(UTC)
    clock = time.perf_counter()
    work_dir = Path(tempfile.mkdtemp(prefix="affectflow-", dir=work_root))
    try:
        # a signal stops the stages first; PROGRESS feeds the CLI bar and the artifact
        with video_deadline(timeout_s) as deadline:  # also bounds the waits on ffprobe / ffmpeg
            hook = all_of(stop_request().check, deadline, timer.step, PROGRESS.hook(source.name))
            analysis = analyse(source, out, config, work_dir, steps, timer, hook, frames)
        video_id = analysis.staged.video_id if analysis.staged else f"u{_short_hash(source.uri)}"
        if lease.lost:  # stalled past its expiry and taken over: the other run's results stand
            return VideoResult(source.uri, "skipped", video_id, "lease lost to another run; nothing written")
        row = _video_row(source, video_id, analysis, config, run_id, started, timer.seconds)
        tables = analysis.outputs.tables(video_id) if analysis.outputs is not None else {}
        row["elapsed_s"] = round(time.perf_counter() - clock, 3)
        row["finished"] = datetime.now(UTC)
        status, error = commit(out, source, video_id, tables, row, config, analysis, steps, timer)
    finally:
        PROGRESS.clear(source.name)
        shutil.rmtree(work_dir, ignore_errors=True)
    _log().info("%s %s in %.1fs %s", status, source.name, time.perf_counter() - clock, error)
    return VideoResult(source.uri, status, video_id, error, round(time.perf_counter() - clock, 3), timer.seconds)


def analyse(
    source: SourceFile,
    out: str,
    config: PipelineConfig,
    work_dir: Path,
    steps: VideoSteps,
    timer: StageTimer,
    deadline: Hook,
    frames: FrameSource = iter_frames,
) -> Analysis:
    """Stage, probe, extract audio and run the stages; any failure is caught into the status."""
    analysis = Analysis()
    try:
        analysis.staged = timer("stage", steps.stage, source.uri, work_dir)
        _forget_previous_version(Store(out), source.uri, analysis.staged.video_id)
        analysis.info = timer("probe", steps.probe, analysis.staged)
        outputs = StageOutputs(analysis.staged, analysis.info, config, work_dir, hook=deadline, frames=frames)
        outputs.wav = timer("audio", steps.audio, analysis.staged, analysis.info, work_dir)
        run_stages(outputs, config.stages, timer, steps.stages)
        analysis.outputs = outputs
    except Exception as err:  # one bad video must never stop the corpus
        # A tool that failed as the run was signalled most likely died of that signal: the whole
        # process group gets it at once, the main thread's handler sets STOP a moment later.
        # Seen without this: a SIGTERM to the group committed a video `failed` ("ffprobe failed").
        if isinstance(err, MediaError | DecodeInterruptedError) and (stop := stop_request()).wait(SIGNAL_GRACE_S):
            raise Interrupted(stop.signum) from err
        analysis.status, analysis.error = failure_status(err)
        if not isinstance(err, MediaError):
            _log().error("%s failed:\n%s", source.uri, traceback.format_exc())
    return analysis


def failure_status(err: Exception) -> tuple[str, str]:
    """(status, one-line error) of a video whose analysis raised ``err``."""
    if isinstance(err, MediaError):
        return "failed", f"bad input: {err}"
    return "failed", f"{type(err).__name__}: {err}"


def commit(
    out: str,
    source: SourceFile,
    video_id: str,
    tables: dict[str, pa.Table],
    row: dict[str, Any],
    config: PipelineConfig,
    analysis: Analysis,
    steps: VideoSteps,
    timer: StageTimer,
) -> tuple[str, str]:
    """Write the video's tables, its manifest, then its ``videos`` row (the commit); the final status."""
    status, error = analysis.status, analysis.error
    stop_request().check("write", 0, None)  # interrupted (a short decode may look finished): write nothing
    try:
        manifest = (source.uri, _manifest(source, video_id, config, status, error))
        timer("write", steps.write, out, video_id, tables, row, manifest)
    except StoreError as err:
        status, error = "failed", str(err)
    return status, error


def _forget_previous_version(store: Store, uri: str, video_id: str) -> None:
    """A file that changed is a new video: the rows of its old bytes go, and only its own.

    Ids are per source file (``StagedVideo.video_id``), so the previous id is this file's; the
    check on the ``videos`` row's URI also protects outputs written when ids were content
    hashes, shared by identical files.
    """
    previous = (store.read_manifest(uri) or {}).get("video_id")
    if previous and previous != video_id and store.committed_uri(previous) in (uri, None):
        store.delete_video(previous)


def _video_row(
    source: SourceFile,
    video_id: str,
    analysis: Analysis,
    config: PipelineConfig,
    run_id: str,
    started: datetime,
    timings: dict[str, float],
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "video_id": video_id,
        "uri": source.uri,
        "name": source.name,
        "size_bytes": source.size_bytes,
        "analysis_fps": config.fps,
        "status": analysis.status,
        "error": analysis.error or None,
        "run_id": run_id,
        "started": started,
        "stage_seconds": json.dumps(timings, sort_keys=True),
        "config_hash": config.hash(),
        "pipeline_version": pipeline_version(),
    }
    info = analysis.info
    if info is not None:
        row.update(
            duration_s=info.duration_s,
            fps=info.fps,
            width=info.width,
            height=info.height,
            n_frames=info.n_frames,
            has_audio=info.has_audio,
        )
    if analysis.outputs is not None:
        row["n_frames_analysed"] = analysis.outputs.n_frames_analysed
        row["backends"] = json.dumps(analysis.outputs.backends, sort_keys=True)
    return row


def _manifest(source: SourceFile, video_id: str, config: PipelineConfig, status: str, error: str) -> dict[str, Any]:
    return {
        "uri": source.uri,
        "size_bytes": source.size_bytes,
        "version": source.version,
        "video_id": video_id,
        "config_hash": config.hash(),
        "status": status,
        # A bad file stays bad: only failures that are not about the input are retried.
        "retry": status == "failed" and not error.startswith("bad input"),
        "finished": datetime.now(UTC).isoformat(),
    }


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:15]


def _log() -> Any:
    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - outside a Prefect run: plain logging
        import logging

        return logging.getLogger("affectflow")


@flow(name="process-video", log_prints=True)
def process_video(uri: str, out: str, fps: float = 5.0, run_id: str = "adhoc") -> dict[str, Any]:
    """Run the per-video DAG on one video (local path or fsspec URL)."""
    from affectflow.tasks.storage.discover import discover

    (source,) = discover(uri)
    return run_video(source, out, PipelineConfig(fps=fps), run_id).__dict__


DEFAULT_STEPS = VideoSteps(stage_video, probe_video, extract_audio, write_tables)
process_video_task = task(name="process-video", cache_policy=NO_CACHE)(run_video)
