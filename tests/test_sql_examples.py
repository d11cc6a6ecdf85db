"""Every example query in sql/examples runs through `affectflow sql` and gives sane results."""

from __future__ import annotations

import json

import pytest

from affectflow.flows.cli import main
from affectflow.tasks.query.views import SQL_DIR, connect

pytestmark = pytest.mark.integration

EXAMPLES = SQL_DIR / "examples"


def run_json(capsys: pytest.CaptureFixture[str], out: str, name: str, *args: str) -> list[dict]:
    assert main(["sql", "--out", out, "-f", str(EXAMPLES / name), "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def facts(pipeline_out: str) -> dict:
    """What the tables hold, to check the examples against."""
    con = connect(pipeline_out)
    return {
        "videos": [v for (v,) in con.execute("SELECT DISTINCT video_id FROM emotions ORDER BY 1").fetchall()],
        "speakers": {s for (s,) in con.execute("SELECT DISTINCT speaker FROM speaker_turns").fetchall()},
        "fps": dict(con.execute("SELECT video_id, analysis_fps FROM videos").fetchall()),
        "rows": dict(con.execute("SELECT video_id, count(*) FROM emotions GROUP BY 1").fetchall()),
        "faces": dict(  # (video, voice) -> its face track
            ((v, s), k) for v, s, k in con.execute("SELECT video_id, speaker, track_id FROM tracks").fetchall() if s
        ),
    }


def test_every_example_has_a_test() -> None:
    tested = {
        "most_negative_moments.sql",
        "valence_per_speaker.sql",
        "minute_timeline.sql",
        "utterance_emotions.sql",
        "quadrant_time.sql",
        "arousal_rise.sql",
    }
    assert {p.name for p in EXAMPLES.glob("*.sql")} == tested


def test_most_negative_moments_are_sorted_local_minima_with_speech(capsys, pipeline_out: str, facts: dict) -> None:
    rows = run_json(capsys, pipeline_out, "most_negative_moments.sql", "--param", "top_n=5")
    assert 1 <= len(rows) <= 5
    valences = [r["valence"] for r in rows]
    assert valences == sorted(valences) and all(-1 <= v <= 1 for v in valences)
    assert {r["video_id"] for r in rows} <= set(facts["videos"])
    assert all(r["t_end"] - r["t_start"] == 5 for r in rows)
    assert any(r["said"] for r in rows) and any(r["speakers"] for r in rows)
    every = run_json(capsys, pipeline_out, "most_negative_moments.sql", "--param", "top_n=1000")
    assert valences == [r["valence"] for r in every][: len(rows)]  # the top 5 are the 5 lowest of all moments


def test_most_negative_moments_honours_video_and_time_range(capsys, pipeline_out: str, facts: dict) -> None:
    video = max(facts["rows"], key=facts["rows"].get)  # the longest: it has frames between 10 and 30 s
    rows = run_json(
        capsys,
        pipeline_out,
        "most_negative_moments.sql",
        "--param",
        f"video_id={video}",
        "--param",
        "t_from=10",
        "--param",
        "t_to=30",
    )
    assert rows and {r["video_id"] for r in rows} == {video}
    assert all(10 <= r["t_start"] < 30 for r in rows)


def test_valence_per_speaker_covers_every_analysed_frame(capsys, pipeline_out: str, facts: dict) -> None:
    rows = run_json(capsys, pipeline_out, "valence_per_speaker.sql")
    for video in facts["videos"]:
        mine = [r for r in rows if r["video_id"] == video]
        assert sum(r["seconds"] for r in mine) == pytest.approx(facts["rows"][video] / facts["fps"][video], abs=0.2)
        assert {r["speaker"] for r in mine} - {None} <= facts["speakers"]
    assert len({r["speaker"] for r in rows} - {None}) >= 2  # the two people of two_people.mp4, each on their face
    assert all(-1 <= r["valence_p10"] <= r["valence_mean"] <= r["valence_p90"] <= 1 for r in rows if r["seconds"] > 1)
    for r in rows:  # a speaker's rows are their own face's: the tracks linked to that voice
        linked = sorted(k for (v, s), k in facts["faces"].items() if v == r["video_id"] and s == r["speaker"])
        assert r["speaker"] is None or r["tracks"] == linked
        assert 0 <= r["speaking_s"] <= r["seconds"]


def test_minute_timeline_has_one_row_per_track_and_minute(capsys, pipeline_out: str, facts: dict) -> None:
    con = connect(pipeline_out)
    for video in facts["videos"]:
        rows = run_json(capsys, pipeline_out, "minute_timeline.sql", "--param", f"video_id={video}")
        tracks, t_max = con.execute(
            f"SELECT count(DISTINCT track_id), max(t) FROM emotions WHERE video_id = '{video}'"
        ).fetchone()
        assert len(rows) == tracks * (int(t_max // 60) + 1)
        assert sum(r["n_frames"] for r in rows) == facts["rows"][video]
        assert all(r["valence_min"] <= r["valence"] <= r["valence_max"] for r in rows)


def test_minute_timeline_takes_bin_and_time_range(capsys, pipeline_out: str, facts: dict) -> None:
    (video,) = connect(pipeline_out).execute("SELECT video_id FROM emotions ORDER BY t DESC LIMIT 1").fetchone()
    rows = run_json(
        capsys,
        pipeline_out,
        "minute_timeline.sql",
        "--param",
        f"video_id={video}",
        "--param",
        "bin_s=4",
        "--param",
        "t_from=4",
        "--param",
        "t_to=12",
    )
    assert sorted({r["t_start"] for r in rows}) == [4.0, 8.0]


def test_minute_timeline_without_a_video_says_which_parameter(capsys, pipeline_out: str) -> None:
    assert (
        main(["sql", "--out", pipeline_out, "-f", str(EXAMPLES / "minute_timeline.sql")]) == 2
    )  # a missing parameter: usage
    assert "--param video_id=ID" in capsys.readouterr().err


def test_utterance_emotions_lists_each_utterance_with_its_speaker(capsys, pipeline_out: str, facts: dict) -> None:
    con = connect(pipeline_out)
    for video in facts["videos"]:
        rows = run_json(capsys, pipeline_out, "utterance_emotions.sql", "--param", f"video_id={video}")
        n_segments = con.execute(f"SELECT count(DISTINCT segment) FROM words WHERE video_id = '{video}'").fetchone()[0]
        assert len(rows) == n_segments
        assert all(r["text"] and r["speaker"] in facts["speakers"] for r in rows)
        assert [r["start"] for r in rows] == sorted(r["start"] for r in rows)
        for r in rows:  # the speaking person's own face, or none
            assert r["track_id"] == facts["faces"].get((video, r["speaker"]))
            if r["valence"] is not None:
                (mean,) = con.execute(
                    f"SELECT avg(valence) FROM emotions WHERE video_id = '{video}' AND track_id = {r['track_id']} "
                    f"AND t >= {r['start']} AND t < {r['end']}"
                ).fetchone()
                assert r["valence"] == pytest.approx(mean, abs=1e-3)


def test_quadrant_time_splits_each_video_into_the_four_quadrants(capsys, pipeline_out: str, facts: dict) -> None:
    rows = run_json(capsys, pipeline_out, "quadrant_time.sql", "--param", "quadrant=sad")
    assert {r["video_id"] for r in rows} == set(facts["videos"])
    for r in rows:
        assert r["excited_s"] + r["tense_s"] + r["sad_s"] + r["calm_s"] == pytest.approx(r["seconds"], abs=0.3)
        assert 0 <= r["share"] <= 1
    assert [r["share"] for r in rows] == sorted((r["share"] for r in rows), reverse=True)


def test_arousal_rise_compares_with_an_attached_earlier_run(capsys, pipeline_out: str, facts: dict) -> None:
    rows = run_json(capsys, pipeline_out, "arousal_rise.sql", "--attach", f"baseline={pipeline_out}")
    assert sorted(r["video_id"] for r in rows) == facts["videos"]
    assert all(r["rise"] == 0 for r in rows)  # the same run on both sides


def test_arousal_rise_without_a_baseline_says_how_to_attach_one(capsys, pipeline_out: str) -> None:
    assert (
        main(["sql", "--out", pipeline_out, "-f", str(EXAMPLES / "arousal_rise.sql")]) == 2
    )  # a missing attachment: usage
    assert "--attach baseline=" in capsys.readouterr().err


def test_emotion_speech_gives_each_known_turn_its_speaker(pipeline_out: str) -> None:
    """Frames inside a turn that overlaps no other turn belong to that turn's speaker."""
    con = connect(pipeline_out)
    pairs = con.execute(
        """
        SELECT e.active_speaker, turn.speaker
        FROM emotion_speech AS e
        JOIN speaker_turns AS turn ON e.video_id = turn.video_id AND e.t >= turn.start AND e.t < turn."end"
        WHERE NOT EXISTS (
            SELECT 1 FROM speaker_turns AS other
            WHERE other.video_id = turn.video_id AND other.start < turn."end" AND other."end" > turn.start
              AND (other.start, other."end", other.speaker) != (turn.start, turn."end", turn.speaker))
        """
    ).fetchall()
    assert pairs and all(got == want for got, want in pairs)
