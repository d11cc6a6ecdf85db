"""Audio: the first audio stream as 16 kHz mono PCM WAV, and reading it back."""

from __future__ import annotations

from pathlib import Path

import ffmpeg
import numpy as np
import soundfile

from affectflow.tasks.media.tools import MediaError, ffmpeg_exe, last_line
from affectflow.tasks.records import MediaInfo

AUDIO_SAMPLE_RATE = 16_000  # Hz, mono: what the speech models expect


def extract_audio(path: Path, info: MediaInfo, wav_path: Path) -> Path | None:
    """Write the first audio stream as 16 kHz mono PCM WAV; None when there is no audio."""
    if not info.has_audio:
        return None
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    stream = ffmpeg.input(str(path)).output(
        str(wav_path), vn=None, ac=1, ar=AUDIO_SAMPLE_RATE, acodec="pcm_s16le", format="wav"
    )
    try:
        stream.global_args("-nostdin", "-loglevel", "error").run(
            cmd=ffmpeg_exe(), overwrite_output=True, capture_stdout=True, capture_stderr=True
        )
    except ffmpeg.Error as err:
        raise MediaError(f"audio track unreadable: {last_line(err.stderr)}") from None
    return wav_path


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
