"""Every export format from a real pipeline run (the suite's `pipeline_out`), read back by its own library."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from affectflow.tasks.exports import FORMATS, export_videos
from affectflow.tasks.query.views import connect

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def exported(pipeline_out: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """{video_id: {format: file}} for every ok video of the run."""
    files = export_videos(pipeline_out, tmp_path_factory.mktemp("exports"), list(FORMATS))
    by_video: dict[str, dict[str, Path]] = {}
    for path in files:
        video_id = path.name.split(".")[1]
        fmt = next(f for f, (suffix, _) in FORMATS.items() if path.name.endswith("." + suffix))
        by_video.setdefault(video_id, {})[fmt] = path
    return by_video


def test_every_ok_video_gets_every_format(pipeline_out: str, exported: dict) -> None:
    ok = connect(pipeline_out).execute("SELECT video_id FROM videos WHERE status = 'ok'").df().video_id
    assert set(exported) == set(ok) and len(ok) >= 3
    assert all(set(formats) == set(FORMATS) for formats in exported.values())


def test_the_dialogue_reads_back_in_each_format(pipeline_out: str, exported: dict) -> None:
    import srt
    import webvtt
    from praatio import textgrid
    from pyannote.database.util import load_rttm
    from pympi.Elan import Eaf

    con = connect(pipeline_out)
    video_id = con.execute("SELECT video_id FROM videos WHERE name = 'interview.mp4'").fetchone()[0]
    files = exported[video_id]
    turns = con.execute(f"SELECT speaker, start, \"end\" FROM speaker_turns WHERE video_id = '{video_id}'").df()
    words = con.execute(f"SELECT word, speaker FROM words WHERE video_id = '{video_id}' ORDER BY start").df()
    emotions = con.execute(f"SELECT track_id, t FROM emotions WHERE video_id = '{video_id}'").df()
    assert len(turns) >= 2 and len(words) >= 10

    (annotation,) = load_rttm(files["rttm"]).values()
    assert sorted(annotation.labels()) == sorted(turns.speaker.unique())
    assert abs(annotation.get_timeline().duration() - (turns["end"] - turns.start).sum()) < 0.01

    said = [w for s in srt.parse(files["srt"].read_text()) for w in s.content.split(": ", 1)[-1].split()]
    assert said == " ".join(words.word).split()
    captions = webvtt.read(str(files["vtt"]))
    assert {c.voice for c in captions} <= set(turns.speaker) | {None} and len(captions) >= 2

    eaf = Eaf(str(files["eaf"]))
    tiers = set(eaf.get_tier_names())
    assert {f"face {t} valence" for t in emotions.track_id.unique()} <= tiers
    assert sum(len(eaf.get_annotation_data_for_tier(f"{s} words")) for s in words.speaker.dropna().unique()) == len(
        words.dropna(subset=["speaker"])
    )

    grid = textgrid.openTextgrid(str(files["textgrid"]), includeEmptyIntervals=False)
    assert set(grid.tierNames) >= set(turns.speaker) | {f"{s} words" for s in turns.speaker}

    assert len(pd.read_csv(files["csv"])) == len(emotions)
    document = json.loads(files["json"].read_text())
    assert [w["word"] for w in document["word_segments"]] == list(words.word)
    assert document["video"]["backends"]["emotions"]  # which model made the rows


def test_the_run_wrote_a_report_per_ok_video_with_its_faces(pipeline_out: str) -> None:
    con = connect(pipeline_out)
    ok = con.execute("SELECT video_id FROM videos WHERE status = 'ok'").df().video_id
    reports = Path(pipeline_out) / "reports"
    assert {p.stem for p in reports.glob("*.html")} == {*ok, "index"}
    tracks = con.execute("SELECT video_id, count(*) AS n FROM tracks GROUP BY 1").df()
    for video_id, n in zip(tracks.video_id, tracks.n, strict=True):
        page = (reports / f"{video_id}.html").read_text()
        assert page.count('src="data:image/jpeg;base64,') == n  # a thumbnail per face track, cut from the source
