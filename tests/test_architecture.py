"""The layering rules of docs/architecture.md, enforced.

- Everything imports as ``affectflow.…``; nothing imports the folders ``flows``, ``tasks``
  or ``model`` as top-level packages (they are installed only as affectflow's subpackages).
- ``model/`` is pure PyTorch: it imports nothing else of affectflow.
- ``tasks/`` never imports ``flows/``; inside ``tasks/`` each subpackage imports only the
  ones below it in the data flow (``ALLOWED``): faces and speech never import each other,
  storage imports no stage, records import nothing.
- Only the store writes tables: no other module calls Parquet writers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_FOLDERS = ("flows", "tasks", "model")
PARQUET_WRITERS = ("write_table", "write_to_dataset", "to_parquet", "ParquetWriter", "write_dataset")

# What each part of affectflow.tasks may import from affectflow (besides itself).
ALLOWED: dict[str, set[str]] = {
    "records": set(),
    "progress": set(),
    "defaults": set(),
    "settings": set(),  # the AFFECTFLOW_* variables: a leaf, read by the stages below
    "devices": set(),  # the device/provider choice of every model: a leaf
    "storage": {"records", "defaults"},
    "media": {"records", "storage", "settings", "progress"},  # progress: the video's deadline bounds each child
    "faces": {"records", "progress", "media", "settings", "devices"},
    "speech": {"records", "progress", "media", "settings", "devices"},
    "features": {"records", "progress", "media", "settings", "devices"},
    "emotions": {"records", "progress", "media", "features", "model", "settings", "devices"},
    "speaking": {"records", "progress", "media", "settings"},  # who is speaking: faces and turns meet as records
    "query": {"storage"},
    "exports": {"query", "storage"},  # the read side: rows through the views, into other formats
    "reports": {"query", "exports", "media", "storage"},  # pages: the exports' rows, thumbnails from the source
    "config": {"defaults", "faces", "speech", "emotions", "speaking", "people"},
    "people": {
        "records",
        "media",
        "faces",
        "speech",
        "devices",
        "storage",
        "query",
    },  # identities, then linking over the views
    "synth": {"media"},  # generated test/demo media: no stage, so it cannot depend on what it tests
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def part_of(module: str) -> str | None:
    """The part of affectflow a dotted module belongs to: "flows", "model" or a tasks subpackage."""
    parts = module.split(".")
    if parts[0] != "affectflow" or len(parts) < 2:
        return None
    if parts[1] != "tasks":
        return parts[1]
    return parts[2] if len(parts) > 2 else "tasks"


def task_part(path: Path) -> str:
    relative = path.relative_to(ROOT / "tasks")
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def test_nothing_imports_the_folders_as_top_level_packages() -> None:
    found = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in python_files(*PACKAGE_FOLDERS, "tests", "benchmarks")
        for module in imported_modules(path)
        if module.split(".")[0] in PACKAGE_FOLDERS
    ]
    assert found == []


def test_the_package_never_imports_the_tests() -> None:
    found = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in python_files(*PACKAGE_FOLDERS)
        for module in imported_modules(path)
        if module.split(".")[0] == "tests"
    ]
    assert found == []


def test_model_imports_nothing_else_of_affectflow() -> None:
    found = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in python_files("model")
        for module in imported_modules(path)
        if part_of(module) not in (None, "model")
    ]
    assert found == []


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_part_of_tasks_imports_only_what_lies_below_it(part: str) -> None:
    files = [path for path in python_files("tasks") if task_part(path) == part]
    assert files, f"no module for {part!r}: update ALLOWED and docs/architecture.md together"
    found = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files
        for module in imported_modules(path)
        if part_of(module) not in (None, part, *ALLOWED[part])
    ]
    assert found == []


def test_every_part_of_tasks_has_a_rule() -> None:
    parts = {task_part(path) for path in python_files("tasks")} - {"__init__"}
    assert parts <= set(ALLOWED), f"no import rule for {sorted(parts - set(ALLOWED))}"


def test_the_checker_reads_imports_and_places_them() -> None:
    assert part_of("affectflow.tasks.speech.diarize") == "speech"
    assert part_of("affectflow.flows.corpus") == "flows"
    assert part_of("numpy") is None
    assert task_part(ROOT / "tasks" / "faces" / "stage.py") == "faces"
    assert task_part(ROOT / "tasks" / "records.py") == "records"


def test_the_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from affectflow.flows.corpus import process_corpus\nimport affectflow.tasks.storage.store\n")
    found = {part_of(module) for module in imported_modules(bad)}
    assert found == {"flows", "storage"} and not found <= {"faces", *ALLOWED["faces"]}


def test_only_the_store_writes_parquet() -> None:
    writers = []
    for path in python_files(*PACKAGE_FOLDERS):
        if path.relative_to(ROOT) == Path("tasks/storage/store.py"):
            continue
        text = path.read_text()
        writers += [f"{path.relative_to(ROOT)}: {w}" for w in PARQUET_WRITERS if f"{w}(" in text]
    assert writers == []
