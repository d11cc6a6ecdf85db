"""The corpus flow: discover videos, skip finished ones, fan out ``process-video``, record the run."""

from __future__ import annotations

import inspect
import json
import platform
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, get_type_hints

from prefect import flow, get_run_logger, task
from prefect.context import get_run_context
from prefect.exceptions import TerminationSignal
from prefect.futures import PrefectFuture, as_completed

from affectflow.flows.artifacts import RunArtifacts
from affectflow.flows.parameters import DEFAULT_WORKERS, RUN_OPTIONS, RUN_PARAMETERS, with_run_parameters
from affectflow.flows.publish import publish
from affectflow.flows.scaleout import Submit, video_submitter
from affectflow.flows.video import IO_RETRIES, VideoResult, is_finished, retry_transient_io
from affectflow.tasks.config import PipelineConfig, pipeline_version
from affectflow.tasks.media.tools import check_tools
from affectflow.tasks.progress import PROGRESS, Interrupted
from affectflow.tasks.storage.discover import SourceFile, discover
from affectflow.tasks.storage.fs import check_root, is_local, probe_writable
from affectflow.tasks.storage.store import Store, StoreError
from affectflow.tasks.storage.tables import to_table

OnVideoDone = Callable[[VideoResult, int, int], None]  # (result, n_done, n_total)

# Who hears about each finished video (the CLI's progress bar). A context variable,
# not a flow parameter, because a callback is not a parameter a deployment can carry.
video_done_listener: ContextVar[OnVideoDone | None] = ContextVar("video_done_listener", default=None)


@dataclass(frozen=True)
class Preflight:
    """What a caller (the CLI) already checked and found, so the flow does not do it twice (issue 16)."""

    source: str
    out: str
    files: list[SourceFile]


# Set by the CLI after its preflight, which runs before Prefect starts; a deployment has none
# and the flow checks for itself.
preflight_done: ContextVar[Preflight | None] = ContextVar("preflight_done", default=None)


class OutputRootError(Exception):
    """The output root cannot take the tables (a file, a read-only or missing mount)."""


def preflight(
    source: str,
    out: str,
    config: PipelineConfig | None = None,
    list_videos: Callable[[str], list[SourceFile]] | None = None,
) -> Preflight:
    """Fail in a second, before any video is touched, on what would stop the whole run.

    Missing ffmpeg, an unusable bucket, a Whisper model directory that is not one, a source
    that does not exist or holds no videos, a local ``out`` that is not a writable directory:
    one line. Nothing is written but ``out`` itself (created) once everything else passed.
    ``list_videos`` lists the source (default ``discover``; the flow passes its retried task).
    """
    from affectflow.tasks.speech.transcribe import resolve_model_dir

    check_tools()
    for root in (source, out):
        check_root(root)  # one-line error before anything is written: credentials, bucket, endpoint
    if config is not None and "transcribe" in config.stages:
        resolve_model_dir(config.transcribe.model_dir)
    files = (list_videos or discover)(source)
    check_writable(out)
    return Preflight(source, out, files)


