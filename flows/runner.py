"""Run the corpus flow from the command line: a progress bar and a printed summary."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

from affectflow.flows.corpus import RunSummary, flow_parameters, pipeline_config, process_corpus, video_done_listener
from affectflow.flows.video import VideoResult
from affectflow.tasks.config import PipelineConfig


def preflight(source: str, out: str, config: PipelineConfig | None = None) -> None:
    """Fail in a second, before Prefect starts, on what would stop the whole run.

    Missing ffmpeg, a source that does not exist or holds no videos, an unusable bucket,
    a Whisper model directory that is not one: one line and nothing written (the flow
    checks again when a deployment runs it).
    """
    from affectflow.tasks.media.tools import check_tools
    from affectflow.tasks.speech.transcribe import resolve_model_dir
    from affectflow.tasks.storage.discover import discover
    from affectflow.tasks.storage.fs import check_root

    check_tools()
    for root in (source, out):
        check_root(root)
    if config is not None and "transcribe" in config.stages:
        resolve_model_dir(config.transcribe.model_dir)
    discover(source)


def run_with_progress(source: str, out: str, **options: Any) -> RunSummary:
    """Run ``process-corpus`` in this process and print one line per video and a summary."""
    config = pipeline_config(flow_parameters(source, out, **options))
    preflight(source, out, config)
    bar = tqdm(total=0, unit="video", desc="videos", file=sys.stderr, disable=None, dynamic_ncols=True)

    def on_video_done(result: VideoResult, done: int, total: int) -> None:
        bar.total = total
        bar.update(1)
        bar.write(_line(result), file=sys.stderr)

    token = video_done_listener.set(on_video_done)
    try:
        summary: RunSummary = process_corpus(source, out, **options)
    finally:
        video_done_listener.reset(token)
        bar.close()
    print_summary(summary)
    return summary


def _line(result: VideoResult) -> str:
    timing = f"{result.elapsed_s:6.1f}s" if result.status != "skipped" else "       "
    error = f"  {result.error}" if result.error else ""
    return f"{result.status:>7} {timing}  {result.name}{error}"


def print_summary(summary: RunSummary) -> None:
    print(
        f"run {summary.run_id}: {summary.count('ok')} ok, {summary.count('failed')} failed, "
        f"{summary.count('skipped')} skipped in {summary.elapsed_s:.1f}s; tables under {summary.out}"
    )
