"""Every ``AFFECTFLOW_*`` environment variable, read and checked in one place.

They used to be read in a dozen modules, each with its own idea of an empty value and none
checking that a directory exists, so a typo surfaced deep inside a model loader.
:func:`settings` parses them all with pydantic-settings and refuses a bad value with one line
that names the variable; the stage configs take their defaults from it. Each field is one
variable (``AFFECTFLOW_`` + the field's name in capitals; set but empty reads as unset), its
description is its row in the README's Configuration table (``python -m
affectflow.flows.parameters`` prints the table; a test keeps the README equal to it).

Cheap to import: pydantic only, no torch or cv2, nothing else of affectflow.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "AFFECTFLOW_"


class SettingsError(ValueError):
    """An ``AFFECTFLOW_*`` variable holds something unusable; the message names it and says why."""


def _directory(value: str) -> str:
    path = Path(value).expanduser()
    if not path.is_dir():
        raise ValueError("no such directory" if not path.exists() else "not a directory")
    return str(path)


def _file(value: str) -> str:
    path = Path(value).expanduser()
    if not path.is_file():
        raise ValueError("no such file" if not path.exists() else "not a file")
    return str(path)


def _directory_or_name(value: str) -> str:
    """A directory, or a bare name (a shipped model such as ``base``: the stage checks the name)."""
    if os.sep in value or (os.altsep and os.altsep in value) or Path(value).expanduser().exists():
        return _directory(value)
    return value


Directory = Annotated[str, AfterValidator(_directory)]  # must exist when the variable is set
File = Annotated[str, AfterValidator(_file)]
DirectoryOrName = Annotated[str, AfterValidator(_directory_or_name)]


def variable(unset: str, what: str) -> Any:
    """A field for one variable: ``what`` it is and what happens when it is ``unset`` (the README's columns)."""
    return Field(None, description=what, json_schema_extra={"unset": unset})


class Settings(BaseSettings):
    """The ``AFFECTFLOW_*`` variables of a process (None: unset). Read them with :func:`settings`."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, extra="ignore", frozen=True)

    ffmpeg: str | None = variable("`ffmpeg` on PATH", "the ffmpeg binary (a path or a name on PATH)")
    ffprobe: str | None = variable("`ffprobe` on PATH", "the ffprobe binary (a path or a name on PATH)")
    insightface_dir: Directory | None = variable(
        "none (the default faces backend needs none)",
        "an insightface model pack folder (e.g. buffalo_l: det_10g.onnx + w600k_r50.onnx) "
        "for `--faces-backend insightface`",
    )
    pyannote_dir: Directory | None = variable(
        "none (the default diarizer needs none)",
        "a local pyannote pipeline directory (community-1 / 3.1 layout, config.yaml pointing at local "
        "checkpoints) for `--diarizer pyannote`",
    )
    whisper_dir: DirectoryOrName | None = variable(
        "`base` (shipped)",
        "the default `--asr-model`: a local CTranslate2 Whisper model directory (e.g. faster-whisper small) "
        "or a shipped model's name",
    )
    align_model_dir: Directory | None = variable(
        "faster-whisper word timestamps",
        "a local wav2vec2 CTC model directory (Hugging Face layout): whisperx forced alignment of the words",
    )
    hsemotion_onnx: File | None = variable(
        "none", "an HSEmotion enet_b0_8_va_mtl-style ONNX file, for the `hsemotion` visual features"
    )
    vggish_model: File | None = variable("none", "a VGGish-style ONNX file, for the `vggish` audio features")
    text_model_dir: Directory | None = variable(
        "none", "a local BERT-style model directory (e.g. bert-base-uncased), for the `bert` text features"
    )
    rcma_checkpoint: File | None = variable(
        "the shipped `rcma-distilled-v0`", "the RCMA checkpoint of `--emotion-model rcma`"
    )
    face_mesh: File | None = variable(
        "`face_landmark.tflite` from the mediapipe 0.10.14 wheel (installed `--no-deps`)",
        "the face-mesh TFLite model (468 landmarks, 192×192 input) whose lips the who-is-speaking stage reads",
    )
    cache_dir: str | None = variable(
        "`$XDG_CACHE_HOME/affectflow`, else `~/.cache/affectflow`",
        "where what is built once is kept (Whisper base joined from its two wheels, NLTK data)",
    )
    dask_address: str | None = variable(
        "the flow's own threads", "the default `--dask-address`: run the videos on this Dask scheduler"
    )
    keep_warm: Literal["on", "off"] | None = variable(
        "`on`",
        "after a run that analysed videos, leave the warm service (Prefect server and Dask worker with the "
        "models loaded) for the next plain run on this machine (`affectflow service`), or `off`",
    )
    warm_idle_s: Annotated[float, Field(gt=0)] | None = variable(
        "600", "seconds the warm service waits unused before it leaves"
    )
    progress: Literal["auto", "always", "never"] | None = variable(
        "`auto`: a bar when stderr is a terminal",
        "the CLI's progress bar: `always` (also when stderr is a file or pipe), `never`, or `auto`",
    )

    def cache(self) -> Path:
        """``cache_dir``, or the XDG cache's ``affectflow`` folder."""
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "affectflow"


def settings() -> Settings:
    """This process's settings, parsed once per distinct set of ``AFFECTFLOW_*`` values.

    The environment is looked at on every call (a dict scan, no parsing), so a test's
    ``monkeypatch.setenv`` is seen at the next call with nothing to reset. A bad value raises
    :class:`SettingsError` in one line, e.g. ``AFFECTFLOW_PYANNOTE_DIR=/nowhere: no such directory``.
    """
    return _parse(tuple(sorted((k.upper(), v) for k, v in os.environ.items() if k.upper().startswith(PREFIX))))


@functools.lru_cache(maxsize=16)
def _parse(environment: tuple[tuple[str, str], ...]) -> Settings:
    try:
        return Settings()
    except ValidationError as err:
        problems = [
            f"{env_name(str(e['loc'][0]))}={e['input']}: {e['msg'].removeprefix('Value error, ')}" for e in err.errors()
        ]
        raise SettingsError("; ".join(problems)) from None


def env_name(field: str) -> str:
    """The variable behind a field, e.g. ``env_name("pyannote_dir")`` → ``AFFECTFLOW_PYANNOTE_DIR``."""
    if field not in Settings.model_fields:
        raise KeyError(f"no setting {field!r}; the settings: {', '.join(Settings.model_fields)}")
    return f"{PREFIX}{field.upper()}"


def markdown_table() -> str:
    """The README's table of the variables, from the fields (name, when unset, what)."""
    lines = ["| env var | when unset | what |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        lines.append(f"| `{env_name(name)}` | {extra.get('unset', '')} | {info.description} |")
    return "\n".join(lines) + "\n"
