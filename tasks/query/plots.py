"""Timeline plot of one video: valence and arousal per face track, who speaks when, words.

The lanes show each voice's turns and, below them, when each face speaks (the
who-is-speaking stage's ``emotions.speaking``), labelled with that face's own voice.

Short clips are drawn frame by frame with every word written out; long videos are drawn
as means over bins (at most ``MAX_POINTS`` per track) with the min-max range shaded, and
words become a words-per-bin bar chart, so a 1 h video reads as well as a 30 s clip.
Data comes from the SQL views (affectflow.tasks.query.views), so the plot shows exactly what queries see.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass

import duckdb
import fsspec
import matplotlib
from matplotlib.artist import Artist

matplotlib.use("Agg")  # no display: plots are files

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from affectflow.tasks.query.views import connect

MAX_POINTS = 600  # per track; beyond this, bins
MAX_WORD_LABELS = 160  # beyond this, a words-per-bin bar chart
NICE_BINS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600)
TRACK_COLORS = ("#1f4e9c", "#c0392b", "#1e8449", "#7d3c98", "#b9770e", "#117a65")
SPEAKER_COLORS = ("#f5b041", "#5dade2", "#58d68d", "#ec7063", "#af7ac5", "#a3a3a3")


class PlotError(Exception):
    """The video cannot be plotted (unknown or not committed)."""


@dataclass
class Timeline:
    """What one plot shows, fetched once from the views (times in seconds)."""

    video_id: str
    name: str
    duration_s: float
    bin_s: float | None  # None: raw analysed frames
    emotions: pd.DataFrame  # track_id, t, valence, arousal (+ *_min, *_max when binned)
    turns: pd.DataFrame  # speaker, start, end
    words: pd.DataFrame  # word, start, end, speaker
    model: str
    voices: dict[int, str | None]  # face track -> its own voice (None: it has none), where speaking is known
    speaking: pd.DataFrame  # when each face speaks: track_id, start, end (s)


def plot_timeline(out: str, video_id: str, png_path: str, *, html_path: str | None = None) -> str:
    """Write the timeline PNG of ``video_id`` (local path or fsspec URL); returns ``png_path``."""
    con = connect(out, params={"video_id": video_id})
    timeline = load_timeline(con, video_id)
    png = render(timeline)
    _write(png_path, png)
    if html_path:
        _write(html_path, report_html(con, timeline, png).encode())
    return png_path


def load_timeline(con: duckdb.DuckDBPyConnection, video_id: str) -> Timeline:
    video = con.execute(
        "SELECT coalesce(name, uri, video_id), duration_s, analysis_fps FROM videos "
        "WHERE video_id = getvariable('video_id')"
    ).fetchone()
    if video is None:
        listing = 'affectflow sql --out OUT "SELECT video_id, name FROM videos"'
        raise PlotError(f"no committed video {video_id!r}; list them with: {listing}")
    name, duration_s, analysis_fps = video
    frames_per_track, t_max, model = con.execute(
        "SELECT count(*) / greatest(count(DISTINCT track_id), 1), max(t), any_value(model) FROM emotions "
        "WHERE video_id = getvariable('video_id')"
    ).fetchone() or (0, None, None)
    turns = con.execute(
        "SELECT speaker, start, \"end\" FROM speaker_turns WHERE video_id = getvariable('video_id') ORDER BY start"
    ).df()
    words = con.execute(
        "SELECT word, start, \"end\", speaker FROM words WHERE video_id = getvariable('video_id') ORDER BY start"
    ).df()
    duration = max(duration_s or 0.0, t_max or 0.0, turns["end"].max() if len(turns) else 0.0, 1.0)
    bin_s = choose_bin(duration, frames_per_track or 0)
    voices, speaking = _speaking(con, analysis_fps)
    return Timeline(video_id, name, duration, bin_s, _emotions(con, bin_s), turns, words, model or "", voices, speaking)


def _speaking(con: duckdb.DuckDBPyConnection, fps: float | None) -> tuple[dict[int, str | None], pd.DataFrame]:
    """Each face's own voice, and when it speaks: runs of speaking rows, each row one analysed frame long.

    Only tracks with a known ``speaking`` (the who-is-speaking stage ran) are listed.
    """
    rows = con.execute(
        "SELECT track_id, t, speaking, speaker FROM emotions WHERE video_id = getvariable('video_id') "
        "AND speaking IS NOT NULL ORDER BY track_id, t"
    ).df()
    voices, stretches = {}, []
    for track_id, track in rows.groupby("track_id", sort=True):
        t, speaking = track["t"].to_numpy(), track["speaking"].to_numpy(bool)  # (n,) s, (n,) bool
        step = 1 / fps if fps else float(np.median(np.diff(t))) if len(t) > 1 else 0.2  # s per analysed frame
        begins = np.r_[True, (speaking[1:] != speaking[:-1]) | (np.diff(t) > 1.5 * step)]  # off screen: a new run
        run = np.cumsum(begins)  # (n,) run number of each row
        for k in np.unique(run[speaking]):
            rows_k = np.flatnonzero(run == k)
            stretches.append((int(track_id), float(t[rows_k[0]]), float(t[rows_k[-1]] + step)))
        voices[int(track_id)] = track["speaker"].iloc[0]
    return voices, pd.DataFrame(stretches, columns=["track_id", "start", "end"])


def choose_bin(duration_s: float, frames_per_track: float) -> float | None:
    """None (raw frames) when a track has few enough points, else the smallest nice bin that fits."""
    if frames_per_track <= MAX_POINTS:
        return None
    return next((b for b in NICE_BINS_S if duration_s / b <= MAX_POINTS), NICE_BINS_S[-1])


def _emotions(con: duckdb.DuckDBPyConnection, bin_s: float | None) -> pd.DataFrame:
    if bin_s is None:
        return con.execute(
            "SELECT track_id, t, valence, arousal FROM emotions "
            "WHERE video_id = getvariable('video_id') ORDER BY track_id, t"
        ).df()
    con.execute(f"SET VARIABLE bin_s = {float(bin_s)}")
    return con.execute(
        """
        SELECT track_id, t_start + getvariable('bin_s') / 2 AS t, valence, arousal,
               valence_min, valence_max, arousal_min, arousal_max
        FROM emotion_timeline(getvariable('bin_s'))
        WHERE video_id = getvariable('video_id')
        ORDER BY track_id, t
        """
    ).df()


# -- drawing ---------------------------------------------------------------------------------


def render(timeline: Timeline) -> bytes:
    """The PNG bytes of the timeline figure."""
    fig = draw(timeline)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def draw(timeline: Timeline) -> Figure:
    """The timeline figure (axes: valence, arousal, who speaks, words); the caller closes it."""
    speakers = sorted(set(timeline.turns["speaker"].dropna()) | set(timeline.words["speaker"].dropna()))
    colors = {s: SPEAKER_COLORS[i % len(SPEAKER_COLORS)] for i, s in enumerate(speakers)}
    tracks = sorted(set(timeline.emotions["track_id"]) | set(timeline.voices))
    track_colors = {int(k): TRACK_COLORS[i % len(TRACK_COLORS)] for i, k in enumerate(tracks)}
    lanes = [
        (s, timeline.turns.loc[timeline.turns["speaker"] == s, ["start", "end"]].to_numpy(), colors[s])
        for s in speakers
    ]
    for track, voice in sorted(timeline.voices.items()):
        spans = timeline.speaking.loc[timeline.speaking["track_id"] == track, ["start", "end"]].to_numpy()
        lanes.append((f"face {track}: {voice or 'no voice'}", spans, track_colors[track]))
    fig = plt.figure(figsize=(14, 7.6 + 0.25 * len(timeline.voices)), dpi=110)
    grid = fig.add_gridspec(4, 1, height_ratios=[3, 3, 0.5 + 0.35 * max(len(lanes), 1), 1.5], hspace=0.12)
    axes = [fig.add_subplot(grid[0])]
    axes += [fig.add_subplot(grid[i], sharex=axes[0]) for i in (1, 2, 3)]
    for ax, column in zip(axes[:2], ("valence", "arousal"), strict=True):
        _draw_dimension(ax, timeline, column, colors, track_colors)
    _draw_lanes(axes[2], timeline, lanes, n_voices=len(speakers))
    _draw_words(axes[3], timeline, colors)
    _format_time_axis(axes, timeline.duration_s)
    _legend(fig, timeline, speakers, colors, track_colors)
    fig.suptitle(_title(timeline), x=0.01, y=0.985, ha="left", fontsize=12)
    fig.subplots_adjust(left=0.11, right=0.84, top=0.93, bottom=0.07)  # room for lane labels and the legend
    return fig


def _draw_dimension(
    ax: plt.Axes, timeline: Timeline, column: str, colors: dict[str, str], track_colors: dict[int, str]
) -> None:
    if timeline.bin_s is None:  # long videos have thousands of turns: the turns lane shows them
        for turn in timeline.turns.itertuples():
            ax.axvspan(turn.start, turn.end, color=colors[turn.speaker], alpha=0.16, lw=0)
    ax.axhline(0, color="#555555", lw=0.8)
    for track_id, rows in timeline.emotions.groupby("track_id", sort=True):
        color = track_colors[int(track_id)]
        t = _with_gaps(rows["t"].to_numpy(), timeline.bin_s)
        if timeline.bin_s is not None:
            low = _with_gaps(rows["t"].to_numpy(), timeline.bin_s, rows[f"{column}_min"].to_numpy())
            high = _with_gaps(rows["t"].to_numpy(), timeline.bin_s, rows[f"{column}_max"].to_numpy())
            ax.fill_between(t, low, high, color=color, alpha=0.18, lw=0)
        values = _with_gaps(rows["t"].to_numpy(), timeline.bin_s, rows[column].to_numpy())
        ax.plot(t, values, color=color, lw=1.4, label=f"face track {track_id}")
    if timeline.emotions.empty:
        ax.text(0.5, 0.5, "no face tracks", transform=ax.transAxes, ha="center", va="center", color="#777777")
    ax.set_ylim(-1.05, 1.05)
    ax.set_yticks([-1, -0.5, 0, 0.5, 1])
    ax.set_ylabel(column, fontsize=11)
    ax.grid(axis="y", color="#dddddd", lw=0.6)


def _with_gaps(t: np.ndarray, bin_s: float | None, values: np.ndarray | None = None) -> np.ndarray:
    """``values`` (or ``t``) with NaN inserted where a track was off screen, so lines break there."""
    # shape: t (n,) seconds, sorted; step is one analysed frame or one bin
    values = t if values is None else values.astype(float)
    if len(t) < 2:
        return values
    step = bin_s if bin_s is not None else float(np.median(np.diff(t)))
    breaks = np.flatnonzero(np.diff(t) > 2.5 * step) + 1
    return np.insert(values, breaks, np.nan)


def _draw_lanes(ax: plt.Axes, timeline: Timeline, lanes: list[tuple[str, np.ndarray, str]], n_voices: int) -> None:
    """One lane per voice (its turns), then one per face (when it speaks, labelled with its own voice).

    Each lane shows its spans themselves, or for long videos the share of each bin spoken.
    """
    bin_s = _lane_bin(timeline.duration_s)
    for row, (label, spans, color) in enumerate(lanes):  # spans: (n, 2) s
        if timeline.bin_s is None:
            ax.broken_barh([(s, e - s) for s, e in spans], (row - 0.4, 0.8), color=color, label=label)
        else:
            edges = np.arange(0, timeline.duration_s + bin_s, bin_s)
            share = _spoken_share(spans, edges)
            ax.bar(edges[:-1], -0.8 * share, bottom=row + 0.4, width=bin_s, align="edge", color=color, lw=0)
    if 0 < n_voices < len(lanes):
        ax.axhline(n_voices - 0.5, color="#bbbbbb", lw=0.8)  # voices above, faces below
    ax.set_yticks(range(len(lanes)), [label for label, _, _ in lanes], fontsize=8)
    ax.set_ylim(max(len(lanes), 1) - 0.4, -0.6)
    ax.set_ylabel("who speaks" if timeline.bin_s is None else f"speaking\n/{_span(bin_s)}", fontsize=9)
    if not n_voices:
        ax.text(0.5, 0.5, "no speech", transform=ax.transAxes, ha="center", va="center", color="#777777")


def _spoken_share(spans: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Fraction of each bin [edges[i], edges[i+1]) covered by the turns ``spans``."""
    # shape: spans (n_turns, 2), edges (n_bins + 1,) -> (n_bins,)
    if len(spans) == 0:
        return np.zeros(len(edges) - 1)
    overlap = np.minimum(spans[:, 1:2], edges[None, 1:]) - np.maximum(spans[:, 0:1], edges[None, :-1])
    return np.clip(overlap, 0, None).sum(axis=0) / np.diff(edges)


