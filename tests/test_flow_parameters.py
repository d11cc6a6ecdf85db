"""The process-corpus flow as Prefect sees it, and the config built from its parameters, are the one list.

flows/parameters.py sets the flow's signature from RUN_PARAMETERS; this checks what Prefect
makes of it (the deployment parameter schema, parameter validation) and that the
PipelineConfig built from the parameters is the config's own when nothing is given.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from prefect.exceptions import ParameterTypeError

from affectflow.flows.corpus import flow_parameters, pipeline_config, process_corpus, run_corpus
from affectflow.flows.parameters import RUN_OPTIONS, RUN_PARAMETERS
from affectflow.tasks.config import PipelineConfig
from affectflow.tasks.emotions.infer import EmotionConfig
from affectflow.tasks.faces.stage import FacesConfig
from affectflow.tasks.people.config import IdentityConfig
from affectflow.tasks.speech.diarize import DiarizeConfig
from affectflow.tasks.speech.transcribe import TranscribeConfig

pytestmark = pytest.mark.unit  # imports the Prefect flows, runs none (no server): as test_deployments


def test_the_deployment_schema_lists_every_parameter_with_type_default_and_description() -> None:
    schema = process_corpus.parameters.model_dump()
    assert list(schema["properties"]) == [p.name for p in RUN_PARAMETERS]
    assert schema["required"] == ["source", "out"]
    for p in RUN_PARAMETERS:
        field = schema["properties"][p.name]
        assert field["description"].startswith(p.help)
        assert field.get("default") == (None if p.required else p.default)
        assert field.get("enum") == (list(p.choices) if p.choices else None)


def test_prefect_validates_deployment_values_against_the_list() -> None:
    assert process_corpus.validate_parameters({"source": "s", "out": "o", "fps": "2.5"})["fps"] == 2.5
    with pytest.raises(ParameterTypeError, match="faces_backend"):
        process_corpus.validate_parameters({"source": "s", "out": "o", "faces_backend": "dlib"})


def test_an_unknown_parameter_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="asr"):
        flow_parameters("s", "o", asr="tiny.en")


def test_no_parameters_give_the_configs_own_defaults() -> None:
    assert pipeline_config(flow_parameters("s", "o")) == PipelineConfig()
    defaults = {p.name: p.default for p in RUN_PARAMETERS}
    assert defaults["faces_backend"] == FacesConfig().backend
    assert defaults["diarizer"] == DiarizeConfig().backend
    assert defaults["emotion_model"] == EmotionConfig().model
    assert defaults["fps"] == PipelineConfig().fps


def test_each_config_parameter_sets_its_field() -> None:
    given: dict[str, Any] = {
        "fps": 2.0,
        "stages": ["faces"],
        "faces_backend": "insightface",
        "diarizer": "default",
        "num_speakers": 2,
        "min_speakers": 1,
        "max_speakers": 3,
        "asr_model": "tiny.en",
        "language": "fr",
        "emotion_model": "teachers",
        "no_identity": True,
    }
    assert {p.name for p in RUN_PARAMETERS if p.config} == set(given)
    config = pipeline_config(flow_parameters("s", "o", **given))
    assert config == PipelineConfig(
        fps=2.0,
        stages=("faces",),
        faces=FacesConfig(backend="insightface"),
        diarize=DiarizeConfig(num_speakers=2, min_speakers=1, max_speakers=3),
        transcribe=TranscribeConfig(model_dir="tiny.en", language="fr"),
        emotions=EmotionConfig(model="teachers"),
        identity=IdentityConfig(off=True),
    )


def test_the_run_options_are_run_corpus_keyword_arguments() -> None:
    keywords = [n for n, p in inspect.signature(run_corpus).parameters.items() if p.kind is p.KEYWORD_ONLY]
    assert sorted(RUN_OPTIONS) == sorted(keywords)
