"""The one progress mechanism shared by all stages (after pyannote.audio's hooks).

A stage calls ``hook(step, completed, total)`` at its natural steps; whoever runs
the stage decides what that means (a CLI bar, a Prefect artifact, a log line).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar

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


class Deadline:
    """When the current video must be done, of a ``budget_s`` budget of its own time.

    Time in which every thread of the video waits (for a model another video holds, or for its
    other branch while that one waits) is not the video's own: it moves ``end`` later. So two
    videos at once (``--workers 2``) never time one out for the length of the other, while a
    video that works, in any of its threads, spends its budget. Threads of the video say so with
    ``working()`` (none: the video is one thread) and ``waiting()``.
    """

    def __init__(self, end: float, budget_s: float) -> None:
        self._end = end  # monotonic seconds, before the wait in progress (``_idle_since``)
        self.budget_s = budget_s
        self._lock = threading.Lock()
        self._threads = 0  # threads of the video inside ``working()``
        self._waiting = 0  # of those (or the video's one thread), how many are inside ``waiting()``
        self._idle_since: float | None = None  # every thread waits since then (monotonic)

    @classmethod
    def starting_now(cls, budget_s: float) -> Deadline:
        return cls(time.monotonic() + budget_s, budget_s)

    @property
    def end(self) -> float:
        """The monotonic time the video must be done by, the wait in progress not counted."""
        with self._lock:
            return self._end + (time.monotonic() - self._idle_since if self._idle_since is not None else 0.0)

    def left(self) -> float:
        return max(self.end - time.monotonic(), 0.0)

    def working(self) -> AbstractContextManager[None]:
        """Inside: one more thread works on the video (a branch thread of ``flows.video.run_stages``)."""
        return self._inside(threads=1)

    def waiting(self) -> AbstractContextManager[None]:
        """Inside: this thread of the video waits on something that is not the video's own work."""
        return self._inside(waiting=1)

    @contextmanager
    def _inside(self, threads: int = 0, waiting: int = 0) -> Iterator[None]:
        self._change(threads, waiting)
        try:
            yield
        finally:
            self._change(-threads, -waiting)

    def _change(self, threads: int, waiting: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._threads += threads
            self._waiting += waiting
            idle = self._waiting >= max(self._threads, 1)
            if idle and self._idle_since is None:
                self._idle_since = now
            elif not idle and self._idle_since is not None:
                self._end += now - self._idle_since
                self._idle_since = None

    def check(self, step: str) -> None:
        if time.monotonic() > self.end:
            raise self.timed_out(f"during {step}")

    def timed_out(self, where: str) -> VideoTimeoutError:
        """The one-line error of a video past this deadline; ``where`` says what it was doing."""
        return VideoTimeoutError(f"timed out after {self.budget_s:g} s ({where})")

    def hook(self, step: str, completed: int, total: int | None) -> None:
        """The deadline as a progress hook: stops the video at the step after it passed."""
        self.check(step)


def not_counted() -> AbstractContextManager[None]:
    """Inside: this thread waits on something not of the running video's own (``Deadline.waiting``)."""
    deadline = DEADLINE.get()
    return deadline.waiting() if deadline else nullcontext()


def counted_thread() -> AbstractContextManager[None]:
    """Inside: this thread is one of the running video's working threads (``Deadline.working``)."""
    deadline = DEADLINE.get()
    return deadline.working() if deadline else nullcontext()


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
