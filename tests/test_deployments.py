"""prefect.yaml: two deployments of the corpus flow, a valid nightly schedule, importable entrypoints."""

from __future__ import annotations

import importlib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from cronsim import CronSim
from prefect.client.schemas.schedules import CronSchedule

pytestmark = pytest.mark.unit

SPEC = yaml.safe_load((Path(__file__).resolve().parent.parent / "prefect.yaml").read_text())


def deployments() -> dict[str, dict]:
    return {d["name"]: d for d in SPEC["deployments"]}


def test_nightly_and_folder_deployments_run_the_corpus_flow() -> None:
    assert {"nightly-corpus", "folder"} <= set(deployments())
    for spec in deployments().values():
        path, function = spec["entrypoint"].split(":")
        module = "affectflow." + path.removesuffix(".py").replace("/", ".")  # flows/ is affectflow.flows
        flow = getattr(importlib.import_module(module), function)
        assert flow.name == "process-corpus"
        assert set(spec.get("parameters", {})) <= set(flow.parameters.properties)


def test_nightly_schedule_is_a_valid_cron_in_a_real_timezone() -> None:
    (schedule,) = deployments()["nightly-corpus"]["schedules"]
    CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])  # Prefect's own validation
    fire = next(CronSim(schedule["cron"], datetime(2026, 1, 1, 12, tzinfo=ZoneInfo(schedule["timezone"]))))
    assert (fire.day, fire.hour, fire.minute) == (2, 2, 0)


def test_folder_deployment_has_no_schedule() -> None:
    assert not deployments()["folder"].get("schedules")


def test_model_stages_carry_the_gpu_tag_that_a_concurrency_limit_bounds() -> None:
    from affectflow.flows.stages import STAGES

    assert {stage.name for stage in STAGES} == {"faces", "diarize", "transcribe", "speaking", "emotions"}
    assert all("gpu" in stage.task.tags for stage in STAGES)  # type: ignore[attr-defined]


def test_deployments_share_the_process_pool_and_run_from_the_checkout() -> None:
    (step,) = SPEC["pull"]
    assert step["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ $PWD }}"
    assert {spec["work_pool"]["name"] for spec in deployments().values()} == {"affectflow"}
