"""`affectflow run` / `sql` end to end over a folder of good and bad files (media stages only).

The full analysis pipeline is exercised by the `pipeline_out` fixture's tests; these
check the spine's contract: one row per video with the right facts and status, skip on
re-run, --force, exit codes and one-line errors.
"""

from __future__ import annotations

import csv
import io
import shutil
import time
from pathlib import Path

import pytest

from affectflow.flows.cli import main
from affectflow.tasks.synth.bad import make_bad_files, make_testsrc_video

pytestmark = pytest.mark.integration  # starts the ephemeral Prefect server (once per session)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("corpus")
    make_testsrc_video(root / "with audio.mp4", seconds=2.0)
    make_testsrc_video(root / "nested" / "no_audio.mov", seconds=1.0, audio=False, size="640x480", fps=30) if (
        root / "nested"
    ).mkdir() is None else None
    expected_errors = make_bad_files(root)
    (root / "notes.txt").write_text("not a video extension: ignored")
    return root, expected_errors


def _sql_csv(capsys: pytest.CaptureFixture[str], out: Path, query: str) -> list[dict[str, str]]:
    capsys.readouterr()
    assert main(["sql", "--out", str(out), "--format", "csv", query]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_run_records_every_video_then_skips_then_forces(
    corpus: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, expected_errors = corpus
    out = tmp_path / "out"
    started = time.perf_counter()
    assert main(["run", str(root), "--out", str(out), "--stages", "none"]) == 1  # bad files failed
    first_s = time.perf_counter() - started

    rows = {r["name"]: r for r in _sql_csv(capsys, out, "SELECT * FROM videos ORDER BY name")}
    assert set(rows) == {"with audio.mp4", "no_audio.mov", *expected_errors}
    good = rows["with audio.mp4"]
    assert (good["status"], good["width"], good["height"], good["fps"], good["has_audio"]) == (
        "ok",
        "320",
        "240",
        "25.0",
        "True",
    )
    assert float(good["duration_s"]) == pytest.approx(2.0, abs=0.05)
    silent = rows["no_audio.mov"]
    assert (silent["status"], silent["width"], silent["fps"], silent["has_audio"]) == ("ok", "640", "30.0", "False")
    for name, message in expected_errors.items():
        assert rows[name]["status"] == "failed"
        assert message in rows[name]["error"] and "\n" not in rows[name]["error"]

    started = time.perf_counter()
    assert main(["run", str(root), "--out", str(out), "--stages", "none"]) == 0  # all skipped: nothing failed now
    second_s = time.perf_counter() - started
    assert second_s < first_s
    assert _sql_csv(capsys, out, "SELECT count(*) AS n FROM videos") == [{"n": "5"}]
    runs = _sql_csv(capsys, out, "SELECT n_ok, n_failed, n_skipped FROM runs ORDER BY started")
    assert runs == [{"n_ok": "2", "n_failed": "3", "n_skipped": "0"}, {"n_ok": "0", "n_failed": "0", "n_skipped": "5"}]

    first_finish = _sql_csv(capsys, out, "SELECT finished FROM videos WHERE name = 'with audio.mp4'")
    main(["run", str(root), "--out", str(out), "--stages", "none", "--force"])
    assert _sql_csv(capsys, out, "SELECT count(*) AS n FROM videos") == [{"n": "5"}]
    assert _sql_csv(capsys, out, "SELECT finished FROM videos WHERE name = 'with audio.mp4'") != first_finish


def test_changed_file_is_processed_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    clip = make_testsrc_video(root / "clip.mp4", seconds=1.0)
    out = tmp_path / "out"
    assert main(["run", str(root), "--out", str(out), "--stages", "none"]) == 0
    make_testsrc_video(tmp_path / "other.mp4", seconds=1.5)
    shutil.copy(tmp_path / "other.mp4", clip)
    assert main(["run", str(root), "--out", str(out), "--stages", "none"]) == 0
    rows = _sql_csv(capsys, out, "SELECT duration_s FROM videos")
    assert [float(r["duration_s"]) for r in rows] == [pytest.approx(1.5, abs=0.05)]  # old row replaced


def test_missing_source_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: source not found") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_unknown_stage_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(tmp_path), "--out", str(tmp_path / "out"), "--stages", "faces,nonsense"])
    assert exit_info.value.code == 2
    assert "unknown stage(s) nonsense" in capsys.readouterr().err


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in ("run", "sql", "demo"):
        assert command in text


def test_backend_choices_are_validated_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(tmp_path), "--out", str(tmp_path / "out"), "--emotion-model", "bogus"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_emotion_model_option_changes_the_config_hash() -> None:
    from affectflow.tasks.config import PipelineConfig
    from affectflow.tasks.emotions.infer import EmotionConfig

    assert PipelineConfig().hash() != PipelineConfig(emotions=EmotionConfig(model="teachers")).hash()


def test_speaker_bounds_are_checked_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["run", str(tmp_path), "--out", str(out), "--min-speakers", "3", "--max-speakers", "2"]) == 2  # usage
    err = capsys.readouterr().err
    assert err == "error: min_speakers (3) is larger than max_speakers (2)\n"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(tmp_path), "--out", str(out), "--speakers", "0"])
    assert exit_info.value.code == 2
    assert "--speakers: must be greater than 0" in capsys.readouterr().err
    assert not out.exists()


