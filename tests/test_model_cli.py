"""`affectflow train` then `affectflow evaluate` end to end, through the Prefect flows.

On a tiny fake Aff-Wild2 in the official layout with a features cache, and a tiny model.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", "true")

from affectflow.flows import cli_train
from affectflow.flows.train import train_flow
from affectflow.model.checkpoint import CheckpointError, load_checkpoint
from tests.fake_affwild2 import SPLIT_VIDEOS, make_affwild2

pytestmark = pytest.mark.integration  # starts the ephemeral Prefect server (once per session)

TINY = {"visual_channels": [8, 8], "audio_channels": [8, 8], "text_channels": [8, 8], "head_dim": 16, "dropout": 0.1}
NAMES = {"visual": "fake-face", "audio": "fake-voice", "text": "fake-words"}


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="affectflow")
    cli_train.add_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root, cache, work = (tmp_path_factory.mktemp(n) for n in ("affwild2", "cache", "work"))
    make_affwild2(root, cache)
    description = {m: {"extractor": NAMES[m], "dim": 6} for m in NAMES}
    (cache / "features.json").write_text(json.dumps({**description, "fps": None}))
    (work / "tiny.json").write_text(json.dumps(TINY))
    return root, cache, work


def evaluate_args(root: Path, cache: Path, work: Path, table: Path) -> list[str]:
    return [
        "evaluate",
        str(work / "rcma.pt"),
        "--affwild2",
        str(root),
        "--features-cache",
        str(cache),
        "--out",
        str(table),
    ]


def train_args(root: Path, cache: Path, work: Path, epochs: int) -> list[str]:
    return [
        "train",
        "--affwild2",
        str(root),
        "--features-cache",
        str(cache),
        "--out",
        str(work / "rcma.pt"),
        "--model-config",
        str(work / "tiny.json"),
        "--seq-len",
        "64",
        "--hop",
        "32",
        "--epochs",
        str(epochs),
        "--min-epochs",
        "0",
        "--lr",
        "3e-3",
        "--batch-size",
        "8",
    ]


def test_train_then_evaluate_then_resume(dataset: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root, cache, work = dataset
    assert run(train_args(root, cache, work, epochs=3)) == 0
    out = capsys.readouterr()
    assert out.err.count("epoch ") == 3 and "checkpoint" in out.out

    model, info = load_checkpoint(work / "rcma.pt")
    assert model.seq_len == 64 and model.config.visual_channels == (8, 8) and model.config.visual_dim == 6
    assert info.features == {m: {"extractor": NAMES[m], "dim": 6} for m in NAMES}
    assert info.training["train"]["videos"] == 4 and info.training["validation"]["videos"] == 2
    assert info.training["config"]["lr"] == 3e-3 and len(info.training["history"]) == 3
    assert info.fps == 5.0  # trained at the run's default rate (the 30 fps cache resampled), as `run` extracts
    best = info.metrics["validation_ccc"]

    table = work / "scores.csv"
    assert run(evaluate_args(root, cache, work, table)) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in SPLIT_VIDEOS["Validation_Set"]) and "ALL" in printed
    rows = list(csv.DictReader(table.open()))
    assert [r["video"] for r in rows] == [*sorted(SPLIT_VIDEOS["Validation_Set"]), "ALL"]
    overall = rows[-1]
    assert int(overall["frames"]) == 241 + 173 and int(overall["valid_frames"]) == 241 + 173 - 2 * 15
    for key in ("valence", "arousal", "mean"):  # the same model and data as the best epoch's validation
        assert float(overall[key]) == pytest.approx(best[key], abs=1e-5)

    assert run([*train_args(root, cache, work, epochs=4), "--resume"]) == 0
    _, resumed = load_checkpoint(work / "rcma.pt")
    assert [h["epoch"] for h in resumed.training["history"]] == [1, 2, 3, 4]
    assert resumed.training["history"][:3] == info.training["history"]


def test_evaluate_refuses_features_of_another_dim(dataset: tuple[Path, Path, Path], tmp_path: Path) -> None:
    root, cache, work = dataset
    if not (work / "rcma.pt").exists():
        run(train_args(root, cache, work, epochs=1))
    other = tmp_path / "cache"
    for video in cache.iterdir():
        if video.is_dir():
            (other / video.name).mkdir(parents=True)
            for m in NAMES:
                np.save(other / video.name / f"{m}.npy", np.zeros((400, 9), dtype=np.float32))
    with pytest.raises(CheckpointError, match=r"expects visual features of dim 6 .* the cache has dim 9"):
        run(["evaluate", str(work / "rcma.pt"), "--affwild2", str(root), "--features-cache", str(other)])


def test_train_flow_extracts_missing_features_once(dataset: tuple[Path, Path, Path], tmp_path: Path) -> None:
    root, _, _ = dataset
    calls: list[str] = []

    def extract(video_frames_dir: Path | None, annotation: Path) -> dict[str, np.ndarray]:
        calls.append(annotation.stem)
        assert video_frames_dir is not None and video_frames_dir.name == annotation.stem
        n = sum(1 for _ in annotation.open()) - 1
        rng = np.random.default_rng(len(calls))
        return {**{m: rng.normal(size=(n, 5)).astype(np.float32) for m in NAMES}, "text_mask": np.arange(n) % 2 == 0}

    extract.names = NAMES  # type: ignore[attr-defined]
    cache, ckpt = tmp_path / "cache", tmp_path / "rcma.pt"
    options = {"model": {**TINY, "seq_len": 64}, "train": {"epochs": 1, "hop": 64, "lr": 1e-3}}
    train_flow(str(root), str(cache), str(ckpt), extract=extract, **options)
    videos = [*SPLIT_VIDEOS["Train_Set"], *SPLIT_VIDEOS["Validation_Set"]]
    assert sorted(calls) == sorted(videos)
    assert np.load(cache / "video74" / "text_mask.npy").sum() == 87  # frames 0, 2, …, 172
    assert json.loads((cache / "features.json").read_text())["audio"] == {"extractor": "fake-voice", "dim": 5}
    _, info = load_checkpoint(ckpt)
    assert info.features["visual"] == {"extractor": "fake-face", "dim": 5}

    train_flow(str(root), str(cache), str(ckpt), extract=extract, **options)
    assert len(calls) == len(videos)  # the second run found everything cached


def test_scores_table_as_parquet(dataset: tuple[Path, Path, Path], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    root, cache, work = dataset
    if not (work / "rcma.pt").exists():
        run(train_args(root, cache, work, epochs=1))
    table = tmp_path / "scores.parquet"
    assert run(evaluate_args(root, cache, work, table)) == 0
    rows = pq.read_table(table).to_pylist()
    assert rows[-1]["video"] == "ALL" and set(rows[-1]) == {
        "video",
        "frames",
        "valid_frames",
        "valence",
        "arousal",
        "mean",
    }
