"""One typed configuration for a pipeline run, passed down explicitly.

Its hash goes into every video's manifest: a video is redone when the file or
anything here that changes results (rate, backends, weights) changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version

from affectflow.tasks.defaults import ALL_STAGES, DEFAULT_FPS, VIDEO_EXTENSIONS  # noqa: F401 - re-exported
from affectflow.tasks.emotions.infer import EmotionConfig
from affectflow.tasks.faces.stage import FacesConfig
from affectflow.tasks.people.config import IdentityConfig
from affectflow.tasks.speaking.stage import SpeakingConfig
from affectflow.tasks.speech.diarize import DiarizeConfig
from affectflow.tasks.speech.transcribe import TranscribeConfig


def pipeline_version() -> str:
    try:
        return version("affectflow")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class PipelineConfig:
    fps: float = DEFAULT_FPS
    max_side: int = 1280  # analysed frames are shrunk so their longer side is at most this
    stages: tuple[str, ...] = ALL_STAGES  # which analysis stages run (media staging always does)
    faces: FacesConfig = field(default_factory=FacesConfig)
    diarize: DiarizeConfig = field(default_factory=DiarizeConfig)
    transcribe: TranscribeConfig = field(default_factory=TranscribeConfig)
    speaking: SpeakingConfig = field(default_factory=SpeakingConfig)
    emotions: EmotionConfig = field(default_factory=EmotionConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)  # identity embeddings for the people step

    def __post_init__(self) -> None:
        if not 0 < self.fps <= 120:
            raise ValueError(f"fps must be in (0, 120], got {self.fps}")
        unknown = set(self.stages) - set(ALL_STAGES)
        if unknown:
            raise ValueError(f"unknown stage(s) {sorted(unknown)}; choose from {', '.join(ALL_STAGES)}")
        if self.max_side < 64:
            raise ValueError(f"max_side must be at least 64 pixels, got {self.max_side}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)

    def hash(self) -> str:
        """Identifies everything that changes results; not paths to scratch space."""
        payload = f"{pipeline_version()}|{self.to_json()}"
        return hashlib.sha256(payload.encode()).hexdigest()[:16]
