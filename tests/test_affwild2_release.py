"""From the official Aff-Wild2 layout to a checkpoint the pipeline runs, with the commands a user types.

On a fake release (tests/fake_affwild2.py ``make_release``): real talking-face videos with
speech, cropped-aligned faces cut from them (some frames without one), -5 rows, one
``_left`` / ``_right`` video. `train --affwild2` builds the features cache with the pipeline's
extractors and trains; a second `train` reuses it; `evaluate` scores and writes the submission
files; `run --emotion-model rcma` with that checkpoint names it in the emotions rows.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from affectflow.flows.cli import main
from affectflow.tasks.emotions.infer import file_sha256
from affectflow.tasks.features.audio import EGeMAPSProsody
from affectflow.tasks.features.visual import FerExpression
from tests.fake_affwild2 import RELEASE_INVALID, RELEASE_MISSING, make_release

pytestmark = pytest.mark.integration  # ffmpeg, espeak-ng, Whisper, FER, MiniLM and Prefect flows

TINY = {"visual_channels": [8, 8], "audio_channels": [8, 8], "text_channels": [8, 8], "head_dim": 16, "dropout": 0.1}
TWO = ("7-25-640x480_left", "7-25-640x480_right")
VALIDATION = "12-25-640x480"


def affectflow(*argv: str | Path) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of one in-process `affectflow` command."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def train_args(root: Path, cache: Path, ckpt: Path, tiny: Path, epochs: int) -> list[str | Path]:
    return [
        *("train", "--affwild2", root, "--features-cache", cache, "--out", ckpt, "--model-config", tiny),
        *("--seq-len", "32", "--hop", "16", "--epochs", str(epochs), "--min-epochs", "0", "--lr", "3e-3"),
        *("--batch-size", "4"),
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("affwild2-release")
    root, cache, ckpt, tiny = work / "release", work / "cache", work / "rcma-affwild2.pt", work / "tiny.json"
    labels = make_release(root)
    tiny.write_text(json.dumps(TINY))
    code, out, err = affectflow(*train_args(root, cache, ckpt, tiny, epochs=2))
    assert code == 0, err
    return {"root": root, "cache": cache, "ckpt": ckpt, "tiny": tiny, "labels": labels, "out": out, "err": err}


def test_train_builds_the_cache_with_the_pipeline_extractors(trained: dict) -> None:
    cache, root = trained["cache"], trained["root"]
    assert "features: 4 extracted, 0 cached" in trained["err"] and f"{TWO[0]}: visual" in trained["err"]
    assert "best epoch" in trained["out"]
    described = json.loads((cache / "features.json").read_text())
    assert described["visual"] == {"extractor": FerExpression.name, "dim": FerExpression.dim}
    assert described["audio"] == {"extractor": EGeMAPSProsody.name, "dim": EGeMAPSProsody.dim}
    assert described["text"]["extractor"].startswith("all-minilm") and described["text"]["dim"] == 384
    assert described["choice"] == {"visual": "fer", "audio": "egemaps", "text": "minilm"}

    for subject, labels in trained["labels"].items():
        n = len(labels)
        faces = {int(name.split(".")[0]) - 1 for name in os.listdir(root / "cropped_aligned" / subject)}
        visual_mask = np.load(cache / subject / "visual_mask.npy")
        assert visual_mask.tolist() == [i in faces for i in range(n)]  # a missing face is masked
        assert not visual_mask[list(RELEASE_MISSING)].any()
        assert np.load(cache / subject / "audio_mask.npy").all() and np.load(cache / subject / "text_mask.npy").any()
        assert np.load(cache / subject / "visual.npy").shape == (n, FerExpression.dim)
        assert json.loads((cache / subject / "meta.json").read_text()) == {"fps": 25.0}  # the video's own rate

    from affectflow.model.checkpoint import load_checkpoint

    assert load_checkpoint(trained["ckpt"])[1].fps == 5.0  # trained at the rate `affectflow run` analyses
    left, right = (cache / s for s in TWO)  # one video, one soundtrack; two faces
    for m in ("audio", "text", "text_mask"):
        np.testing.assert_array_equal(np.load(left / f"{m}.npy"), np.load(right / f"{m}.npy"))
    assert not np.allclose(np.load(left / "visual.npy"), np.load(right / "visual.npy"))


def test_a_second_train_reuses_the_cache(trained: dict, tmp_path: Path) -> None:
    cache = trained["cache"]
    written = {p: p.stat().st_mtime_ns for p in cache.rglob("*.npy")}
    code, _, err = affectflow(*train_args(trained["root"], cache, tmp_path / "again.pt", trained["tiny"], epochs=1))
    assert code == 0, err
    assert "features: 0 extracted, 4 cached" in err
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.npy")} == written


def test_a_cache_of_other_extractors_is_refused(trained: dict) -> None:
    argv = ("train", "--affwild2", trained["root"], "--features-cache", trained["cache"], "--extract-only")
    code, _, err = affectflow(*argv, "--audio", "vggish")
    assert code != 0 and "this cache was built with" in err and "audio egemaps" in err


def test_evaluate_scores_the_split_and_writes_the_submission_files(trained: dict, tmp_path: Path) -> None:
    from affectflow.model.checkpoint import load_checkpoint

    code, out, err = affectflow("evaluate", trained["ckpt"], "--affwild2", trained["root"], "--predictions", tmp_path)
    assert code == 0, err
    overall = next(line.split() for line in out.splitlines() if line.startswith("ALL"))
    n = len(trained["labels"][VALIDATION])
    assert overall[1:3] == [str(n), str(n - (RELEASE_INVALID.stop - RELEASE_INVALID.start))]  # -5 rows skipped
    best = load_checkpoint(trained["ckpt"])[1].metrics["validation_ccc"]
    assert [float(x) for x in overall[3:]] == pytest.approx([best["valence"], best["arousal"], best["mean"]], abs=1e-4)

    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{VALIDATION}.txt"]
    header, *rows = (tmp_path / f"{VALIDATION}.txt").read_text().splitlines()
    values = np.array([[float(x) for x in row.split(",")] for row in rows])
    assert header == "valence,arousal" and values.shape == (n, 2) and np.abs(values).max() <= 1


def test_run_with_the_checkpoint_names_it_in_the_emotions(
    trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(next(trained["root"].rglob(f"{VALIDATION}.mp4")), clips / "clip.mp4")
    monkeypatch.setenv("AFFECTFLOW_RCMA_CHECKPOINT", str(trained["ckpt"]))
    argv = ("run", clips, "--out", tmp_path / "out", "--stages", "faces,emotions", "--emotion-model", "rcma")
    code, _, err = affectflow(*argv)
    assert code == 0, err
    (part,) = (tmp_path / "out" / "emotions").rglob("*.parquet")
    models = set(pq.read_table(part).column("model").to_pylist())
    assert models == {f"rcma-affwild2 sha256:{file_sha256(trained['ckpt'])[:12]}"}
