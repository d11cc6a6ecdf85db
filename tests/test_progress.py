"""The stage-progress registry, its one-line description and the throttle (#23 item 5)."""

from __future__ import annotations

import threading

import pytest

from affectflow.tasks.progress import StageProgress, all_of, describe

pytestmark = pytest.mark.unit


def test_describe_frames_seconds_and_no_total() -> None:
    state = {
        "clip.mp4": ("faces", 1200, 9000),
        "b.mp4": ("transcription", 30, 600),
        "c.mp4": ("faces", 5, None),
    }
    assert describe(state) == "b.mp4: transcription 30/600s; c.mp4: faces 5; clip.mp4: faces 1200/9000"
    assert describe({}) == ""


def test_registry_hook_reports_and_clears_across_threads() -> None:
    registry = StageProgress()
    hook = all_of(registry.hook("clip.mp4"))
    worker = threading.Thread(target=hook, args=("emotions: rcma", 64, 512))
    worker.start()
    worker.join()
    assert registry.snapshot() == {"clip.mp4": ("emotions: rcma", 64, 512)}
    hook("emotions: rcma", 128, 512)
    assert describe(registry.snapshot()) == "clip.mp4: emotions: rcma 128/512"
    registry.clear("clip.mp4")
    assert registry.snapshot() == {}


def test_run_video_reports_the_stage_hook_to_the_registry_and_clears_it(tmp_path) -> None:
    from affectflow.flows.stages import Stage, StageOutputs
    from affectflow.flows.video import VideoSteps, run_video
    from affectflow.tasks.config import PipelineConfig
    from affectflow.tasks.progress import PROGRESS
    from affectflow.tasks.records import MediaInfo, SourceFile, StagedVideo

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not really a video")
    seen: list[dict] = []

    def faces(outputs: StageOutputs) -> dict:
        outputs.hook("faces", 1200, 9000)
        seen.append(PROGRESS.snapshot())
        raise RuntimeError("stop here")

    steps = VideoSteps(
        stage=lambda uri, work_dir: StagedVideo(clip, uri, "ab" * 32, clip.stat().st_size),
        probe=lambda staged: MediaInfo(1.0, 5.0, 64, 48, 5, False, None, 0),
        audio=lambda staged, info, work_dir: None,
        write=lambda out, video_id, tables, row, manifest=None: None,
        stages=(Stage("faces", faces, lambda outputs: True, branch="faces"),),
    )
    source = SourceFile(str(clip), clip.stat().st_size, "v1")
    run_video(source, str(tmp_path / "out"), PipelineConfig(), "run-1", steps=steps)
    assert seen == [{"clip.mp4": ("faces", 1200, 9000)}]
    assert "clip.mp4" not in PROGRESS.snapshot()


def test_the_runner_refresher_puts_the_description_in_the_bar_postfix() -> None:
    import io
    import time

    from tqdm import tqdm

    from affectflow.flows.runner import stage_postfix

    registry = StageProgress()
    registry.report("clip.mp4", "faces", 1200, 9000)
    stream = io.StringIO()
    bar = tqdm(total=1, file=stream, disable=False)
    with stage_postfix(bar, registry, interval_s=0.01):
        deadline = time.monotonic() + 5.0
        while "clip.mp4: faces 1200/9000" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    bar.close()
    assert "clip.mp4: faces 1200/9000" in stream.getvalue()
    assert not any(t.name == "affectflow-stage-postfix" for t in threading.enumerate())


def test_the_run_artifact_describes_the_running_videos_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    import uuid

    from affectflow.flows import artifacts

    published: list[tuple[float, str | None]] = []
    monkeypatch.setattr(artifacts, "create_progress_artifact", lambda *args, **kwargs: uuid.uuid4())
    monkeypatch.setattr(
        artifacts,
        "update_progress_artifact",
        lambda _id, progress, description=None: published.append((progress, description)),
    )
    registry = StageProgress()
    run = artifacts.RunArtifacts(total=4)
    run.video_done(1)
    registry.report("long.mp4", "faces", 1200, 36000)
    with run.watching(registry, interval_s=0.01):
        deadline = time.monotonic() + 5.0
        while len(published) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert published[0] == (25.0, "videos finished: 1/4")
    assert published[1] == (25.0, "videos finished: 1/4; now: long.mp4: faces 1200/36000")
    assert len(published) == 2  # unchanged stages are not published again
    assert not any(t.name == "affectflow-artifact-progress" for t in threading.enumerate())
