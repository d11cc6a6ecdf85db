"""The AFFECTFLOW_* variables: one settings object, checked, named in one place (tasks/settings.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from affectflow.tasks.settings import PREFIX, Settings, SettingsError, env_name, settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
# Variables that are not settings of the package: prefect.yaml's deployment parameters and a benchmark's switch.
NOT_SETTINGS = {"AFFECTFLOW_SOURCE", "AFFECTFLOW_OUT", "AFFECTFLOW_BENCH_MALLOC_TRIM"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(env_name(name), raising=False)


def test_each_variable_is_read_and_an_empty_one_is_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"")
    monkeypatch.setenv("AFFECTFLOW_PYANNOTE_DIR", str(tmp_path))
    monkeypatch.setenv("AFFECTFLOW_HSEMOTION_ONNX", str(model))
    monkeypatch.setenv("AFFECTFLOW_DASK_ADDRESS", "tcp://scheduler:8786")
    monkeypatch.setenv("AFFECTFLOW_FFMPEG", "")
    monkeypatch.setenv("AFFECTFLOW_SOURCE", "s3://not/a/setting")  # prefect.yaml's: ignored, not refused
    got = settings()
    assert (got.pyannote_dir, got.hsemotion_onnx, got.dask_address) == (
        str(tmp_path),
        str(model),
        "tcp://scheduler:8786",
    )
    assert got.ffmpeg is None and got.insightface_dir is None


def test_a_new_value_is_seen_at_the_next_call_and_an_unchanged_environment_is_parsed_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = settings()
    assert settings() is first  # parsed once for this environment
    monkeypatch.setenv("AFFECTFLOW_TEXT_MODEL_DIR", str(tmp_path))
    assert settings().text_model_dir == str(tmp_path)  # no cache to reset
    monkeypatch.delenv("AFFECTFLOW_TEXT_MODEL_DIR")
    assert settings().text_model_dir is None


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("pyannote_dir", "nowhere", "no such directory"),
        ("insightface_dir", "FILE", "not a directory"),
        ("rcma_checkpoint", "nowhere.pt", "no such file"),
        ("vggish_model", "DIR", "not a file"),
        ("whisper_dir", "models/nowhere", "no such directory"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, field: str, value: str, words: str
) -> None:
    (tmp_path / "file").write_text("x")
    value = {"FILE": str(tmp_path / "file"), "DIR": str(tmp_path)}.get(value, str(tmp_path / value))
    monkeypatch.setenv(env_name(field), value)
    with pytest.raises(SettingsError) as err:
        settings()
    assert str(err.value) == f"{env_name(field)}={value}: {words}"


def test_whisper_dir_may_name_a_shipped_model_and_paths_expand_the_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AFFECTFLOW_WHISPER_DIR", "tiny.en")
    assert settings().whisper_dir == "tiny.en"
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "align").mkdir()
    monkeypatch.setenv("AFFECTFLOW_ALIGN_MODEL_DIR", "~/align")
    assert settings().align_model_dir == str(tmp_path / "align")


def test_the_cache_is_the_variable_else_the_xdg_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert settings().cache() == tmp_path / "xdg" / "affectflow"
    monkeypatch.setenv("AFFECTFLOW_CACHE_DIR", str(tmp_path / "mine"))
    assert settings().cache() == tmp_path / "mine"


def test_variable_names_come_from_the_fields() -> None:
    assert env_name("pyannote_dir") == "AFFECTFLOW_PYANNOTE_DIR"
    with pytest.raises(KeyError, match="no setting 'pyannote'"):
        env_name("pyannote")


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_no_module_reads_an_affectflow_variable_itself() -> None:
    """os.environ with an AFFECTFLOW_ name, or with a key held in a variable (how the old reads hid it)."""
    found = []
    for path in _sources("flows", "tasks", "model"):
        if path == ROOT / "tasks" / "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            key: ast.expr | None = None
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv"):
                key = node.args[0] if node.args else None
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                key = node.slice
            if key is not None and not (isinstance(key, ast.Constant) and not str(key.value).startswith(PREFIX)):
                found.append(f"{path.relative_to(ROOT)}: {ast.unparse(node)}")
    assert found == []


def test_every_variable_the_code_and_docs_name_is_a_setting() -> None:
    known = {env_name(name) for name in Settings.model_fields} | NOT_SETTINGS
    texts = [*_sources("flows", "tasks", "model", "benchmarks"), ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    named = {(m, p.name) for p in texts for m in re.findall(r"AFFECTFLOW_[A-Z0-9_]*[A-Z0-9]", p.read_text())}
    assert sorted(f"{name} in {where}" for name, where in named if name not in known) == []
