"""The whole pipeline, end to end, on generated clips with known truth (offline default models)."""

from __future__ import annotations

import json

import pytest

from affectflow.tasks.query.views import connect

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def con(pipeline_out: str):  # type: ignore[no-untyped-def]
    return connect(pipeline_out)


def video_id(con, name: str) -> str:  # type: ignore[no-untyped-def]
    return con.execute("SELECT video_id FROM videos WHERE name = ?", [name]).fetchone()[0]


def test_every_file_has_one_videos_row_with_its_status(con, corpus) -> None:  # type: ignore[no-untyped-def]
    rows = dict(con.execute("SELECT name, status FROM videos").fetchall())
    assert rows == {**{n: "ok" for n in corpus.faces}, **{n: "failed" for n in corpus.bad}}


def test_backends_name_the_models_that_made_each_stage(con) -> None:  # type: ignore[no-untyped-def]
    (backends,) = con.execute("SELECT backends FROM videos WHERE name = 'interview.mp4'").fetchone()
    stages = json.loads(backends)
    assert set(stages) == {"faces", "diarize", "transcribe", "speaking", "emotions"}
    assert "yunet" in stages["faces"] and "rcma-distilled-v0" in stages["emotions"]
    assert "each face its own voice" in stages["emotions"]  # EmotionConfig.audio_scope


def test_one_face_is_one_track_over_most_frames(con) -> None:  # type: ignore[no-untyped-def]
    vid = video_id(con, "interview.mp4")
    analysed, tracks = con.execute(
        "SELECT n_frames_analysed, (SELECT count(DISTINCT track_id) FROM faces WHERE video_id = $v) "
        "FROM videos WHERE video_id = $v",
        {"v": vid},
    ).fetchone()
    (largest,) = con.execute(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM faces WHERE video_id = ? GROUP BY track_id)", [vid]
    ).fetchone()
    assert tracks == 1
    assert largest >= 0.95 * analysed


def test_two_faces_are_two_stable_tracks(con) -> None:  # type: ignore[no-untyped-def]
    vid = video_id(con, "two_people.mp4")
    counts = [
        n for (n,) in con.execute("SELECT count(*) FROM faces WHERE video_id = ? GROUP BY track_id", [vid]).fetchall()
    ]
    (analysed,) = con.execute("SELECT n_frames_analysed FROM videos WHERE video_id = ?", [vid]).fetchone()
    assert len(counts) == 2 and min(counts) >= 0.9 * analysed


def test_dialogue_gives_two_speakers_and_labelled_words(con, corpus) -> None:  # type: ignore[no-untyped-def]
    vid = video_id(con, "interview.mp4")
    (speakers,) = con.execute("SELECT count(DISTINCT speaker) FROM speaker_turns WHERE video_id = ?", [vid]).fetchone()
    words = con.execute("SELECT lower(word), speaker FROM words WHERE video_id = ?", [vid]).fetchall()
    truth = {w.word for w in corpus.dialogues["interview.mp4"].words}
    assert speakers == 2
    assert sum(w.strip(".,?!") in truth for w, _ in words) >= 0.8 * len(truth)
    assert sum(s is not None for _, s in words) >= 0.95 * len(words)


def test_emotions_for_every_face_row_in_range_never_without_a_face(con) -> None:  # type: ignore[no-untyped-def]
    faces = con.execute("SELECT video_id, track_id, frame FROM faces ORDER BY ALL").fetchall()
    emotions = con.execute("SELECT video_id, track_id, frame FROM emotions ORDER BY ALL").fetchall()
    assert emotions == faces and len(faces) > 100
    low, high = con.execute(
        "SELECT min(least(valence, arousal)), max(greatest(valence, arousal)) FROM emotions"
    ).fetchone()
    assert low >= -1.0 and high <= 1.0 and high > low


def test_speaker_column_is_each_faces_own_voice(con) -> None:  # type: ignore[no-untyped-def]
    """An emotion row carries its track's linked voice (tracks.speaker); no audio means no voice, never speaking."""
    mismatched, rows = con.execute(
        "SELECT count(*) FILTER (WHERE e.speaker IS DISTINCT FROM k.speaker), count(*) "
        "FROM emotions e JOIN tracks k USING (video_id, track_id)"
    ).fetchone()
    assert rows == con.execute("SELECT count(*) FROM emotions").fetchone()[0] and mismatched == 0
    (voiced,) = con.execute(
        "SELECT count(*) FROM emotions JOIN videos USING (video_id) "
        "WHERE name = 'no_audio.mp4' AND (speaker IS NOT NULL OR speaking)"
    ).fetchone()
    assert voiced == 0


def test_model_column_says_it_is_a_demonstration_model(con) -> None:  # type: ignore[no-untyped-def]
    models = {m for (m,) in con.execute("SELECT DISTINCT model FROM emotions").fetchall()}
    assert len(models) == 1 and "distilled demonstration model" in models.pop()


def test_run_leaves_a_timeline_plot_per_video_with_emotions(con, pipeline_out: str) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    ids = {v for (v,) in con.execute("SELECT DISTINCT video_id FROM emotions").fetchall()}
    plots = {p.stem: p for p in (Path(pipeline_out) / "plots").glob("*.png")}
    assert set(plots) == ids
    assert all(p.stat().st_size > 20_000 for p in plots.values())


def test_every_analysed_video_plots_one_line_per_face_track(con, pipeline_out: str) -> None:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    from affectflow.tasks.query.plots import draw, load_timeline
    from tests.test_plots import track_lines

    for (video,) in con.execute("SELECT video_id FROM videos WHERE status = 'ok'").fetchall():
        rows = con.execute("SELECT DISTINCT track_id FROM emotions WHERE video_id = ?", [video]).fetchall()
        tracks = {track for (track,) in rows}
        fig = draw(load_timeline(connect(pipeline_out, params={"video_id": video}), video))
        assert set(track_lines(fig, 0)) == set(track_lines(fig, 1)) == tracks, video
        plt.close(fig)
