"""Bounded memory in the media stage: frames read ahead by a thread, WAVs read into one array."""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from affectflow.tasks.media.audio import read_wav
from affectflow.tasks.media.frames import iter_frames
from affectflow.tasks.media.probe import probe
from affectflow.tasks.synth.bad import make_testsrc_video
from affectflow.tasks.synth.speech import write_wav

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_testsrc_video(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=2.0, size="320x240", fps=25)


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ffmpeg-frames"]


def test_read_ahead_does_not_change_the_frames(clip: Path) -> None:
    info = probe(clip)
    one = list(iter_frames(clip, info, fps=5, read_ahead=1))
    many = list(iter_frames(clip, info, fps=5, read_ahead=8))
    assert len(one) == len(many) == 10
    for a, b in zip(one, many, strict=True):
        assert (a.index, a.t) == (b.index, b.t) and np.array_equal(a.bgr, b.bgr)
    assert not _reader_threads()


def test_stopping_early_ends_ffmpeg_and_the_reader(clip: Path) -> None:
    info = probe(clip)
    frames = iter_frames(clip, info, fps=25, read_ahead=2)
    first = [next(frames) for _ in range(2)]
    assert [f.index for f in first] == [0, 1]
    frames.close()  # what a consumer that stops (an error, a timeout) does to the generator
    assert not _reader_threads()


def test_a_wav_reads_as_an_independent_reader_has_it_and_costs_only_its_array(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = write_wav(tmp_path / "noise.wav", rng.uniform(-1, 1, 60 * 16000).astype(np.float32), 16000)  # 60 s
    tracemalloc.start()  # numpy reports its buffers to tracemalloc
    try:
        audio = read_wav(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rate, pcm = wavfile.read(path)  # (samples,) int16, read by scipy, not libsndfile
    assert rate == 16000 and audio.dtype == np.float32
    assert np.array_equal(audio, pcm.astype(np.float32) / 32768.0)
    assert peak < 1.1 * audio.nbytes, f"read_wav held {peak / audio.nbytes:.2f}× its float32 result"
