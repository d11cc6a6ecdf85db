"""The analysis stages of the per-video DAG, as Prefect tasks, in the order they run.

Each stage reads what earlier stages left in ``StageOutputs`` and adds its own
result. A stage that did not run leaves nothing, so its table is not written:
no rows ever come from a stage that did not run. Model-backed stages carry the
``gpu`` tag so a Prefect tag concurrency limit can bound them per GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from affectflow.tasks.config import PipelineConfig
from affectflow.tasks.media.frames import FrameSource, iter_frames
from affectflow.tasks.people.identity import Identity
from affectflow.tasks.progress import Hook, no_progress
from affectflow.tasks.records import Emotions, FaceTracks, MediaInfo, SpeakerTurn, Speaking, StagedVideo, Word
from affectflow.tasks.storage.tables import (
    emotions_table,
    faces_table,
    identities_table,
    tracks_table,
    turns_table,
    words_table,
)


@dataclass
class StageOutputs:
    """Everything one video's stages hand each other (small records and paths only).

    A field a stage fills stays None when that stage did not run, so its table is not written.
    """

    staged: StagedVideo
    info: MediaInfo
    config: PipelineConfig
    work_dir: Path
    wav: Path | None = None  # 16 kHz mono PCM, None when the video has no audio
    faces: FaceTracks | None = None
    turns: list[SpeakerTurn] | None = None
    words: list[Word] | None = None  # speakers assigned
    speaking: Speaking | None = None  # who is speaking: each face track's own voice (the "speaking" stage)
    emotions: Emotions | None = None
    face_identities: list[Identity] | None = None  # one per track (None: faces did not run, or --no-identity)
    voice_identities: list[Identity] | None = None  # one per voice of the final turns
    backends: dict[str, str] = field(default_factory=dict)  # stage -> backend and weights
    n_frames_analysed: int = 0
    hook: Hook = no_progress  # progress + per-video deadline, called by stages at natural steps
    frames: FrameSource = iter_frames  # where the faces stage reads frames (a benchmark times it)

    def tables(self, video_id: str) -> dict[str, pa.Table]:
        """The per-video tables of the stages that ran."""
        tables: dict[str, pa.Table] = {}
        if self.faces is not None:
            tables["faces"] = faces_table(video_id, self.faces)
        if self.speaking is not None:
            tables["tracks"] = tracks_table(video_id, self.speaking.links)
        if self.turns is not None:
            tables["speaker_turns"] = turns_table(video_id, self.turns, self.backends.get("diarize", ""))
        if self.words is not None:
            tables["words"] = words_table(video_id, self.words, self.backends.get("transcribe", ""))
        if self.emotions is not None:
            tables["emotions"] = emotions_table(video_id, self.emotions)
        if self.face_identities is not None or self.voice_identities is not None:
            identities = [*(self.face_identities or []), *(self.voice_identities or [])]
            tables["identities"] = identities_table(video_id, [asdict(i) for i in identities])
        return tables


# Stage tasks return their additions to StageOutputs (a dict of field -> value, with
# "backend" naming the backend and weights); run_video merges them in.
MODEL_TASK: dict[str, Any] = dict(tags=["gpu"], cache_policy=NO_CACHE)


@task(name="faces", **MODEL_TASK)
def detect_faces(outputs: StageOutputs) -> dict[str, Any]:
    from affectflow.tasks.faces.stage import track_faces
    from affectflow.tasks.media.frames import expected_frames

    config = outputs.config
    frames = outputs.frames(outputs.staged.path, outputs.info, config.fps, max_side=config.max_side)
    total = expected_frames(outputs.info, config.fps)  # the progress total: frames at the analysis rate
    result = track_faces(frames, config.faces, outputs.work_dir / "faces", hook=outputs.hook, expected_frames=total)
    additions = {"faces": result, "n_frames_analysed": result.n_frames_analysed, "backend": result.backend}
    if not config.identity.off:
        from affectflow.tasks.people.identity import face_identities

        additions["face_identities"] = face_identities(result)  # means of the rows' embeddings: cheap
    return additions


@task(name="diarize", **MODEL_TASK)
def diarize_speech(outputs: StageOutputs) -> dict[str, Any]:
    from affectflow.tasks.speech.diarize import diarize

    result = diarize(outputs.wav, outputs.config.diarize, hook=outputs.hook)
    return {"turns": result.turns, "backend": result.backend, **voices_of(outputs, result.turns)}


def voices_of(outputs: StageOutputs, turns: list[SpeakerTurn]) -> dict[str, Any]:
    """The voices' identity embeddings of these turns, by the diarizer's own embedding model (unless --no-identity)."""
    if outputs.config.identity.off:
        return {}
    from affectflow.tasks.people.identity import voice_identities

    return {"voice_identities": voice_identities(outputs.wav, turns, outputs.config.diarize)}


@task(name="transcribe", **MODEL_TASK)
def transcribe_speech(outputs: StageOutputs) -> dict[str, Any]:
    from affectflow.tasks.speech.attribution import assign_speakers
    from affectflow.tasks.speech.transcribe import transcribe

    result = transcribe(outputs.wav, outputs.config.transcribe, hook=outputs.hook, speech=outputs.turns)
    backend = f"{result.backend}; words: {result.alignment}; language: {result.language}"
    return {"words": assign_speakers(result.words, outputs.turns or []), "backend": backend}


@task(name="speaking", **MODEL_TASK)
def find_speaking(outputs: StageOutputs) -> dict[str, Any]:
    """Who is speaking; when faces split a voice cluster, the turns and the words' speakers follow."""
    from affectflow.tasks.speaking.stage import find_speakers

    assert outputs.faces is not None  # the stage is ready only then
    config = outputs.config
    turns = outputs.turns or []
    result = find_speakers(
        outputs.faces, turns, outputs.wav, outputs.staged.path, outputs.info, config.speaking, outputs.hook,
        max_side=config.max_side,
    )  # fmt: skip
    additions: dict[str, Any] = {"speaking": result, "backend": result.backend}
    if outputs.turns is not None and result.turns != turns:
        additions["turns"] = result.turns  # the words follow once transcription is done too: words_follow_turns
        additions.update(voices_of(outputs, result.turns))  # a split voice is two voices
    return additions


