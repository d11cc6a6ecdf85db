"""Timeline plots show what the views hold: a line per face track, the speakers' turns, when each face speaks, the words.

Each video is plotted once with ``plot_timeline``; the figure it rendered (``draw``) is kept
and its artists are compared with the tables read through the views. An hour-long video
is checked against bin means computed here with pandas, not with the SQL macro the plot
uses. The PNG is checked for the colours of its tracks and speakers, and ``affectflow
plot`` must write the very same file.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import duckdb
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from PIL import Image

from affectflow.flows.cli import main
from affectflow.tasks.query import plots
from affectflow.tasks.query.plots import (
    MAX_POINTS,
    SPEAKER_COLORS,
    TRACK_COLORS,
    PlotError,
    choose_bin,
    draw,
    plot_timeline,
)
from affectflow.tasks.query.views import connect
from affectflow.tasks.storage.store import Store
from tests.tablegen import write_video

pytestmark = pytest.mark.unit

FPS = 5.0  # tablegen's analysis_fps


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("out")
    store = Store(str(root))
    write_video(store, "clip", duration_s=30, seed=1)
    write_video(store, "hour", duration_s=3600, seed=2)
    store.write_video("silent", {}, dict(video_id="silent", duration_s=5.0, analysis_fps=FPS, status="ok"))
    return str(root)


@dataclass(frozen=True)
class Plotted:
    figure: Figure  # the figure plot_timeline drew (closed, its artists intact)
    png: Path
    html: Path  # written for the clip only
    seconds: float  # plot_timeline's wall time


@pytest.fixture(scope="module")
def plotted(out: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Plotted]]:
    """Each video plotted once by ``plot_timeline``, with the figure it rendered kept for inspection."""
    folder, drawn = tmp_path_factory.mktemp("plots"), []

    def keep(timeline: plots.Timeline) -> Figure:
        drawn.append(draw(timeline))
        return drawn[-1]

    result = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "draw", keep)
        for video in ("clip", "hour", "silent"):
            png, html = folder / f"{video}.png", folder / f"{video}.html"
            started = time.perf_counter()
            assert plot_timeline(out, video, str(png), html_path=str(html) if video == "clip" else None) == str(png)
            result[video] = Plotted(drawn[-1], png, html, time.perf_counter() - started)
    yield result
    for fig in drawn:
        plt.close(fig)


@functools.cache
def views(out: str) -> duckdb.DuckDBPyConnection:
    """One read-only connection per output root: creating the views costs a few tenths of a second."""
    return connect(out)


def table(out: str, query: str, video_id: str) -> pd.DataFrame:
    return views(out).execute(query, [video_id]).df()


def track_lines(fig: Figure, axis: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Track id -> (t, value) of the line each face track has on axes ``axis`` (NaN = a gap)."""
    lines = {str(line.get_label()): line for line in fig.axes[axis].get_lines()}
    return {
        int(label.removeprefix("face track ")): (
            np.asarray(line.get_xdata(), float),
            np.asarray(line.get_ydata(), float),
        )
        for label, line in lines.items()
        if label.startswith("face track ")
    }


def spans(collection: PolyCollection) -> list[tuple[float, float]]:
    """(start, end) of each bar of a ``broken_barh``, in seconds."""
    xs = [np.asarray(path.vertices)[:, 0] for path in collection.get_paths()]  # each: (n_vertices,) s
    return [(float(x.min()), float(x.max())) for x in xs]


def test_short_clip_draws_every_frame_of_every_track(out: str, plotted: dict[str, Plotted]) -> None:
    emotions = table(out, "SELECT track_id, t, valence, arousal FROM emotions WHERE video_id = ? ORDER BY t", "clip")
    fig = plotted["clip"].figure
    for axis, column in enumerate(("valence", "arousal")):
        lines = track_lines(fig, axis)
        assert sorted(lines) == sorted(emotions["track_id"].unique()) == [0, 1]
        for track, rows in emotions.groupby("track_id"):
            t, values = lines[int(track)]
            drawn = ~np.isnan(values)
            np.testing.assert_allclose(t[drawn], rows["t"])
            np.testing.assert_allclose(values[drawn], rows[column])
            gaps = int((np.diff(rows["t"]) > 2.5 / FPS).sum())  # frames off screen break the line
            assert (~drawn).sum() == gaps