def check_writable(out: str) -> None:
    """A local ``out`` is created, then a probe file written and removed there (object stores: the bucket check)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(out)
    if not is_local(fs):
        return
    root = Path(path)
    try:
        probe_writable(root)
    except OSError as err:
        reason = "it is a file" if root.is_file() else (err.strerror or type(err).__name__)
        raise OutputRootError(f"cannot write tables under --out {out}: {reason}") from None


@dataclass
class RunSummary:
    run_id: str
    source: str
    out: str
    results: list[VideoResult] = field(default_factory=list)
    elapsed_s: float = 0.0
    index: str | None = None  # the corpus index page (<out>/reports/index.html), when written

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0


@task(name="discover", **IO_RETRIES, retry_condition_fn=retry_transient_io)
def discover_videos(source: str) -> list[SourceFile]:
    return discover(source)


def run_corpus(
    source: str,
    out: str,
    config: PipelineConfig,
    *,
    force: bool = False,
    workers: int = DEFAULT_WORKERS,
    video_timeout_s: float | None = None,
    work_dir: str | None = None,
    dask_address: str | None = None,
    dask_local_workers: int = 0,
    no_reports: bool = False,
    export_formats: list[str] | None = None,
    compact: bool = False,
) -> RunSummary:
    """Body of the corpus flow (see ``process_corpus``)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if video_timeout_s is not None and video_timeout_s <= 0:
        raise ValueError(f"video_timeout_s must be positive (or None for no limit), got {video_timeout_s}")
    on_video_done = video_done_listener.get()
    logger = get_run_logger()
    started = datetime.now(UTC)
    run_id = _run_id()
    store = Store(out)
    if removed := store.remove_abandoned_temporaries():
        logger.info("removed %d temporary files that killed runs left under %s", removed, out)
    checked = preflight_done.get()
    if checked is not None and (checked.source, checked.out) == (source, out):
        files = checked.files
    else:
        files = preflight(source, out, config, list_videos=discover_videos).files
    summary = RunSummary(run_id, source, out)
    todo = []
    for source_file in files:
        if not force and is_finished(store, source_file, config):
            summary.results.append(VideoResult(source_file.uri, "skipped"))
        else:
            todo.append(source_file)
    logger.info(
        "%d videos under %s: %d to process, %d already done", len(files), source, len(todo), len(files) - len(todo)
    )
    artifacts = RunArtifacts(len(files))
    for result in summary.results:
        _report(result, summary, len(files), on_video_done, artifacts)
    record = partial(_record_run, store, summary, config, started, force, workers)
    try:
        with video_submitter(dask_address, dask_local_workers) as submit, artifacts.watching(PROGRESS):
            jobs = _bounded_map(submit, todo, workers, out, config, run_id, work_dir, video_timeout_s, force)
            for source_file, future in jobs:
                _report(_outcome(source_file, future), summary, len(files), on_video_done, artifacts)
        _link_people(out, config, summary.results)
        plots = _timeline_plots(store, summary.results)
        processed = [r.video_id for r in summary.results if r.status == "ok" and r.video_id]
        pages = publish(store, processed, reports=not no_reports, export_formats=export_formats or ())
        summary.index = pages.pop("index", None)
        if compact:
            _compact(store, run_id)
        artifacts.summary(summary.results, plots, pages, summary.index)
    except (Interrupted, TerminationSignal):  # inside a flow, Prefect's SIGTERM handler raises its own
        try:  # the runs table says how far it got; the signal still ends the run
            record("interrupted")
        except StoreError as err:
            logger.warning("could not record the interrupted run %s: %s", run_id, err)
        raise
    record("finished")
    logger.info(
        "run %s: %d ok, %d failed, %d skipped",
        run_id,
        summary.count("ok"),
        summary.count("failed"),
        summary.count("skipped"),
    )
    return summary


def _bounded_map(
    submit: Submit, files: list[SourceFile], workers: int, *args: Any
) -> Iterable[tuple[SourceFile, PrefectFuture[VideoResult]]]:
    """Submit at most ``workers`` videos at once; yield each as it finishes."""
    pending = iter(files)
    running: dict[PrefectFuture[VideoResult], SourceFile] = {}
    while True:
        while len(running) < max(1, workers) and (source_file := next(pending, None)) is not None:
            running[submit(source_file, *args)] = source_file
        if not running:
            return
        done = next(as_completed(list(running)))
        yield running.pop(done), done


def _outcome(source_file: SourceFile, future: PrefectFuture[VideoResult]) -> VideoResult:
    try:
        return future.result()
    except Exception as err:  # noqa: BLE001 - recorded, the corpus goes on
        return VideoResult(source_file.uri, "failed", error=f"{type(err).__name__}: {err}")


def _report(
    result: VideoResult,
    summary: RunSummary,
    total: int,
    on_video_done: OnVideoDone | None,
    artifacts: RunArtifacts,
) -> None:
    if result not in summary.results:
        summary.results.append(result)
    artifacts.video_done(len(summary.results))
    if on_video_done is not None:
        on_video_done(result, len(summary.results), total)


def _compact(store: Store, run_id: str) -> None:
    """Merge the finished videos into large files; another compaction running is no failure of the run."""
    from affectflow.tasks.storage.compaction import compact
    from affectflow.tasks.storage.leases import LeaseHeld

    try:
        report = compact(store, owner=run_id)
    except LeaseHeld as held:
        get_run_logger().warning("not compacted: another compaction is running (%s)", held.holder)
        return
    get_run_logger().info("compacted %d videos (%d busy, left loose)", report.videos, len(report.held))


