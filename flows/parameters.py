"""The parameters of a corpus run, listed once.

One list, :data:`RUN_PARAMETERS`, is the ``process-corpus`` flow's signature (so Prefect's
deployment parameter schema and validation), the options of ``affectflow run`` and their
mapping back to the flow, the README's Configuration table, and, through each parameter's
``config`` field, how ``pipeline_config`` builds the run's :class:`PipelineConfig`. Adding a
run option is one entry here (plus the config field it sets).

Choices come from the stages' registries and defaults from the same constants the config
dataclasses use; both live where importing them loads no model, so neither does this module
(``affectflow --help`` stays instant).
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from affectflow.flows.cli_export import format_list
from affectflow.tasks.defaults import ALL_STAGES, DEFAULT_FPS
from affectflow.tasks.emotions import MODELS as EMOTION_MODELS
from affectflow.tasks.faces import BACKENDS as FACE_BACKENDS
from affectflow.tasks.speech import DIARIZERS

REQUIRED: Any = inspect.Parameter.empty
MIN_FPS = 0.1  # one frame every 10 s; below it a clip gets a frame or none, "ok" with nothing analysed
NO_STAGES = "none"  # --stages none: stage, probe and extract audio only (an empty --stages is a typo)
# Two videos at once: on 2 cores short talking clips run at RTF 0.41 against 0.47 one at a time,
# and three 120 s videos took 73.5 s against 74.5 s, at the same peak memory (README, "Many short
# clips"). A video's wait for a model the other holds is not counted against its --video-timeout
# (tasks/progress.Deadline).
DEFAULT_WORKERS = 2


class UsageError(Exception):
    """A value the command cannot use, found after parsing (exit status 2, like argparse's own errors)."""

    exit_status = 2


@dataclass(frozen=True)
class Parameter:
    """One parameter of ``process_corpus``, its ``affectflow run`` option and the config field it sets."""

    name: str  # the flow's parameter (and the argparse dest)
    annotation: Any  # its type: Prefect's schema and validation of deployment parameters
    help: str  # one line for --help, the README and the flow's docstring (no default in it)
    default: Any = REQUIRED
    flag: str | None = None  # the CLI option; None: a positional argument
    parse: Callable[[str], Any] | None = None  # the CLI's reading of the option's text
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    shown_default: str | None = None  # the default as people read it, where it is not the value itself
    config: str | None = None  # the PipelineConfig field it sets, "section.field" (None: a run option)
    group: str | None = None  # options of one group are mutually exclusive on the CLI

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def default_text(self) -> str:
        if self.shown_default is not None:
            return self.shown_default
        if self.required:
            return "required"
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)


