"""The SQL views on hand-made tables with exact expected values: joins, bins, summaries, faces ↔ voices, pruning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectflow.tasks.query.views import connect, view_sql
from affectflow.tasks.storage.store import Store
from affectflow.tasks.storage.tables import to_table
from tests.tablegen import write_video

pytestmark = pytest.mark.unit

FPS = 5.0
# (speaker, start, end): A and B overlap on [2.5, 3.0); silence on [5.0, 6.0); C is off screen
TURNS = [("A", 1.0, 3.0), ("B", 2.5, 5.0), ("A", 6.0, 8.0), ("C", 8.5, 9.5)]
# (word, start, end, speaker, segment)
WORDS = [("hello", 1.2, 1.6, "A", 0), ("world", 1.7, 2.2, "A", 0), ("yes", 3.2, 3.6, "B", 1), ("bye", 8.6, 9.0, "C", 2)]
# track -> (own voice, first frame, last frame + 1): track 0 is A on 0-10 s, track 1 is B on 4-6 s; C has no face
TRACKS = {0: ("A", 0, 50), 1: ("B", 20, 30)}
DERIVED = [
    "turn_faces",
    "word_faces",
    "utterance_emotions",
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


def _speaks(speaker: str, t: float) -> bool:
    return any(s == speaker and a <= t < b for s, a, b in TURNS)


def _emotion_rows(video_id: str) -> list[dict]:
    """TRACKS' rows; valence +0.5 before 5 s, arousal +0.25 before 2 s; each face speaks in its voice's turns."""
    rows = []
    for track, (voice, first, last) in TRACKS.items():
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
                    speaking=_speaks(voice, t),
                    speaker=voice,
                    model="m",
                )
            )
    return rows


def _track_rows(video_id: str) -> list[dict]:
    return [
        dict(
            video_id=video_id,
            track_id=track,
            first_t=first / FPS,
            last_t=(last - 1) / FPS,
            n_faces=last - first,
            speaker=voice,
            link_score=0.9,
            speaking_s=sum(_speaks(voice, f / FPS) for f in range(first, last)) / FPS,
            method="hand-made",
        )
        for track, (voice, first, last) in TRACKS.items()
    ]


def _write(store: Store, video_id: str) -> None:
    tables = {
        "speaker_turns": to_table(
            "speaker_turns", [dict(video_id=video_id, speaker=s, start=a, end=b) for s, a, b in TURNS]
        ),
        "words": to_table(
            "words",
            [dict(video_id=video_id, word=w, start=a, end=b, speaker=s, segment=seg) for w, a, b, s, seg in WORDS],
        ),
        "tracks": to_table("tracks", _track_rows(video_id)),
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
    assert _at(con, 2.0, "active_speaker") == "A"
    assert _at(con, 4.0, "active_speaker") == "B"
    assert _at(con, 7.0, "active_speaker") == "A"
    assert _at(con, 9.0, "active_speaker") == "C"  # off screen, but speaking
    assert _at(con, 0.4, "active_speaker") is None  # before anyone speaks
    assert _at(con, 5.4, "active_speaker") is None  # the silence between turns


def test_overlapping_turns_give_the_latest_speaker_and_list_both(out: str) -> None:
    con = connect(out)
    assert _at(con, 2.6, "active_speaker") == "B"
    assert _at(con, 2.6, "active_speakers") == ["A", "B"]
    assert _at(con, 3.0, "active_speakers") == ["B"]  # A's turn ended at 3.0 (half-open)


def test_each_face_carries_its_own_voice_and_when_it_speaks(out: str) -> None:
    con = connect(out)
    columns = "speaker, speaking, active_speaker"
    assert _at(con, 4.4, columns.split(", ")[0], track=1) == "B"
    got = {
        (track, t): con.execute(
            f"SELECT {columns} FROM emotion_speaker WHERE track_id = {track} AND abs(t - {t}) < 1e-9"
        ).fetchone()
        for track, t in [(0, 4.4), (1, 4.4), (0, 2.0), (0, 9.0), (1, 5.4)]
    }
    assert got == {
        (0, 4.4): ("A", False, "B"),  # A's face listens while B speaks
        (1, 4.4): ("B", True, "B"),
        (0, 2.0): ("A", True, "A"),
        (0, 9.0): ("A", False, "C"),  # the off-screen voice is nobody's face
        (1, 5.4): ("B", False, None),
    }


def test_turns_and_words_join_the_face_that_said_them(out: str) -> None:
    con = connect(out)
    turns = con.execute("SELECT speaker, start, track_id FROM turn_faces ORDER BY start").fetchall()
    assert turns == [("A", 1.0, 0), ("B", 2.5, 1), ("A", 6.0, 0), ("C", 8.5, None)]
    words = con.execute("SELECT word, track_id FROM word_faces ORDER BY start").fetchall()
    assert words == [("hello", 0), ("world", 0), ("yes", 1), ("bye", None)]
    tracks = con.execute("SELECT track_id, speaker, n_faces, speaking_s FROM tracks ORDER BY track_id").fetchall()
    assert tracks == [(0, "A", 50, 4.0), (1, "B", 10, 1.0)]


def test_a_voice_on_two_tracks_joins_the_one_on_screen_nearest_its_words(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    tracks = [dict(video_id="cut", track_id=k, first_t=a, last_t=b, speaker="A") for k, a, b in [(0, 0, 4), (1, 6, 9)]]
    words = [
        dict(video_id="cut", word=w, start=a, end=a + 0.3, speaker="A") for w, a in [("x", 1), ("y", 7), ("z", 5.2)]
    ]
    tables = {"tracks": to_table("tracks", tracks), "words": to_table("words", words)}
    store.write_video("cut", tables, dict(video_id="cut", analysis_fps=FPS, status="ok"))
    got = connect(str(tmp_path)).execute("SELECT word, track_id FROM word_faces ORDER BY start").fetchall()
    assert got == [("x", 0), ("z", 1), ("y", 1)]  # z (5.2-5.5 s) is nearer track 1 (from 6 s) than track 0 (to 4 s)


def test_utterance_emotions_are_the_speaking_persons_face_only(out: str) -> None:
    con = connect(out)
    rows = con.execute(
        "SELECT text, speaker, track_id, n_frames, valence, arousal FROM utterance_emotions ORDER BY start"
    ).fetchall()
    assert rows[0][:4] == ("hello world", "A", 0, 5)  # track 0's rows at 1.2 … 2.0 s
    assert rows[0][4:] == pytest.approx((0.5, (4 * 0.25 - 0.25) / 5))
    assert rows[1] == ("yes", "B", 1, 0, None, None)  # B's face is not on screen yet: not A's face instead
    assert rows[2] == ("bye", "C", None, 0, None, None)  # a voice without a face


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
    (speaking_s,) = con.execute("SELECT speaking_s FROM video_summary").fetchone()
    assert speaking_s == pytest.approx(5.0)  # track 0 speaks 1-3 s and 6-8 s, track 1 4-5 s
    assert row[7:] == pytest.approx((-0.5, 0.5))


def test_speaker_summary_is_each_voices_own_face(out: str) -> None:
    con = connect(out)
    got = {
        s: (n, speaking, v)
        for s, n, speaking, v in con.execute(
            "SELECT speaker, n_frames, speaking_s, valence_mean FROM speaker_summary"
        ).fetchall()
    }
    t = np.arange(50) / FPS
    assert got["A"] == (50, 4.0, pytest.approx(np.where(t < 5, 0.5, -0.5).mean()))  # track 0, all of it
    assert got["B"] == (10, 1.0, 0.0)  # track 1: 4-5 s at +0.5, 5-6 s at -0.5
    assert set(got) == {"A", "B"}  # C has no face; every face has a voice
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
    for table in ("videos", "tracks", "speaker_turns", "words", "emotions"):
        Path(store.file(table, "zz_other")).write_bytes(b"not parquet")
    for view in ["videos", "tracks", "speaker_turns", "words", "emotions", *DERIVED]:
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
    for view in ["videos", "runs", "faces", "tracks", *DERIVED]:
        assert con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,), view


def test_printed_views_run_in_a_plain_duckdb(out: str) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute(view_sql(out))
    assert con.execute("SELECT count(*) FROM emotion_speech").fetchone() == (60,)
    assert con.execute("SELECT count(*) FROM faces").fetchone() == (0,)  # no files yet: an empty typed view


def test_runs_written_before_the_status_column_read_as_null_beside_newer_ones(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from affectflow.tasks.storage.tables import SCHEMAS

    older_schema = pa.schema([f for f in SCHEMAS["runs"] if f.name != "status"])  # an output root from before
    (tmp_path / "runs" / "run_id=old").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"run_id": "old"}], older_schema), tmp_path / "runs/run_id=old/part-0.parquet")
    Store(str(tmp_path)).write("runs", "new", to_table("runs", [dict(run_id="new", status="interrupted")]))
    rows = connect(str(tmp_path)).execute("SELECT run_id, status FROM runs ORDER BY run_id").fetchall()
    assert rows == [("new", "interrupted"), ("old", None)]
