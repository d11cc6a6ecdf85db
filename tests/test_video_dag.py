"""The per-video DAG: (faces → speaking) ‖ (diarize → transcribe), then emotions (flows/video.run_stages).

The stages here are plain functions standing in for the model stages, so the tests are
about the orchestration only: the branches overlap in time, a failing branch stops the
other one and its own error is what the video reports, fusion runs last.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import affectflow.flows.video
import affectflow.tasks.progress
from affectflow.flows.stages import Stage, StageOutputs
from affectflow.tasks.config import PipelineConfig

pytestmark = pytest.mark.unit

WAIT_S = 10.0


def _outputs(tmp_path: Path) -> StageOutputs:
    return StageOutputs(staged=None, info=None, config=PipelineConfig(), work_dir=tmp_path)  # type: ignore[arg-type]


def _run(outputs: StageOutputs, stages: tuple[Stage, ...]) -> list[str]:
    order: list[str] = []

    def timed(name: str, fn: Any, *args: Any) -> Any:
        order.append(name)
        return fn(*args)

    affectflow.flows.video.run_stages(
        outputs, ("faces", "diarize", "transcribe", "speaking", "emotions"), timed, stages
    )
    return order


def _stages(faces: Any, diarize: Any) -> tuple[tuple[Stage, ...], list[str]]:
    fused: list[str] = []

    def transcribe(outputs: StageOutputs) -> dict[str, Any]:
        return {"words": ["hello"], "backend": "test words"}

    def emotions(outputs: StageOutputs) -> dict[str, Any]:
        fused.append(f"faces={outputs.faces} turns={outputs.turns} words={outputs.words}")
        return {"emotions": "fused", "backend": "test fusion"}

    stages = (
        Stage("faces", faces, lambda outputs: True, branch="faces"),
        Stage("diarize", diarize, lambda outputs: True, branch="speech"),
        Stage("transcribe", transcribe, lambda outputs: True, branch="speech"),
        Stage("emotions", emotions, lambda outputs: outputs.faces is not None, branch="fusion"),
    )
    return stages, fused


def test_faces_and_speech_branches_run_side_by_side_then_fusion(tmp_path: Path) -> None:
    speech_running = threading.Event()

    def faces(outputs: StageOutputs) -> dict[str, Any]:
        # run one after the other, this would wait for a speech stage that has not started
        assert speech_running.wait(WAIT_S), "the speech branch did not run beside the faces branch"
        return {"faces": "tracks", "backend": "test faces"}

    def diarize(outputs: StageOutputs) -> dict[str, Any]:
        speech_running.set()
        return {"turns": ["A"], "backend": "test turns"}

    stages, fused = _stages(faces, diarize)
    outputs = _outputs(tmp_path)
    order = _run(outputs, stages)
    assert order[-1] == "emotions" and sorted(order[:-1]) == ["diarize", "faces", "transcribe"]
    assert order.index("diarize") < order.index("transcribe")
    assert fused == ["faces=tracks turns=['A'] words=['hello']"]
    assert outputs.backends == {
        "faces": "test faces",
        "diarize": "test turns",
        "transcribe": "test words",
        "emotions": "test fusion",
    }


@pytest.mark.parametrize("first", ["speaking", "transcribe"])
def test_speaking_waits_for_the_turns_runs_beside_transcription_and_the_words_follow_its_turns(
    tmp_path: Path, first: str
) -> None:
    from affectflow.tasks.records import SpeakerTurn, Word

    turns_ready, speaking_running, transcribe_done = threading.Event(), threading.Event(), threading.Event()
    merged, split = [SpeakerTurn("A", 0.0, 4.0)], [SpeakerTurn("A", 0.0, 2.0), SpeakerTurn("A+", 2.0, 4.0)]

    def faces(outputs: StageOutputs) -> dict[str, Any]:
        return {"faces": "tracks", "backend": "test faces"}

    def diarize(outputs: StageOutputs) -> dict[str, Any]:
        time.sleep(0.2)  # the faces branch is done first and must wait for the turns
        turns_ready.set()
        return {"turns": merged, "backend": "test turns"}

    def transcribe(outputs: StageOutputs) -> dict[str, Any]:
        # one after the other, speaking would wait here for a transcription that waits for it
        assert speaking_running.wait(WAIT_S), "speaking did not run beside transcription"
        if first == "speaking":
            time.sleep(0.2)
        transcribe_done.set()
        words = [Word("hello", 0.5, 1.0, 0.9, 0, "A"), Word("there", 2.5, 3.0, 0.9, 0, "A")]  # attributed to `merged`
        return {"words": words, "backend": "test words"}

    def speaking(outputs: StageOutputs) -> dict[str, Any]:
        assert turns_ready.is_set() and outputs.turns == merged, "speaking ran before the turns"
        speaking_running.set()
        if first == "transcribe":
            assert transcribe_done.wait(WAIT_S)
        return {"speaking": "links", "turns": split, "backend": "test speaking"}

    def emotions(outputs: StageOutputs) -> dict[str, Any]:
        return {"emotions": [w.speaker for w in outputs.words or []], "backend": "test fusion"}

    stages = (
        Stage("faces", faces, lambda outputs: True, branch="faces"),
        Stage("speaking", speaking, lambda outputs: outputs.faces is not None, branch="faces", after=("diarize",)),
        Stage("diarize", diarize, lambda outputs: True, branch="speech"),
        Stage("transcribe", transcribe, lambda outputs: True, branch="speech"),
        Stage("emotions", emotions, lambda outputs: outputs.faces is not None, branch="fusion"),
    )
    outputs = _outputs(tmp_path)
    order = _run(outputs, stages)
    assert order[-1] == "emotions" and order.index("diarize") < order.index("speaking")
    assert outputs.turns == split and outputs.emotions == ["A", "A+"]  # each word has the split turns' speaker


def test_a_failing_branch_stops_the_other_and_its_error_is_reported(tmp_path: Path) -> None:
    speech_running, speech_stopped = threading.Event(), threading.Event()

    def faces(outputs: StageOutputs) -> dict[str, Any]:
        assert speech_running.wait(WAIT_S)
        raise RuntimeError("face model broke")

    def diarize(outputs: StageOutputs) -> dict[str, Any]:
        speech_running.set()
        end = time.monotonic() + WAIT_S
        try:
            while time.monotonic() < end:  # a long stage reporting progress between batches
                outputs.hook("embeddings", 1, None)
                time.sleep(0.01)
        except affectflow.flows.video.BranchStoppedError:
            speech_stopped.set()
            raise
        return {"turns": [], "backend": "test turns"}

    stages, fused = _stages(faces, diarize)
    outputs = _outputs(tmp_path)
    deadline = outputs.hook
    begin = time.monotonic()
    with pytest.raises(RuntimeError, match="face model broke"):
        _run(outputs, stages)
    assert speech_stopped.is_set() and time.monotonic() - begin < WAIT_S / 2
    assert fused == []  # fusion never ran on half a video
    assert outputs.hook is deadline  # the video's own deadline hook is back


def test_the_deadline_still_stops_a_branch(tmp_path: Path) -> None:
    def faces(outputs: StageOutputs) -> dict[str, Any]:
        while True:
            outputs.hook("detect", 1, None)
            time.sleep(0.01)

    def diarize(outputs: StageOutputs) -> dict[str, Any]:
        return {"turns": [], "backend": "test turns"}

    stages, _ = _stages(faces, diarize)
    outputs = _outputs(tmp_path)
    outputs.hook = affectflow.tasks.progress.deadline_hook(0.2)
    with pytest.raises(affectflow.tasks.progress.VideoTimeoutError, match="during detect"):
        _run(outputs, stages)


@contextmanager
def _stuck_in_native_code() -> Iterator[tuple[Any, Callable[[], None]]]:
    """A faces stage blocked in a native read() that no hook interrupts, and the key that frees it."""
    read_end, write_end = os.pipe()

    def faces(outputs: StageOutputs) -> dict[str, Any]:
        os.read(read_end, 1)  # blocks in the kernel, as a hung ONNX or CTranslate2 call would
        os.close(read_end)
        return {"faces": "late tracks", "backend": "test faces"}

    def free() -> None:
        if write_end in still_open:
            still_open.remove(write_end)
            os.write(write_end, b"x")
            os.close(write_end)

    still_open = [write_end]
    try:
        yield faces, free
    finally:
        free()  # the test's stuck thread ends: it holds the faces model lock until then


def _speech_reporting_progress(outputs: StageOutputs) -> dict[str, Any]:
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:  # a long stage that does reach its steps
        outputs.hook("embeddings", 1, None)
        time.sleep(0.01)
    return {"turns": [], "backend": "test turns"}


def test_a_stage_stuck_in_native_code_is_given_up_past_the_deadline_and_its_video_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from affectflow.flows.video import VideoSteps, run_video
    from affectflow.tasks.records import MediaInfo, SourceFile, StagedVideo

    monkeypatch.setattr(affectflow.flows.video, "STUCK_AFTER_S", 0.5)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not really a video")
    written: list[tuple[dict[str, Any], list[str]]] = []
    with _stuck_in_native_code() as (faces, _):
        stages, fused = _stages(faces, _speech_reporting_progress)
        steps = VideoSteps(
            stage=lambda uri, work_dir: StagedVideo(clip, uri, "cd" * 32, clip.stat().st_size),
            probe=lambda staged: MediaInfo(1.0, 5.0, 64, 48, 5, False, None, 0),
            audio=lambda staged, info, work_dir: None,
            write=lambda out, video_id, tables, row, manifest=None: written.append((row, sorted(tables))),
            stages=stages,
        )
        source = SourceFile(str(clip), clip.stat().st_size, "v1")
        begin = time.monotonic()
        result = run_video(source, str(tmp_path / "out"), PipelineConfig(), "run-1", timeout_s=0.5, steps=steps)
        took = time.monotonic() - begin
    assert (result.status, result.error) == (
        "failed",
        "VideoTimeoutError: timed out after 0.5 s (faces stuck in native code, given up)",
    )
    assert took < WAIT_S / 2  # the deadline plus the grace, not the speech branch's WAIT_S nor for ever
    ((row, tables),) = written
    assert row["status"] == "failed" and tables == [] and fused == []  # nothing of the stuck video is written


def test_a_stop_gives_up_a_stuck_stage_and_interrupts_the_video(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(affectflow.flows.video, "STUCK_AFTER_S", 0.5)
    speech_stopped = threading.Event()

    def speech_that_sees_no_stop(outputs: StageOutputs) -> dict[str, Any]:
        try:  # its hook here checks no stop request: it is stopped only by the video being given up
            return _speech_reporting_progress(outputs)
        except affectflow.flows.video.BranchStoppedError:
            speech_stopped.set()
            raise

    with _stuck_in_native_code() as (faces, _):
        stages, fused = _stages(faces, speech_that_sees_no_stop)
        threading.Timer(0.3, affectflow.tasks.progress.STOP.request, (signal.SIGTERM,)).start()
        try:
            begin = time.monotonic()
            with pytest.raises(affectflow.tasks.progress.Interrupted):
                _run(_outputs(tmp_path), stages)
            assert time.monotonic() - begin < WAIT_S / 2
            assert speech_stopped.wait(1.0)  # the branch left running stops at its next step, not at its end
        finally:
            affectflow.tasks.progress.STOP.clear()
    assert fused == []


def test_a_video_waiting_for_the_model_a_stuck_stage_holds_stops_at_its_deadline_then_runs_once_it_is_freed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(affectflow.flows.video, "STUCK_AFTER_S", 0.5)

    def faces(outputs: StageOutputs) -> dict[str, Any]:
        return {"faces": "tracks", "backend": "test faces"}

    def diarize(outputs: StageOutputs) -> dict[str, Any]:
        return {"turns": ["A"], "backend": "test turns"}

    with _stuck_in_native_code() as (stuck, free):
        stuck_stages, _ = _stages(stuck, _speech_reporting_progress)
        with affectflow.tasks.progress.video_deadline(0.2) as deadline:
            outputs = _outputs(tmp_path)
            outputs.hook = deadline
            with pytest.raises(affectflow.tasks.progress.VideoTimeoutError, match="faces stuck"):
                _run(outputs, stuck_stages)
        stages, fused = _stages(faces, diarize)
        with affectflow.tasks.progress.video_deadline(0.5) as deadline:  # the stuck one still holds the model
            outputs = _outputs(tmp_path)
            outputs.hook = deadline
            with pytest.raises(affectflow.tasks.progress.VideoTimeoutError, match="during waiting for the faces model"):
                _run(outputs, stages)
        free()
        _run(_outputs(tmp_path), stages)  # the freed thread ends and lets go of the model
    assert fused == ["faces=tracks turns=['A'] words=['hello']"]


def _working(seconds: float) -> Callable[[StageOutputs], dict[str, Any]]:
    """A faces stage that works ``seconds`` (a progress step every 20 ms), as a model stage does."""

    def faces(outputs: StageOutputs) -> dict[str, Any]:
        begin = time.monotonic()
        while time.monotonic() - begin < seconds:
            time.sleep(0.02)
            outputs.hook("faces", 0, None)
        return {"faces": "tracks", "backend": "test faces"}

    return faces


def _diarize_working(seconds: float) -> Callable[[StageOutputs], dict[str, Any]]:
    def diarize(outputs: StageOutputs) -> dict[str, Any]:
        _working(seconds)(outputs)
        return {"turns": ["A"], "backend": "test turns"}

    return diarize


@pytest.mark.parametrize("own_work_s", [0.0, 1.0])
def test_waiting_for_a_model_another_video_uses_is_not_the_waiting_videos_time_but_its_own_work_is(
    tmp_path: Path, own_work_s: float
) -> None:
    """Two videos at once (--workers 2): a long video must not time out the one behind it."""
    holding = threading.Event()
    first_error: list[BaseException] = []

    def first_video() -> None:  # no deadline; holds the faces model 1.5 s
        long_faces = _working(1.5)

        def faces(outputs: StageOutputs) -> dict[str, Any]:
            holding.set()
            return long_faces(outputs)

        try:
            _run(_outputs(tmp_path / "first"), _stages(faces, _diarize_working(0.0))[0])
        except BaseException as err:  # noqa: BLE001 - asserted below
            first_error.append(err)

    thread = threading.Thread(target=first_video)
    thread.start()
    assert holding.wait(WAIT_S)
    # the second video: a 0.6 s budget; its faces wait ~1.5 s for the model, its speech works own_work_s
    stages, fused = _stages(_working(0.0), _diarize_working(own_work_s))
    try:
        with affectflow.tasks.progress.video_deadline(0.6) as deadline:
            outputs = _outputs(tmp_path / "second")
            outputs.hook = deadline
            if own_work_s:  # working past its budget while the other branch waits: that time is its own
                with pytest.raises(affectflow.tasks.progress.VideoTimeoutError, match=r"timed out after 0\.6 s"):
                    _run(outputs, stages)
            else:  # every thread of it waits: the deadline moves on by the wait
                begin = time.monotonic()
                _run(outputs, stages)
                assert time.monotonic() - begin > 1.0  # it did wait for the first video's model
                assert fused == ["faces=tracks turns=['A'] words=['hello']"]
    finally:
        thread.join(WAIT_S)
    assert not first_error


def test_the_deadline_counts_a_wait_only_while_some_thread_of_the_video_works() -> None:
    deadline = affectflow.tasks.progress.Deadline.starting_now(10.0)
    with deadline.working(), deadline.working():  # two branch threads
        with deadline.waiting():  # one waits, the other works: the time counts
            time.sleep(0.2)
        assert deadline.left() < 9.85
        end = deadline.end
        with deadline.waiting(), deadline.waiting():  # both wait: the end moves on
            time.sleep(0.2)
            assert deadline.end > end + 0.15
        assert deadline.end > end + 0.15
    with deadline.waiting():  # outside branches the video is one thread
        end = deadline.end
        time.sleep(0.1)
        assert deadline.end > end + 0.05


def test_the_timer_charges_each_progress_step_the_time_since_the_last_mark() -> None:
    timer = affectflow.flows.video.StageTimer()

    def stage() -> None:
        time.sleep(0.05)
        timer.step("features", 1, 2)
        time.sleep(0.15)
        timer.step("rcma", 2, 2)
        time.sleep(0.1)

    timer("emotions", stage)
    # the longest stretch without a progress step: how late a stop or a timeout can act
    assert set(timer.longest) == {"features", "rcma", "emotions: after its last step"}
    assert timer.longest["rcma"] >= 0.15 and timer.longest["emotions: after its last step"] >= 0.1
    assert max(timer.longest, key=timer.longest.__getitem__) == "rcma"
    # sleeps only ever overshoot (a busy machine): lower bounds are exact, the order is robust
    assert timer.steps["features"] >= 0.05 and timer.steps["rcma"] >= 0.15
    assert timer.steps["rcma"] > timer.steps["features"] + 0.05
    assert timer.seconds["emotions"] >= timer.steps["features"] + timer.steps["rcma"] - 0.001  # seconds: ms-rounded


def test_run_video_takes_its_steps_and_turns_a_failing_stage_into_a_committed_failed_row(tmp_path: Path) -> None:
    from affectflow.flows.video import VideoSteps, run_video
    from affectflow.tasks.records import MediaInfo, SourceFile, StagedVideo

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not really a video")
    written: list[tuple[str, dict[str, Any], list[str]]] = []

    def faces(outputs: StageOutputs) -> dict[str, Any]:
        raise RuntimeError("face model broke")

    stages, _ = _stages(faces, lambda outputs: {"turns": [], "backend": "test turns"})
    steps = VideoSteps(
        stage=lambda uri, work_dir: StagedVideo(clip, uri, "ab" * 32, clip.stat().st_size),
        probe=lambda staged: MediaInfo(1.0, 5.0, 64, 48, 5, False, None, 0),
        audio=lambda staged, info, work_dir: None,
        write=lambda out, video_id, tables, row, manifest=None: written.append((video_id, row, sorted(tables))),
        stages=stages,
    )
    source = SourceFile(str(clip), clip.stat().st_size, "v1")
    result = run_video(source, str(tmp_path / "out"), PipelineConfig(), "run-1", steps=steps)
    assert (result.status, result.error) == ("failed", "RuntimeError: face model broke")
    ((video_id, row, tables),) = written
    staged = StagedVideo(clip, str(clip), "ab" * 32, clip.stat().st_size)
    assert video_id == staged.video_id and row["status"] == "failed" and row["duration_s"] == 1.0 and tables == []
    assert {"stage", "probe", "audio", "faces", "write"} <= set(result.stage_seconds)
