"""S3 end to end on a real S3-compatible server (moto's server mode on 127.0.0.1).

Configuration comes only from the standard AWS variables (tests/servers.py sets them):
discover under an s3:// prefix, stage, write every table, manifest and plot to an s3://
output root, skip on re-run, query with `affectflow sql --out s3://…`, and one-line errors
for what a user gets wrong (credentials, bucket, endpoint) with nothing written.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from affectflow.flows.cli import main
from affectflow.tasks.storage import leases
from affectflow.tasks.storage.store import Store
from tests.browser import READY, chromium, open_page, play_past
from tests.servers import S3Server, environment, forget_s3_clients, free_port, s3_server

pytestmark = pytest.mark.integration  # a moto server, the Prefect engine and real models


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def s3_run(s3: S3Server, corpus) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """One good clip and one bad file under s3://corpus/videos, processed into s3://results/out."""
    source, out = f"{s3.bucket('corpus')}/videos", f"{s3.bucket('results')}/out"
    bad = next(iter(corpus.bad))
    s3.upload([corpus.root / "interview.mp4", corpus.root / bad], source)
    assert main(["run", source, "--out", out]) == 1  # the bad file failed, the clip is ok
    return source, out


def presigned_report(s3: S3Server, out: str) -> str:
    """The presigned URL of the one video report under ``out`` (the run's ok clip)."""
    import s3fs

    (page,) = [key for key in s3.keys(f"{out}/reports") if key.endswith(".html") and key != "index.html"]
    return str(s3fs.S3FileSystem().sign(f"{out.removeprefix('s3://')}/reports/{page}"))


