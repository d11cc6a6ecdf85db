"""The corpus index page: every video with its status, numbers, a sparkline and a link to its report.

A plain HTML table the page's script sorts (click a heading) and filters (the search box);
failed videos show their one-line error. The sparklines are tiny inline SVGs of the mean
valence and arousal over ``SPARK_BINS`` equal parts of each video.
"""

from __future__ import annotations

import html
from typing import Any

import duckdb
import pandas as pd

SPARK_BINS = 24
SPARK_W, SPARK_H = 120, 28  # px

SUMMARY_SQL = """
WITH faces AS (SELECT video_id, count(*) AS n_tracks FROM tracks GROUP BY 1),
voices AS (SELECT video_id, count(DISTINCT speaker) AS n_voices FROM speaker_turns GROUP BY 1),
means AS (SELECT video_id, avg(valence) AS valence, avg(arousal) AS arousal FROM emotions GROUP BY 1)
SELECT v.video_id, v.name, v.status, v.error, v.duration_s, v.finished,
       coalesce(f.n_tracks, 0) AS n_tracks, coalesce(s.n_voices, 0) AS n_voices, m.valence, m.arousal
FROM videos AS v LEFT JOIN faces AS f USING (video_id) LEFT JOIN voices AS s USING (video_id)
LEFT JOIN means AS m USING (video_id)
ORDER BY v.name, v.video_id
"""

SPARK_SQL = f"""
SELECT e.video_id, least(floor(e.t / greatest(v.duration_s, 1e-3) * {SPARK_BINS}), {SPARK_BINS - 1})::INT AS bin,
       avg(e.valence) AS valence, avg(e.arousal) AS arousal
FROM emotions AS e JOIN videos AS v USING (video_id)
GROUP BY ALL ORDER BY 1, 2
"""

# Served over HTTP (S3, a presigned link) a browser asks the host for /favicon.ico, which an
# object store answers 404: a console error on every page. An empty inline icon asks nothing.
NO_ICON = '<link rel="icon" href="data:,">'
CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.35em; } input { font: inherit; padding: .25em .5em; width: 20em; margin-bottom: .6em; }
table { border-collapse: collapse; width: 100%; } th { cursor: pointer; user-select: none; text-align: left; }
th, td { padding: .25em .6em; border-bottom: 1px solid #eee; vertical-align: middle; }
th.asc::after { content: " ▲"; } th.desc::after { content: " ▼"; }
tr.failed td { background: #fff0f0; } td.error { color: #a00; font-size: .9em; } td.num { text-align: right; }
.legend { color: #666; font-size: .9em; }
"""

INDEX_JS = """
(function () {
  const table = document.getElementById("videos"), body = table.tBodies[0];
  const filter = document.getElementById("filter");
  filter.addEventListener("input", function () {
    const q = filter.value.toLowerCase();
    Array.from(body.rows).forEach(function (r) { r.hidden = q && !r.textContent.toLowerCase().includes(q); });
  });
  Array.from(table.tHead.rows[0].cells).forEach(function (th, col) {
    th.addEventListener("click", function () {
      const asc = !th.classList.contains("asc");
      Array.from(table.tHead.rows[0].cells).forEach(function (h) { h.classList.remove("asc", "desc"); });
      th.classList.add(asc ? "asc" : "desc");
      const key = function (r) { const v = r.cells[col].dataset.sort; return v === undefined ? "" : v; };
      const numeric = th.dataset.type === "number";
      const rows = Array.from(body.rows).sort(function (a, b) {
        const x = key(a), y = key(b);
        const d = numeric ? (parseFloat(x || "NaN") || -Infinity) - (parseFloat(y || "NaN") || -Infinity) : x.localeCompare(y);
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
})();
"""

COLUMNS = [  # (heading, type)
    ("video", "text"), ("status", "text"), ("duration (s)", "number"), ("faces", "number"), ("voices", "number"),
    ("mean valence", "number"), ("mean arousal", "number"), ("timeline", "text"), ("error", "text"),
]  # fmt: skip


def index_page(con: duckdb.DuckDBPyConnection, reports: set[str]) -> str:
    """The index of every video in ``con``'s views; ``reports`` are the video_ids that have a report page."""
    videos = con.execute(SUMMARY_SQL).df()
    sparks = {k: g for k, g in con.execute(SPARK_SQL).df().groupby("video_id")}
    rows = "".join(_row(v, sparks.get(v.video_id), v.video_id in reports) for v in videos.itertuples(index=False))
    heads = "".join(f'<th data-type="{kind}">{html.escape(name)}</th>' for name, kind in COLUMNS)
    n_failed = int((videos.status != "ok").sum())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>affectflow · corpus</title>{NO_ICON}<style>{CSS}</style></head>
<body><h1>Corpus: {len(videos)} videos, {n_failed} failed</h1>
<p class="legend">Timeline: mean valence (blue) and arousal (red) over each video, from −1 to 1.
Click a heading to sort; type to filter.</p>
<input id="filter" type="search" placeholder="filter (name, status, error)…">
<table id="videos"><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>
<script>{INDEX_JS}</script></body></html>
"""


def _row(v: Any, spark: pd.DataFrame | None, has_report: bool) -> str:  # v: a row of SUMMARY_SQL
    e = html.escape
    name = e(str(v.name or v.video_id))
    link = f'<a href="{e(v.video_id, quote=True)}.html">{name}</a>' if has_report else name
    cells = [
        (link, str(v.name or "")),
        (e(str(v.status)), str(v.status)),
        _number(v.duration_s, 1),
        _number(v.n_tracks, 0),
        _number(v.n_voices, 0),
        _number(v.valence, 2),
        _number(v.arousal, 2),
        (_sparkline(spark), ""),
        (e(str(v.error or "")), str(v.error or "")),
    ]
    tds = []
    for k, (content, sort) in enumerate(cells):
        css = ' class="num"' if COLUMNS[k][1] == "number" else (' class="error"' if k == len(cells) - 1 else "")
        tds.append(f'<td{css} data-sort="{e(sort, quote=True)}">{content}</td>')
    failed = ' class="failed"' if v.status != "ok" else ""
    return f"<tr{failed}>{''.join(tds)}</tr>"


def _number(value: Any, digits: int) -> tuple[str, str]:
    if value is None or pd.isna(value):
        return "", ""
    return f"{float(value):.{digits}f}", repr(float(value))


def _sparkline(spark: pd.DataFrame | None) -> str:
    if spark is None or not len(spark):
        return ""
    lines = []
    for column, color in (("valence", "#1f4e9c"), ("arousal", "#c0392b")):
        points = " ".join(
            f"{(b + 0.5) / SPARK_BINS * SPARK_W:.1f},{(1 - (v + 1) / 2) * SPARK_H:.1f}"
            for b, v in zip(spark.bin, spark[column], strict=True)
            if pd.notna(v)
        )
        lines.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/>')
    mid = f'<line x1="0" x2="{SPARK_W}" y1="{SPARK_H / 2}" y2="{SPARK_H / 2}" stroke="#ccc"/>'
    return f'<svg width="{SPARK_W}" height="{SPARK_H}" role="img">{mid}{"".join(lines)}</svg>'