def _positive(convert: Callable[[str], float], what: str, minimum: float = 0.0) -> Callable[[str], Any]:
    """An argparse type: ``convert`` the text, refuse what is not a finite number above ``minimum`` (at least it)."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if not value > 0:
            raise argparse.ArgumentTypeError("must be greater than 0")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g}, got {text!r}")
        return value

    return parse


positive_float = _positive(float, "a number")
positive_int = _positive(int, "a whole number")
frame_rate = _positive(float, "a number", minimum=MIN_FPS)


def stage_list(text: str) -> list[str]:
    """``faces,diarize`` → the stages, refusing unknown ones and an empty list (``none`` → media staging only)."""
    if text.strip() == NO_STAGES:
        return []
    stages = [s.strip() for s in text.split(",") if s.strip()]
    if not stages:
        raise argparse.ArgumentTypeError(
            f"no stage given; name some of {','.join(ALL_STAGES)}, or {NO_STAGES} for media staging only"
        )
    unknown = sorted(set(stages) - set(ALL_STAGES))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown stage(s) {', '.join(unknown)}; choose from {','.join(ALL_STAGES)}")
    return stages


def _choice(names: tuple[str, ...]) -> Any:
    return Literal[names]  # an enum in Prefect's parameter schema


RUN_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("source", str, "folder, video file or URL (s3://bucket/prefix) to process", metavar="SOURCE"),
    Parameter("out", str, "output root for the tables (folder or s3://bucket/prefix)", flag="--out"),
    Parameter(
        "fps",
        float,
        "analysed frames per second (capped at the video's own rate)",
        DEFAULT_FPS,
        "--fps",
        frame_rate,
        config="fps",
    ),
    Parameter("force", bool, "redo videos that are already done", False, "--force"),
    Parameter(
        "workers",
        int,
        "videos processed at once (two: one video's decoding and writing overlap the other's models)",
        DEFAULT_WORKERS,
        "--workers",
        positive_int,
        metavar="N",
    ),
    Parameter(
        "video_timeout_s",
        float | None,
        "seconds before one video is given up (checked between batches; ffprobe and ffmpeg are killed at it;"
        " a stage stuck in native code is abandoned 10 s later)",
        3600.0,
        "--video-timeout",
        positive_float,
        metavar="SECONDS",
    ),
    Parameter(
        "stages",
        list[str] | None,
        f"comma-separated analysis stages to run ({NO_STAGES}: media only); a stage that does not run writes no rows",
        None,
        "--stages",
        stage_list,
        shown_default=f"all: {','.join(ALL_STAGES)}",
        config="stages",
    ),
    Parameter(
        "work_dir",
        str | None,
        "scratch space for staged copies, audio and face crops",
        None,
        "--work-dir",
        metavar="DIR",
        shown_default="the system temp dir",
    ),
    Parameter(
        "faces_backend",
        _choice(FACE_BACKENDS),
        "face detector/embedder (insightface needs AFFECTFLOW_INSIGHTFACE_DIR)",
        FACE_BACKENDS[0],
        "--faces-backend",
        choices=FACE_BACKENDS,
        config="faces.backend",
    ),
    Parameter(
        "diarizer",
        _choice(DIARIZERS),
        "speaker diarization (pyannote needs AFFECTFLOW_PYANNOTE_DIR)",
        DIARIZERS[0],
        "--diarizer",
        choices=DIARIZERS,
        config="diarize.backend",
    ),
    Parameter(
        "num_speakers",
        int | None,
        "exact number of speakers in every video",
        None,
        "--speakers",
        positive_int,
        metavar="N",
        shown_default="estimated",
        config="diarize.num_speakers",
    ),
    Parameter(
        "min_speakers",
        int | None,
        "at least N speakers per video",
        None,
        "--min-speakers",
        positive_int,
        metavar="N",
        shown_default="no bound",
        config="diarize.min_speakers",
    ),
    Parameter(
        "max_speakers",
        int | None,
        "at most N speakers per video",
        None,
        "--max-speakers",
        positive_int,
        metavar="N",
        shown_default="no bound",
        config="diarize.max_speakers",
    ),
    Parameter(
        "asr_model",
        str | None,
        "Whisper model: base, tiny.en (both shipped) or a local CTranslate2 directory (e.g. faster-whisper small)",
        None,
        "--asr-model",
        metavar="MODEL",
        shown_default="AFFECTFLOW_WHISPER_DIR if set, else base",
        config="transcribe.model_dir",
    ),
    Parameter(
        "language",
        str | None,
        "spoken language code for transcription, e.g. en",
        None,
        "--language",
        metavar="CODE",
        shown_default="detected",
        config="transcribe.language",
    ),
    Parameter(
        "emotion_model",
        _choice(EMOTION_MODELS),
        "rcma: the checkpoint (AFFECTFLOW_RCMA_CHECKPOINT, else the shipped demonstration model); "
        "teachers: the offline teacher-ensemble baseline",
        EMOTION_MODELS[0],
        "--emotion-model",
        choices=EMOTION_MODELS,
        config="emotions.model",
    ),
    Parameter(
        "no_identity",
        bool,
        "compute no identity embeddings (face and voice biometrics) and so no people step",
        False,
        "--no-identity",
        config="identity.off",
    ),
    Parameter(
        "no_reports",
        bool,
        "write no report pages (<out>/reports/: one per processed video and the corpus index)",
        False,
        "--no-reports",
    ),
    Parameter(
        "export_formats",
        list[str] | None,
        "also export each processed video to <out>/exports/ in these formats (csv,json,srt,vtt,rttm,eaf,textgrid, all)",
        None,
        "--export",
        format_list,
        metavar="FORMATS",
        shown_default="none",
    ),
    Parameter(
        "compact",
        bool,
        "after the run, merge the finished videos' files into a few large ones (as `affectflow compact`: "
        "SQL stays fast on big corpora)",
        False,
        "--compact",
    ),
    Parameter(
        "dask_address",
        str | None,
        "run the videos on this Dask scheduler, e.g. tcp://host:8786",
        None,
        "--dask-address",
        metavar="ADDRESS",
        shown_default="AFFECTFLOW_DASK_ADDRESS if set",
        group="scale",
    ),
    Parameter(
        "dask_local_workers",
        int,
        "run the videos on a temporary local Dask cluster of N processes (0: none)",
        0,
        "--dask-local",
        positive_int,
        metavar="N",
        group="scale",
    ),
)


# How the corpus flow runs rather than what it computes: ``run_corpus``'s keyword arguments.
RUN_OPTIONS = tuple(p.name for p in RUN_PARAMETERS if p.config is None and not p.required)

F = TypeVar("F", bound=Callable[..., Any])


def with_run_parameters(fn: F) -> F:
    """Give ``fn(source, out, **options)`` the signature and ``Args:`` docs of RUN_PARAMETERS.

    Applied under ``@flow``, which reads both: Prefect builds the deployment parameter schema
    (types, defaults, enums, descriptions) and validates ``-p`` values from them, and binds
    calls with the signature (an unknown parameter is refused).
    """
    fn.__signature__ = flow_signature(inspect.signature(fn).return_annotation)  # type: ignore[attr-defined]
    fn.__doc__ = (fn.__doc__ or "").rstrip() + docstring_args()
    return fn


def flow_signature(returns: Any = inspect.Signature.empty) -> inspect.Signature:
    """The flow's signature: the required parameters by position, the rest by keyword only."""
    kinds = {True: inspect.Parameter.POSITIONAL_OR_KEYWORD, False: inspect.Parameter.KEYWORD_ONLY}
    return inspect.Signature(
        [
            inspect.Parameter(p.name, kinds[p.required], default=p.default, annotation=p.annotation)
            for p in RUN_PARAMETERS
        ],
        return_annotation=returns,
    )


