"""The ``affectflow`` command line: run, sql, plot, compact, export, report, people, demo, train, evaluate, distill, service.

Errors a user can fix are one line on stderr with a non-zero exit status; stack
traces only with ``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from affectflow.flows.parameters import UsageError

# The exit statuses (README, "Exit codes"); the same with --debug, which only adds the traceback.
EXIT_OK = 0  # every video ok or skipped; a query or plot done
EXIT_FAILED_VIDEOS = 1  # the run finished, but some videos failed
EXIT_USAGE = UsageError.exit_status  # 2: what was typed is wrong: an option, a value, a query
EXIT_FATAL = 3  # nothing could run: missing tool, missing source, unusable output root
EXIT_INTERRUPTED = 128  # + the signal: 130 for SIGINT (Ctrl-C), 143 for SIGTERM


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return EXIT_USAGE
    _quiet_prefect(args.verbose)
    try:
        return int(args.func(args))
    except KeyboardInterrupt as err:  # tasks/progress.Interrupted carries SIGTERM's number
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED + getattr(err, "signum", signal.SIGINT)
    except Exception as err:  # noqa: BLE001 - every error becomes one line and its exit status
        if args.debug:
            traceback.print_exc()
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(err, UsageError) else EXIT_FATAL


class OneLineErrors(argparse.ArgumentParser):
    """A usage mistake is one line that says where to look, not the whole usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


ALL = "*"


def build_parser(command: str = ALL) -> argparse.ArgumentParser:
    """The command line; only ``command``'s options are built (all with ``ALL``), the others are a help line.

    Building `train`'s options imports torch (its defaults live in model/), `sql`'s none, but
    the commands' modules are imported only to read their ``COMMANDS``: `affectflow --help`
    and `affectflow sql` load no model library.
    """
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
        if command == ALL or command in module.COMMANDS:
            module.add_commands(commands)
        else:
            for name, line in module.COMMANDS.items():
                commands.add_parser(name, help=line)
    return parser


def _command_in(argv: Sequence[str]) -> str:
    """The command named in ``argv`` ("" for none): its first word that is not an option (no top-level option takes a value)."""
    return next((word for word in argv if not word.startswith("-")), "")


def _command_modules() -> list[ModuleType]:
    """Command groups owned by their own modules (SQL and plots, training, distillation); cheap to import."""
    from affectflow.flows import cli_distill, cli_export, cli_people, cli_query, cli_service, cli_store, cli_train

    return [cli_query, cli_store, cli_export, cli_people, cli_train, cli_distill, cli_service]


def _add_run(commands: argparse._SubParsersAction) -> None:
    from affectflow.flows.parameters import add_run_options

    run = commands.add_parser(
        "run",
        help="process every video under SOURCE into tables under OUT",
        description=(
            "Process every video under SOURCE (a folder, a file, or an fsspec URL such as s3://bucket/prefix) "
            "into Parquet tables under OUT. Videos already done with the same bytes and configuration are "
            "skipped. Exit status: 0 when every video is ok or skipped, 1 when any failed (after the rest "
            "finished), 2 for a bad option, 3 when nothing could run, 130/143 when interrupted (README, Exit codes)."
        ),
    )
    add_run_options(run)  # flows/parameters.py: one option per parameter of the process-corpus flow
    run.set_defaults(func=cmd_run)


def _add_demo(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="generate demo videos, run the whole pipeline on them and query the result",
        description="Generates short videos with real faces and two-speaker speech, runs the pipeline, prints a summary.",
    )
    demo.add_argument("--dir", default="demo-out", help="where the demo media and tables go (default ./demo-out)")
    demo.set_defaults(func=cmd_demo)


def cmd_run(args: argparse.Namespace) -> int:
    from affectflow.flows.parameters import cli_values
    from affectflow.flows.runner import run_with_progress

    options = cli_values(args)
    summary = run_with_progress(options.pop("source"), options.pop("out"), warm=True, **options)
    return EXIT_OK if summary.ok else EXIT_FAILED_VIDEOS


def cmd_demo(args: argparse.Namespace) -> int:
    from affectflow.flows.demo import run_demo

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
