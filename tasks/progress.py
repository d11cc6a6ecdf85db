"""The one progress mechanism shared by all stages (after pyannote.audio's hooks).

A stage calls ``hook(step, completed, total)`` at its natural steps; whoever runs
the stage decides what that means (a CLI bar, a Prefect artifact, a log line).
"""

from __future__ import annotations

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
