"""`affectflow train` and `affectflow evaluate`: RCMA on Aff-Wild2 from a features cache.

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

if TYPE_CHECKING:
    from affectflow.model.rcma import RCMAConfig
    from affectflow.model.train import TrainConfig

COMMANDS = {  # each command's line in `affectflow --help`
    "train": "train RCMA on Aff-Wild2 valence/arousal from cached per-frame features",
    "evaluate": "CCC of a checkpoint on Aff-Wild2, per video and overall",
}
_TARGETS = {"both": ("valence", "arousal"), "valence": ("valence",), "arousal": ("arousal",)}


def add_commands(commands: argparse._SubParsersAction) -> None:
    from affectflow.model.rcma import MODALITIES, RCMAConfig
    from affectflow.model.train import TrainConfig

    _add_train(commands, RCMAConfig(), TrainConfig(), MODALITIES)
    _add_evaluate(commands)


def _add_train(
    commands: argparse._SubParsersAction, model: RCMAConfig, training: TrainConfig, modalities: tuple[str, ...]
) -> None:
    train = commands.add_parser(
        "train",
        help=COMMANDS["train"],
        description=(
            "Train RCMA on the official Aff-Wild2 Train_Set, keeping the best checkpoint by CCC on "
            "Validation_Set. Defaults are the authors' (Praveen & Alam, ABAW6 2024). Features are read "
            "from --features-cache (<cache>/<video>/{visual,audio,text}.npy); input dims come from it."
        ),
    )
    train.add_argument("--affwild2", required=True, type=Path, help="Aff-Wild2 root (annotations + cropped_aligned)")
    train.add_argument("--features-cache", required=True, type=Path, help="per-video features cache folder")
    train.add_argument("--out", required=True, type=Path, help="checkpoint to write (best by validation CCC)")
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


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help=COMMANDS["evaluate"],
        description="Overall CCC concatenates all valid frames of the split, as the ABAW challenge scores.",
    )
    evaluate.add_argument("checkpoint", type=Path)
    evaluate.add_argument("--affwild2", required=True, type=Path)
    evaluate.add_argument("--features-cache", required=True, type=Path)
    evaluate.add_argument("--split", choices=("validation", "train"), default="validation")
    evaluate.add_argument("--out", type=Path, help="also write the table (.csv or .parquet)")
    evaluate.add_argument("--device", default="cpu")
    evaluate.set_defaults(func=cmd_evaluate)


def cmd_train(args: argparse.Namespace) -> int:
    from affectflow.flows.train import epoch_listener, train_flow

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
    token = epoch_listener.set(lambda line, done, total: print(line, file=sys.stderr, flush=True))
    try:
        metrics = train_flow(
            str(args.affwild2),
            str(args.features_cache),
            str(args.out),
            model=model,
            train=train,
            targets=_TARGETS[args.targets],
            resume=args.resume,
        )
    finally:
        epoch_listener.reset(token)
    scores = ", ".join(f"{k} {v:.3f}" for k, v in metrics["validation_ccc"].items())
    print(f"best epoch {metrics['epoch']}: validation CCC {scores}; checkpoint {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from affectflow.flows.train import evaluate_flow

    scores = evaluate_flow(
        str(args.checkpoint),
        str(args.affwild2),
        str(args.features_cache),
        out_table=str(args.out) if args.out else None,
        split=args.split,
        device=args.device,
    )
    print_scores([*scores["videos"], scores["overall"]])
    return 0


def print_scores(rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    width = max(len(str(r["video"])) for r in rows)
    print("  ".join([f"{'video':<{width}}", *(f"{c:>12}" for c in columns[1:])]))
    for row in rows:
        cells = [f"{v:>12.4f}" if isinstance(v, float) else f"{v:>12}" for v in list(row.values())[1:]]
        print("  ".join([f"{row['video']:<{width}}", *cells]))
