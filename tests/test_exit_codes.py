"""The exit statuses of README "Exit codes", with and without --debug, and what goes where.

0 all ok, 1 some videos failed, 2 usage (an option, a value, a query), 3 nothing could run,
130/143 interrupted. Everything here is refused before Prefect or any video starts; the
statuses of real runs (0, 1) are in test_cli_run.py, a real interrupt in test_signals.py.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from affectflow.flows import runner
from affectflow.flows.cli import main
from affectflow.flows.video import VideoResult
from affectflow.tasks.progress import STOP, Interrupted
from affectflow.tasks.storage.store import Store
from tests.tablegen import write_video

pytestmark = pytest.mark.unit


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A folder with one (unread) video file: enough to pass the source checks."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "clip.mp4").write_bytes(b"not read before the checks pass")
    return tmp_path / "src"


ABSURD = {
    "--fps inf": ["--fps", "inf"],
    "--fps nan": ["--fps", "nan"],
    "--fps 1e-9": ["--fps", "1e-9"],
    "--fps 0": ["--fps", "0"],
    "--fps 1000 (over the config's cap)": ["--fps", "1000"],
    "--video-timeout inf": ["--video-timeout", "inf"],
    "--stages ''": ["--stages", ""],
    "--stages ,": ["--stages", ","],
    "--workers 0": ["--workers", "0"],
    "--min-speakers 3 --max-speakers 2": ["--min-speakers", "3", "--max-speakers", "2"],
}


@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
@pytest.mark.parametrize("option", list(ABSURD))
def test_an_absurd_value_is_a_usage_error(capsys, tmp_path: Path, source: Path, option: str, debug: list[str]) -> None:
    out = tmp_path / "out"
    try:
        status = main([*debug, "run", str(source), "--out", str(out), *ABSURD[option]])
    except SystemExit as exit_info:  # argparse's own usage errors
        status = exit_info.code
    assert status == 2
    err = capsys.readouterr().err
    assert err.strip() and (debug or err.count("\n") == 1)
    assert not out.exists()


def test_stages_none_is_media_staging_only() -> None:
    from affectflow.flows.parameters import stage_list

    assert stage_list("none") == []
    assert stage_list("faces, emotions") == ["faces", "emotions"]


@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
def test_nothing_could_run_is_3_with_debug_too(capsys, tmp_path: Path, debug: list[str]) -> None:
    assert main([*debug, "run", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert err.endswith("error: source not found: " + str(tmp_path / "missing") + "\n")
    assert ("Traceback" in err) == bool(debug)


@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
def test_an_sql_error_is_2_with_debug_too(capsys, tmp_path: Path, debug: list[str]) -> None:
    write_video(Store(str(tmp_path / "out")), "clip", duration_s=4, seed=1)
    assert main([*debug, "sql", "--out", str(tmp_path / "out"), "SELEC 1"]) == 2
    assert "syntax error" in capsys.readouterr().err
    assert main([*debug, "sql", "--out", str(tmp_path / "out"), "SELECT nope FROM videos"]) == 2


def test_an_out_that_is_a_file_fails_before_any_work(capsys, tmp_path: Path, source: Path) -> None:
    out = tmp_path / "out.txt"
    out.write_text("a file, not a folder")
    started = time.perf_counter()
    assert main(["run", str(source), "--out", str(out), "--stages", "faces"]) == 3
    assert time.perf_counter() - started < 10  # no Prefect server, no video
    err = capsys.readouterr().err
    assert err == f"error: cannot write tables under --out {out}: it is a file\n"
    assert out.read_text() == "a file, not a folder"


def test_an_out_that_cannot_be_created_fails_before_any_work(capsys, source: Path) -> None:
    assert main(["run", str(source), "--out", "/proc/affectflow-out", "--stages", "faces"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write tables under --out /proc/affectflow-out") and err.count("\n") == 1


def test_a_writable_out_is_created_and_left_without_the_probe(tmp_path: Path) -> None:
    from affectflow.flows.corpus import check_writable

    check_writable(str(tmp_path / "new" / "out"))
    assert list((tmp_path / "new" / "out").iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_exits_128_plus_the_signal(capsys, monkeypatch, tmp_path: Path, signum: int) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        with runner.stop_on_signals():
            os.kill(os.getpid(), signum)
            time.sleep(5)  # the handler raises here

    monkeypatch.setattr(runner, "run_with_progress", interrupted)
    assert main(["run", str(tmp_path), "--out", str(tmp_path / "out")]) == 128 + signum
    assert capsys.readouterr().err == "interrupted\n"
    assert STOP.requested and STOP.signum == signum
    assert signal.getsignal(signum) is not None and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    with pytest.raises(Interrupted):  # every video's hook now stops it
        STOP.check("faces", 3, 10)
    STOP.clear()


def test_a_control_character_in_a_name_stays_on_its_progress_line() -> None:
    line = runner._line(VideoResult("/corpus/two\nlines\x1b[31m.mp4", "failed", error="bad input: x\ry"))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "two\\nlines\\x1b[31m.mp4" in line and "bad input: x\\ry" in line


def test_library_output_during_a_run_goes_to_stderr(capfd) -> None:
    with runner.logs_to_stderr():
        print("a print")
        os.write(1, b"native write\n")
        handler = logging.StreamHandler(sys.stdout)  # what whisperx sets up when it is imported
        logging.getLogger("some.library").addHandler(handler)
        logging.getLogger("some.library").warning("a log line")
        logging.getLogger("some.library").removeHandler(handler)
    print("the summary")
    captured = capfd.readouterr()
    assert captured.out == "the summary\n"
    assert "a print" in captured.err and "native write" in captured.err and "a log line" in captured.err
