"""One list of run parameters (flows/parameters.py) makes the CLI, the flow's signature and the README table.

Unit tier: nothing here imports Prefect or a stage (tests/test_flow_parameters.py checks
the flow and the config built from the list).
"""

from __future__ import annotations

import argparse
import inspect
import typing
from pathlib import Path

import pytest

from affectflow.flows.cli import build_parser
from affectflow.flows.parameters import (
    README_BLOCK,
    REQUIRED,
    RUN_PARAMETERS,
    add_run_options,
    cli_values,
    configuration_markdown,
    flow_signature,
    positive_int,
    stage_list,
)
from affectflow.tasks import emotions, faces, speech
from affectflow.tasks.defaults import ALL_STAGES, DEFAULT_FPS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
BY_NAME = {p.name: p for p in RUN_PARAMETERS}


def parse(*argv: str) -> dict[str, object]:
    return cli_values(build_parser("run").parse_args(["run", *argv]))


def test_the_cli_defaults_are_the_flow_defaults() -> None:
    assert parse("SRC", "--out", "OUT") == {
        "source": "SRC",
        "out": "OUT",
        **{name: p.default for name, p in BY_NAME.items() if not p.required},
    }


def test_every_option_reaches_its_flow_parameter() -> None:
    given = parse(
        *("SRC", "--out", "OUT", "--fps", "2", "--force", "--workers", "3", "--video-timeout", "60"),
        *("--stages", "faces,emotions", "--work-dir", "W", "--faces-backend", "insightface"),
        *("--diarizer", "pyannote", "--speakers", "2", "--min-speakers", "1", "--max-speakers", "4"),
        *("--asr-model", "tiny.en", "--language", "fr", "--emotion-model", "teachers", "--dask-local", "2"),
        *("--no-identity", "--no-reports", "--export", "srt,eaf", "--compact"),
    )
    assert given == {
        "source": "SRC",
        "out": "OUT",
        "fps": 2.0,
        "force": True,
        "workers": 3,
        "video_timeout_s": 60.0,
        "stages": ["faces", "emotions"],
        "work_dir": "W",
        "faces_backend": "insightface",
        "diarizer": "pyannote",
        "num_speakers": 2,
        "min_speakers": 1,
        "max_speakers": 4,
        "asr_model": "tiny.en",
        "language": "fr",
        "emotion_model": "teachers",
        "no_identity": True,
        "no_reports": True,
        "export_formats": ["srt", "eaf"],
        "compact": True,
        "dask_address": None,
        "dask_local_workers": 2,
    }
    assert parse("S", "--out", "O", "--dask-address", "tcp://h:1")["dask_address"] == "tcp://h:1"
    assert parse("S", "--out", "O", "--stages", "none")["stages"] == []  # media staging only


def test_choices_and_their_defaults_are_the_registries() -> None:
    registries = {"faces_backend": faces.BACKENDS, "diarizer": speech.DIARIZERS, "emotion_model": emotions.MODELS}
    parser = argparse.ArgumentParser()
    add_run_options(parser)
    actions = {action.dest: action for action in parser._actions}
    for name, names in registries.items():
        p = BY_NAME[name]
        assert p.choices == names and tuple(actions[name].choices or ()) == names
        assert typing.get_args(p.annotation) == names  # the flow's schema offers the same enum
        assert p.default == names[0]
    assert (BY_NAME["fps"].default, BY_NAME["stages"].shown_default) == (DEFAULT_FPS, f"all: {','.join(ALL_STAGES)}")


def test_the_flow_signature_is_the_list_in_order() -> None:
    signature = flow_signature()
    assert list(signature.parameters) == [p.name for p in RUN_PARAMETERS]
    for p, parameter in zip(RUN_PARAMETERS, signature.parameters.values(), strict=True):
        assert (parameter.default, parameter.annotation) == (p.default, p.annotation)
        positional = parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        assert positional == (p.default is REQUIRED)  # source, out by position; every option by keyword
    assert [n for n, p in signature.parameters.items() if p.default is REQUIRED] == ["source", "out"]


def test_option_parsers_refuse_what_cannot_run() -> None:
    assert stage_list("faces,,diarize") == ["faces", "diarize"]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown stage"):
        stage_list("faces,lipreading")
    with pytest.raises(argparse.ArgumentTypeError, match="greater than 0"):
        positive_int("0")


def test_the_readme_configuration_tables_are_the_generated_ones() -> None:
    readme = (ROOT / "README.md").read_text()
    start, end = README_BLOCK
    assert start in readme and end in readme, "README has lost its generated Configuration block"
    block = readme[readme.index(start) + len(start) : readme.index(end)]
    assert block.strip() == configuration_markdown().strip(), "run: python -m affectflow.flows.parameters README.md"