def _lane_bin(duration_s: float) -> float:
    """Bin for the speaking and word-rate lanes: about 240 bars across."""
    return next((b for b in NICE_BINS_S if duration_s / b <= 240), NICE_BINS_S[-1])


def _draw_words(ax: plt.Axes, timeline: Timeline, colors: dict[str, str]) -> None:
    """Every word written at its time (underlined in its speaker's colour), or the word rate."""
    words = timeline.words
    ax.set_yticks([])
    if len(words) > MAX_WORD_LABELS:
        _draw_word_rate(ax, words, timeline.duration_s, colors)
        return
    ax.set_ylabel("words", fontsize=10)
    if words.empty:
        ax.text(0.5, 0.5, "no words", transform=ax.transAxes, ha="center", va="center", color="#777777")
    size = 8 if len(words) <= 80 else 6.5
    along_x = ax.get_xaxis_transform()  # x in seconds, y in axes fraction
    for word in words.itertuples():
        ax.text(
            (word.start + word.end) / 2,
            0.05,
            word.word,
            rotation=90,
            ha="center",
            va="bottom",
            fontsize=size,
            color="#222222",
            transform=along_x,
        )
        ax.plot(
            [word.start, word.end],
            [0.02, 0.02],
            color=colors.get(word.speaker, "#999999"),
            lw=4,
            transform=along_x,
            solid_capstyle="butt",
        )