def _link_people(out: str, config: PipelineConfig, results: list[VideoResult]) -> None:
    """The people step (docs/people.md) after the videos, when identities are on and a video was redone.

    Idempotent and incremental: ids already given never change. Like the plots, a failure is
    a warning and never fails the run (`affectflow people link` redoes it).
    """
    if config.identity.off or not any(r.status == "ok" for r in results):
        return
    from affectflow.flows.people import link_people

    try:
        link_people(out)
    except Exception as err:  # noqa: BLE001 - the videos' tables are the product; people can be relinked
        get_run_logger().warning("people not linked (run `affectflow people link --out OUT`): %s", err)


def _timeline_plots(store: Store, results: list[VideoResult]) -> dict[str, str]:
    """A timeline PNG per video processed in this run, at <out>/plots/<video_id>.png."""
    from affectflow.tasks.query.plots import plot_timeline

    plots = {}
    for result in results:
        if result.status == "ok" and store.has_rows("emotions", result.video_id):
            png = f"{store.root.rstrip('/')}/plots/{result.video_id}.png"
            try:
                plots[result.video_id] = plot_timeline(store.root, result.video_id, png)
            except Exception as err:  # noqa: BLE001 - a plot must never fail the run
                get_run_logger().warning("no timeline plot for %s: %s", result.name, err)
    return plots


def _run_id() -> str:
    try:
        return str(get_run_context().flow_run.id)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - not inside a flow run
        return uuid.uuid4().hex


def _record_run(
    store: Store,
    summary: RunSummary,
    config: PipelineConfig,
    started: datetime,
    force: bool,
    workers: int,
    status: str,
) -> None:
    summary.elapsed_s = (datetime.now(UTC) - started).total_seconds()
    row = _run_row(summary, config, started, force, workers, status)
    store.write("runs", summary.run_id, to_table("runs", [row]))


def _run_row(
    summary: RunSummary, config: PipelineConfig, started: datetime, force: bool, workers: int, status: str
) -> dict[str, Any]:
    return {
        "run_id": summary.run_id,
        "flow": "process-corpus",
        "started": started,
        "finished": datetime.now(UTC),
        "source": summary.source,
        "out": summary.out,
        "n_ok": summary.count("ok"),
        "n_failed": summary.count("failed"),
        "n_skipped": summary.count("skipped"),
        "parameters": json.dumps({"config": json.loads(config.to_json()), "force": force, "workers": workers}),
        "versions": json.dumps({"affectflow": pipeline_version(), "python": platform.python_version()}),
        "status": status,
    }


@flow(name="process-corpus", log_prints=True)
@with_run_parameters
def process_corpus(source: str, out: str, **options: Any) -> RunSummary:
    """Process every video under ``source`` (folder or s3:// prefix) into tables under ``out``.

    Videos already done with the same bytes and configuration are skipped; one bad
    video is recorded as failed and never stops the others. The parameters are
    flows/parameters.py's RUN_PARAMETERS: the signature Prefect sees (its deployment schema,
    its validation of ``-p`` values) is set from that list. Model files and directories come
    from the AFFECTFLOW_* variables (tasks/settings.py; README, "Configuration").
    """
    parameters = flow_parameters(source, out, **options)
    run_options = {name: parameters[name] for name in RUN_OPTIONS}  # the rest make the config
    return run_corpus(source, out, pipeline_config(parameters), **run_options)


def pipeline_config(parameters: Mapping[str, Any]) -> PipelineConfig:
    """The run's configuration from ``process_corpus``'s parameters (all of them: ``flow_parameters``).

    Each parameter with a ``config`` field in RUN_PARAMETERS sets that field; None leaves the
    config's own default (an AFFECTFLOW_* variable's, or the stage's). A ValueError names a bad value.
    """
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for p in RUN_PARAMETERS:
        value = parameters[p.name]
        if p.config is None or value is None:
            continue
        section, _, name = p.config.rpartition(".")
        (sections.setdefault(section, {}) if section else top)[name] = (
            tuple(value) if isinstance(value, list) else value
        )
    types = get_type_hints(PipelineConfig)  # section -> its config class, e.g. "faces" -> FacesConfig
    return PipelineConfig(**top, **{section: types[section](**fields) for section, fields in sections.items()})


def flow_parameters(source: str, out: str, **options: Any) -> dict[str, Any]:
    """Every parameter of ``process_corpus`` for a call with these arguments (a TypeError names an unknown one)."""
    bound = inspect.signature(process_corpus.fn).bind(source, out, **options)
    bound.apply_defaults()
    return bound.arguments
