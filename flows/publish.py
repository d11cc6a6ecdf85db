"""After a corpus run: the report pages and, when asked, the export files, under the output root.

Both are for people, not for the tables: like the timeline plots, a failure here is a warning
in the run's log and never fails the run. Exports are written to a local temporary folder by
``tasks/exports`` and then stored file by file through the Store (atomic, local or S3) at
``<out>/exports/``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

from affectflow.tasks.storage.store import Store

log = logging.getLogger("affectflow")


def publish(store: Store, video_ids: Sequence[str], *, reports: bool, export_formats: Sequence[str]) -> dict[str, str]:
    """{video_id: report URL, "index": index URL} (empty without reports); exports written beside."""
    pages: dict[str, str] = {}
    if reports:
        try:
            from affectflow.tasks.reports import write_reports

            pages = write_reports(store.root, video_ids)  # pages for this run's videos, the index over all
        except Exception as err:  # noqa: BLE001 - a report must never fail the run
            log.warning("no report pages: %s", err)
    if export_formats and video_ids:
        try:
            _export(store, video_ids, export_formats)
        except Exception as err:  # noqa: BLE001 - nor an export
            log.warning("no exports: %s", err)
    return pages


def _export(store: Store, video_ids: Sequence[str], formats: Sequence[str]) -> None:
    from affectflow.tasks.exports import export_videos

    with tempfile.TemporaryDirectory(prefix="affectflow-export-") as folder:
        for path in export_videos(store.root, Path(folder), list(formats), list(video_ids)):
            store.write_document(f"exports/{path.name}", path.read_bytes())
