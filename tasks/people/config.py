"""The two configurations of people: what a video's run computes, and how the people step links.

``IdentityConfig`` is part of ``PipelineConfig`` (its hash decides what a run redoes);
``LinkConfig`` belongs to the people step only, so changing a threshold re-links people
without re-analysing a single video. Its thresholds were measured by
``benchmarks/bench_people.py --calibrate`` (docs/people.md has the distributions).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class IdentityConfig:
    off: bool = False  # --no-identity: no identity embedding (biometric data) is computed or written


@dataclass(frozen=True)
class LinkConfig:
    # Cosine similarities of identity embeddings (track means / voice means); quantiles measured by
    # bench_people.py --calibrate (docs/people.md). SFace track means: different people 0.265 at most
    # (99 %: 0.244), the same person 0.947 at least; 0.363 is OpenCV's published SFace cosine threshold.
    face_match: float = 0.363  # a track joins a person whose most similar track is at least this
    face_veto: float = 0.15  # ... and never one whose face centroid is below this (median stranger: 0.055)
    # GE2E voice means of espeak-ng voices overlap: different 0.569-0.943 (99 %: 0.929), same 0.924-0.98,
    # so a voice alone joins only above every different pair measured, and vetoes below the same minimum.
    voice_match: float = 0.945
    voice_veto: float = 0.85
    neighbours: int = 16  # nearest stored tracks/voices looked at per query

    def __post_init__(self) -> None:
        for kind in ("face", "voice"):
            match, veto = getattr(self, f"{kind}_match"), getattr(self, f"{kind}_veto")
            if not -1.0 <= veto <= match <= 1.0:
                raise ValueError(f"{kind}: need -1 <= {kind}_veto ({veto}) <= {kind}_match ({match}) <= 1")
        if self.neighbours < 1:
            raise ValueError(f"neighbours must be at least 1, got {self.neighbours}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)
