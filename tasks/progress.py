"""The one progress mechanism shared by all stages (after pyannote.audio's hooks).

A stage calls ``hook(step, completed, total)`` at its natural steps; whoever runs
the stage decides what that means (a CLI bar, a Prefect artifact, a log line).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

Hook = Callable[[str, int, "int | None"], None]


def no_progress(step: str, completed: int, total: int | None) -> None:
    """The default hook: report nothing."""


def all_of(*hooks: Hook) -> Hook:
    """One hook that calls each of ``hooks`` in turn (e.g. a deadline and a timer)."""

    def hook(step: str, completed: int, total: int | None) -> None:
        for each in hooks:
            each(step, completed, total)

    return hook


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the run: stop now, commit nothing in flight.

    A KeyboardInterrupt (so a BaseException): the stages' ``except Exception`` that turns a bad
    video into a ``failed`` row lets it through, so an interrupted video is never written.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


class StopRequest:
    """Set by the signal handler (main thread), seen by every video's hook (any thread).

    One per process because a signal is: ``STOP`` below. Checked at the stages' progress
    steps and once more before a video's tables are written.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum = 0

    def request(self, signum: int) -> None:
        self.signum = signum
        self._event.set()

    def clear(self) -> None:
        self._event.clear()
        self.signum = 0

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Whether a stop is requested within ``timeout_s`` (a child's death may come before the handler runs)."""
        return self._event.wait(timeout_s)

    def check(self, step: str, completed: int, total: int | None) -> None:
        """A progress hook: raise :class:`Interrupted` once a stop was requested."""
        if self._event.is_set():
            raise Interrupted(self.signum)


STOP = StopRequest()
_STOP_OF_THIS_RUN: ContextVar[StopRequest] = ContextVar("affectflow_stop", default=STOP)


def stop_request() -> StopRequest:
    """The stop request the running video obeys: this process's ``STOP``, or its run's (stopped_by)."""
    return _STOP_OF_THIS_RUN.get()


@contextmanager
def stopped_by(request: StopRequest) -> Iterator[StopRequest]:
    """Within, videos obey ``request`` instead of this process's signals.

    For a process that serves several runs (a Dask worker): the run's signal reaches its
    client, not the worker, so the client's stop is relayed to ``request`` (flows/scaleout).
    """
    token = _STOP_OF_THIS_RUN.set(request)
    try:
        yield request
    finally:
        _STOP_OF_THIS_RUN.reset(token)


# Steps whose hook reports seconds of audio, not frames (transcription, diarization).
_SECONDS_STEPS = ("transcri", "diariz", "segmentation", "embedding")


def unit_of(step: str) -> str:
    """``"s"`` for steps counted in seconds of audio, ``""`` (frames) otherwise."""
    return "s" if any(key in step for key in _SECONDS_STEPS) else ""


class StageProgress:
    """Process-wide latest ``(step, completed, total)`` per running video.

    A lock, not ContextVars: videos run in Prefect task threads, the bar refreshes from another.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[str, int, int | None]] = {}

    def report(self, video_name: str, step: str, completed: int, total: int | None) -> None:
        with self._lock:
            self._state[video_name] = (step, completed, total)

    def clear(self, video_name: str) -> None:
        with self._lock:
            self._state.pop(video_name, None)

    def snapshot(self) -> dict[str, tuple[str, int, int | None]]:
        """A copy, safe to read without the lock."""
        with self._lock:
            return dict(self._state)

    def hook(self, video_name: str) -> Hook:
        """This video's hook, to add to its chain (:func:`all_of`)."""

        def hook(step: str, completed: int, total: int | None) -> None:
            self.report(video_name, step, completed, total)

        return hook


PROGRESS = StageProgress()


def describe(snapshot: dict[str, tuple[str, int, int | None]]) -> str:
    """One line for a bar's postfix: ``clip.mp4: faces 1200/9000; b.mp4: transcription 30/600s``."""
    parts = []
    for name, (step, completed, total) in sorted(snapshot.items()):
        unit = unit_of(step)
        done = f"{completed}/{total}{unit}" if total is not None else f"{completed}{unit}"
        parts.append(f"{name}: {step} {done}")
    return "; ".join(parts)


@contextmanager
def repeating(interval_s: float, action: Callable[[], None], name: str) -> Iterator[None]:
    """While inside, a daemon thread named ``name`` calls ``action`` every ``interval_s``; joined on exit.

    How progress is shown from a registry that hooks only write: one drawing thread, so a fast
    hook never redraws anything (the CLI bar's postfix, the Prefect progress artifact).
    """
    stopped = threading.Event()

    def loop() -> None:
        while not stopped.wait(interval_s):
            action()

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopped.set()
        thread.join()


class VideoTimeoutError(Exception):
    """The video took longer than its budget (a pathological file must not hold a nightly run)."""


@dataclass(frozen=True)
class Deadline:
    """When the current video must be done: ``end`` on the monotonic clock, of a ``budget_s`` budget."""

    end: float
    budget_s: float

    def left(self) -> float:
        return max(self.end - time.monotonic(), 0.0)

    @classmethod
    def starting_now(cls, budget_s: float) -> Deadline:
        return cls(time.monotonic() + budget_s, budget_s)

    def check(self, step: str) -> None:
        if time.monotonic() > self.end:
            raise self.timed_out(f"during {step}")

    def timed_out(self, where: str) -> VideoTimeoutError:
        """The one-line error of a video past this deadline; ``where`` says what it was doing."""
        return VideoTimeoutError(f"timed out after {self.budget_s:g} s ({where})")

    def hook(self, step: str, completed: int, total: int | None) -> None:
        """The deadline as a progress hook: stops the video at the step after it passed."""
        self.check(step)


# The running video's deadline, for steps that wait on a child process instead of calling a hook
# (ffprobe, ffmpeg): they wait at most what is left, then kill it. A ContextVar: the video's branch
# threads run in copies of its context (flows/video.run_stages), other videos in their own.
DEADLINE: ContextVar[Deadline | None] = ContextVar("affectflow_video_deadline", default=None)


def time_left() -> float | None:
    """Seconds left to the running video (None: no limit), for a child process's timeout."""
    deadline = DEADLINE.get()
    return None if deadline is None else deadline.left()


def overdue() -> bool:
    """Whether the running video's deadline has passed (never, without one)."""
    return time_left() == 0.0


def timed_out(where: str) -> VideoTimeoutError:
    """The one-line error of the running video past its deadline (``Deadline.timed_out``)."""
    deadline = DEADLINE.get()
    return deadline.timed_out(where) if deadline else VideoTimeoutError(f"timed out after its deadline ({where})")


def deadline_hook(timeout_s: float | None) -> Hook:
    """A progress hook that stops the video once ``timeout_s`` has passed from now."""
    return Deadline.starting_now(timeout_s).hook if timeout_s else no_progress


@contextmanager
def video_deadline(timeout_s: float | None) -> Iterator[Hook]:
    """Inside: the video's deadline is set (``time_left``); yields the hook that enforces it between steps.

    Cooperative between steps (stages call hooks between batches, so the stop comes at a clean
    point in any thread); a step waiting on a child process waits at most ``time_left()``.
    """
    if not timeout_s:
        yield no_progress
        return
    deadline = Deadline.starting_now(timeout_s)
    token = DEADLINE.set(deadline)
    try:
        yield deadline.hook
    finally:
        DEADLINE.reset(token)
