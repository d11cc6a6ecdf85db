"""Audio: the first audio stream as 16 kHz mono PCM WAV, and reading it back."""

from __future__ import annotations

from pathlib import Path

import ffmpeg
import numpy as np
import soundfile

from affectflow.tasks.media.tools import MediaError, check_exit, ffmpeg_exe, input_url, run_tool
from affectflow.tasks.records import MediaInfo

AUDIO_SAMPLE_RATE = 16_000  # Hz, mono: what the speech models expect
MISSING_AUDIO_S, MISSING_AUDIO_SHARE = 0.2, 0.02  # a decoded track may be max(0.2 s, 2 %) shorter than probed


def extract_audio(path: Path, info: MediaInfo, wav_path: Path) -> Path | None:
    """Write the first audio stream as 16 kHz mono PCM WAV; None when there is no audio.

    Verified like the frames: ffmpeg's exit status (a failure is a MediaError, a kill or
    Ctrl-C a DecodeInterruptedError), then the WAV's length against the probed audio
    duration (``check_audio_length``).
    """
    if not info.has_audio:
        return None
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    stream = (
        ffmpeg.input(input_url(path))
        .output(str(wav_path), vn=None, ac=1, ar=AUDIO_SAMPLE_RATE, acodec="pcm_s16le", format="wav")
        .global_args("-nostdin", "-loglevel", "error")
        .overwrite_output()
    )
    done = run_tool(ffmpeg.compile(stream, cmd=ffmpeg_exe()), "audio")  # bounded by the video's time left
    stderr = done.stderr.decode(errors="replace").splitlines()
    seconds = _wav_seconds(wav_path)
    check_exit("audio", done.returncode, stderr, f"{seconds:.1f} s")
    check_audio_length(seconds, info.audio_duration_s)
    return wav_path


def check_audio_length(seconds: float, probed_s: float | None) -> None:
    """Raise MediaError when the decoded track is shorter than the probe said, by more than
    max(MISSING_AUDIO_S, MISSING_AUDIO_SHARE × probed); unknown probed durations are not checked."""
    if probed_s is None:
        return
    allowed = max(MISSING_AUDIO_S, MISSING_AUDIO_SHARE * probed_s)
    if seconds < probed_s - allowed:
        raise MediaError(
            f"audio decode stopped early: {seconds:.2f} of {probed_s:.2f} s (at most {allowed:.2f} s may be missing)"
        )


def _wav_seconds(wav_path: Path) -> float:
    """Seconds of PCM in the WAV ffmpeg wrote (0 when it wrote none)."""
    try:
        return float(soundfile.info(str(wav_path)).duration)
    except (OSError, RuntimeError):  # soundfile.LibsndfileError is a RuntimeError
        return 0.0


def read_wav(wav_path: Path) -> np.ndarray:
    """(samples,) float32 in [-1, 1) at AUDIO_SAMPLE_RATE from a mono WAV such as extract_audio writes.

    libsndfile converts the PCM straight into the one float32 array it returns, so a long
    track costs that array and no more (reading the int16 whole, then converting, then
    scaling held 2.5× that: ~290 MB for 30 minutes). A WAV of another rate or with more
    channels is refused: every caller counts time in 16 kHz samples.
    """
    with soundfile.SoundFile(wav_path) as wav:
        if (wav.channels, wav.samplerate) != (1, AUDIO_SAMPLE_RATE):
            raise ValueError(f"{wav_path}: {wav.channels} channel(s) at {wav.samplerate} Hz, expected mono 16 kHz")
        return wav.read(dtype="float32")
