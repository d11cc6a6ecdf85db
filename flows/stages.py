"""The analysis stages of the per-video DAG, as Prefect tasks, in the order they run.

Each stage reads what earlier stages left in ``StageOutputs`` and adds its own
result. A stage that did not run leaves nothing, so its table is not written:
no rows ever come from a stage that did not run. Model-backed stages carry the
``gpu`` tag so a Prefect tag concurrency limit can bound them per GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks import media
from tasks.config import PipelineConfig
from tasks.media import MediaInfo, StagedVideo
from tasks.progress import Hook, no_progress
from tasks.store import to_table


@dataclass
class StageOutputs:
    """Everything one video's stages hand each other (small objects and paths only)."""

    staged: StagedVideo
    info: MediaInfo
    config: PipelineConfig
    work_dir: Path
    wav: Path | None = None
    faces: Any = None  # tasks.faces.FaceTracks
    turns: list[Any] | None = None  # tasks.diarize.SpeakerTurn
    words: list[Any] | None = None  # tasks.transcribe.Word, speakers assigned
    emotions: Any = None  # tasks.infer.Emotions
    backends: dict[str, str] = field(default_factory=dict)
    n_frames_analysed: int = 0
    hook: Hook = no_progress  # progress + per-video deadline, called by stages at natural steps

    def tables(self, video_id: str) -> dict[str, pa.Table]:
        """The per-video tables of the stages that ran."""
        tables: dict[str, pa.Table] = {}
        if self.faces is not None:
            tables["faces"] = _faces_table(video_id, self.faces)
        if self.turns is not None:
            model = self.backends.get("diarize", "")
            tables["speaker_turns"] = to_table(
                "speaker_turns",
                [dict(video_id=video_id, speaker=t.speaker, start=t.start, end=t.end, model=model) for t in self.turns],
            )
        if self.words is not None:
            model = self.backends.get("transcribe", "")
            tables["words"] = to_table(
                "words",
                [
                    dict(
                        video_id=video_id,
                        word=w.word,
                        start=w.start,
                        end=w.end,
                        score=w.score,
                        speaker=w.speaker,
                        segment=w.segment,
                        model=model,
                    )
                    for w in self.words
                ],
            )
        if self.emotions is not None:
            tables["emotions"] = self.emotions.table(video_id)
        return tables


def _faces_table(video_id: str, faces: Any) -> pa.Table:
    n = len(faces.frame)
    landmarks = np.asarray(faces.landmarks, np.float32).reshape(n, 10)
    return to_table(
        "faces",
        {
            "video_id": [video_id] * n,
            "track_id": faces.track_id,
            "frame": faces.frame,
            "t": faces.t,
            "x1": faces.x1,
            "y1": faces.y1,
            "x2": faces.x2,
            "y2": faces.y2,
            "score": faces.score,
            "landmarks": list(landmarks),
        },
    )


# Stage tasks return their additions to StageOutputs (a dict of field -> value, with
# "backend" naming the backend and weights); run_video merges them in.
MODEL_TASK: dict[str, Any] = dict(tags=["gpu"], cache_policy=NO_CACHE)


@task(name="faces", **MODEL_TASK)
def detect_faces(outputs: StageOutputs) -> dict[str, Any]:
    from tasks.faces import track_faces

    config = outputs.config
    frames = media.iter_frames(outputs.staged.path, outputs.info, config.fps, max_side=config.max_side)
    result = track_faces(frames, config.faces, outputs.work_dir / "faces", hook=outputs.hook)
    return {"faces": result, "n_frames_analysed": result.n_frames_analysed, "backend": result.backend}


@task(name="diarize", **MODEL_TASK)
def diarize_speech(outputs: StageOutputs) -> dict[str, Any]:
    from tasks.diarize import diarize

    result = diarize(outputs.wav, outputs.config.diarize, hook=outputs.hook)
    return {"turns": result.turns, "backend": result.backend}


@task(name="transcribe", **MODEL_TASK)
def transcribe_speech(outputs: StageOutputs) -> dict[str, Any]:
    from tasks.transcribe import assign_speakers, transcribe

    result = transcribe(outputs.wav, outputs.config.transcribe, hook=outputs.hook, speech=outputs.turns)
    backend = f"{result.backend}; words: {result.alignment}; language: {result.language}"
    return {"words": assign_speakers(result.words, outputs.turns or []), "backend": backend}


@task(name="emotions", **MODEL_TASK)
def infer_emotions(outputs: StageOutputs) -> dict[str, Any]:
    from tasks.infer import infer_emotions as infer

    result = infer(outputs)
    return {"emotions": result, "backend": result.model}


@dataclass(frozen=True)
class Stage:
    name: str
    task: Callable[[StageOutputs], dict[str, Any]]
    ready: Callable[[StageOutputs], bool]
    branch: str  # stages of one branch run in order; the "faces" and "speech" branches side by side

    def run(self, outputs: StageOutputs) -> None:
        additions = dict(self.task(outputs))
        outputs.backends[self.name] = additions.pop("backend")
        for key, value in additions.items():
            setattr(outputs, key, value)


def _always(outputs: StageOutputs) -> bool:
    return True


STAGES = (
    Stage("faces", detect_faces, _always, branch="faces"),
    Stage("diarize", diarize_speech, _always, branch="speech"),
    Stage("transcribe", transcribe_speech, _always, branch="speech"),
    Stage("emotions", infer_emotions, lambda outputs: outputs.faces is not None, branch="fusion"),
)
PARALLEL_BRANCHES = ("faces", "speech")  # share no inputs but the staged video and its audio
