"""The SQL views on hand-made tables with exact expected values: joins, bins, summaries, pruning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tasks.query import connect, view_sql
from tasks.store import Store, to_table
from tests.tablegen import write_video

FPS = 5.0
# (speaker, start, end): A and B overlap on [2.5, 3.0); silence on [5.0, 6.0)
TURNS = [("A", 1.0, 3.0), ("B", 2.5, 5.0), ("A", 6.0, 8.0)]
# (word, start, end, segment)
WORDS = [("hello", 1.2, 1.6, 0), ("world", 1.7, 2.2, 0), ("yes", 3.2, 3.6, 1)]
DERIVED = [
    "timeline_second",
    "timeline_minute",
    "speech_segments",
    "utterances",
    "emotion_speech",
    "emotion_summary",
    "video_summary",
    "track_summary",
    "speaker_summary",
]


def _emotion_rows(video_id: str) -> list[dict]:
    """Track 0 for 0-10 s, track 1 for 4-6 s; valence +0.5 before 5 s, arousal +0.25 before 2 s."""
    rows = []
    for track, (first, last) in enumerate([(0, 50), (20, 30)]):
        for frame in range(first, last):
            t = frame / FPS
            rows.append(
                dict(
                    video_id=video_id,
                    track_id=track,
                    frame=frame * 6,
                    t=t,
                    valence=0.5 if t < 5 else -0.5,
                    arousal=0.25 if t < 2 else -0.25,
                    model="m",
                )
            )
    return rows


def _write(store: Store, video_id: str) -> None:
    tables = {
        "speaker_turns": to_table(
            "speaker_turns", [dict(video_id=video_id, speaker=s, start=a, end=b) for s, a, b in TURNS]
        ),
        "words": to_table(
            "words",
            [
                dict(video_id=video_id, word=w, start=a, end=b, speaker="A" if seg == 0 else "B", segment=seg)
                for w, a, b, seg in WORDS
            ],
        ),
        "emotions": to_table("emotions", _emotion_rows(video_id)),
    }
    store.write_video(
        video_id,
        tables,
        dict(video_id=video_id, name=f"{video_id}.mp4", duration_s=10.0, analysis_fps=FPS, status="ok"),
    )


@pytest.fixture()
def out(tmp_path: Path) -> str:
    _write(Store(str(tmp_path)), "known")
    return str(tmp_path)


def _at(con, t: float, column: str, track: int = 0):
    return con.execute(
        f"SELECT {column} FROM emotion_speech WHERE video_id = 'known' AND track_id = {track} AND abs(t - {t}) < 1e-9"
    ).fetchone()[0]


def test_emotion_speech_finds_the_speaker_of_a_known_turn(out: str) -> None:
    con = connect(out)
    assert _at(con, 2.0, "speaker") == "A"
    assert _at(con, 4.0, "speaker") == "B"
    assert _at(con, 7.0, "speaker") == "A"
    assert _at(con, 0.4, "speaker") is None  # before anyone speaks
    assert _at(con, 5.4, "speaker") is None  # the silence between turns


def test_overlapping_turns_give_the_latest_speaker_and_list_both(out: str) -> None:
    con = connect(out)
    assert _at(con, 2.6, "speaker") == "B"
    assert _at(con, 2.6, "speakers") == ["A", "B"]
    assert _at(con, 3.0, "speakers") == ["B"]  # A's turn ended at 3.0 (half-open)


def test_emotion_speech_finds_the_word_and_utterance_being_said(out: str) -> None:
    con = connect(out)
    assert _at(con, 1.4, "word") == "hello"
    assert _at(con, 1.6, "word") is None  # "hello" ends at 1.6, "world" starts at 1.7
    assert _at(con, 2.0, "word") == "world"
    assert _at(con, 2.0, "utterance") == "hello world"
    assert _at(con, 3.4, "utterance") == "yes"
    assert _at(con, 4.0, "word") is None


def test_emotion_speech_keeps_exactly_one_row_per_emotion_row(out: str) -> None:
    con = connect(out)
    assert (
        con.execute("SELECT count(*) FROM emotion_speech").fetchone()
        == con.execute("SELECT count(*) FROM emotions").fetchone()
    )


def test_timelines_average_each_bin_per_track(out: str) -> None:
    con = connect(out)
    second = con.execute(
        "SELECT n_frames, valence, arousal FROM timeline_second WHERE track_id = 0 AND t_start = 2"
    ).fetchone()
    assert second == (5, 0.5, -0.25)
    minute = con.execute(
        "SELECT track_id, t_start, n_frames, valence_min, valence_max FROM timeline_minute ORDER BY track_id"
    ).fetchall()
    assert minute == [(0, 0.0, 50, -0.5, 0.5), (1, 0.0, 10, -0.5, 0.5)]
    assert con.execute("SELECT count(*) FROM emotion_timeline(2.5) WHERE track_id = 0").fetchone() == (4,)


def test_circumplex_quadrants_count_zero_as_positive() -> None:
    con = connect("/nonexistent-root-without-tables")
    got = con.execute(
        "SELECT circumplex_quadrant(0, 0), circumplex_quadrant(-0.1, 0.3), circumplex_quadrant(-0.1, -0.3), "
        "circumplex_quadrant(0.2, -0.3), circumplex_quadrant(NULL, 0.1)"
    ).fetchone()
    assert got == ("excited", "tense", "sad", "calm", None)


def test_video_summary_counts_time_per_quadrant(out: str) -> None:
    con = connect(out)
    row = con.execute(
        "SELECT n_frames, n_tracks, seconds, excited_s, tense_s, sad_s, calm_s, valence_p10, valence_p90 "
        "FROM video_summary"
    ).fetchone()
    # track 0: excited 0-2 s, calm 2-5 s, sad 5-10 s; track 1: calm 4-5 s, sad 5-6 s
    assert row[:2] == (60, 2)
    assert row[2:7] == pytest.approx((12.0, 2.0, 0.0, 6.0, 4.0))
    assert row[7:] == pytest.approx((-0.5, 0.5))


def test_speaker_summary_follows_the_active_speaker(out: str) -> None:
    con = connect(out)
    got = dict(con.execute("SELECT coalesce(speaker, '-'), n_frames FROM speaker_summary").fetchall())
    t = np.arange(50) / FPS
    t1 = np.arange(20, 30) / FPS
    in_b = lambda x: ((x >= 2.5) & (x < 5.0)).sum()  # noqa: E731 - B from 2.5 s (it began last)
    in_a = lambda x: (((x >= 1.0) & (x < 2.5)) | ((x >= 6.0) & (x < 8.0))).sum()  # noqa: E731
    assert got["B"] == in_b(t) + in_b(t1)
    assert got["A"] == in_a(t) + in_a(t1)
    assert sum(got.values()) == 60
    assert con.execute("SELECT count(*) FROM track_summary").fetchone() == (2,)


def test_derived_views_hide_videos_without_a_videos_row(out: str) -> None:
    Store(out).write("emotions", "uncommitted", to_table("emotions", _emotion_rows("uncommitted")))
    con = connect(out)
    for view in DERIVED:
        assert con.execute(f"SELECT count(*) FROM {view} WHERE video_id = 'uncommitted'").fetchone() == (0,), view


def test_filters_on_video_id_prune_other_videos_files(out: str) -> None:
    """Other videos' files are never opened: corrupting them does not break a filtered query."""
    store = Store(out)
    _write(store, "zz_other")  # sorts after "known": DuckDB binds the schema from the first file
    con = connect(out, params={"video_id": "known"})
    for table in ("videos", "speaker_turns", "words", "emotions"):
        Path(store.file(table, "zz_other")).write_bytes(b"not parquet")
    for view in ["videos", "speaker_turns", "words", "emotions", *DERIVED]:
        assert con.execute(f"SELECT count(*) FROM {view} WHERE video_id = 'known'").fetchone()[0] > 0, view
        assert con.execute(f"SELECT count(*) FROM {view} WHERE video_id = getvariable('video_id')").fetchone()[0] > 0, (
            view
        )


def test_attached_root_gets_its_own_views(out: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    older = tmp_path_factory.mktemp("older")
    write_video(Store(str(older)), "only_in_baseline", duration_s=10, seed=3)
    con = connect(out, attach={"baseline": str(older)})
    assert con.execute("SELECT list(video_id) FROM baseline.video_summary").fetchone() == (["only_in_baseline"],)
    assert con.execute("SELECT list(video_id) FROM video_summary").fetchone() == (["known"],)
    assert con.execute("SELECT count(*) FROM baseline.emotion_speech").fetchone()[0] > 0


def test_views_work_on_an_empty_output_root(tmp_path: Path) -> None:
    con = connect(str(tmp_path))
    for view in ["videos", "runs", "faces", *DERIVED]:
        assert con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,), view


def test_printed_views_run_in_a_plain_duckdb(out: str) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute(view_sql(out))
    assert con.execute("SELECT count(*) FROM emotion_speech").fetchone() == (60,)
    assert con.execute("SELECT count(*) FROM faces").fetchone() == (0,)  # no files yet: an empty typed view
