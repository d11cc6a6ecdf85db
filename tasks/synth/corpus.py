"""A small corpus of realistic clips with known truth: the demo's media and the tests' fixture.

Each good clip is a video with real, moving faces (tasks/synth/faces.py) muxed with a
two-speaker espeak-ng dialogue (tasks/synth/speech.py), so every stage has something
real to find and the truth (turns, words) is known. In a clip with two people, each face
moves its lips with its own voice (tasks/synth/talking.py), so who is speaking is known too:
face k (from the left) speaks ``VOICES[k]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

from affectflow.tasks.synth.bad import ffmpeg, make_bad_files
from affectflow.tasks.synth.faces import make_face_video
from affectflow.tasks.synth.speech import DialogueTruth, dialogue_turns, make_dialogue
from affectflow.tasks.synth.talking import FACES, Scene, talking_video

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
    if n_faces == len(VOICES):  # one face per voice, each speaking its own turns
        video = scratch / "video.mp4"
        talking_video(video, Scene(FACES[:n_faces], ()), own_voices(truth, VOICES, 0.5))
    else:
        video = make_face_video(scratch / "video.mp4", n_faces=n_faces, seconds=round(truth.duration + 0.5, 1))
    mux(video, truth.wav, root / name)
    return truth


def own_voices(truth: DialogueTruth, voices: tuple[str, ...], tail_s: float) -> np.ndarray:
    """(voices, samples) 16 kHz: the dialogue cut into each voice's own turns, plus ``tail_s`` of silence."""
    audio = soundfile.read(truth.wav, dtype="float32")[0]  # (samples,) at 16 kHz, turns do not overlap
    out = np.zeros((len(voices), len(audio) + round(tail_s * 16000)), np.float32)
    for turn in truth.turns:
        span = slice(round(turn.start * 16000), round(turn.end * 16000))
        out[voices.index(turn.speaker), span] = audio[span]
    return out


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
