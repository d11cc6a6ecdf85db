"""The one progress mechanism shared by all stages (after pyannote.audio's hooks).

A stage calls ``hook(step, completed, total)`` at its natural steps; whoever runs
the stage decides what that means (a CLI bar, a Prefect artifact, a log line).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

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
