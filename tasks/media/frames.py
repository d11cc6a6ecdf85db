"""Frames: streamed from an ffmpeg pipe at the analysis rate, never held whole in memory."""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import ffmpeg
import numpy as np

from affectflow.tasks.media.tools import ffmpeg_exe
from affectflow.tasks.records import Frame, MediaInfo

# (path, info, fps, *, max_side=...) -> frames: iter_frames, or a wrapper of it that times decoding
FrameSource = Callable[..., Iterator[Frame]]
READ_AHEAD = 4  # decoded frames waiting for the consumer (640×480: 0.9 MiB each; 1280×720: 2.6 MiB)


def analysis_size(info: MediaInfo, max_side: int | None) -> tuple[int, int, float]:
    """(width, height, scale) of analysed frames: the source, shrunk so max(w, h) <= max_side."""
    scale = 1.0
    if max_side and max(info.width, info.height) > max_side:
        scale = max_side / max(info.width, info.height)
    width = max(2, round(info.width * scale / 2) * 2)  # even sizes keep ffmpeg happy
    height = max(2, round(info.height * scale / 2) * 2)
    return width, height, width / info.width


def iter_frames(
    path: Path,
    info: MediaInfo,
    fps: float,
    *,
    max_side: int | None = 1280,
    read_ahead: int = READ_AHEAD,
    start: float = 0.0,
    end: float | None = None,
) -> Iterator[Frame]:
    """Stream frames sampled at ``fps`` (capped at the video's own rate) from an ffmpeg pipe.

    At most ``read_ahead`` + 1 frames are in memory: a reader thread keeps ffmpeg decoding
    the next frames while the consumer works on this one (without it, ffmpeg stalls on the
    64 KiB pipe and each frame costs its decode time on top of the consumer's).
    Frame k of the sampled stream sits at t = start + k / fps; its ``index`` is the nearest
    frame of the source video. ``start``/``end`` (s) decode only that time range (ffmpeg
    seeks to ``start``; the who-is-speaking stage reads the spans where someone speaks).
    """
    rate = min(fps, info.fps)
    width, height, scale = analysis_size(info, max_side)
    span = {"ss": start} if start > 0 else {}
    if end is not None:
        span["t"] = max(end - start, 0.0)
    stream = (
        ffmpeg.input(str(path), **span)
        .filter("fps", fps=rate)
        .filter("scale", width, height)
        .output("pipe:", format="rawvideo", pix_fmt="bgr24")
        .global_args("-nostdin", "-loglevel", "error")
    )
    process = subprocess.Popen(ffmpeg.compile(stream, cmd=ffmpeg_exe()), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buffers = _FrameReader(process, width * height * 3, max(read_ahead, 1))
    try:
        for k, buffer in enumerate(buffers):
            t = start + k / rate
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
