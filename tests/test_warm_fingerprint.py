"""Which environments share a warm service (flows/warm.fingerprint): only those that analyse alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from affectflow.flows import warm

pytestmark = pytest.mark.unit

BASE = {"PATH": "/usr/bin", "HOME": "/home/u", "AFFECTFLOW_WHISPER_DIR": "base", "TERM": "xterm"}


@pytest.mark.parametrize(
    "change",
    [
        {"AFFECTFLOW_WHISPER_DIR": "/models/small"},  # another model
        {"AFFECTFLOW_FACE_MESH": "/models/mesh.tflite"},  # a variable the first did not set
        {"AWS_ACCESS_KEY_ID": "other"},  # other credentials
        {"PATH": "/opt/ffmpeg7/bin:/usr/bin"},  # another ffmpeg
        {"OMP_NUM_THREADS": "1"},  # floats depend on threads
        {"PREFECT_HOME": "/elsewhere"},  # another Prefect database
    ],
)
def test_what_changes_a_result_or_where_it_goes_is_another_service(change: dict[str, str]) -> None:
    assert warm.fingerprint({**BASE, **change}) != warm.fingerprint(BASE)


@pytest.mark.parametrize(
    "change",
    [
        {"TERM": "dumb"},
        {"AFFECTFLOW_PROGRESS": "never"},  # the bar
        {"AFFECTFLOW_KEEP_WARM": "on", "AFFECTFLOW_WARM_IDLE_S": "30"},  # the service's own settings
        {"PREFECT_LOGGING_LEVEL": "DEBUG"},  # what the CLI's --verbose changes
    ],
)
def test_what_changes_no_result_is_the_same_service(change: dict[str, str]) -> None:
    assert warm.fingerprint({**BASE, **change}) == warm.fingerprint(BASE)


def test_an_edited_source_file_is_another_service(tmp_path: Path) -> None:
    module = tmp_path / "tasks" / "stage.py"
    module.parent.mkdir()
    module.write_text("THRESHOLD = 0.5\n")
    before = warm.code_stamp(tmp_path)
    assert warm.code_stamp(tmp_path) == before
    module.write_text("THRESHOLD = 0.75\n")  # another size (and time)
    assert warm.code_stamp(tmp_path) != before


def test_a_state_file_left_by_a_killed_service_is_removed_and_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import subprocess

    monkeypatch.setenv("AFFECTFLOW_CACHE_DIR", str(tmp_path))
    gone = subprocess.run(["true"], check=True)
    del gone
    dead = subprocess.Popen(["true"])
    dead.wait()
    print_ = warm.fingerprint()
    state, _, _ = warm._paths(print_)
    state.parent.mkdir(parents=True)
    fields = {"api_url": "http://127.0.0.1:9/api", "dask_address": "tcp://127.0.0.1:9", "fingerprint": print_}
    state.write_text(json.dumps({"pid": dead.pid, "started": 0.0, "idle_exit_s": 600.0, "log": "", **fields}))
    assert warm.find() is None
    assert not state.exists()