def test_asr_model_that_is_not_a_model_dir_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "whisper").mkdir()
    out = tmp_path / "out"
    assert main(["run", str(tmp_path), "--out", str(out), "--asr-model", str(tmp_path / "whisper")]) == 3
    err = capsys.readouterr().err
    assert "is not a CTranslate2 Whisper model directory (missing model.bin" in err and err.count("\n") == 1
    assert not out.exists()


def test_speaker_count_and_asr_model_reach_the_speech_stages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from affectflow.tasks.synth.corpus import talking_clip

    truth = talking_clip(tmp_path / "videos", "dialogue.mp4", n_faces=1, n_turns=4)
    assert len(truth.speakers) == 2
    out = tmp_path / "out"
    speech = ["--stages", "diarize,transcribe", "--asr-model", "tiny.en"]
    assert main(["run", str(tmp_path / "videos"), "--out", str(out), *speech, "--speakers", "1"]) == 0
    rows = _sql_csv(capsys, out, "SELECT count(DISTINCT speaker) AS n FROM speaker_turns")
    assert rows == [{"n": "1"}]
    models = _sql_csv(capsys, out, "SELECT DISTINCT model FROM words")
    assert len(models) == 1 and "Whisper tiny.en" in models[0]["model"]
    # other speaker options are another configuration: the video is analysed again, not skipped
    assert main(["run", str(tmp_path / "videos"), "--out", str(out), *speech]) == 0
    assert " ok " in capsys.readouterr().err
    assert _sql_csv(capsys, out, "SELECT count(DISTINCT speaker) AS n FROM speaker_turns") == [{"n": "2"}]


def test_the_preflight_runs_once_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: the CLI checks tools and lists the source before Prefect starts; the flow does not redo it."""
    from affectflow.flows import corpus
    from affectflow.tasks.media import tools
    from affectflow.tasks.storage import discover as discover_module

    calls: list[str] = []

    def counted(name: str, real):  # type: ignore[no-untyped-def]
        return lambda *args: calls.append(name) or real(*args)

    for module in (corpus, tools):
        monkeypatch.setattr(module, "check_tools", counted("tools", tools.check_tools))
    for module in (corpus, discover_module):
        monkeypatch.setattr(module, "discover", counted("discover", discover_module.discover))
    root = tmp_path / "corpus"
    root.mkdir()
    make_testsrc_video(root / "clip.mp4", seconds=1.0)
    assert main(["run", str(root), "--out", str(tmp_path / "out"), "--stages", "none"]) == 0
    assert sorted(calls) == ["discover", "tools"]


def test_a_run_writes_the_report_index_and_the_exports_it_is_asked_for(
    corpus: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, expected_errors = corpus
    out = tmp_path / "out"
    assert main(["run", str(root), "--out", str(out), "--stages", "none", "--export", "rttm,csv"]) == 1
    assert f"report: {out / 'reports' / 'index.html'}" in capsys.readouterr().out
    ok = _sql_csv(capsys, out, "SELECT video_id, name FROM videos WHERE status = 'ok' ORDER BY name")
    assert len(ok) == 2
    pages = sorted(p.name for p in (out / "reports").iterdir())
    assert pages == sorted(["index.html", *(f"{v['video_id']}.html" for v in ok)])
    index = (out / "reports" / "index.html").read_text()
    assert all(name in index for name in expected_errors)  # every failed file is listed with its error
    exported = sorted(p.name for p in (out / "exports").iterdir())
    assert exported == sorted(
        f"{Path(v['name']).stem}.{v['video_id']}.{ext}" for v in ok for ext in ("rttm", "emotions.csv")
    )
    other = tmp_path / "other"
    assert main(["run", str(root), "--out", str(other), "--stages", "none", "--no-reports"]) == 1
    assert not (other / "reports").exists() and not (other / "exports").exists()
