"""The people step on an output root: tables and views, stable ids across links, manual decisions, --no-identity."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from affectflow.flows import cli_people
from affectflow.flows.corpus import flow_parameters, pipeline_config
from affectflow.flows.stages import StageOutputs, voices_of
from affectflow.tasks.config import PipelineConfig
from affectflow.tasks.people.config import IdentityConfig, LinkConfig
from affectflow.tasks.people.link import GALLERY, Unit, UnitKey
from affectflow.tasks.people.snapshot import relink
from affectflow.tasks.query.views import SQL_DIR, connect
from affectflow.tasks.records import MediaInfo, SpeakerTurn, StagedVideo
from affectflow.tasks.storage.store import Store
from affectflow.tasks.storage.tables import identities_table, to_table
from affectflow.tasks.synth.people import SynthTrack, identity_corpus

pytestmark = pytest.mark.unit

FACE, VOICE = "face: synthetic-128", "voice: synthetic-256"
START = datetime(2026, 1, 1, tzinfo=UTC)


def write_corpus(out: str, videos: list[list[SynthTrack]], first: int = 0) -> dict[tuple, str]:
    """Commit each video like a run (identities, tracks, emotions, then videos); the truth per (video, track, speaker)."""
    store, truth = Store(out), {}
    for v, tracks in enumerate(videos, start=first):
        video_id = f"video{v:04d}"
        identities, links, emotions = [], [], []
        for t in tracks:
            truth[(video_id, t.track_id, t.speaker)] = t.person
            if t.face is not None:
                identities.append(dict(kind="face", track_id=t.track_id, model=FACE, dim=128, vector=t.face, n=10))
                links.append(dict(video_id=video_id, track_id=t.track_id, first_t=t.first_t, last_t=t.last_t,
                                  n_faces=10, speaker=t.speaker, speaking_s=1.0, method="synthetic"))  # fmt: skip
                emotions += [dict(video_id=video_id, track_id=t.track_id, frame=i, t=i / 5, valence=-0.1 * (i % 7),
                                  arousal=0.2, speaking=i % 2 == 0, speaker=t.speaker, model="x") for i in range(10)]  # fmt: skip
            if t.voice is not None:
                identities.append(dict(kind="voice", speaker=t.speaker, model=VOICE, dim=256, vector=t.voice, n=3))
        row = dict(video_id=video_id, uri=f"file:///c/{video_id}.mp4", name=f"{video_id}.mp4", status="ok",
                   analysis_fps=5.0, started=START + timedelta(hours=v))  # fmt: skip
        tables = {"identities": identities_table(video_id, identities), "tracks": to_table("tracks", links),
                  "emotions": to_table("emotions", emotions)}  # fmt: skip
        store.write_video(video_id, tables, row)
    return truth


def person_of(out: str) -> dict[tuple, str]:
    rows = connect(out).execute("SELECT video_id, track_id, speaker, person_id FROM person_tracks").fetchall()
    return {(v, t, s): p for v, t, s, p in rows}


def people_cli(*args: str) -> None:
    parser = argparse.ArgumentParser()
    cli_people.add_commands(parser.add_subparsers())
    parsed = parser.parse_args(["people", *args])
    assert parsed.func(parsed) == 0


@pytest.fixture
def out(tmp_path: Path) -> str:
    return str(tmp_path / "out")


def test_a_corpus_of_recurring_people_and_strangers_links_into_pure_people(out: str) -> None:
    truth = write_corpus(out, identity_corpus(12, 4, per_video=4, strangers_per_video=1, seed=5))
    summary = relink(out, LinkConfig())
    persons = person_of(out)
    assert set(persons) == set(truth) and summary["people"] == 4 + 12
    by_person = Counter((p, truth[k]) for k, p in persons.items())
    purity = sum(max(n for (p2, _), n in by_person.items() if p2 == p) for p in set(persons.values())) / len(persons)
    assert purity >= 0.97
    for person in {t for t in truth.values() if t.startswith("person-")}:
        ids = Counter(p for k, p in persons.items() if truth[k] == person)
        assert ids.most_common(1)[0][1] / sum(ids.values()) >= 0.95
    strangers = [p for k, p in persons.items() if truth[k].startswith("stranger-")]
    assert all(Counter(persons.values())[p] == 1 for p in strangers)
    con = connect(out)
    people = con.execute("SELECT person_id, n_videos, n_tracks, first_seen, thresholds FROM people").fetchall()
    assert len(people) == 16 and json.loads(people[0][4]) == json.loads(LinkConfig().to_json())
    assert sum(n for _, _, n, _, _ in people) == len(truth)


def test_relinking_and_adding_three_videos_changes_no_id_and_views_follow(out: str) -> None:
    write_corpus(out, identity_corpus(12, 4, per_video=4, seed=5))
    relink(out, LinkConfig())
    first = person_of(out)
    assert relink(out, LinkConfig())["new_units"] == 0 and person_of(out) == first
    write_corpus(out, identity_corpus(3, 4, per_video=4, seed=5, first_video=12), first=12)
    summary = relink(out, LinkConfig())
    second = person_of(out)
    assert {k: second[k] for k in first} == first and summary["new_units"] == len(second) - len(first)
    snapshots = sorted(p.name for p in (Path(out) / "people").iterdir())
    assert snapshots == ["link_id=L000003"]  # older snapshots are removed once the new one is committed
    con = connect(out)
    timeline = con.execute("SELECT count(*), count(DISTINCT video_id) FROM person_timeline").fetchone()
    assert timeline == con.execute("SELECT count(*), count(DISTINCT video_id) FROM emotions").fetchone()
    summary_rows = con.execute("SELECT person_id, n_videos, seconds, valence_mean FROM person_summary").fetchall()
    assert len(summary_rows) == con.execute("SELECT count(*) FROM people").fetchone()[0]


def test_a_link_that_stopped_before_its_people_table_is_not_seen(out: str) -> None:
    write_corpus(out, identity_corpus(3, 2, per_video=2, seed=1))
    relink(out, LinkConfig())
    before = person_of(out)
    stray = Path(out) / "person_tracks" / "link_id=L000009"
    stray.mkdir()
    (Path(out) / "person_tracks" / "link_id=L000001" / "part-0.parquet").rename(stray / "part-0.parquet")
    assert person_of(out) == {}  # the committed link's rows are gone, the stray link's rows are not shown
    (stray / "part-0.parquet").rename(Path(out) / "person_tracks" / "link_id=L000001" / "part-0.parquet")
    assert person_of(out) == before


def test_name_merge_and_split_survive_relinks_and_new_videos(out: str) -> None:
    truth = write_corpus(out, identity_corpus(8, 4, per_video=3, seed=2))
    people_cli("link", "--out", out)
    persons = person_of(out)
    zero = sorted({p for k, p in persons.items() if truth[k] == "person-0"})[0]
    one = sorted({p for k, p in persons.items() if truth[k] == "person-1"})[0]
    people_cli("name", "--out", out, zero, "Jane Doe")
    people_cli("merge", "--out", out, zero, one)
    video, track, speaker = next(k for k, p in sorted(persons.items(), key=str) if p == zero and k[1] is not None)
    people_cli("split", "--out", out, video, "--track", str(track))
    write_corpus(out, identity_corpus(2, 4, per_video=3, seed=2, first_video=8), first=8)
    people_cli("link", "--out", out)
    after = person_of(out)
    assert one not in after.values()
    split_to = after[(video, track, speaker)]
    assert split_to not in persons.values() and list(after.values()).count(split_to) == 1
    names = dict(connect(out).execute("SELECT person_id, name FROM people").fetchall())
    assert names[zero] == "Jane Doe"
    decisions = connect(out).execute("SELECT action, person_id FROM person_decisions ORDER BY seq").fetchall()
    assert [a for a, _ in decisions] == ["name", "merge", "split", "issued"]  # the manual ones, then the linker's
    assert decisions[-1][1] == max([*after.values(), *persons.values()])  # the highest id given so far
    with pytest.raises(SystemExit, match="unknown person"):
        people_cli("merge", "--out", out, zero, "P424242")


def test_the_example_queries_run_on_linked_people(out: str) -> None:
    write_corpus(out, identity_corpus(6, 3, per_video=3, seed=4))
    relink(out, LinkConfig())
    con = connect(out, params={"person_id": "P000001"})
    results = {
        p.name: con.execute(p.read_text()).fetchall() for p in sorted((SQL_DIR / "examples" / "people").glob("*.sql"))
    }
    assert set(results) == {"people_together.sql", "person_negative_moments.sql", "person_valence_per_video.sql"}
    assert all(results.values())
    valences = [row[3] for row in results["person_negative_moments.sql"]]
    assert valences == sorted(valences)


def test_no_identity_writes_no_embeddings_and_the_step_writes_no_people(out: str, tmp_path: Path) -> None:
    config = pipeline_config(flow_parameters("src", out, no_identity=True))
    assert config.identity.off and not PipelineConfig().identity.off
    staged = StagedVideo(tmp_path / "v.mp4", "file:///v.mp4", "0" * 64, 1)
    info = MediaInfo(1.0, 25.0, 64, 64, 25, True, 1.0, 0)
    outputs = StageOutputs(staged, info, PipelineConfig(identity=IdentityConfig(off=True)), tmp_path)
    assert voices_of(outputs, [SpeakerTurn("A", 0.0, 1.0)]) == {}  # the encoder is never even loaded
    assert "identities" not in outputs.tables("v")
    Store(out).write_video("v", outputs.tables("v"), dict(video_id="v", status="ok"))
    assert relink(out, LinkConfig())["link_id"] is None
    assert not any((Path(out) / name).exists() for name in ("identities", "people", "person_tracks"))
    with_identities = StageOutputs(staged, info, PipelineConfig(), tmp_path, face_identities=[])
    assert "identities" in with_identities.tables("v")


def test_identity_vectors_round_trip_through_the_table() -> None:
    vector = np.linspace(-1, 1, 8).astype(np.float32)
    table = identities_table("v", [dict(kind="face", track_id=1, model=FACE, dim=8, vector=vector, n=4)])
    assert np.allclose(table.column("vector")[0].as_py(), vector) and table.column("speaker")[0].as_py() is None


def test_a_known_person_from_the_gallery_is_named_on_first_sight(out: str) -> None:
    videos = identity_corpus(6, 3, per_video=3, seed=7)
    truth = write_corpus(out, videos)
    first = next(t for t in videos[0] if t.person == "person-2" and t.face is not None)
    gallery = {"Jane Doe": Unit(UnitKey(f"{GALLERY}Jane Doe", 0, None), vectors={"face": (FACE, first.face)})}
    summary = relink(out, LinkConfig(), gallery=gallery)
    assert summary["named"] == ["Jane Doe"]
    named = connect(out).execute("SELECT person_id FROM people WHERE name = 'Jane Doe'").fetchall()
    assert len(named) == 1
    persons = person_of(out)
    assert {truth[k] for k, p in persons.items() if p == named[0][0]} == {"person-2"}
    assert not any(k[0].startswith(GALLERY) for k in persons)  # gallery units are never written
    relink(out, LinkConfig(), gallery=gallery)  # the same gallery again: the same person, no second one
    assert person_of(out) == persons
    assert connect(out).execute("SELECT count(*) FROM person_decisions WHERE action = 'name'").fetchone() == (1,)


def test_the_id_of_a_person_whose_only_video_was_removed_is_never_given_again(out: str) -> None:
    write_corpus(out, identity_corpus(3, 2, per_video=2, strangers_per_video=1, seed=1))
    relink(out, LinkConfig())
    issued = set(person_of(out).values())
    highest = max(issued)
    (only_video,) = {k[0] for k, p in person_of(out).items() if p == highest}
    assert Counter(person_of(out).values())[highest] == 1  # the last video's stranger: seen once
    Store(out).delete_video(only_video)  # its source file went away
    relink(out, LinkConfig())
    relink(out, LinkConfig())  # the highest id is now in no table's rows
    assert highest not in set(person_of(out).values())
    write_corpus(out, identity_corpus(1, 2, per_video=2, strangers_per_video=1, seed=9, first_video=3), first=3)
    relink(out, LinkConfig())
    new = set(person_of(out).values()) - (issued - {highest})
    assert new and highest not in new  # a new person gets a number never issued before
    assert min(new) > highest


def test_a_gallery_embedded_by_another_model_than_the_tracks_is_refused_with_the_option_to_set(out: str) -> None:
    videos = identity_corpus(2, 2, per_video=2, seed=7)
    write_corpus(out, videos)
    vector = next(t.face for t in videos[0] if t.face is not None)
    other = {"Jane Doe": Unit(UnitKey(f"{GALLERY}Jane Doe", 0, None), vectors={"face": ("face: arcface-512", vector)})}
    with pytest.raises(ValueError, match=r"match no track .*face: synthetic-128.*--faces-backend"):
        relink(out, LinkConfig(), gallery=other)  # it could never name anyone: say so, do not link silently
    assert person_of(out) == {}  # nothing written
    same = {"Jane Doe": Unit(UnitKey(f"{GALLERY}Jane Doe", 0, None), vectors={"face": (FACE, vector)})}
    assert relink(out, LinkConfig(), gallery=same)["named"] == ["Jane Doe"]
