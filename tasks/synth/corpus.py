"""A small corpus of realistic clips with known truth: the demo's media and the tests' fixture.

Each good clip is a video with real, moving faces (tasks/synth/faces.py) muxed with a
two-speaker espeak-ng dialogue (tasks/synth/speech.py), so every stage has something
real to find and the truth (turns, words) is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from affectflow.tasks.synth.bad import ffmpeg, make_bad_files
from affectflow.tasks.synth.faces import make_face_video
from affectflow.tasks.synth.speech import DialogueTruth, dialogue_turns, make_dialogue

VOICES = ("en-us+m3", "en-us+f2")


@dataclass
class Corpus:
    root: Path
    dialogues: dict[str, DialogueTruth] = field(default_factory=dict)  # clip name -> speech truth
    faces: dict[str, int] = field(default_factory=dict)  # clip name -> number of people on screen
    bad: dict[str, str] = field(default_factory=dict)  # file name -> expected error text


def mux(video: Path, wav: Path, out: Path) -> Path:
    """Put ``wav`` under ``video`` as AAC; the clip lasts as long as the video."""
    ffmpeg(
        "-i",
        str(video),
        "-i",
        str(wav),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-shortest",
        str(out),
    )
    return out


def talking_clip(root: Path, name: str, *, n_faces: int, n_turns: int, first_sentence: int = 0) -> DialogueTruth:
    scratch = root / f".{name}"
    scratch.mkdir(parents=True, exist_ok=True)
    truth = make_dialogue(scratch / "speech.wav", dialogue_turns(n_turns, VOICES, first_sentence))
    video = make_face_video(scratch / "video.mp4", n_faces=n_faces, seconds=round(truth.duration + 0.5, 1))
    mux(video, truth.wav, root / name)
    return truth


def build_corpus(root: Path, *, with_bad_files: bool = True) -> Corpus:
    """Write the clips under ``root`` (scratch files go to dot-folders, which discovery ignores)."""
    root.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(root)
    corpus.dialogues["interview.mp4"] = talking_clip(root, "interview.mp4", n_faces=1, n_turns=4)
    corpus.faces["interview.mp4"] = 1
    corpus.dialogues["two_people.mp4"] = talking_clip(root, "two_people.mp4", n_faces=2, n_turns=3, first_sentence=6)
    corpus.faces["two_people.mp4"] = 2
    make_face_video(root / "no_audio.mp4", n_faces=1, seconds=3.0)
    corpus.faces["no_audio.mp4"] = 1
    if with_bad_files:
        corpus.bad = make_bad_files(root)
    return corpus
