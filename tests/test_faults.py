"""Faults and odd inputs end in a recorded status; bad arguments end in one line and nothing written.

Storage faults are injected where the operating system reports them (``os.fsync`` of the
file being written), so the store's own error handling, the retry policy and the flow's
bookkeeping all run for real.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from affectflow.flows.cli import main
from affectflow.tasks.media import staging
from affectflow.tasks.media.frames import iter_frames
from affectflow.tasks.media.probe import probe
from affectflow.tasks.query.views import connect
from affectflow.tasks.synth.bad import make_odd_videos, make_testsrc_video

pytestmark = pytest.mark.integration


def _rows(out: Path, query: str) -> list[tuple]:
    return connect(str(out)).execute(query).fetchall()


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {lines}"
    return lines[0]


# -- odd but valid media: every file ends in a recorded status --------------------------------


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    from affectflow.tasks.synth.faces import make_face_video

    root = tmp_path_factory.mktemp("odd")
    face_clip = make_face_video(root / ".face.mp4", seconds=2.0)  # 640×480  # dot-file: not discovered
    expected = make_odd_videos(root, face_clip)
    out = tmp_path_factory.mktemp("odd-out")
    assert main(["run", str(root), "--out", str(out)]) == 1  # the 0-frame file fails, the others are ok
    return out, expected


def test_every_odd_file_ends_in_its_expected_status(odd_run: tuple[Path, dict[str, str]]) -> None:
    out, expected = odd_run
    statuses = dict(_rows(out, "SELECT name, status FROM videos"))
    assert statuses == expected
    (error,) = _rows(out, "SELECT error FROM videos WHERE name = 'zero_frames.mp4'")[0]
    assert error.startswith("bad input:") and "video stream" in error


def test_rotated_phone_video_is_analysed_upright(odd_run: tuple[Path, dict[str, str]]) -> None:
    out, _ = odd_run
    ((width, height, analysed),) = _rows(
        out, "SELECT width, height, n_frames_analysed FROM videos WHERE name = 'rotated_phone.mp4'"
    )
    assert (width, height) == (640, 480)  # displayed size, not the stored 480×640
    ((frames_with_face, max_x2, max_y2),) = _rows(
        out,
        "SELECT count(DISTINCT frame), max(x2), max(y2) FROM faces JOIN videos USING (video_id) "
        "WHERE name = 'rotated_phone.mp4'",
    )
    assert frames_with_face >= 0.8 * analysed  # a face upside down or sideways is not found
    assert max_x2 <= 641 and max_y2 <= 481


def test_4k_faces_come_back_in_source_pixels(odd_run: tuple[Path, dict[str, str]]) -> None:
    out, _ = odd_run
    ((n, max_x2, max_y2),) = _rows(
        out, "SELECT count(*), max(x2), max(y2) FROM faces JOIN videos USING (video_id) WHERE name = 'uhd_4k.mp4'"
    )
    assert n >= 4  # 1 s at 5 fps, one face
    assert 1280 < max_x2 <= 3841 and max_y2 <= 2161  # analysed shrunk, reported in the 4K frame


def test_low_rate_and_long_audio_are_analysed_at_what_the_video_has(odd_run: tuple[Path, dict[str, str]]) -> None:
    out, _ = odd_run
    facts = {
        name: (duration, analysed)
        for name, duration, analysed in _rows(out, "SELECT name, duration_s, n_frames_analysed FROM videos")
    }
    assert facts["timelapse_1fps.mp4"] == (5.0, 5)  # 1 fps source: never more frames than it has
    duration, analysed = facts["audio_longer_than_video.mp4"]
    assert analysed == 5 and duration >= 1.0  # the picture's second at 5 fps, the sound's 3 s do not add frames
    ((latest_turn_end,),) = _rows(
        out,
        'SELECT coalesce(max("end"), 0) FROM speaker_turns JOIN videos USING (video_id) '
        "WHERE name = 'audio_longer_than_video.mp4'",
    )
    assert latest_turn_end <= 3.05


def test_non_ascii_name_with_spaces_is_kept_exactly(odd_run: tuple[Path, dict[str, str]]) -> None:
    out, _ = odd_run
    ((name, uri),) = _rows(out, "SELECT name, uri FROM videos WHERE name LIKE 'vid%'")
    assert name == "vidéo d'été 1.mp4" and uri.endswith("/vidéo d'été 1.mp4")


def test_variable_frame_rate_frames_are_in_order_and_never_repeated(tmp_path: Path) -> None:
    expected = make_odd_videos(tmp_path, make_testsrc_video(tmp_path / ".clip.mp4", seconds=1.0, audio=False))
    assert "vfr.mp4" in expected
    info = probe(tmp_path / "vfr.mp4")
    frames = list(iter_frames(tmp_path / "vfr.mp4", info, 5))
    times, indices = [f.t for f in frames], [f.index for f in frames]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert len(set(indices)) == len(indices)
    assert 0.7 * 5 * info.duration_s <= len(frames) <= 5 * info.duration_s + 1


# -- storage faults: the video fails with the OS's words, everything else stays --------------


def _clips(directory: Path, *names: str) -> Path:
    """Short faceless clips, each a different length: different bytes, so different videos."""
    directory.mkdir()
    for k, name in enumerate(names):
        make_testsrc_video(directory / name, seconds=1.0 + 0.5 * k)
    return directory


@pytest.fixture()
def two_videos(tmp_path: Path) -> tuple[Path, Path]:
    root = _clips(tmp_path / "videos", "a.mp4", "b.mp4")
    out = tmp_path / "out"
    assert main(["run", str(root), "--out", str(out), "--stages", "none"]) == 0
    return root, out


def _video_id(path: Path) -> str:
    return staging.stage(str(path), path.parent).video_id  # a local file is staged in place


@pytest.mark.parametrize(
    ("code", "words"), [(errno.ENOSPC, "No space left on device"), (errno.EACCES, "Permission denied")]
)
def test_storage_error_fails_that_video_only_and_keeps_earlier_results(
    two_videos: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    code: int,
    words: str,
) -> None:
    root, out = two_videos
    make_testsrc_video(root / "c.mp4", seconds=2.0)  # new since the first run: nothing of it is stored yet
    before = dict(_rows(out, "SELECT name, finished FROM videos"))
    broken = {f"video_id={_video_id(root / name)}" for name in ("b.mp4", "c.mp4")}
    real_fsync, attempts = os.fsync, []

    def failing_fsync(fd: int) -> None:
        if any(b in os.readlink(f"/proc/self/fd/{fd}") for b in broken):
            attempts.append(fd)
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    capsys.readouterr()
    assert main(["run", str(root), "--out", str(out), "--stages", "none", "--force"]) == 1
    lines = {
        name: line
        for line in capsys.readouterr().err.splitlines()
        for name in ("a.mp4", "b.mp4", "c.mp4")
        if name in line
    }
    assert lines["a.mp4"].split()[0] == "ok"
    for name in ("b.mp4", "c.mp4"):
        assert lines[name].split()[0] == "failed" and words in lines[name]
    assert len(attempts) == 2  # one per broken video: a full disk or a refused permission is not retried
    after = dict(_rows(out, "SELECT name, finished FROM videos"))
    assert after["b.mp4"] == before["b.mp4"]  # its earlier result is still there, untouched
    assert "c.mp4" not in after  # nothing half-written is visible
    assert after["a.mp4"] > before["a.mp4"]  # the other video was redone
    assert not list(out.rglob(".tmp-*"))

    monkeypatch.setattr(os, "fsync", real_fsync)  # space freed: the next run does what is missing
    capsys.readouterr()
    assert main(["run", str(root), "--out", str(out), "--stages", "none"]) == 0
    err = capsys.readouterr().err
    status = {
        name: next(line for line in err.splitlines() if name in line).split()[0] for name in ("a.mp4", "b.mp4", "c.mp4")
    }
    assert status == {"a.mp4": "skipped", "b.mp4": "skipped", "c.mp4": "ok"}


def test_a_model_that_raises_fails_that_video_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import affectflow.tasks.faces.stage

    root = _clips(tmp_path / "videos", "a.mp4", "b.mp4", "c.mp4")
    real_track_faces, calls = affectflow.tasks.faces.stage.track_faces, []

    def explodes_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("model exploded on this input")
        return real_track_faces(*args, **kwargs)

    monkeypatch.setattr(affectflow.tasks.faces.stage, "track_faces", explodes_once)
    out = tmp_path / "out"
    assert main(["run", str(root), "--out", str(out), "--stages", "faces"]) == 1
    statuses = _rows(out, "SELECT status, error FROM videos ORDER BY name")
    assert sorted(s for s, _ in statuses) == ["failed", "ok", "ok"]
    (error,) = [e for s, e in statuses if s == "failed"]
    assert error == "RuntimeError: model exploded on this input"
    assert len(calls) == 3  # the failure was not retried, the other videos still ran


# -- bad input on every interface: one line, non-zero exit, nothing written -------------------


def test_missing_ffmpeg_is_one_line_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_testsrc_video(tmp_path / "a.mp4", seconds=1.0)
    monkeypatch.setenv("AFFECTFLOW_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    assert main(["run", str(tmp_path), "--out", str(tmp_path / "out")]) == 3
    line = _one_error_line(capsys.readouterr().err)
    assert "ffmpeg" in line and "AFFECTFLOW_FFMPEG" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["run", "SRC", "--out", "OUT", "--fps", "0"], "--fps: must be greater than 0"),
        (["run", "SRC", "--out", "OUT", "--fps", "fast"], "--fps: not a number"),
        (["run", "SRC", "--out", "OUT", "--workers", "0"], "--workers: must be greater than 0"),
        (["run", "SRC", "--out", "OUT", "--video-timeout", "-5"], "--video-timeout: must be greater than 0"),
        (["run", "SRC", "--out", "OUT", "--faces-backend", "dlib"], "invalid choice: 'dlib'"),
        (["run", "SRC"], "required: --out"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["sql", "SELECT 1"], "required: --out"),
    ],
)
def test_invalid_arguments_are_one_line_with_where_to_look(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    argv = [a.replace("SRC", str(tmp_path)).replace("OUT", str(tmp_path / "out")) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    line = _one_error_line(capsys.readouterr().err)
    assert words in line and "--help" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["missing", "empty", "no videos"])
def test_unusable_source_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    source = tmp_path / "corpus"
    if kind != "missing":
        source.mkdir()
    if kind == "no videos":
        (source / "notes.txt").write_text("no video here")
    assert main(["run", str(source), "--out", str(tmp_path / "out")]) == 3
    line = _one_error_line(capsys.readouterr().err)
    assert str(source) in line and ("not found" in line if kind == "missing" else "no videos under" in line)
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def small_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from affectflow.tasks.storage.store import Store
    from affectflow.tasks.storage.tables import to_table

    out = tmp_path_factory.mktemp("small-out")
    Store(str(out)).write_video("v1", {}, {"video_id": "v1", "name": "a.mp4", "status": "ok"})
    assert to_table("videos", [{"video_id": "v1"}]).num_rows == 1
    return out


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("SELECT * FROM emotion", "Table with name emotion does not exist! (the views: "),
        ("SELECT valence_mean FROM emotions", 'column "valence_mean" not found'),
    ],
)
def test_unknown_view_or_column_is_one_line_that_says_what_exists(
    small_output: Path, capsys: pytest.CaptureFixture[str], query: str, words: str
) -> None:
    assert (
        main(["sql", "--out", str(small_output), query]) == 2
    )  # the query is wrong: a usage error (README "Exit codes")
    line = _one_error_line(capsys.readouterr().err)
    assert words in line
    if "views" in words:
        assert "emotions" in line and "timeline_minute" in line


@pytest.mark.parametrize("command", ["sql", "plot"])
def test_query_of_an_output_root_that_does_not_exist_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    argv = ["sql", "--out", str(tmp_path / "typo"), "SELECT 1"] if command == "sql" else ["plot", "v1"]
    if command == "plot":
        argv += ["--out", str(tmp_path / "typo"), "--png", str(tmp_path / "x.png")]
    assert main(argv) == 3
    assert "no affectflow output at" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "typo").exists() and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("parameters", "words"),
    [
        ({"workers": 0}, "workers must be at least 1"),
        ({"fps": "fast"}, "fps"),
        ({"stages": ["faces", "lipreading"]}, "unknown stage"),
        ({"video_timeout_s": -1}, "video_timeout_s must be positive"),
    ],
)
def test_malformed_flow_parameters_fail_the_flow_run_before_anything_is_written(
    tmp_path: Path, parameters: dict, words: str
) -> None:
    """What a deployment run with bad ``-p`` values meets (the worker calls the same flow)."""
    from affectflow.flows.corpus import process_corpus

    make_testsrc_video(tmp_path / "a.mp4", seconds=1.0)
    with pytest.raises(Exception, match=words):
        process_corpus(source=str(tmp_path), out=str(tmp_path / "out"), **parameters)
    assert not (tmp_path / "out").exists()


# -- S3 5xx on put: a real S3 server behind a proxy that refuses some uploads -----------------


class _RefusingProxy:
    """An HTTP proxy on 127.0.0.1 in front of the S3 server that answers 503 to PUTs of chosen keys."""

    def __init__(self, upstream: str, refuse: set[str]):
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        upstream_host = urlsplit(upstream).netloc
        self.refused: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, and "100 Continue" for uploads that ask for it

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.command == "PUT" and any(marker in self.path for marker in refuse):
                    proxy.refused.append(self.path)
                    self.send_response(503, "Slow Down")
                    message = b"<Error><Code>ServiceUnavailable</Code><Message>Please reduce your request rate.</Message></Error>"
                    self.send_header("Content-Length", str(len(message)))
                    self.end_headers()
                    self.wfile.write(message)
                    return
                connection = http.client.HTTPConnection(upstream_host, timeout=30)
                connection.request(self.command, self.path, body=body, headers=dict(self.headers))
                response = connection.getresponse()
                data = response.read()
                self.send_response(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                connection.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward  # noqa: N815 - http.server names

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _RefusingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_s3_5xx_on_put_fails_that_video_after_retries_and_keeps_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import s3fs

    import affectflow.flows.video
    from tests.servers import environment, forget_s3_clients, s3_server

    root = _clips(tmp_path / "videos", "a.mp4", "b.mp4")
    refused = _video_id(root / "b.mp4")  # in the object keys of b (URLs encode the "=" before it)
    # The same retry policy, without the minutes of back-off a real outage deserves.
    monkeypatch.setattr(
        affectflow.flows.video, "write_tables", affectflow.flows.video.write_tables.with_options(retry_delay_seconds=0)
    )
    monkeypatch.setattr(s3fs.S3FileSystem, "retries", 1)  # the clients' own back-off too: Prefect's retries remain
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with s3_server() as s3:
        out = s3.bucket("affect") + "/out"
        with _RefusingProxy(s3.endpoint, {refused}) as proxy, environment({"AWS_ENDPOINT_URL": proxy.endpoint}):
            forget_s3_clients()
            capsys.readouterr()
            assert main(["run", str(root), "--out", out, "--stages", "none"]) == 1
            err = capsys.readouterr().err
        forget_s3_clients()
        line_b = next(line for line in err.splitlines() if "b.mp4" in line)
        assert line_b.split()[0] == "failed" and "cannot write" in line_b
        assert len(proxy.refused) == 4  # the write task's retries (3) before giving up
        keys = s3.keys(out)
        assert any(k.startswith("videos/") and "b.mp4" not in k for k in keys)
        assert not [k for k in keys if refused in k]  # nothing of b, not even a temporary object
        capsys.readouterr()
        assert main(["sql", "--out", out, "--format", "csv", "SELECT name, status FROM videos"]) == 0
        assert capsys.readouterr().out.split() == ["name,status", "a.mp4,ok"]
