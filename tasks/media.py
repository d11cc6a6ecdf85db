"""Media stage: stage a video locally, probe it, stream frames, extract audio.

Everything goes through ffmpeg/ffprobe (via ffmpeg-python) as subprocesses, so a
video is never held in memory: frames arrive one at a time from a pipe.

Binaries: the system ``ffmpeg``/``ffprobe`` (Debian package, installed by
``scripts/setup.sh``); override with ``AFFECTFLOW_FFMPEG`` / ``AFFECTFLOW_FFPROBE``.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import fsspec
import numpy as np

from tasks.fs import is_local

AUDIO_SAMPLE_RATE = 16_000  # Hz, mono: what the speech models expect
_CHUNK = 8 * 1024 * 1024  # bytes per read while staging/hashing
_WAV_BLOCK = 1 << 20  # samples per read of a WAV (2 MiB of 16-bit PCM)
READ_AHEAD = 4  # decoded frames waiting for the consumer (640×480: 0.9 MiB each; 1280×720: 2.6 MiB)


class MediaError(Exception):
    """The input file itself is bad (corrupt, empty, no video stream...).

    Deterministic: retrying will not help, so the corpus flow records it and moves on.
    """


class ToolMissingError(RuntimeError):
    """ffmpeg/ffprobe is not installed: fatal for the whole run, reported once."""


def ffmpeg_exe() -> str:
    return _binary("AFFECTFLOW_FFMPEG", "ffmpeg")


def ffprobe_exe() -> str:
    return _binary("AFFECTFLOW_FFPROBE", "ffprobe")


def _binary(env_var: str, name: str) -> str:
    exe = os.environ.get(env_var) or shutil.which(name)
    if not exe or not (Path(exe).is_file() or shutil.which(exe)):
        raise ToolMissingError(
            f"{name} not found: install it (`apt-get install ffmpeg`, or run scripts/setup.sh) "
            f"or point {env_var} at the binary"
        )
    return exe


def check_tools() -> None:
    """Fail fast, once, before a corpus run starts."""
    ffmpeg_exe()
    ffprobe_exe()


@dataclass(frozen=True)
class StagedVideo:
    path: Path  # local copy (or the original file when it is already local)
    uri: str  # where it came from
    sha256: str  # content hash of the whole file
    size_bytes: int

    @property
    def video_id(self) -> str:
        """Stable content id: the same bytes under two names are one video."""
        return self.sha256[:16]


def stage(uri: str, work_dir: Path) -> StagedVideo:
    """Bring ``uri`` (local path or any fsspec URL) to local disk and hash it.

    Local files are hashed in place, not copied; remote ones are copied into
    ``work_dir`` while hashing, so each byte is read once.
    """
    fs, path = fsspec.core.url_to_fs(uri)
    digest = hashlib.sha256()
    if is_local(fs):
        local = Path(path)
        with open(local, "rb") as src:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
    else:
        work_dir.mkdir(parents=True, exist_ok=True)
        local = work_dir / Path(path).name
        with fs.open(path, "rb") as src, open(local, "wb") as dst:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
    return StagedVideo(local, uri, digest.hexdigest(), local.stat().st_size)


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float
    fps: float  # average frame rate of the video stream
    width: int  # displayed size (rotation applied)
    height: int
    n_frames: int  # counted by the container, else estimated from duration × fps
    has_audio: bool
    audio_duration_s: float | None
    rotation: int  # degrees, from the display matrix; ffmpeg auto-rotates frames


def probe(path: Path) -> MediaInfo:
    """Read the container's facts with ffprobe; raise MediaError for unusable files."""
    if path.stat().st_size == 0:
        raise MediaError("empty file (0 bytes)")
    try:
        info = ffmpeg.probe(str(path), cmd=ffprobe_exe())
    except ffmpeg.Error as err:
        raise MediaError(f"not a readable media file: {_last_line(err.stderr)}") from None
    streams = info.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video" and not _is_cover(s)), None)
    if video is None:
        raise MediaError("no video stream")
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
    duration = _float(video.get("duration")) or _float(info.get("format", {}).get("duration"))
    if not fps or not duration:
        raise MediaError("video stream has no frame rate or duration (truncated or corrupt file)")
    rotation = _rotation(video)
    width, height = int(video["width"]), int(video["height"])
    if rotation % 180 == 90:
        width, height = height, width
    n_frames = int(video.get("nb_frames") or 0) or round(duration * fps)
    audio_duration = _float(audio.get("duration")) if audio else None
    return MediaInfo(duration, fps, width, height, n_frames, audio is not None, audio_duration, rotation)


def _is_cover(stream: dict) -> bool:
    return bool(stream.get("disposition", {}).get("attached_pic"))