def _draw_word_rate(ax: plt.Axes, words: pd.DataFrame, duration_s: float, colors: dict[str, str]) -> None:
    """Words per bin, stacked by speaker: where the talking is when there are too many to write."""
    bin_s = _lane_bin(duration_s)
    edges = np.arange(0, duration_s + bin_s, bin_s)
    bottom = np.zeros(len(edges) - 1)
    for speaker, rows in words.groupby(words["speaker"].fillna("?"), sort=True):
        counts, _ = np.histogram(rows["start"], edges)
        ax.bar(edges[:-1], counts, width=bin_s, bottom=bottom, align="edge", color=colors.get(speaker, "#999999"), lw=0)
        bottom += counts
    ax.set_yticks([0, int(bottom.max())])
    ax.tick_params(axis="y", labelsize=7)
    ax.set_ylabel(f"words\n/{_span(bin_s)}", fontsize=9)


def _format_time_axis(axes: list[plt.Axes], duration_s: float) -> None:
    axes[-1].set_xlim(0, duration_s)
    axes[-1].xaxis.set_major_locator(MaxNLocator(nbins=14, steps=[1, 2, 3, 5, 6, 10]))
    axes[-1].xaxis.set_major_formatter(FuncFormatter(lambda x, _: _clock(x)))
    axes[-1].set_xlabel("time (h:mm:ss)" if duration_s >= 3600 else "time (m:ss)")
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)


