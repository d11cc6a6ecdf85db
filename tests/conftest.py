"""Test-wide setup: an isolated Prefect home, quiet logs, and shared generated media."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Prefect reads its settings at import: isolate it before any test imports it.
_PREFECT_HOME = tempfile.mkdtemp(prefix="affectflow-prefect-")
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "CRITICAL")
os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL", "CRITICAL")
os.environ.pop("PREFECT_API_URL", None)  # never talk to a developer's real server


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    from tests.mediagen.bad import make_bad_files

    directory = tmp_path_factory.mktemp("bad")
    return directory, make_bad_files(directory)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Generated clips with real faces and two-speaker speech, plus bad files (tests/mediagen)."""
    from tests.mediagen.corpus import build_corpus

    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def pipeline_out(corpus, tmp_path_factory: pytest.TempPathFactory) -> str:  # type: ignore[no-untyped-def]
    """Output root of one real `affectflow run` (every stage, offline default models) over `corpus`."""
    from flows.cli import main

    out = tmp_path_factory.mktemp("pipeline-out")
    assert main(["run", str(corpus.root), "--out", str(out)]) == 1  # the bad files fail, the rest are ok
    return str(out)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need a real pipeline run are slow (integration), wherever they live."""
    for item in items:
        if "pipeline_out" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