def _rate(text: str | None) -> float:
    if not text or text in ("0/0", "0"):
        return 0.0
    num, _, den = text.partition("/")
    return float(num) / float(den or 1)


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def _rotation(stream: dict) -> int:
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            return int(float(side["rotation"])) % 360
    return int(float(stream.get("tags", {}).get("rotate", 0))) % 360


def _last_line(stderr: bytes | None) -> str:
    lines = (stderr or b"").decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "ffprobe failed"


@dataclass(frozen=True)
class Frame:
    index: int  # frame index in the source video
    t: float  # seconds from the start
    bgr: np.ndarray  # (H, W, 3) uint8, OpenCV channel order, at analysis size
    scale: float  # analysis pixels per source pixel (boxes / scale = source pixels)


def analysis_size(info: MediaInfo, max_side: int | None) -> tuple[int, int, float]:
    """(width, height, scale) of analysed frames: the source, shrunk so max(w, h) <= max_side."""
    scale = 1.0
    if max_side and max(info.width, info.height) > max_side:
        scale = max_side / max(info.width, info.height)
    width = max(2, round(info.width * scale / 2) * 2)  # even sizes keep ffmpeg happy
    height = max(2, round(info.height * scale / 2) * 2)
    return width, height, width / info.width


def iter_frames(
    path: Path, info: MediaInfo, fps: float, *, max_side: int | None = 1280, read_ahead: int = READ_AHEAD
) -> Iterator[Frame]:
    """Stream frames sampled at ``fps`` (capped at the video's own rate) from an ffmpeg pipe.

    At most ``read_ahead`` + 1 frames are in memory: a reader thread keeps ffmpeg decoding
    the next frames while the consumer works on this one (without it, ffmpeg stalls on the
    64 KiB pipe and each frame costs its decode time on top of the consumer's).
    Frame k of the sampled stream sits at t = k / fps; its ``index`` is the nearest frame
    of the source video.
    """
    rate = min(fps, info.fps)
    width, height, scale = analysis_size(info, max_side)
    stream = (
        ffmpeg.input(str(path))
        .filter("fps", fps=rate)
        .filter("scale", width, height)
        .output("pipe:", format="rawvideo", pix_fmt="bgr24")
        .global_args("-nostdin", "-loglevel", "error")
    )
    process = subprocess.Popen(ffmpeg.compile(stream, cmd=ffmpeg_exe()), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buffers = _FrameReader(process, width * height * 3, max(read_ahead, 1))
    try:
        for k, buffer in enumerate(buffers):
            t = k / rate
            index = min(round(t * info.fps), max(info.n_frames - 1, 0))
            yield Frame(index, t, np.frombuffer(buffer, np.uint8).reshape(height, width, 3), scale)
    finally:
        buffers.close()


class _FrameReader:
    """Raw frames from ffmpeg's stdout, read by a thread into a bounded queue."""

    def __init__(self, process: subprocess.Popen[bytes], frame_bytes: int, depth: int) -> None:
        self.process, self.frame_bytes = process, frame_bytes
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._read, name="ffmpeg-frames", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            while not self.stopped.is_set():
                buffer = self.process.stdout.read(self.frame_bytes)
                if len(buffer) < self.frame_bytes or not self._put(buffer):
                    return
        except (OSError, ValueError):  # the pipe was closed under us: the consumer stopped
            return
        finally:
            self._put(None)

    def _put(self, item: bytes | None) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[bytes]:
        while (buffer := self.queue.get()) is not None:
            yield buffer

    def close(self) -> None:
        """Stop ffmpeg and the reader, whether or not every frame was read."""
        self.stopped.set()
        self.process.kill()
        self.thread.join()
        assert self.process.stdout is not None
        self.process.stdout.close()
        self.process.wait()


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
        raise MediaError(f"audio track unreadable: {_last_line(err.stderr)}") from None
    return wav_path


def read_wav(wav_path: Path) -> np.ndarray:
    """(samples,) float32 in [-1, 1] from a 16-bit PCM WAV written by extract_audio.

    Read in blocks into the result, so a long track costs its float32 array and no more
    (reading it whole, then converting, then scaling held 2.5× that: ~290 MB for 30 minutes).
    """
    import wave

    with wave.open(str(wav_path), "rb") as wav:
        audio = np.empty(wav.getnframes(), np.float32)
        filled = 0
        while filled < len(audio):
            block = np.frombuffer(wav.readframes(_WAV_BLOCK), np.int16)
            if not block.size:
                break
            audio[filled : filled + len(block)] = block
            filled += len(block)
    audio = audio[:filled]
    audio /= 32768.0
    return audio
