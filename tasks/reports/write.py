"""``write_reports``: each video's page and the corpus index, written atomically under ``<out>/reports/``.

The page links the source video by a relative path when both are on this machine (the
folder can be moved together), a presigned URL when the source is on an object store that
signs (s3fs), and shows a note otherwise.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Sequence

from affectflow.tasks.exports.results import committed_videos, load_results
from affectflow.tasks.query.views import connect
from affectflow.tasks.reports.index import index_page
from affectflow.tasks.reports.page import report_page
from affectflow.tasks.reports.thumbnails import local_source, track_thumbnails
from affectflow.tasks.storage.fs import is_local, url_to_fs
from affectflow.tasks.storage.store import Store

REPORTS = "reports"
PRESIGN_S = 7 * 24 * 3600  # a presigned source URL stays valid a week


class ReportError(Exception):
    """A report cannot be made as asked (one line)."""


def write_reports(
    out: str, video_ids: Sequence[str] | None = None, *, progress: Callable[[str], None] | None = None
) -> dict[str, str]:
    """{video_id: page URL, "index": index URL}: pages for ``video_ids`` (None: every ok video), then the index.

    A failed video gets no page (it has no results) but its row and error in the index.
    """
    con = connect(out)
    videos = committed_videos(con)
    known = set(videos.video_id)
    missing = [v for v in video_ids or () if v not in known]
    if missing:
        raise ReportError(f"no video {', '.join(missing)} in this output root")
    ok = set(videos.video_id[videos.status == "ok"])
    chosen = [v for v in (videos.video_id if video_ids is None else video_ids) if v in ok]
    store, written = Store(out), {}
    for done, video_id in enumerate(chosen, start=1):
        results = load_results(con, video_id)
        source = local_source(str(results.video.get("uri") or ""))
        thumbnails = track_thumbnails(source, results.faces) if source is not None else {}
        page = report_page(results, _media_url(out, str(results.video.get("uri") or "")), thumbnails)
        written[video_id] = store.write_document(f"{REPORTS}/{video_id}.html", page.encode())
        if progress:
            progress(f"[{done}/{len(chosen)}] report {results.name}")
    existing = _existing_reports(out) | set(written)
    written["index"] = store.write_document(f"{REPORTS}/index.html", index_page(con, existing).encode())
    return written


def _existing_reports(out: str) -> set[str]:
    fs, base = url_to_fs(out)
    try:
        names = fs.ls(f"{base.rstrip('/')}/{REPORTS}", detail=False)
    except FileNotFoundError:
        return set()
    return {str(n).rsplit("/", 1)[-1][: -len(".html")] for n in names if str(n).endswith(".html")} - {"index"}


def _media_url(out: str, uri: str) -> str | None:
    """How the page at ``<out>/reports/`` reaches the source video, or None."""
    if not uri:
        return None
    source = local_source(uri)
    out_fs, out_path = url_to_fs(out)
    if source is not None:
        if is_local(out_fs):
            relative = os.path.relpath(source.resolve(), os.path.join(os.path.abspath(out_path), REPORTS))
            return urllib.parse.quote(relative.replace(os.sep, "/"))
        return source.resolve().as_uri()
    try:
        fs, path = url_to_fs(uri)
        return str(fs.sign(path, expiration=PRESIGN_S))
    except (NotImplementedError, AttributeError, ValueError, OSError):
        return None
