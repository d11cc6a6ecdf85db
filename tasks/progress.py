"""The one progress mechanism shared by all stages (after pyannote.audio's hooks).

A stage calls ``hook(step, completed, total)`` at its natural steps; whoever runs
the stage decides what that means (a CLI bar, a Prefect artifact, a log line).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


class Throttle:
    """Whether ``interval_s`` passed since the last yes; time injected (``now``) so tests need no sleep."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last: float | None = None

    def ready(self, now: float) -> bool:
        if self._last is not None and now - self._last < self.interval_s:
            return False
        self._last = now
        return True