FACE_LANES = ["face 0: SPEAKER_00", "face 1: SPEAKER_01"]


def test_short_clip_shows_each_speakers_turns_and_every_word(out: str, plotted: dict[str, Plotted]) -> None:
    turns = table(out, 'SELECT speaker, start, "end" FROM speaker_turns WHERE video_id = ? ORDER BY start', "clip")
    words = table(out, 'SELECT word, start, "end" FROM words WHERE video_id = ? ORDER BY start', "clip")
    fig = plotted["clip"].figure
    lanes = {str(c.get_label()): c for c in fig.axes[2].collections if isinstance(c, PolyCollection)}
    labels = [label.get_text() for label in fig.axes[2].get_yticklabels()]
    assert labels == ["SPEAKER_00", "SPEAKER_01", *FACE_LANES] and sorted(lanes) == sorted(labels)
    for speaker, rows in turns.groupby("speaker"):
        np.testing.assert_allclose(spans(lanes[str(speaker)]), rows[["start", "end"]].to_numpy())
    written = [(text.get_text(), text.get_position()[0]) for text in fig.axes[3].texts]
    assert [w for w, _ in written] == words["word"].tolist() and len(written) > 20
    np.testing.assert_allclose([x for _, x in written], (words["start"] + words["end"]) / 2)


def test_short_clip_shows_when_each_face_speaks(out: str, plotted: dict[str, Plotted]) -> None:
    """Each face's lane covers exactly its speaking rows (each one analysed frame long), and says whose voice it is."""
    emotions = table(out, "SELECT track_id, t, speaking FROM emotions WHERE video_id = ? ORDER BY t", "clip")
    fig = plotted["clip"].figure
    lanes = {str(c.get_label()): c for c in fig.axes[2].collections if isinstance(c, PolyCollection)}
    for track, lane in enumerate(FACE_LANES):
        rows = emotions[emotions["track_id"] == track]
        bars = np.array(spans(lanes[lane]))  # (n, 2) s
        t = rows["t"].to_numpy() + 0.5 / FPS  # the middle of each analysed frame
        covered = ((t[:, None] >= bars[None, :, 0]) & (t[:, None] < bars[None, :, 1])).any(axis=1)
        assert rows["speaking"].any() and (covered == rows["speaking"].to_numpy()).all(), lane
        assert (bars[:, 1] - bars[:, 0]).sum() == pytest.approx(rows["speaking"].sum() / FPS)
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend[:2] == ["face track 0 · SPEAKER_00", "face track 1 · SPEAKER_01"]


def test_hour_long_video_is_drawn_as_bin_means_and_plots_quickly(out: str, plotted: dict[str, Plotted]) -> None:
    assert choose_bin(3600, 3600 * 5) == 10  # 360 points per track
    assert choose_bin(30, 150) is None
    assert plotted["hour"].seconds < 15
    emotions = table(out, "SELECT track_id, t, valence FROM emotions WHERE video_id = ?", "hour")
    fig = plotted["hour"].figure
    lines = track_lines(fig, 0)
    assert sorted(lines) == [0, 1]
    for track, rows in emotions.groupby("track_id"):
        means = rows.groupby(np.floor(rows["t"] / 10) * 10)["valence"].mean()  # 10 s bins
        t, values = lines[int(track)]
        drawn = ~np.isnan(values)
        assert drawn.sum() == len(means) <= MAX_POINTS
        np.testing.assert_allclose(t[drawn], means.index + 5)  # bin centres
        np.testing.assert_allclose(values[drawn], means.to_numpy())
    ranges = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    assert len(ranges) == 2  # each track's min-max band


