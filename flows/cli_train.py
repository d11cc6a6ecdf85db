"""`affectflow train` and `affectflow evaluate`: RCMA on Aff-Wild2, from the official release.

`train` builds (or reuses) the features cache with the pipeline's own extractors
(flows/affwild2.py), then trains; `evaluate` scores a checkpoint and writes the submission files.

The options' defaults are the model's and the training's own (``RCMAConfig``, ``TrainConfig``),
which live beside torch: they are imported when these commands are built, so `affectflow
--help` (which reads only ``COMMANDS``) imports no torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from affectflow.tasks.defaults import DEFAULT_FPS

if TYPE_CHECKING:
    from affectflow.model.rcma import RCMAConfig
    from affectflow.model.train import TrainConfig

COMMANDS = {  # each command's line in `affectflow --help`
    "train": "train RCMA on Aff-Wild2 valence/arousal (builds the features cache from the release first)",
    "evaluate": "CCC of a checkpoint on Aff-Wild2, per video and overall",
}
_TARGETS = {"both": ("valence", "arousal"), "valence": ("valence",), "arousal": ("arousal",)}


def add_commands(commands: argparse._SubParsersAction) -> None:
    from affectflow.model.rcma import MODALITIES, RCMAConfig
    from affectflow.model.train import TrainConfig

    train = _add_train(commands, RCMAConfig(), TrainConfig(), MODALITIES)
    _add_extraction(train)
    _add_evaluate(commands)


def _add_train(
    commands: argparse._SubParsersAction, model: RCMAConfig, training: TrainConfig, modalities: tuple[str, ...]
) -> argparse.ArgumentParser:
    train = commands.add_parser(
        "train",
        help=COMMANDS["train"],
        description=(
            "Train RCMA on the official Aff-Wild2 Train_Set, keeping the best checkpoint by CCC on "
            "Validation_Set. Defaults are the authors' (Praveen & Alam, ABAW6 2024). First the features "
            "cache (<cache>/<video>/{visual,audio,text}.npy) is built from the release's videos and "
            "cropped-aligned faces with the pipeline's own extractors; cached videos are skipped."
        ),
    )
    train.add_argument(
        "--affwild2", required=True, type=Path, help="Aff-Wild2 root (videos, cropped_aligned, annotations)"
    )
    train.add_argument(
        "--features-cache", type=Path, help="per-video features cache (default ROOT/affectflow-features-V-A-T)"
    )
    train.add_argument("--out", type=Path, help="checkpoint to write (best by validation CCC; not with --extract-only)")
    train.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    train.add_argument("--epochs", type=int, default=training.epochs, help=f"at most (default {training.epochs})")
    train.add_argument("--min-epochs", type=int, default=training.min_epochs)
    train.add_argument(
        "--early-stopping", type=int, default=training.early_stopping, help="patience in epochs, 0 = off"
    )
    train.add_argument("--batch-size", type=int, default=training.batch_size)
    train.add_argument("--lr", type=float, default=training.lr, help=f"Adam learning rate (default {training.lr:g})")
    train.add_argument("--seq-len", type=int, help=f"window length in frames (default {model.seq_len})")
    train.add_argument("--hop", type=int, default=training.hop, help="frames between window starts")
    train.add_argument("--iterations", type=int, help=f"recursive attention steps (default {model.iterations})")
    train.add_argument("--share-weights", action="store_true", help="one attention block reused at every step")
    train.add_argument("--targets", choices=sorted(_TARGETS), default="both", help="outputs (authors: one model each)")
    train.add_argument("--modalities", default=",".join(modalities), help="use only these; the others read as missing")
    train.add_argument("--seed", type=int, default=training.seed)
    train.add_argument("--model-config", type=Path, help="JSON of RCMAConfig fields to override (e.g. TCN channels)")
    train.add_argument("--resume", action="store_true", help="continue from OUT.resume (written every epoch)")
    train.set_defaults(func=cmd_train)
    return train


def _add_extraction(train: argparse.ArgumentParser) -> None:
    """The cache builder's options: the emotions stage's extractor choices and defaults."""
    from affectflow.flows.affwild2 import ExtractionConfig
    from affectflow.flows.parameters import positive_int
    from affectflow.tasks.features.timeline import REGISTRY

    defaults = ExtractionConfig()
    for m, chosen in defaults.choice.items():
        train.add_argument(f"--{m}", choices=sorted(REGISTRY[m]), default=chosen, help=f"{m} features (as run)")
    train.add_argument("--extract-only", action="store_true", help="build the features cache, train nothing")
    train.add_argument("--workers", type=positive_int, default=1, metavar="N", help="videos extracted at once")
    train.add_argument(
        "--fps",
        type=float,
        default=DEFAULT_FPS,
        help=f"rows per second the model learns from, the rate `affectflow run --fps` analyses (default "
        f"{DEFAULT_FPS:g}, the run's default; the checkpoint records it, evaluation scores every frame); "
        "0: each video's own frame rate",
    )
    train.add_argument(
        "--extract-device", default=defaults.device, help="extractors' device: auto (CUDA when present), cpu, cuda"
    )


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help=COMMANDS["evaluate"],
        description="Overall CCC concatenates all valid frames of the split, as the ABAW challenge scores.",
    )
    evaluate.add_argument("checkpoint", type=Path)
    evaluate.add_argument("--affwild2", required=True, type=Path)
    evaluate.add_argument("--features-cache", type=Path, help="default: the one the checkpoint was trained from")
    evaluate.add_argument("--split", choices=("validation", "train"), default="validation")
    evaluate.add_argument("--out", type=Path, help="also write the table (.csv or .parquet)")
    evaluate.add_argument(
        "--predictions", type=Path, help="folder for the submission files: <video>.txt, one row per frame"
    )
    evaluate.add_argument("--device", default="cpu")
    evaluate.set_defaults(func=cmd_evaluate)


def cmd_train(args: argparse.Namespace) -> int:
    from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

    from affectflow.flows.affwild2 import ExtractionConfig, ReleaseFeatures, default_cache
    from affectflow.flows.train import progress_listener, train_flow
    from affectflow.tasks.speech.transcribe import TranscribeConfig

    model: dict[str, Any] = json.loads(args.model_config.read_text()) if args.model_config else {}
    flags = {"seq_len": args.seq_len, "iterations": args.iterations, "share_weights": args.share_weights or None}
    model.update({k: v for k, v in flags.items() if v is not None})
    train = {
        "epochs": args.epochs,
        "min_epochs": args.min_epochs,
        "early_stopping": args.early_stopping,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "hop": args.hop,
        "seed": args.seed,
        "device": args.device,
        "modalities": tuple(m for m in args.modalities.split(",") if m),
    }
    if args.fps < 0:
        raise ValueError(f"--fps must be positive, or 0 for each video's own rate; got {args.fps:g}")
    if args.out is None and not args.extract_only:
        raise ValueError(
            "affectflow train needs --out CHECKPOINT (or --extract-only to build the features cache alone)"
        )
    device = args.extract_device  # the extractors' and the transcription's
    extraction = ExtractionConfig(args.visual, args.audio, args.text, device, TranscribeConfig(device=device))
    cache = args.features_cache or default_cache(args.affwild2, extraction)
    extract = ReleaseFeatures(args.affwild2, cache, extraction, hook=_print_step)
    runner: TaskRunner[Any] = ThreadPoolTaskRunner(max_workers=args.workers)  # videos extracted at once
    flow = train_flow.with_options(task_runner=runner)
    token = progress_listener.set(lambda line, done, total: print(line, file=sys.stderr, flush=True))
    try:
        metrics = flow(
            str(args.affwild2),
            str(cache),
            str(args.out or ""),
            model=model,
            train=train,
            targets=_TARGETS[args.targets],
            resume=args.resume,
            extract=extract,
            extract_only=args.extract_only,
            fps=args.fps or None,
        )
    finally:
        progress_listener.reset(token)
    if args.extract_only:
        return 0
    scores = ", ".join(f"{k} {v:.3f}" for k, v in metrics["validation_ccc"].items())
    print(f"best epoch {metrics['epoch']}: validation CCC {scores}; checkpoint {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from affectflow.flows.train import evaluate_flow

    scores = evaluate_flow(
        str(args.checkpoint),
        str(args.affwild2),
        str(args.features_cache) if args.features_cache else None,
        out_table=str(args.out) if args.out else None,
        split=args.split,
        device=args.device,
        predictions=str(args.predictions) if args.predictions else None,
    )
    print_scores([*scores["videos"], scores["overall"]])
    if args.predictions:
        print(f"submission files: {len(scores['predictions'])} in {args.predictions}")
    return 0


def _print_step(step: str, completed: int, total: int | None) -> None:
    """A line on stderr as each extraction step of a video finishes (``<video>: visual 300/300``)."""
    if total is not None and completed == total:
        print(f"features {step} {completed}/{total}", file=sys.stderr, flush=True)


def print_scores(rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    width = max(len(str(r["video"])) for r in rows)
    print("  ".join([f"{'video':<{width}}", *(f"{c:>12}" for c in columns[1:])]))
    for row in rows:
        cells = [f"{v:>12.4f}" if isinstance(v, float) else f"{v:>12}" for v in list(row.values())[1:]]
        print("  ".join([f"{row['video']:<{width}}", *cells]))
