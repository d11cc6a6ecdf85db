"""Frames: streamed from an ffmpeg pipe at the analysis rate, never held whole in memory, verified at the end."""

from __future__ import annotations

import math
import queue
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import ffmpeg
import numpy as np

from affectflow.tasks.media.tools import DecodeInterruptedError, MediaError, check_exit, ffmpeg_exe, input_url
from affectflow.tasks.progress import DEADLINE
from affectflow.tasks.records import Frame, MediaInfo

# (path, info, fps, *, max_side=...) -> frames: iter_frames, or a wrapper of it that times decoding
FrameSource = Callable[..., Iterator[Frame]]
READ_AHEAD = 4  # decoded frames waiting for the consumer (640×480: 0.9 MiB each; 1280×720: 2.6 MiB)
MISSING_FRAMES, MISSING_SHARE = 2, 0.02  # a decode may give max(2, 2 %) fewer frames than probed (check_frame_count)
STDERR_LINES = 20  # of ffmpeg's log, kept for the error message
EXIT_WAIT_S = 30  # for ffmpeg to exit once it has closed its output
WAIT_S = 0.5  # between checks of the video's deadline while no frame comes


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

    The decode is verified once the last frame is out: ffmpeg's exit status (a failure is a
    MediaError, a kill or Ctrl-C a DecodeInterruptedError) and the number of frames against
    what the probe promised (``check_frame_count``). A consumer that stops early checks nothing.
    """
    rate = min(fps, info.fps)
    width, height, scale = analysis_size(info, max_side)
    span = {"ss": start} if start > 0 else {}
    if end is not None:
        span["t"] = max(end - start, 0.0)
    stream = (
        ffmpeg.input(input_url(path), **span)
        .filter("fps", fps=rate)
        .filter("scale", width, height)
        .output("pipe:", format="rawvideo", pix_fmt="bgr24")
        .global_args("-nostdin", "-loglevel", "error")
    )
    process = subprocess.Popen(ffmpeg.compile(stream, cmd=ffmpeg_exe()), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buffers = _FrameReader(process, width * height * 3, max(read_ahead, 1))
    expected, got = expected_frames(info, rate, start, end), 0
    try:
        for got, buffer in enumerate(buffers, 1):
            t = start + (got - 1) / rate
            index = min(round(t * info.fps), max(info.n_frames - 1, 0))
            yield Frame(index, t, np.frombuffer(buffer, np.uint8).reshape(height, width, 3), scale)
        buffers.finish(f"{got} of {expected} frames")
    finally:
        buffers.close()
    check_frame_count(got, expected, rate)


def expected_frames(info: MediaInfo, rate: float, start: float = 0.0, end: float | None = None) -> int:
    """Frames the probe promises for [start, end) s at ``rate`` frames/s: what ffmpeg's fps filter should give."""
    stop = info.duration_s if end is None else min(end, info.duration_s)
    return max(0, round((stop - start) * rate))


def check_frame_count(got: int, expected: int, rate: float) -> None:
    """Raise MediaError when a decode that exited 0 still gave fewer frames than the probe promised.

    Up to max(MISSING_FRAMES, MISSING_SHARE × expected) may be missing: the fps filter's count
    moves by a frame at either end and containers round their durations (measured on our odd
    media, whole and in spans: never short, up to 3 frames over in a span).
    """
    allowed = max(MISSING_FRAMES, math.ceil(MISSING_SHARE * expected))
    if got < expected - allowed:
        raise MediaError(
            f"video decode stopped early: {got} of {expected} frames at {rate:g} fps "
            f"(the probed duration; at most {allowed} may be missing)"
        )


class _FrameReader:
    """Raw frames from ffmpeg's stdout, read by a thread into a bounded queue; its stderr kept aside.

    stderr is drained by a second thread (a corrupt file can log more than the 64 KiB pipe
    holds, which would stall ffmpeg); its first lines are kept for the error message.
    """

    def __init__(self, process: subprocess.Popen[bytes], frame_bytes: int, depth: int) -> None:
        self.process, self.frame_bytes = process, frame_bytes
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self.stopped = threading.Event()
        self.stderr: list[str] = []
        self.threads = [
            threading.Thread(target=self._read, name="ffmpeg-frames", daemon=True),
            threading.Thread(target=self._drain_stderr, name="ffmpeg-stderr", daemon=True),
        ]
        for thread in self.threads:
            thread.start()

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

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        try:
            for line in self.process.stderr:
                if len(self.stderr) < STDERR_LINES:
                    self.stderr.append(line.decode(errors="replace"))
        except (OSError, ValueError):
            return

    def _put(self, item: bytes | None) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[bytes]:
        deadline = DEADLINE.get()  # the running video's: a decoder that gives no frame must not hold it
        while True:
            try:
                buffer = self.queue.get(timeout=WAIT_S)
            except queue.Empty:
                if deadline is not None:
                    deadline.check("decode: ffmpeg gave no frame")  # close() then kills ffmpeg
                continue
            if buffer is None:
                return
            yield buffer

    def finish(self, done: str) -> None:
        """After the last frame: wait for ffmpeg to exit and raise if it failed or was stopped."""
        try:
            returncode = self.process.wait(timeout=EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            raise DecodeInterruptedError(f"ffmpeg did not exit {EXIT_WAIT_S} s after its last frame ({done})") from None
        self.threads[1].join()  # all of stderr has been read once ffmpeg is gone
        check_exit("video", returncode, self.stderr, done)

    def close(self) -> None:
        """Stop ffmpeg and the reader threads, whether or not every frame was read."""
        self.stopped.set()
        if self.process.poll() is None:
            self.process.kill()
        for thread in self.threads:
            thread.join()
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        self.process.wait()