def words_follow_turns(outputs: StageOutputs) -> None:
    """Give the words the final turns' speakers, once both branches are done.

    The speaking stage runs beside transcription (it needs only faces and turns), so the
    words may come before or after it splits a voice; attributing them here, after both,
    is right either way. Attribution is a cheap interval lookup, so it is simply redone.
    """
    from affectflow.tasks.speech.attribution import assign_speakers

    if outputs.speaking is not None and outputs.words is not None and outputs.turns is not None:
        outputs.words = assign_speakers(outputs.words, outputs.turns)


@task(name="emotions", **MODEL_TASK)
def infer_emotions(outputs: StageOutputs) -> dict[str, Any]:
    from affectflow.tasks.emotions.infer import emotions_backend
    from affectflow.tasks.emotions.infer import infer_emotions as infer

    assert outputs.faces is not None  # the stage is ready only then
    config = outputs.config
    result = infer(
        outputs.faces,
        outputs.wav,
        outputs.words,
        outputs.turns,
        config.emotions,
        config.fps,
        outputs.hook,
        outputs.speaking,
    )
    return {"emotions": result, "backend": emotions_backend(result.model, config.emotions)}


@dataclass(frozen=True)
class Stage:
    name: str
    task: Callable[[StageOutputs], dict[str, Any]]
    ready: Callable[[StageOutputs], bool]
    branch: str  # stages of one branch run in order; the "faces" and "speech" branches side by side
    after: tuple[str, ...] = ()  # stages of the other branch whose results this one waits for

    def plain(self) -> Stage:
        """The same stage calling its function directly, outside Prefect's task machinery."""
        return replace(self, task=getattr(self.task, "fn", self.task))

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
    # needs faces and turns, not words: it runs beside transcription, the words follow afterwards
    Stage("speaking", find_speaking, lambda outputs: outputs.faces is not None, branch="faces", after=("diarize",)),
    Stage("emotions", infer_emotions, lambda outputs: outputs.faces is not None, branch="fusion"),
)
PARALLEL_BRANCHES = ("faces", "speech")  # share no inputs but the staged video and its audio


def load_models(config: PipelineConfig) -> list[str]:
    """Load the models of the stages ``config`` runs into their per-process caches; the stages loaded.

    Through the loaders the stages themselves call, with the same arguments, so the first video
    finds them loaded. ``affectflow run`` does this while Prefect's server starts (flows/runner.py).
    """
    wanted = set(config.stages)
    loaded = []
    if "faces" in wanted:
        from affectflow.tasks.faces.stage import faces_backend

        backend = faces_backend(config.faces)
        loaded.append("faces")
        if "speaking" in wanted:
            from affectflow.tasks.speaking.stage import mesh_for

            mesh_for(config.speaking)
            loaded.append("speaking")
        if "emotions" in wanted:
            from affectflow.tasks.emotions.infer import load_predictor

            load_predictor(config.emotions, backend.embedding_dim)
            loaded.append("emotions")
    if "diarize" in wanted:
        from affectflow.tasks.speech.diarize import pipeline_for

        pipeline_for(config.diarize)
        loaded.append("diarize")
    if "transcribe" in wanted:
        from affectflow.tasks.speech.transcribe import asr_for

        asr_for(config.transcribe)
        loaded.append("transcribe")
    return loaded
