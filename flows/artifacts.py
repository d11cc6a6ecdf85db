"""What a corpus run shows in the Prefect UI: a progress bar, a summary table with plot and report links, the index."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from affectflow.flows.video import VideoResult

log = logging.getLogger("affectflow")


class RunArtifacts:
    """Progress updated as each video finishes; a summary table when the run ends.

    Artifacts are for people watching the UI: failing to publish one never fails the run.
    """

    def __init__(self, total: int):
        self.total = max(total, 1)
        self.progress_id: UUID | None = _quietly(create_progress_artifact, 0.0, description="videos finished")

    def video_done(self, done: int) -> None:
        if self.progress_id is not None:
            _quietly(update_progress_artifact, self.progress_id, 100.0 * done / self.total)

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
