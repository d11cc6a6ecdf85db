"""`affectflow --help` and `affectflow sql` start without loading any model library.

Each check runs in a fresh interpreter (this test process may have imported anything) and
lists what of torch, cv2, onnxruntime and Prefect ended up imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # the CLI in fresh interpreters (subprocesses)

HEAVY = ("torch", "cv2", "onnxruntime", "prefect", "whisperx", "pyannote")
PROBE = f"""
import contextlib, io, json, sys
from affectflow.flows.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
    main(sys.argv[1:])
print(json.dumps({{"heavy": sorted(m for m in {HEAVY!r} if m in sys.modules), "out": out.getvalue()}}))
"""


def run_cli(*argv: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_help_imports_no_model_library() -> None:
    result = run_cli("--help")
    assert result["heavy"] == []
    assert all(command in str(result["out"]) for command in ("run", "sql", "train", "evaluate", "distill"))


def test_a_command_help_builds_only_that_command() -> None:
    result = run_cli("run", "--help")
    assert result["heavy"] == [] and "--faces-backend" in str(result["out"])


def test_sql_imports_no_model_library(tmp_path: Path) -> None:
    from affectflow.tasks.storage.store import Store

    Store(str(tmp_path)).write_video("v1", {}, {"video_id": "v1", "name": "a.mp4", "status": "ok"})
    result = run_cli("sql", "--out", str(tmp_path), "--format", "csv", "SELECT count(*) AS n FROM videos")
    assert result["heavy"] == [] and str(result["out"]).split() == ["n", "1"]
