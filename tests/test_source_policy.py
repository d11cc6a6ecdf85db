"""Which source entries are read, and how each one is named.

The policy: docs/orchestration.md, "Which files are read, and what one video is".

Issue 21: a FIFO named ``x.mp4`` or a link to ``/dev/zero`` hung the whole corpus; a symlink
loop was retried for 21 s on every run; ``a::b.mp4`` was read as an fsspec URL chain; and
two files with the same bytes shared one video_id, so changing one deleted the other's rows.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from affectflow.flows.cli import main
from affectflow.flows.video import retry_transient_io
from affectflow.tasks.media import staging
from affectflow.tasks.media.frames import iter_frames
from affectflow.tasks.media.probe import probe
from affectflow.tasks.media.tools import MediaError
from affectflow.tasks.query.views import connect
from affectflow.tasks.storage.discover import discover
from affectflow.tasks.synth.bad import make_testsrc_video

pytestmark = pytest.mark.integration

T = TypeVar("T")
URL_CHARACTERS = ["a::b.mp4", "c#d.mp4", "e%20f.mp4", "g[1].mp4", "h*i.mp4", "j?k.mp4"]


def _within(seconds: float, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, failing the test if it has not returned after ``seconds`` (it is left blocked)."""
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["value"] = fn(*args)
        except BaseException as err:  # noqa: BLE001 - raised again in the test's thread
            outcome["error"] = err

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{getattr(fn, '__name__', fn)} blocked for more than {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_testsrc_video(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=1.0)


@pytest.fixture()
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A FIFO named like a video, in a folder of its own (``corpus``)."""
    path = tmp_path / "corpus" / "x.mp4"
    path.parent.mkdir()
    os.mkfifo(path)
    yield path
    with contextlib.suppress(OSError):  # a reader left blocked in open() (the bug) is released by a writer
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


# -- only regular files, never a blocking open --------------------------------------------------


def test_a_fifo_with_a_video_name_is_refused_without_blocking(fifo: Path, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"not a regular file \(a FIFO\)"):
        _within(5, staging.stage, str(fifo), tmp_path)


def test_a_link_to_a_device_is_refused_without_reading_it(tmp_path: Path) -> None:
    (tmp_path / "zero.mp4").symlink_to("/dev/zero")
    with pytest.raises(MediaError, match=r"not a regular file \(a character device\)"):
        _within(5, staging.stage, str(tmp_path / "zero.mp4"), tmp_path)


def test_a_directory_with_a_video_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "folder.mp4").mkdir()
    with pytest.raises(MediaError, match=r"not a regular file \(a directory\)"):
        staging.stage(str(tmp_path / "folder.mp4"), tmp_path)


def test_a_link_out_of_the_source_folder_is_followed_to_its_regular_file(clip: Path, tmp_path: Path) -> None:
    source = tmp_path / "corpus"
    source.mkdir()
    (source / "elsewhere.mp4").symlink_to(clip)
    staged = staging.stage(str(source / "elsewhere.mp4"), tmp_path)
    assert staged.sha256 == staging.stage(str(clip), tmp_path).sha256
    assert staged.uri == str(source / "elsewhere.mp4")  # named where it was found


def test_discovery_lists_blocking_entries_without_opening_them(fifo: Path) -> None:
    (fifo.parent / "zero.mp4").symlink_to("/dev/zero")
    names = {f.name for f in _within(5, discover, str(fifo.parent))}
    assert names == {"x.mp4", "zero.mp4"}  # listed, so each ends in a recorded failure


# -- errors that a retry cannot fix --------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "words"),
    [
        ("loop", "[Errno 40] Too many levels of symbolic links"),
        ("dangling", "[Errno 2] No such file or directory"),
        ("not a directory", "[Errno 20] Not a directory"),
    ],
)
def test_an_unreadable_source_is_a_bad_input(tmp_path: Path, make: str, words: str) -> None:
    path = tmp_path / "v.mp4"
    if make == "loop":
        path.symlink_to(tmp_path / "w.mp4")
        (tmp_path / "w.mp4").symlink_to(path)
    elif make == "dangling":
        path.symlink_to(tmp_path / "gone.mp4")
    else:
        (tmp_path / "file").write_text("")
        path = tmp_path / "file" / "v.mp4"
    with pytest.raises(MediaError, match="cannot read the source: " + re.escape(words)):
        staging.stage(str(path), tmp_path)


class _Finished:
    def __init__(self, err: Exception) -> None:
        self.err = err

    def result(self) -> None:
        raise self.err


@pytest.mark.parametrize("code", [errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.ENOENT])
def test_the_io_retry_policy_never_retries_an_unreadable_source(code: int) -> None:
    assert not retry_transient_io(None, None, _Finished(OSError(code, os.strerror(code))))
    assert retry_transient_io(None, None, _Finished(OSError(errno.ECONNRESET, "reset")))  # the network may recover


# -- names are paths, not URLs ---------------------------------------------------------------------


@pytest.mark.parametrize("name", URL_CHARACTERS)
def test_a_local_name_with_url_characters_is_read_as_written(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    shutil.copy(clip, tmp_path / name)
    staged = staging.stage(str(tmp_path / name), tmp_path / "work")
    assert staged.path == tmp_path / name and staged.size_bytes == clip.stat().st_size
    monkeypatch.chdir(tmp_path)
    assert staging.stage(name, tmp_path / "work").path == tmp_path / name  # relative, as a user types it
    assert [f.name for f in discover(str(tmp_path / name))] == [name]
    info = probe(staged.path)
    assert len(list(iter_frames(staged.path, info, 5))) == 5


# -- a remote read that stalls -------------------------------------------------------------------


class _StallingFileSystem(MemoryFileSystem):
    """An in-memory store whose reads never return (a connection that went silent)."""

    protocol = "stalling"
    release = threading.Event()

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return super()._strip_protocol(path.removeprefix("stalling://"))

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        handle = super()._open(path, mode, **kwargs)
        handle.read = lambda *args: self.release.wait(60) and b""  # type: ignore[method-assign]
        return handle


def test_a_stalled_remote_read_fails_after_the_deadline(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsspec.register_implementation("stalling", _StallingFileSystem, clobber=True)
    fsspec.filesystem("stalling").pipe("/stalling-test/clip.mp4", clip.read_bytes())
    monkeypatch.setattr(staging, "STALL_S", 0.5)
    started = time.monotonic()
    try:
        with pytest.raises(staging.StagingStalledError, match=r"no bytes from \S*clip\.mp4 for 0\.5 s"):
            _within(10, staging.stage, "stalling://stalling-test/clip.mp4", tmp_path / "work")
    finally:
        _StallingFileSystem.release.set()
    assert time.monotonic() - started < 5
    assert retry_transient_io(None, None, _Finished(staging.StagingStalledError("stalled")))  # the next try may pass


# -- the whole corpus: the blocking and unreadable entries fail at once, the odd names are analysed ----


def test_a_corpus_with_blocking_unreadable_and_oddly_named_entries_runs_to_the_end(
    clip: Path, tmp_path: Path, fifo: Path
) -> None:
    corpus = fifo.parent
    for name in URL_CHARACTERS:
        shutil.copy(clip, corpus / name)
    (corpus / "zero.mp4").symlink_to("/dev/zero")
    (corpus / "loop.mp4").symlink_to(corpus / "loop.mp4")
    out = tmp_path / "out"
    run = subprocess.run(  # its own process: a blocked open() cannot hold the test run
        [sys.executable, "-m", "affectflow", "run", str(corpus), "--out", str(out), "--stages", "faces"],
        env={**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr[-2000:]
    rows = {
        name: (status, error, elapsed)
        for name, status, error, elapsed in connect(str(out))
        .execute("SELECT name, status, error, elapsed_s FROM videos")
        .fetchall()
    }
    assert {name: rows[name][0] for name in URL_CHARACTERS} == dict.fromkeys(URL_CHARACTERS, "ok")
    reasons = {"x.mp4": "(a FIFO)", "zero.mp4": "(a character device)", "loop.mp4": "[Errno 40]"}
    for name, words in reasons.items():
        status, error, elapsed = rows[name]
        assert status == "failed" and error.startswith("bad input: ") and words in error, (name, error)
        assert elapsed < 5, f"{name} took {elapsed} s: it was retried"  # retries wait 1 + 4 + 16 s
    manifests = [json.loads(p.read_text()) for p in (out / "_manifest").glob("*.json")]
    assert {m["uri"].rsplit("/", 1)[-1]: m["retry"] for m in manifests if m["status"] == "failed"} == dict.fromkeys(
        reasons, False
    )


# -- identical bytes under two names: two videos ---------------------------------------------------


def _statuses(stderr: str, names: tuple[str, ...]) -> dict[str, str]:
    return {name: next(line for line in stderr.splitlines() if line.endswith(name)).split()[0] for name in names}


def test_changing_one_of_two_identical_files_keeps_the_other_s_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from affectflow.tasks.synth.faces import make_face_video

    corpus, out = tmp_path / "corpus", tmp_path / "out"
    face = make_face_video(tmp_path / "face.mp4", seconds=1.0)
    corpus.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(face, corpus / name)
    run = ["run", str(corpus), "--out", str(out), "--stages", "faces"]
    assert main(run) == 0
    con = connect(str(out))
    first = dict(con.execute("SELECT name, video_id FROM videos").fetchall())
    assert set(first) == {"a.mp4", "b.mp4"} and first["a.mp4"] != first["b.mp4"]  # one row per source file
    faces_of_b = con.execute(f"SELECT count(*) FROM faces WHERE video_id = '{first['b.mp4']}'").fetchone()
    assert faces_of_b[0] >= 4  # 1 s at 5 fps, one face

    make_testsrc_video(corpus / "a.mp4", seconds=1.5)  # a.mp4 now holds other bytes
    capsys.readouterr()
    assert main(run) == 0
    assert _statuses(capsys.readouterr().err, ("a.mp4", "b.mp4")) == {"a.mp4": "ok", "b.mp4": "skipped"}
    con = connect(str(out))
    second = dict(con.execute("SELECT name, video_id FROM videos").fetchall())
    assert second["b.mp4"] == first["b.mp4"] and second["a.mp4"] != first["a.mp4"]
    assert con.execute(f"SELECT count(*) FROM faces WHERE video_id = '{first['b.mp4']}'").fetchone() == faces_of_b
    assert not list(out.glob(f"*/video_id={first['a.mp4']}/*"))  # a's old rows are gone, and only those
