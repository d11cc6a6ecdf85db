"""Bounded memory in the media stage: frames read ahead by a thread, WAVs read in blocks."""

from __future__ import annotations

import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from tasks import media
from tests.mediagen.bad import make_testsrc_video
from tests.mediagen.speech import write_wav


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_testsrc_video(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=2.0, size="320x240", fps=25)


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ffmpeg-frames"]


def test_read_ahead_does_not_change_the_frames(clip: Path) -> None:
    info = media.probe(clip)
    one = list(media.iter_frames(clip, info, fps=5, read_ahead=1))
    many = list(media.iter_frames(clip, info, fps=5, read_ahead=8))
    assert len(one) == len(many) == 10
    for a, b in zip(one, many, strict=True):
        assert (a.index, a.t) == (b.index, b.t) and np.array_equal(a.bgr, b.bgr)
    assert not _reader_threads()


def test_stopping_early_ends_ffmpeg_and_the_reader(clip: Path) -> None:
    info = media.probe(clip)
    frames = media.iter_frames(clip, info, fps=25, read_ahead=2)
    first = [next(frames) for _ in range(2)]
    assert [f.index for f in first] == [0, 1]
    frames.close()  # what a consumer that stops (an error, a timeout) does to the generator
    assert not _reader_threads()


def test_a_wav_read_in_blocks_equals_the_whole_file_converted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    path = write_wav(tmp_path / "noise.wav", rng.uniform(-1, 1, 10_007).astype(np.float32), 16000)
    monkeypatch.setattr(media, "_WAV_BLOCK", 1000)  # eleven blocks, the last one short
    audio = media.read_wav(path)
    with wave.open(str(path), "rb") as wav:
        expected = np.frombuffer(wav.readframes(wav.getnframes()), np.int16).astype(np.float32) / 32768.0
    assert audio.dtype == np.float32 and np.array_equal(audio, expected)
