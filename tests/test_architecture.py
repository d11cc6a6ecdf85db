"""The layering rules of docs/architecture.md, enforced.

- model/ is pure PyTorch: it imports nothing from tasks/ or flows/.
- tasks/ never import flows/.
- Only the store writes tables: no other module calls Parquet writers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"model": ("tasks", "flows"), "tasks": ("flows",)}
PARQUET_WRITERS = ("write_table", "write_to_dataset", "to_parquet", "ParquetWriter", "write_dataset")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violations(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in imported_modules(path):
            if module.split(".")[0] in FORBIDDEN[package]:
                found.append(f"{path.relative_to(ROOT)} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_only_downwards(package: str) -> None:
    assert violations(package) == []


def test_the_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from flows.corpus import process_corpus\nimport tasks.store\n")
    assert imported_modules(bad) == {"flows.corpus", "tasks.store"}


def test_only_the_store_writes_parquet() -> None:
    writers = []
    for package in ("tasks", "flows", "model"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "store.py":
                continue
            text = path.read_text()
            writers += [f"{path.relative_to(ROOT)}: {w}" for w in PARQUET_WRITERS if f"{w}(" in text]
    assert writers == []