def docstring_args() -> str:
    """An ``Args:`` section (Google style: Prefect reads it into the parameter schema's descriptions)."""
    lines = [
        f"    {p.name}: {p.help}" + ("" if p.required else f" (default: {p.default_text()})") for p in RUN_PARAMETERS
    ]
    return "\n\nArgs:\n" + "\n".join(lines) + "\n"


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """``affectflow run``'s arguments, one per parameter (dest = the flow's parameter name)."""
    groups: dict[str, Any] = {}
    for p in RUN_PARAMETERS:
        target: Any = parser
        if p.group:
            if p.group not in groups:
                groups[p.group] = parser.add_mutually_exclusive_group()
            target = groups[p.group]
        if p.flag is None:
            target.add_argument(p.name, metavar=p.metavar, help=p.help)
        elif p.annotation is bool:
            target.add_argument(p.flag, dest=p.name, action="store_true", help=p.help)
        else:
            extra = {"required": True} if p.required else {"default": p.default}
            help_text = p.help if p.required else f"{p.help} (default: {p.default_text()})"
            target.add_argument(
                p.flag, dest=p.name, type=p.parse, choices=p.choices, metavar=p.metavar, help=help_text, **extra
            )


def cli_values(args: argparse.Namespace) -> dict[str, Any]:
    """The flow's parameters from parsed ``affectflow run`` arguments."""
    return {p.name: getattr(args, p.name) for p in RUN_PARAMETERS}


def markdown_table() -> str:
    """The README's table of the run options (what ``affectflow run --help`` says, as Markdown)."""
    lines = ["| option | default | what |", "|---|---|---|"]
    for p in RUN_PARAMETERS:
        option = p.metavar if p.flag is None else f"{p.flag} {p.metavar}" if p.metavar else p.flag
        choices = f" ({', '.join(f'`{c}`' for c in p.choices)})" if p.choices else ""
        lines.append(f"| `{option}` | {p.default_text()} | {p.help}{choices} |")
    return "\n".join(lines) + "\n"


def configuration_markdown() -> str:
    """The README's Configuration tables: the run options here, the ``AFFECTFLOW_*`` variables of tasks/settings.py."""
    from affectflow.tasks.settings import markdown_table as variables_table

    return f"{markdown_table()}\n{variables_table()}"


README_BLOCK = ("<!-- generated: python -m affectflow.flows.parameters README.md -->\n", "<!-- end generated -->")


def write_readme(path: Path) -> None:
    """Replace the generated block of ``path`` (between the README_BLOCK markers) with the tables."""
    text = path.read_text()
    start, end = text.index(README_BLOCK[0]) + len(README_BLOCK[0]), text.index(README_BLOCK[1])
    path.write_text(f"{text[:start]}\n{configuration_markdown()}\n{text[end:]}")


if __name__ == "__main__":  # the tables on stdout, or (given the README's path) written into it
    if len(sys.argv) > 1:
        write_readme(Path(sys.argv[1]))
    else:
        print(configuration_markdown(), end="")