def _legend(
    fig: Figure, timeline: Timeline, speakers: list[str], colors: dict[str, str], track_colors: dict[int, str]
) -> None:
    def voice(track: int) -> str:
        return f" · {timeline.voices[track] or 'no voice'}" if track in timeline.voices else ""

    handles: list[Artist] = [
        plt.Line2D([], [], color=color, lw=2, label=f"face track {track}{voice(track)}")
        for track, color in track_colors.items()
    ]
    handles += [Patch(color=colors[s], label=s) for s in speakers]
    if timeline.bin_s is not None:
        handles.append(Patch(color="#888888", alpha=0.3, label=f"min–max per {_span(timeline.bin_s)}"))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.845, 0.93), frameon=False, fontsize=9)


def _title(timeline: Timeline) -> str:
    resolution = "every analysed frame" if timeline.bin_s is None else f"means per {_span(timeline.bin_s)} bin"
    return (
        f"{timeline.name}   ·   {_clock(timeline.duration_s)}   ·   {resolution}   ·   "
        f"model {timeline.model or '-'}   ·   id {timeline.video_id[:16]}"
    )


def _clock(seconds: float) -> str:
    """A time as m:ss, or h:mm:ss from one hour on."""
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _span(seconds: float) -> str:
    """A bin length: '10 s', '2 min'."""
    return f"{seconds:g} s" if seconds < 60 else f"{seconds / 60:g} min"


