"""The ``affectflow`` command line: run, sql, plot, demo, train, evaluate.

Errors a user can fix are one line on stderr with a non-zero exit status; stack
traces only with ``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import NoReturn

EXIT_FAILED_VIDEOS = 1  # the run finished, but some videos failed
EXIT_USAGE = 2
EXIT_FATAL = 3  # nothing could run: missing tool, missing source, bad output root


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return EXIT_USAGE
    _quiet_prefect(args.verbose)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return EXIT_FATAL


class OneLineErrors(argparse.ArgumentParser):
    """A usage mistake is one line that says where to look, not the whole usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(
        prog="affectflow",
        description="Per-frame valence/arousal for video corpora (RCMA over faces, voice and words).",
        epilog="Run `affectflow COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--debug", action="store_true", help="show stack traces instead of one-line errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="show Prefect's task logs")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_run(commands)
    _add_demo(commands)
    for module in _command_modules():
        module.add_commands(commands)
    return parser


def _command_modules() -> list[ModuleType]:
    """Command groups owned by their own modules (SQL and plots, training)."""
    from flows import cli_distill, cli_query, cli_train

    return [cli_query, cli_train, cli_distill]


def _add_run(commands: argparse._SubParsersAction) -> None:
    from tasks.defaults import ALL_STAGES, DEFAULT_FPS

    run = commands.add_parser(
        "run",
        help="process every video under SOURCE into tables under OUT",
        description=(
            "Process every video under SOURCE (a folder, a file, or an fsspec URL such as s3://bucket/prefix) "
            "into Parquet tables under OUT. Videos already done with the same bytes and configuration are "
            "skipped. Exit status: 0 when every video is ok or skipped, 1 when any failed (after the rest finished)."
        ),
    )
    run.add_argument("source", help="folder, video file or URL (s3://bucket/prefix) to process")
    run.add_argument("--out", required=True, help="output root for the tables (folder or s3://bucket/prefix)")
    run.add_argument("--force", action="store_true", help="redo videos that are already done")
    run.add_argument("--workers", type=_positive_int, default=1, help="videos processed at once (default 1)")
    run.add_argument(
        "--fps", type=_positive_float, default=DEFAULT_FPS, help=f"analysed frames per second (default {DEFAULT_FPS:g})"
    )
    run.add_argument(
        "--stages",
        type=_stage_list,
        default=",".join(ALL_STAGES),
        help=f"comma-separated analysis stages to run (default all: {','.join(ALL_STAGES)})",
    )
    run.add_argument(
        "--video-timeout",
        type=_positive_float,
        default=3600.0,
        help="seconds before one video is given up (default 3600)",
    )
    run.add_argument(
        "--faces-backend",
        choices=("yunet-sface", "insightface"),
        default="yunet-sface",
        help="face detector/embedder (insightface needs AFFECTFLOW_INSIGHTFACE_DIR)",
    )
    run.add_argument(
        "--diarizer",
        choices=("default", "pyannote"),
        default="default",
        help="speaker diarization (pyannote needs AFFECTFLOW_PYANNOTE_DIR)",
    )
    run.add_argument(
        "--speakers",
        type=_positive_int,
        metavar="N",
        help="exact number of speakers in every video (default: estimated)",
    )
    run.add_argument("--min-speakers", type=_positive_int, metavar="N", help="at least N speakers per video")
    run.add_argument("--max-speakers", type=_positive_int, metavar="N", help="at most N speakers per video")
    run.add_argument(
        "--asr-model",
        metavar="MODEL",
        help="Whisper model: base, tiny.en (both shipped) or a local CTranslate2 directory "
        "(default: AFFECTFLOW_WHISPER_DIR if set, else base)",
    )
    run.add_argument("--language", help="spoken language code, e.g. en (default: detected)")
    run.add_argument(
        "--emotion-model",
        choices=("rcma", "teachers"),
        default="rcma",
        help="rcma: the checkpoint (AFFECTFLOW_RCMA_CHECKPOINT, default the shipped demo model); "
        "teachers: the offline teacher ensemble baseline",
    )
    run.add_argument("--work-dir", help="scratch space for staged files (default: the system temp dir)")
    scale = run.add_mutually_exclusive_group()
    scale.add_argument(
        "--dask-address",
        help="run the videos on this Dask scheduler, e.g. tcp://host:8786 (default: AFFECTFLOW_DASK_ADDRESS if set)",
    )
    scale.add_argument(
        "--dask-local",
        type=_positive_int,
        default=0,
        metavar="N",
        help="run the videos on a local Dask cluster of N processes",
    )
    run.set_defaults(func=cmd_run)


def _add_demo(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="generate demo videos, run the whole pipeline on them and query the result",
        description="Generates short videos with real faces and two-speaker speech, runs the pipeline, prints a summary.",
    )
    demo.add_argument("--dir", default="demo-out", help="where the demo media and tables go (default ./demo-out)")
    demo.set_defaults(func=cmd_demo)


def _stage_list(text: str) -> str:
    from tasks.defaults import ALL_STAGES

    unknown = sorted({s for s in text.split(",") if s} - set(ALL_STAGES))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown stage(s) {', '.join(unknown)}; choose from {','.join(ALL_STAGES)}")
    return text


def _positive(convert: Callable[[str], float], what: str) -> Callable[[str], float]:
    """An argparse type: ``convert`` the text, refuse what is not a number above 0."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError("must be greater than 0")
        return value

    return parse


_positive_float = _positive(float, "a number")
_positive_int = _positive(int, "a whole number")


def cmd_run(args: argparse.Namespace) -> int:
    from flows.runner import run_with_progress

    stages = [s for s in args.stages.split(",") if s]
    summary = run_with_progress(
        args.source,
        args.out,
        fps=args.fps,
        force=args.force,
        workers=args.workers,
        stages=stages,
        video_timeout_s=args.video_timeout,
        work_dir=args.work_dir,
        faces_backend=args.faces_backend,
        diarizer=args.diarizer,
        num_speakers=args.speakers,
        min_speakers=args.min_speakers,
        max_speakers=args.max_speakers,
        asr_model=args.asr_model,
        language=args.language,
        emotion_model=args.emotion_model,
        dask_address=args.dask_address,
        dask_local_workers=args.dask_local,
    )
    return 0 if summary.ok else EXIT_FAILED_VIDEOS


def cmd_demo(args: argparse.Namespace) -> int:
    from flows.demo import run_demo

    return run_demo(args.dir)


def _quiet_prefect(verbose: bool) -> None:
    """Prefect's per-task lines drown a CLI that prints one line per video; --verbose brings them back.

    A failed video's error is in that line, the videos table and the Prefect UI, so
    the task engine's tracebacks are only shown with --verbose.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry writes racing on SQLite
    if not verbose:
        # Libraries under the models (sklearn, lightning, litert, whisperx) narrate their internals;
        # the user's output is one line per video. --verbose shows everything.
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        logging.disable(logging.INFO)  # they (re)configure their own loggers on import
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "CRITICAL")


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
