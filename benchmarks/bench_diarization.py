"""Speaker count, DER and boundaries of the default diarizer on voices it was not tuned on.

    python benchmarks/bench_diarization.py [--seed 0] [--per-half 120] [--half held-out] [--calibrate windows|turns]

240 generated conversations (tasks/synth/conversations.py: 1–4 espeak-ng voices, pauses or
short overlaps) in a tuning half and a held-out half that share no voice, plus the real
two-speaker call pyannote.audio ships. Per condition (half, speakers, pause/overlap): speaker
count right, DER with a 0.25 s collar pooled over the condition and its worst conversation
(pyannote.metrics), the confusion of counts, turn-change boundary errors, and the
diarization RTF, each against the targets of issue 22. The WAVs are cached under
``$AFFECTFLOW_CACHE_DIR/conversations/seed<seed>``.

``--calibrate windows`` re-derives tasks/speech/ge2e_calibration.npz (the clustering of
pyannote's window embeddings) and ``--calibrate turns`` tasks/speech/ge2e_turn_calibration.npz
(the second pass, tasks/speech/turn_clustering.py), each from the tuning half only: the mean
embedding (the centre), then the merge threshold, size bonus, minimum cluster size and
cannot-link tolerance that count the tuning conversations right most often (ties: the setting
whose grid neighbours do best, i.e. the middle of the widest plateau). The shipped window
calibration was chosen on the first 40 tuning conversations (``--per-half 40``), the turn
calibration on all 120.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from affectflow.tasks.settings import settings
from affectflow.tasks.speech.diarize import CALIBRATION, MAX_SPEAKERS, DiarizeConfig, diarize, load_pipeline
from affectflow.tasks.synth.conversations import PER_HALF, conversations
from affectflow.tasks.synth.speech import DialogueTruth
from tests.speech_metrics import boundary_errors, diarization_errors, real_call

TARGETS = {"count right": 0.90, "pooled DER": 0.10, "worst DER": 0.25, "boundary median s": 0.3, "RTF": 0.05}
GRID: dict[str, Any] = {  # window calibration grid: threshold, size bonus, minimum cluster size, tolerance
    "threshold": np.round(np.arange(0.40, 0.801, 0.025), 3),
    "size_bonus": (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8),
    "min_cluster_size": (1, 3, 5, 7),
    "cannot_tolerance": (0.0, 0.1, 0.2, 0.3, 0.5),
}
TURN_GRID: dict[str, Any] = {  # turn calibration grid: the same, sizes in seconds of speech
    "threshold": np.round(np.arange(0.40, 0.801, 0.025), 3),
    "size_bonus": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
    "min_cluster_size": (0.0, 1.0, 2.0, 3.0, 4.0, 6.0),
    "cannot_tolerance": (0.0, 0.25, 0.5, 1.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-half", type=int, default=PER_HALF)
    parser.add_argument("--half", choices=("tuning", "held-out", "both"), default="both")
    parser.add_argument(
        "--calibrate", choices=("windows", "turns"), help="rewrite that calibration from the tuning half"
    )
    parser.add_argument("--diarizer", choices=("default", "constrained"), default="constrained")
    args = parser.parse_args()
    directory = settings().cache() / "conversations" / f"seed{args.seed}"
    directory.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    planned = conversations(directory, args.seed, args.per_half)
    print(f"{len(planned)} conversations in {directory} ({time.perf_counter() - start:.0f} s to generate or read)")
    tuning = [truth for c, truth in planned if c.half == "tuning"]
    if args.calibrate == "windows":
        calibrate(tuning)
    elif args.calibrate == "turns":
        calibrate_turns(tuning)
    config = DiarizeConfig(backend=args.diarizer, device="cpu")
    load_pipeline.cache_clear()
    load_pipeline(config.backend, config.pipeline_dir, "cpu")
    print(f"cpu cores: {os.cpu_count()}, torch threads: {torch_threads()}, load average: {load_average()}")
    for half in ("tuning", "held-out") if args.half == "both" else (args.half,):
        rows = [measure(truth, c.num_speakers, c.overlap, config) for c, truth in planned if c.half == half]
        report(half, rows)
    call = real_call()
    row = measure(call, len(call.speakers), True, config)
    print(
        f"real call (pyannote.audio sample.wav, {call.duration:.0f} s): DER {row['der']:.3f} (target ≤ 0.05),"
        f" {row['found']} / {row['n']} speakers, RTF {row['seconds'] / call.duration:.3f}"
    )
    print(f"load average after: {load_average()}")


def measure(truth: DialogueTruth, n: int, overlap: bool, config: DiarizeConfig) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        turns = diarize(truth.wav, config).turns
        seconds = time.perf_counter() - start
        error, total = diarization_errors(truth, turns)  # pyannote.metrics warns of its approximated UEM
    found = len({t.speaker for t in turns})
    return {"n": n, "overlap": overlap, "found": found, "error": error, "total": total, "der": error / total,
            "boundaries": boundary_errors(truth, turns), "seconds": seconds, "duration": truth.duration}  # fmt: skip


def report(half: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{half} half ({len(rows)} conversations, {sum(r['duration'] for r in rows) / 60:.1f} min)")
    print(
        f"  {'condition':22s} {'count right':>11s} {'DER pooled':>10s} {'worst':>6s} {'bnd med':>7s} {'p90':>5s}  found"
    )
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[f"{r['n']} speakers, {'overlap' if r['overlap'] else 'pause'}"].append(r)
    for name, group in [*sorted(groups.items()), ("all", rows)]:
        s = summary(group)
        print(
            f"  {name:22s} {s['count right']:>10.0%} {s['pooled DER']:>10.3f} {s['worst DER']:>6.3f}"
            f" {s['boundary median s']:>7.2f} {s['boundary p90 s']:>5.2f}  {[r['found'] for r in group]}"
        )
    s = summary(rows)
    confusion: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        confusion[r["n"]][r["found"]] += 1
    found_values = sorted({r["found"] for r in rows})
    print("  count confusion (rows: true, columns: found): " + " ".join(f"{f:>3d}" for f in found_values))
    for n in sorted(confusion):
        print(f"    {n} speakers: " + " ".join(f"{confusion[n][f]:>3d}" for f in found_values))
    s["RTF"] = sum(r["seconds"] for r in rows) / sum(r["duration"] for r in rows)
    checks = [
        f"{name} {s[name]:.3f} {'≥' if name == 'count right' else '≤'} {target} "
        f"{'met' if (s[name] >= target if name == 'count right' else s[name] <= target) else 'MISSED'}"
        for name, target in TARGETS.items()
    ]
    print("  targets: " + "; ".join(checks))


def summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    boundaries = np.concatenate([r["boundaries"] for r in rows if r["boundaries"]] or [[np.nan]])
    return {
        "count right": float(np.mean([r["found"] == r["n"] for r in rows])),
        "pooled DER": sum(r["error"] for r in rows) / sum(r["total"] for r in rows),
        "worst DER": max(r["der"] for r in rows),
        "boundary median s": float(np.median(boundaries)),
        "boundary p90 s": float(np.percentile(boundaries, 90)),
    }


def calibrate(tuning: list[DialogueTruth]) -> None:
    """Write CALIBRATION from the tuning conversations' embeddings (see the module docstring)."""
    from affectflow.tasks.speech.clustering import Calibration, ConstrainedClustering

    pipeline = load_pipeline("constrained", None, "cpu")  # the pipeline diarize() below runs
    recorded: list[tuple[np.ndarray, np.ndarray]] = []  # per conversation: (n, 256) embeddings, (n,) windows

    class Recorder(ConstrainedClustering):
        def __call__(self, embeddings: np.ndarray, segmentations: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
            train, chunks, _ = self.filter_embeddings(embeddings, segmentations=segmentations)
            recorded.append((train, chunks))
            return super().__call__(embeddings, segmentations, **kwargs)

    original = pipeline.clustering
    pipeline.clustering = Recorder(original.calibration, MAX_SPEAKERS)
    for truth in tuning:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            diarize(truth.wav, DiarizeConfig(backend="constrained", device="cpu"))
    pipeline.clustering = original
    truths = [len(truth.speakers) for truth in tuning]  # each conversation's clustering ran once
    centre = np.concatenate([train for train, _ in recorded]).mean(0)
    scores = {}
    for setting in itertools.product(*GRID.values()):
        clustering = ConstrainedClustering(Calibration(centre, *setting), MAX_SPEAKERS)
        right = [
            clustering.cluster_windows(train - centre, chunks, 1, MAX_SPEAKERS).max() + 1 == truths[k]
            for k, (train, chunks) in enumerate(recorded)
        ]
        scores[setting] = float(np.mean(right))
    save_best(scores, GRID, centre, CALIBRATION, len(recorded))


def calibrate_turns(tuning: list[DialogueTruth]) -> None:
    """Write TURN_CALIBRATION from the tuning conversations' first-pass turns (see the module docstring)."""
    from affectflow.tasks.media.audio import read_wav
    from affectflow.tasks.speech.agglomeration import Calibration
    from affectflow.tasks.speech.turn_clustering import TURN_CALIBRATION, cluster_units

    pipeline = load_pipeline("constrained", None, "cpu")
    second_pass, pipeline.turn_reclustering = pipeline.turn_reclustering, None  # record the first pass's turns
    recorded = []  # per conversation: (n, 256) turn embeddings, units, first-pass turns
    try:
        for truth in tuning:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                turns = diarize(truth.wav, DiarizeConfig(backend="constrained", device="cpu")).turns
            units, embeddings = second_pass.embed(read_wav(truth.wav), turns)
            recorded.append((embeddings, units, turns))
    finally:
        pipeline.turn_reclustering = second_pass
    truths = [len(truth.speakers) for truth in tuning]
    centre = np.concatenate([e for e, units, _ in recorded if units]).mean(0)
    scores = {}
    for setting in itertools.product(*TURN_GRID.values()):
        calibration = Calibration(centre, *setting)
        right = [
            (cluster_units(e, units, turns, calibration).max() + 1 if units else 0) == truths[k]
            for k, (e, units, turns) in enumerate(recorded)
        ]
        scores[setting] = float(np.mean(right))
    save_best(scores, TURN_GRID, centre, TURN_CALIBRATION, len(recorded))


def save_best(
    scores: dict[tuple[Any, ...], float], grid: dict[str, Any], centre: np.ndarray, path: Path, n: int
) -> None:
    """Save the grid's best setting, ties broken by its neighbours' mean score."""
    from affectflow.tasks.speech.agglomeration import Calibration

    best = max(scores, key=lambda key: (scores[key], plateau(scores, key, grid)))
    Calibration(centre, *best).save(path)
    print(f"calibrated on {n} tuning conversations: threshold, size bonus, min size, cannot tolerance = {best},"
          f" count right {scores[best]:.0%} (neighbours {plateau(scores, best, grid):.0%}) → {path}")  # fmt: skip


def plateau(scores: dict[tuple[Any, ...], float], key: tuple[Any, ...], grid: dict[str, Any]) -> float:
    """Mean score of the grid neighbours of ``key`` (one step in any one parameter)."""
    axes = [list(values) for values in grid.values()]
    neighbours = []
    for axis, value in enumerate(key):
        index = axes[axis].index(value)
        for step in (-1, 1):
            if 0 <= index + step < len(axes[axis]):
                neighbour = list(key)
                neighbour[axis] = axes[axis][index + step]
                neighbours.append(scores[tuple(neighbour)])
    return float(np.mean(neighbours))


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    main()