# -- HTML report -----------------------------------------------------------------------------


def report_html(con: duckdb.DuckDBPyConnection, timeline: Timeline, png: bytes) -> str:
    """A self-contained page: the plot, per-speaker and per-track summaries, the transcript (each utterance read from its speaker's face)."""
    summary = con.execute(
        """
        SELECT level, coalesce(speaker, CASE WHEN level = 'speaker' THEN '(nobody speaking)' END) AS speaker,
               track_id, round(seconds, 1) AS seconds, round(speaking_s, 1) AS speaking_s,
               round(valence_mean, 3) AS valence_mean,
               round(arousal_mean, 3) AS arousal_mean, round(excited_s, 1) AS excited_s,
               round(tense_s, 1) AS tense_s, round(sad_s, 1) AS sad_s, round(calm_s, 1) AS calm_s
        FROM emotion_summary WHERE video_id = getvariable('video_id') ORDER BY level DESC, speaker, track_id
        """
    ).df()
    transcript = con.execute(  # each utterance with its speaker's own face's valence/arousal
        """
        SELECT start, "end", speaker, track_id AS face, text,
               round(valence, 3) AS valence, round(arousal, 3) AS arousal
        FROM utterance_emotions WHERE video_id = getvariable('video_id') ORDER BY start
        """
    ).df()
    transcript.insert(0, "at", transcript.pop("start").map(_clock))
    transcript = transcript.drop(columns="end")
    image = base64.b64encode(png).decode()
    title = html.escape(timeline.name)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title} · affectflow</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1600px}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ddd;padding:3px 8px;text-align:left}} img{{max-width:100%}}</style></head>
<body><h1>{title}</h1><p>video_id {html.escape(timeline.video_id)} · model {html.escape(timeline.model or "-")}</p>
<img alt="valence and arousal timeline" src="data:image/png;base64,{image}">
<h2>Summary</h2>{summary.to_html(index=False, na_rep="")}
<h2>Transcript</h2>{transcript.to_html(index=False, na_rep="")}
</body></html>
"""


def _write(path: str, data: bytes) -> None:
    with fsspec.open(path, "wb") as handle:
        handle.write(data)
