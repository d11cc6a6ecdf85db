"""The report's interactive timeline (Bokeh): valence and arousal per face track, who speaks when.

Three stacked plots share one time axis (s): valence, arousal (both in [-1, 1]) and speaker
lanes. Each holds a cursor (a ``Span`` named ``cursor-…``) that the page moves with the video;
a click anywhere seeks the video there (``affectflowSeek``, defined by the page).
Long videos are drawn as bin means so a track never has more than ``MAX_POINTS`` points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from bokeh.events import Tap
from bokeh.layouts import column
from bokeh.models import Column, ColumnDataSource, CustomJS, FactorRange, HoverTool, Range1d
from bokeh.models.annotations.geometry import Span
from bokeh.plotting import figure

from affectflow.tasks.exports.results import VideoResults

MAX_POINTS = 2000  # per track and dimension
TRACK_COLORS = ("#1f4e9c", "#c0392b", "#1e8449", "#7d3c98", "#b9770e", "#117a65")
SPEAKER_COLORS = ("#f5b041", "#5dade2", "#58d68d", "#ec7063", "#af7ac5", "#a3a3a3")
SEEK_JS = "if (window.affectflowSeek) { window.affectflowSeek(cb_obj.x); }"  # the page defines affectflowSeek


def timeline(results: VideoResults, width: int = 960) -> Column:
    """The layout named ``timeline``: valence, arousal and speaker plots on one time axis."""
    end = max(results.duration_s, float(results.emotions.t.max()) if len(results.emotions) else 0.0, 1.0)
    x_range = Range1d(start=0.0, end=end, bounds=(0.0, end))
    plots = [_dimension(results, name, x_range, width) for name in ("valence", "arousal")]
    plots.append(_speakers(results, x_range, width))
    seek = CustomJS(code=SEEK_JS)  # one per document: Bokeh models belong to a single one
    for plot in plots:
        plot.js_on_event(Tap, seek)
    plots[-1].xaxis.axis_label = "time (s)"
    return column(*plots, name="timeline", sizing_mode="stretch_width")


def track_series(results: VideoResults) -> dict[int, pd.DataFrame]:
    """{track_id: t, valence, arousal} — frames, or bin means for long videos; NaN rows break lines at gaps."""
    fps = float(results.video.get("analysis_fps") or 5.0)
    out = {}
    for track_id, rows in results.emotions.groupby("track_id", sort=True):
        rows = rows[["t", "valence", "arousal"]].sort_values("t")
        step = 1.0 / fps
        if len(rows) > MAX_POINTS:
            step = float(np.ceil((rows.t.max() - rows.t.min()) / MAX_POINTS / step) * step)
            rows = rows.groupby(np.floor(rows.t / step) * step).mean().drop(columns="t").reset_index()
        gaps = rows.t.diff() > 2.5 * step  # the face left: no line across the gap
        breaks = pd.DataFrame({"t": rows.t[gaps] - step / 2, "valence": np.nan, "arousal": np.nan})
        out[int(track_id)] = pd.concat([rows, breaks]).sort_values("t", kind="stable").reset_index(drop=True)
    return out


def track_label(results: VideoResults, track_id: int) -> str:
    voice = results.tracks.set_index("track_id").speaker.get(track_id) if len(results.tracks) else None
    return f"face {track_id}" + (f" ({voice})" if isinstance(voice, str) else "")


def _dimension(results: VideoResults, name: str, x_range: Range1d, width: int) -> figure:
    plot = figure(
        height=190, width=width, x_range=x_range, y_range=Range1d(start=-1.05, end=1.05), title=name,
        tools="xpan,xwheel_zoom,reset,save", active_scroll=None, sizing_mode="stretch_width", name=f"plot-{name}",
    )  # fmt: skip
    for k, (track_id, series) in enumerate(track_series(results).items()):
        source = ColumnDataSource({"t": series.t.to_numpy(), "value": series[name].to_numpy()})
        plot.line(
            "t", "value", source=source, color=TRACK_COLORS[k % len(TRACK_COLORS)], line_width=2,
            legend_label=track_label(results, track_id), name=f"{name}-track-{track_id}",
        )  # fmt: skip
    plot.add_layout(Span(location=0.0, dimension="width", line_color="#999", line_dash="dotted"))
    plot.add_layout(Span(location=0.0, dimension="height", line_color="#111", line_width=2, name=f"cursor-{name}"))
    plot.add_tools(HoverTool(tooltips=[("t", "@t{0.0} s"), (name, "@value{0.00}")], mode="vline"))
    if plot.legend:
        plot.legend.location, plot.legend.click_policy = "top_left", "hide"
        plot.legend.background_fill_alpha, plot.legend.orientation = 0.6, "horizontal"
    return plot


def _speakers(results: VideoResults, x_range: Range1d, width: int) -> figure:
    speakers = sorted(results.turns.speaker.unique()) if len(results.turns) else ["(no speech)"]
    plot = figure(
        height=40 + 26 * len(speakers), width=width, x_range=x_range, y_range=FactorRange(factors=list(reversed(speakers))),
        title="who speaks", tools="xpan,xwheel_zoom,reset", sizing_mode="stretch_width", name="plot-speakers",
    )  # fmt: skip
    if len(results.turns):
        colors = {s: SPEAKER_COLORS[k % len(SPEAKER_COLORS)] for k, s in enumerate(speakers)}
        turns = results.turns.assign(color=results.turns.speaker.map(colors))
        plot.hbar(
            y="speaker", left="start", right="end", height=0.7, color="color",
            source=ColumnDataSource(turns[["speaker", "start", "end", "color"]]), name="turns",
        )  # fmt: skip
    plot.add_layout(Span(location=0.0, dimension="height", line_color="#111", line_width=2, name="cursor-speakers"))
    return plot
