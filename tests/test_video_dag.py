"""The per-video DAG: faces ‖ (diarize → transcribe), then emotions (flows/video.run_stages).

The stages here are plain functions standing in for the model stages, so the tests are
about the orchestration only: the branches overlap in time, a failing branch stops the
other one and its own error is what the video reports, fusion runs last.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import flows.video
from flows.stages import Stage, StageOutputs
from tasks.config import PipelineConfig

WAIT_S = 10.0


def _outputs(tmp_path: Path) -> StageOutputs:
    return StageOutputs(staged=None, info=None, config=PipelineConfig(), work_dir=tmp_path)  # type: ignore[arg-type]


def _run(outputs: StageOutputs) -> list[str]:
    order: list[str] = []

    def timed(name: str, fn: Any, *args: Any) -> Any:
        order.append(name)
        return fn(*args)

    flows.video.run_stages(outputs, ("faces", "diarize", "transcribe", "emotions"), timed)
    return order


def _stages(monkeypatch: pytest.MonkeyPatch, faces: Any, diarize: Any) -> list[str]:
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
    monkeypatch.setattr(flows.video, "STAGES", stages)
    return fused


def test_faces_and_speech_branches_run_side_by_side_then_fusion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    speech_running = threading.Event()

    def faces(outputs: StageOutputs) -> dict[str, Any]:
        # run one after the other, this would wait for a speech stage that has not started
        assert speech_running.wait(WAIT_S), "the speech branch did not run beside the faces branch"
        return {"faces": "tracks", "backend": "test faces"}

    def diarize(outputs: StageOutputs) -> dict[str, Any]:
        speech_running.set()
        return {"turns": ["A"], "backend": "test turns"}

    fused = _stages(monkeypatch, faces, diarize)
    outputs = _outputs(tmp_path)
    order = _run(outputs)
    assert order[-1] == "emotions" and sorted(order[:-1]) == ["diarize", "faces", "transcribe"]
    assert order.index("diarize") < order.index("transcribe")
    assert fused == ["faces=tracks turns=['A'] words=['hello']"]
    assert outputs.backends == {
        "faces": "test faces",
        "diarize": "test turns",
        "transcribe": "test words",
        "emotions": "test fusion",
    }


def test_a_failing_branch_stops_the_other_and_its_error_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
        except flows.video.BranchStoppedError:
            speech_stopped.set()
            raise
        return {"turns": [], "backend": "test turns"}

    fused = _stages(monkeypatch, faces, diarize)
    outputs = _outputs(tmp_path)
    deadline = outputs.hook
    begin = time.monotonic()
    with pytest.raises(RuntimeError, match="face model broke"):
        _run(outputs)
    assert speech_stopped.is_set() and time.monotonic() - begin < WAIT_S / 2
    assert fused == []  # fusion never ran on half a video
    assert outputs.hook is deadline  # the video's own deadline hook is back


def test_the_deadline_still_stops_a_branch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def faces(outputs: StageOutputs) -> dict[str, Any]:
        while True:
            outputs.hook("detect", 1, None)
            time.sleep(0.01)

    def diarize(outputs: StageOutputs) -> dict[str, Any]:
        return {"turns": [], "backend": "test turns"}

    _stages(monkeypatch, faces, diarize)
    outputs = _outputs(tmp_path)
    outputs.hook = flows.video.deadline_hook(0.2)
    with pytest.raises(flows.video.VideoTimeoutError, match="during detect"):
        _run(outputs)
