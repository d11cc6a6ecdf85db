"""The media stage: staging with per-file ids, probing every bad-file kind, streaming frames, audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectflow.tasks.media import staging
from affectflow.tasks.media.audio import AUDIO_SAMPLE_RATE, extract_audio, read_wav
from affectflow.tasks.media.frames import iter_frames
from affectflow.tasks.media.probe import probe
from affectflow.tasks.media.tools import MediaError, ToolMissingError, check_tools
from affectflow.tasks.synth.bad import ffmpeg, make_testsrc_video

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_testsrc_video(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=2.0, size="320x240", fps=25)


def test_stage_local_file_in_place_with_an_id_per_file(clip: Path, tmp_path: Path) -> None:
    staged = staging.stage(str(clip), tmp_path)
    assert staged.path == clip
    copy = tmp_path / "same bytes, other name.mp4"
    copy.write_bytes(clip.read_bytes())
    staged_copy = staging.stage(str(copy), tmp_path)
    assert staged_copy.sha256 == staged.sha256  # the same bytes...
    assert staged_copy.video_id != staged.video_id  # ...under another name: another video (issue 21)
    assert staging.stage(str(clip), tmp_path).video_id == staged.video_id  # stable for the same file


def test_stage_remote_url_copies_to_work_dir(clip: Path, tmp_path: Path) -> None:
    import fsspec

    memory = fsspec.filesystem("memory")
    memory.pipe("/corpus/clip.mp4", clip.read_bytes())
    staged = staging.stage("memory://corpus/clip.mp4", tmp_path / "work")
    assert staged.path.parent == tmp_path / "work"
    assert staged.path.read_bytes() == clip.read_bytes()
    assert staged.sha256 == staging.stage(str(clip), tmp_path).sha256


def test_probe_reports_container_facts(clip: Path) -> None:
    info = probe(clip)
    assert (info.width, info.height, info.fps) == (320, 240, 25.0)
    assert info.duration_s == pytest.approx(2.0, abs=0.05)
    assert info.n_frames == 50
    assert info.has_audio


def test_probe_without_audio(tmp_path: Path) -> None:
    info = probe(make_testsrc_video(tmp_path / "silent.mp4", audio=False))
    assert not info.has_audio
    assert extract_audio(tmp_path / "silent.mp4", info, tmp_path / "a.wav") is None


def test_probe_rotated_phone_video_reports_displayed_size(clip: Path, tmp_path: Path) -> None:
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", str(clip), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    info = probe(rotated)
    assert (info.width, info.height) == (240, 320)
    frame = next(iter_frames(rotated, info, 5))
    assert frame.bgr.shape == (320, 240, 3)


@pytest.mark.parametrize("name", ["zero_bytes.mp4", "not_a_video.mp4", "truncated.mp4"])
def test_probe_every_bad_file_kind_raises_media_error(bad_files: tuple[Path, dict[str, str]], name: str) -> None:
    directory, expected = bad_files
    with pytest.raises(MediaError, match=expected[name]):
        probe(directory / name)


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "audio.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000", "-t", "1", "-c:a", "aac", str(path))
    with pytest.raises(MediaError, match="no video stream"):
        probe(path)


def test_iter_frames_samples_at_analysis_rate_with_source_indices(clip: Path) -> None:
    info = probe(clip)
    frames = list(iter_frames(clip, info, fps=5))
    assert len(frames) == 10  # 2 s at 5 fps
    assert [f.index for f in frames[:3]] == [0, 5, 10]
    assert frames[1].t == pytest.approx(0.2)
    assert frames[0].bgr.shape == (240, 320, 3) and frames[0].bgr.dtype == np.uint8
    assert frames[0].scale == 1.0


def test_iter_frames_shrinks_large_frames_and_reports_scale(clip: Path) -> None:
    info = probe(clip)
    frame = next(iter_frames(clip, info, fps=5, max_side=160))
    assert frame.bgr.shape == (120, 160, 3)
    assert frame.scale == pytest.approx(0.5)


def test_iter_frames_never_exceeds_source_rate(clip: Path) -> None:
    info = probe(clip)
    assert len(list(iter_frames(clip, info, fps=100))) == 50


def test_extract_audio_writes_16k_mono(clip: Path, tmp_path: Path) -> None:
    info = probe(clip)
    wav = extract_audio(clip, info, tmp_path / "a.wav")
    assert wav is not None
    samples = read_wav(wav)
    assert abs(len(samples) / AUDIO_SAMPLE_RATE - 2.0) < 0.1
    assert 0.1 < np.abs(samples).max() <= 1.0  # the 440 Hz tone is there


def test_read_wav_refuses_what_is_not_16k_mono(tmp_path: Path) -> None:
    stereo, fast = tmp_path / "stereo.wav", tmp_path / "44k.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000", "-t", "0.5", "-ac", "2", str(stereo))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=44100", "-t", "0.5", str(fast))
    for path in (stereo, fast):
        with pytest.raises(ValueError, match="expected mono 16 kHz"):
            read_wav(path)


def test_missing_ffmpeg_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFECTFLOW_FFPROBE", "/nonexistent/ffprobe")
    with pytest.raises(ToolMissingError, match="AFFECTFLOW_FFPROBE"):
        check_tools()
