"""What a corpus run shows in the Prefect UI: a progress bar, a summary table with plot and report links, the index."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from affectflow.flows.video import VideoResult
from affectflow.tasks.progress import StageProgress, describe, repeating

log = logging.getLogger("affectflow")
DONE_ONLY = ""  # no running video to describe


class RunArtifacts:
    """Progress updated as each video finishes; a summary table when the run ends.

    Artifacts are for people watching the UI: failing to publish one never fails the run.
    """

    def __init__(self, total: int):
        self.total = max(total, 1)
        self.done = 0
        self.progress_id: UUID | None = _quietly(create_progress_artifact, 0.0, description="videos finished")
        self._lock = threading.Lock()

    def video_done(self, done: int) -> None:
        self.done = done
        self._publish(DONE_ONLY)

    @contextmanager
    def watching(self, registry: StageProgress, interval_s: float = 2.0) -> Iterator[None]:
        """While inside, the running videos' stages go into the artifact's description every ``interval_s``
        (when they changed): a two-hour video shows ``faces 1200/36000`` instead of nothing."""
        last: dict[str, Any] = {}

        def publish_if_changed() -> None:
            nonlocal last
            snapshot = registry.snapshot()
            if snapshot and snapshot != last:
                self._publish(describe(snapshot))
            last = snapshot

        with repeating(interval_s, publish_if_changed, "affectflow-artifact-progress"):
            yield

    def _publish(self, running: str) -> None:
        if self.progress_id is None:
            return
        description = f"videos finished: {self.done}/{self.total}" + (f"; now: {running}" if running else "")
        with self._lock:  # the watcher thread and the flow's thread
            _quietly(update_progress_artifact, self.progress_id, 100.0 * self.done / self.total, description)

    def summary(
        self, results: list[VideoResult], plots: dict[str, str], reports: dict[str, str], index: str | None = None
    ) -> None:
        rows = [
            {
                "video": r.name,
                "status": r.status,
                "seconds": r.elapsed_s,
                "error": r.error,
                "timeline": plots.get(r.video_id, ""),
                "report": reports.get(r.video_id, ""),
            }
            for r in results
        ]
        where = f"; corpus index: {index}" if index else ""
        _quietly(create_table_artifact, rows, key="affectflow-run-summary", description=f"videos of this run{where}")
        if index:
            _quietly(
                create_markdown_artifact,
                f"[Corpus index]({index}): every video with its status, numbers and report page.",
                key="affectflow-corpus-index",
                description="the corpus index page",
            )


def _quietly(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - the UI is a nicety, the tables are the product
        log.warning("could not publish a Prefect artifact: %s", err)
        return None