def sql(capsys: pytest.CaptureFixture[str], out: str, query: str) -> list[dict[str, str]]:
    capsys.readouterr()
    assert main(["sql", "--out", out, "--format", "csv", query]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_corpus_on_s3_writes_every_table_manifest_and_plot(
    s3: S3Server, s3_run: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    source, out = s3_run
    videos = {r["name"]: r for r in sql(capsys, out, "SELECT name, uri, status, video_id FROM videos")}
    assert videos["interview.mp4"]["status"] == "ok"
    assert videos["interview.mp4"]["uri"] == f"{source}/interview.mp4"
    assert [r["status"] for name, r in videos.items() if name != "interview.mp4"] == ["failed"]
    counts = sql(
        capsys,
        out,
        "SELECT (SELECT count(*) FROM faces) AS faces, (SELECT count(*) FROM emotions) AS emotions, "
        "(SELECT count(*) FROM words) AS words, (SELECT count(*) FROM speaker_turns) AS turns",
    )[0]
    assert all(int(n) > 0 for n in counts.values()), counts
    keys = s3.keys(out)
    video_id = videos["interview.mp4"]["video_id"]
    for table in ("videos", "faces", "speaker_turns", "words", "emotions"):
        assert f"{table}/video_id={video_id}/part-0.parquet" in keys
    assert f"plots/{video_id}.png" in keys
    assert sum(key.startswith("_manifest/") for key in keys) == 2
    assert sum(key.startswith("runs/") for key in keys) == 1


def test_second_run_over_the_same_prefix_skips_everything(
    s3_run: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    source, out = s3_run
    assert main(["run", source, "--out", out]) == 0  # nothing failed this time: nothing ran
    runs = sql(capsys, out, "SELECT n_ok, n_failed, n_skipped FROM runs ORDER BY started")
    assert runs[-1] == {"n_ok": "0", "n_failed": "0", "n_skipped": "2"}


def _fails_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    capsys.readouterr()
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err


def test_missing_bucket_is_one_line_error_and_nothing_is_written(
    s3: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    out = f"{s3.bucket('empty-out')}/out"
    _fails_with_one_line(
        capsys, ["run", "s3://no-such-bucket/videos", "--out", out], "bucket not found: no-such-bucket"
    )
    _fails_with_one_line(capsys, ["sql", "--out", "s3://no-such-bucket/out", "SELECT 1"], "bucket not found")
    assert s3.keys(out) == []


def test_missing_credentials_are_one_line_error(s3: S3Server, capsys: pytest.CaptureFixture[str]) -> None:
    with environment({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}):
        forget_s3_clients()
        _fails_with_one_line(capsys, ["sql", "--out", "s3://results/out", "SELECT 1"], "no credentials for s3://")
    forget_s3_clients()


def test_unreachable_endpoint_is_one_line_error(s3: S3Server, capsys: pytest.CaptureFixture[str]) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with environment({"AWS_ENDPOINT_URL": nowhere, "AWS_MAX_ATTEMPTS": "1"}):
        forget_s3_clients()
        _fails_with_one_line(capsys, ["run", "s3://corpus/videos", "--out", "s3://results/out"], "cannot reach")
    forget_s3_clients()


def test_leases_on_s3_have_one_winner_among_racing_takers(s3: S3Server) -> None:
    """``If-None-Match: *`` on the lease PUT: of eight threads racing for one lease exactly one gets it."""
    store = Store(f"{s3.bucket('leases')}/out")
    barrier = threading.Barrier(8)
    won: list[leases.Lease] = []

    def take() -> None:
        barrier.wait()
        lease = leases.acquire(store, "video-1", owner="run")
        if lease is not None:
            won.append(lease)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert leases.read(store, "video-1")["token"] == won[0].token
    assert leases.acquire(store, "video-1", owner="other") is None
    won[0].release()
    assert leases.read(store, "video-1") is None
    assert leases.acquire(store, "video-1", owner="other") is not None


def test_an_s3_root_with_glob_characters_writes_replaces_compacts_and_reads_its_own_rows(s3: S3Server) -> None:
    from affectflow.tasks.query.views import connect
    from affectflow.tasks.storage.compaction import compact
    from tests.tablegen import write_video

    bucket = s3.bucket("globs")
    mine, beside = Store(f"{bucket}/out[1]"), Store(f"{bucket}/out1")  # `out[1]` as a glob matches `out1`
    for store in (mine, beside):
        write_video(store, "v0", duration_s=6.0, seed=0)
    write_video(mine, "v0", duration_s=4.0, seed=1)  # replaced: moves and removals of single objects
    write_video(mine, "v1", duration_s=5.0, seed=2)
    forget_s3_clients()
    count = "SELECT video_id, count(*) FROM emotions GROUP BY 1 ORDER BY 1"
    expected = connect(mine.root).execute(count).fetchall()
    assert [v for v, _ in expected] == ["v0", "v1"]
    assert compact(mine, owner="test").videos == 2
    assert s3.keys(f"{mine.root}/videos") == []  # the loose objects are gone, the compacted ones read
    assert connect(mine.root).execute(count).fetchall() == expected
    assert [v for v, _ in connect(beside.root).execute(count).fetchall()] == ["v0"]
    assert s3.keys(f"{beside.root}/videos") != []  # the other root is untouched


def test_the_report_pages_on_s3_open_over_http_and_play_the_presigned_source(
    s3: S3Server, s3_run: tuple[str, str]
) -> None:
    """What a colleague gets from a presigned link to a report: an HTML page whose video plays."""
    import re
    import urllib.request

    import s3fs

    source, out = s3_run
    fs = s3fs.S3FileSystem()
    pages = [key for key in s3.keys(f"{out}/reports") if key.endswith(".html")]
    assert "index.html" in pages and len(pages) == 2  # the ok clip's page and the index
    with urllib.request.urlopen(presigned_report(s3, out), timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/html")  # a browser renders it, not downloads
        html = response.read().decode()
    (media,) = re.findall(r'<video id="video"[^>]* src="([^"]+)"', html)
    assert media.startswith(s3.endpoint) and "Signature" in media  # a presigned URL of the source object
    with urllib.request.urlopen(media.replace("&amp;", "&"), timeout=30) as response:
        assert response.read() == fs.cat_file(f"{source.removeprefix('s3://')}/interview.mp4")


def test_the_presigned_report_opens_in_chromium_without_an_error_and_its_video_plays(
    s3: S3Server, s3_run: tuple[str, str], tmp_path: Path
) -> None:
    """The same link in a real browser: the page runs (Bokeh inlined, nothing from a CDN) and plays the S3 object."""
    _, out = s3_run
    with chromium() as browser:
        page = open_page(browser)
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(presigned_report(s3, out))
        page.wait_for_function(READY, timeout=20_000)
        play_past(page, 0.5)
        duration = page.evaluate("() => document.getElementById('video').duration")
        page.screenshot(path=str(tmp_path / "s3-report.png"), full_page=True)
        assert page.problems == []
    assert duration > 1.0  # the presigned source's metadata loaded: the real clip, not an empty element
    assert requests and all(url.startswith(s3.endpoint) or url.startswith("data:") for url in requests)  # offline
