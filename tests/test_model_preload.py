"""Loading the models before the first video (what `affectflow run` does while Prefect starts, issue 23).

The loaders are caches keyed by their arguments: if the stages called them with other
arguments than ``load_models``, the first video would load every model a second time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from affectflow.flows.stages import load_models
from affectflow.flows.video import DEFAULT_STEPS, run_video
from affectflow.tasks.config import PipelineConfig
from affectflow.tasks.emotions.infer import load_predictor
from affectflow.tasks.faces.backends import _load as load_face_backend
from affectflow.tasks.speaking.mouth import load_mesh
from affectflow.tasks.speech.diarize import load_pipeline
from affectflow.tasks.speech.transcribe import load_asr
from affectflow.tasks.storage.discover import discover
from affectflow.tasks.synth.talking import Scene, make_talking_clip

pytestmark = pytest.mark.models

LOADERS = {"faces": load_face_backend, "speaking": load_mesh, "emotions": load_predictor,
           "diarize": load_pipeline, "transcribe": load_asr}  # fmt: skip


def test_after_loading_the_models_the_first_video_loads_none(tmp_path: Path) -> None:
    config = PipelineConfig()
    assert load_models(config) == ["faces", "speaking", "emotions", "diarize", "transcribe"]
    loads = {name: loader.cache_info().misses for name, loader in LOADERS.items()}
    make_talking_clip(tmp_path / "corpus" / "clip.mp4", Scene(("astronaut",), ((0, 0),), seed=1))
    result = run_video(
        discover(str(tmp_path / "corpus"))[0], str(tmp_path / "out"), config, "run", steps=DEFAULT_STEPS.plain()
    )
    assert result.status == "ok", result.error
    assert {name: loader.cache_info().misses for name, loader in LOADERS.items()} == loads  # every stage hit its cache


def test_only_the_configured_stages_load() -> None:
    assert load_models(PipelineConfig(stages=("diarize",))) == ["diarize"]
    assert load_models(PipelineConfig(stages=("speaking", "emotions"))) == []  # they need the faces stage
    assert load_models(PipelineConfig(stages=())) == []