def test_hour_long_video_shows_speaking_time_and_word_rate(out: str, plotted: dict[str, Plotted]) -> None:
    turns = table(out, 'SELECT speaker, "end" - start AS seconds FROM speaker_turns WHERE video_id = ?', "hour")
    speaking = table(
        out, "SELECT track_id, count_if(speaking) AS n FROM emotions WHERE video_id = ? GROUP BY 1", "hour"
    )
    (n_words,) = table(out, "SELECT count(*) FROM words WHERE video_id = ?", "hour").iloc[0]
    fig = plotted["hour"].figure
    lanes = [label.get_text() for label in fig.axes[2].get_yticklabels()]
    assert lanes == ["SPEAKER_00", "SPEAKER_01", *FACE_LANES]
    expected = [turns.loc[turns["speaker"] == speaker, "seconds"].sum() for speaker in lanes[:2]]
    expected += [speaking.loc[speaking["track_id"] == track, "n"].sum() / FPS for track in (0, 1)]
    for lane, bars, seconds in zip(lanes, fig.axes[2].containers, expected, strict=True):  # one bar series per lane
        spoken_s = sum(-bar.get_height() / 0.8 * bar.get_width() for bar in bars)  # share of each bin × bin
        assert spoken_s == pytest.approx(seconds, rel=1e-6), lane
    counted = sum(bar.get_height() for bars in fig.axes[3].containers for bar in bars)
    assert counted == n_words > 160  # too many to write out: words per bin, stacked by speaker
    assert not fig.axes[3].texts


def test_html_report_embeds_the_plot_and_the_transcript(out: str, plotted: dict[str, Plotted]) -> None:
    page = plotted["clip"].html.read_text()
    assert "data:image/png;base64," in page and "Transcript" in page and "SPEAKER_00" in page
    transcript = ElementTree.fromstring(re.findall(r"<table.*?</table>", page, re.S)[-1])  # the last table
    header = [th.text for th in transcript.iter("th")]
    cells = [[td.text for td in tr.iter("td")] for tr in transcript.iter("tr")][1:]  # (utterances, columns)
    said = {(row[header.index("speaker")], float(row[header.index("face")])) for row in cells}
    faces = table(out, "SELECT speaker, track_id FROM tracks WHERE video_id = ?", "clip")
    assert said == set(zip(faces["speaker"], faces["track_id"].astype(float), strict=True))  # each by its own face


def colour_share(image: np.ndarray, colour: str) -> float:
    """Fraction of the pixels of ``image`` (height, width, 3; 0-255) within a few levels of ``colour``."""
    target = np.round(255 * np.array(to_rgb(colour)))  # (3,) 0-255
    close = [np.abs(image[..., c] - target[c]) < 24 for c in range(3)]  # per channel: (height, width)
    return float((close[0] & close[1] & close[2]).mean())


def test_the_png_shows_the_tracks_and_speakers_in_their_colours(plotted: dict[str, Plotted]) -> None:
    image = np.asarray(Image.open(plotted["clip"].png).convert("RGB"), dtype=np.int16)  # shape: (height, width, 3)
    assert image.shape[1] >= 1200 and image.shape[0] >= 700
    for colour in (*TRACK_COLORS[:2], *SPEAKER_COLORS[:2]):  # two tracks, two speakers
        assert colour_share(image, colour) > 0.001, colour
    assert colour_share(image, TRACK_COLORS[2]) < 0.0001  # no third track


def test_plot_command_writes_the_same_png(capsys, out: str, plotted: dict[str, Plotted], tmp_path: Path) -> None:
    assert main(["plot", "clip", "--out", out, "--png", str(tmp_path / "p.png")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes() == plotted["clip"].png.read_bytes()


def test_unknown_video_is_a_one_line_error(capsys, out: str, tmp_path: Path) -> None:
    with pytest.raises(PlotError, match="no committed video"):
        plot_timeline(out, "missing", str(tmp_path / "x.png"))
    assert main(["plot", "missing", "--out", out, "--png", str(tmp_path / "x.png")]) == 3
    assert "SELECT video_id, name FROM videos" in capsys.readouterr().err


def test_video_without_faces_or_speech_says_so_in_each_lane(plotted: dict[str, Plotted]) -> None:
    fig = plotted["silent"].figure
    assert track_lines(fig, 0) == track_lines(fig, 1) == {}
    lanes = [[text.get_text() for text in ax.texts] for ax in fig.axes]
    assert lanes == [["no face tracks"], ["no face tracks"], ["no speech"], ["no words"]]
