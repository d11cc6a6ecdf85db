"""Test-wide setup: an isolated Prefect home, quiet logs, shared generated media, and the test tiers."""

from __future__ import annotations

import ast
import atexit
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Generator
from pathlib import Path

import pytest

# Prefect reads its settings at import: isolate it before any test imports it.
_PREFECT_HOME = tempfile.mkdtemp(prefix="affectflow-prefect-")
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# A fresh PREFECT_HOME migrates its database at the first flow; on 2 busy cores that can pass
# Prefect's 20 s default start-up limit ("Timed out while attempting to connect to ephemeral Prefect API server").
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "CRITICAL")
os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL", "CRITICAL")
os.environ.pop("PREFECT_API_URL", None)  # never talk to a developer's real server
os.environ["AFFECTFLOW_KEEP_WARM"] = "off"  # a test that wants the warm service (flows/warm.py) turns it on


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    from affectflow.tasks.synth.bad import make_bad_files

    directory = tmp_path_factory.mktemp("bad")
    return directory, make_bad_files(directory)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Generated clips with real faces and two-speaker speech, plus bad files (tasks/synth)."""
    from affectflow.tasks.synth.corpus import build_corpus

    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def pipeline_out(corpus, tmp_path_factory: pytest.TempPathFactory) -> str:  # type: ignore[no-untyped-def]
    """Output root of one real `affectflow run` (every stage, offline default models) over `corpus`."""
    from affectflow.flows.cli import main

    out = tmp_path_factory.mktemp("pipeline-out")
    assert main(["run", str(corpus.root), "--out", str(out)]) == 1  # the bad files fail, the rest are ok
    return str(out)


# -- test tiers (README "Tests"): every test module declares exactly one ---------------------
# unit: in-memory logic (numpy, pyarrow, duckdb, matplotlib): no torch (checked below), no
#       weights, no ffmpeg/espeak-ng, no Prefect flow run or server; the tier runs in under 30 s.
# models: torch and ONNX (real weights, tiny networks the test builds, torch tensors) and the
#       media binaries, one stage at a time.
# integration: the full pipeline, Prefect flows and servers, S3 (moto), CLI subprocesses.
TIERS = ("unit", "models", "integration")
TIER_HINT = "declare one with a module-level `pytestmark = pytest.mark.<tier>`, tier one of " + ", ".join(TIERS)
UNIT_NEVER_IMPORTS = ("torch",)  # seconds to import, and a sign that networks run


def module_tiers(module: object) -> list[str]:
    """The tier markers in a module's own ``pytestmark`` (a mark or a list of marks)."""
    marks = getattr(module, "pytestmark", [])
    return [mark.name for mark in (marks if isinstance(marks, list) else [marks]) if mark.name in TIERS]


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """A test module without exactly one tier fails to collect, like a module that cannot import.

    So does a unit module whose import brings in torch (seen when it is the first to: under
    ``-m unit`` no other tier's module is imported, so there it always is).
    """
    loaded = {name for name in UNIT_NEVER_IMPORTS if name in sys.modules}
    report = yield
    if isinstance(collector, pytest.Module) and report.passed:
        tiers = module_tiers(collector.obj)
        heavy = sorted(name for name in UNIT_NEVER_IMPORTS if name in sys.modules and name not in loaded)
        if len(tiers) != 1:
            found = f"has tiers {', '.join(tiers)}" if tiers else "has no test tier"
            report.outcome = "failed"
            report.longrepr = f"{collector.path.name} {found}: {TIER_HINT}"
        elif tiers == ["unit"] and heavy:
            report.outcome = "failed"
            report.longrepr = f"{collector.path.name} is unit but imports {', '.join(heavy)}: its tier is models"
    return report


def declared_tier(path: Path) -> str | None:
    """The one tier a test file's top-level ``pytestmark`` names, read without importing it."""
    for node in ast.parse(path.read_bytes(), str(path)).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets):
            marks = {n.attr for n in ast.walk(node.value) if isinstance(n, ast.Attribute) and n.attr in TIERS}
            return marks.pop() if len(marks) == 1 else None
    return None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under a ``-m`` of tiers only (``-m unit``), files of other tiers are not even imported.

    Importing them (torch, whisperx, insightface, …) would cost the unit tier seconds for
    tests it deselects anyway. Any other ``-m`` expression collects everything as usual.
    """
    words = re.findall(r"\w+|\S", config.option.markexpr or "")
    if not words or not set(words) <= {*TIERS, "and", "or", "not", "(", ")"}:
        return None
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    tier = declared_tier(collection_path)
    if tier is None:
        return None  # collected, so that the tier check below reports it
    # The words are tier names, and/or/not and brackets only: a Python boolean expression.
    try:
        selected = eval(" ".join(words), {"__builtins__": {}}, {name: name == tier for name in TIERS})
    except SyntaxError:
        return None  # pytest reports the malformed expression itself
    return None if selected else True


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test's tier is its module's: no per-test tier marks, and `pipeline_out` means integration."""
    problems = []
    for item in items:
        module = item.getparent(pytest.Module)
        tiers = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
        declared = set(module_tiers(module.obj)) if module else set()
        if tiers != declared:
            extra = ", ".join(sorted(tiers - declared))
            problems.append(f"{item.nodeid}: marked {extra} itself; a test's tier is its module's ({TIER_HINT})")
        elif "pipeline_out" in getattr(item, "fixturenames", ()) and declared != {"integration"}:
            problems.append(f"{item.nodeid}: uses the pipeline_out fixture (a full run), so its module is integration")
    if problems:
        raise pytest.UsageError("test tiers:\n  " + "\n  ".join(problems))
