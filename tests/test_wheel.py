"""The package installs and works as a wheel, not only as an editable checkout (scripts/wheel_smoke.sh).

The script builds the wheel, checks it holds `affectflow` alone (no top-level `flows`, `tasks`
or `model`) with its SQL and checkpoint, installs it non-editable into a fresh venv and runs
`affectflow --help`, a `--stages faces` run on a generated clip and `affectflow sql` over it,
from outside the checkout.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "wheel_smoke.sh"


def test_the_built_wheel_installs_alone_and_runs_the_smoke_test() -> None:
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    assert "wheel smoke: ok" in done.stdout
