"""What a corpus run shows in the Prefect UI: a progress bar and a summary table with plot links."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact

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

    def summary(self, results: list[VideoResult], plots: dict[str, str]) -> None:
        rows = [
            {
                "video": r.name,
                "status": r.status,
                "seconds": r.elapsed_s,
                "error": r.error,
                "timeline": plots.get(r.video_id, ""),
            }
            for r in results
        ]
        _quietly(create_table_artifact, rows, key="affectflow-run-summary", description="videos of this run")


def _quietly(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - the UI is a nicety, the tables are the product
        log.warning("could not publish a Prefect artifact: %s", err)
        return None
