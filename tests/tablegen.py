"""Realistic synthetic output tables, written through the Store like a pipeline run.

A video is a dialogue between speakers taking turns (with pauses and the odd overlap),
words at a natural rate grouped into utterances, and face tracks whose valence and
arousal drift smoothly (AR(1)) at ``analysis_fps``; tracks can leave and re-enter. Face
track i is the face of the i-th speaker (``tracks`` table, ``emotions.speaker``) and speaks
in that speaker's turns (``emotions.speaking``); speakers beyond the tracks have no face.
Used by the SQL and plot tests, the README figure and the docs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from affectflow.tasks.storage.store import Store
from affectflow.tasks.storage.tables import to_table

VOCABULARY = [
    "so",
    "I",
    "think",
    "we",
    "should",
    "talk",
    "about",
    "the",
    "budget",
    "before",
    "the",
    "meeting",
    "really",
    "honestly",
    "that",
    "was",
    "not",
    "what",
    "I",
    "expected",
    "at",
    "all",
    "but",
    "okay",
    "let",
    "us",
    "see",
    "what",
    "happens",
    "next",
    "week",
    "maybe",
    "you",
    "are",
    "right",
]


@dataclass(frozen=True)
class Turn:
    speaker: str
    start: float
    end: float


def write_video(
    store: Store,
    video_id: str,
    *,
    duration_s: float = 30.0,
    n_tracks: int = 2,
    fps: float = 5.0,
    speakers: tuple[str, ...] = ("SPEAKER_00", "SPEAKER_01"),
    seed: int = 0,
    run_id: str = "run-synthetic",
    words: list[dict] | None = None,
) -> list[Turn]:
    """Write one committed video's tables; returns its speaker turns. ``words`` replaces the generated ones."""
    rng = np.random.default_rng(seed)
    turns = _turns(rng, duration_s, speakers)
    generated = _words(rng, video_id, turns)
    words = generated if words is None else [{"video_id": video_id, "model": "synthetic", **w} for w in words]
    emotions = _emotions(rng, video_id, turns, duration_s, n_tracks, speakers, fps)
    tables = {
        "speaker_turns": to_table(
            "speaker_turns",
            [dict(video_id=video_id, speaker=t.speaker, start=t.start, end=t.end, model="synthetic") for t in turns],
        ),
        "words": to_table("words", words),
        "emotions": to_table("emotions", emotions),
        "tracks": to_table("tracks", _tracks(video_id, emotions, fps)),
    }
    store.write_video(video_id, tables, _video_row(video_id, duration_s, fps, run_id))
    return turns


def _turns(rng: np.random.Generator, duration_s: float, speakers: tuple[str, ...]) -> list[Turn]:
    turns, t, i = [], rng.uniform(0.3, 1.0), 0
    while t < duration_s - 0.5:
        length = min(rng.uniform(1.5, 8.0), duration_s - t)
        turns.append(Turn(speakers[i % len(speakers)], round(t, 2), round(t + length, 2)))
        gap = rng.choice([rng.uniform(0.2, 1.2), -rng.uniform(0.2, 0.6)], p=[0.85, 0.15])  # pause or overlap
        t, i = t + length + gap, i + 1
    return turns


def _words(rng: np.random.Generator, video_id: str, turns: list[Turn]) -> list[dict]:
    rows, segment = [], 0
    for turn in turns:
        t = turn.start + 0.05
        while t < turn.end - 0.2:
            length = rng.uniform(0.15, 0.45)
            end = min(t + length, turn.end - 0.05)
            word = VOCABULARY[int(rng.integers(len(VOCABULARY)))]
            rows.append(
                dict(
                    video_id=video_id,
                    word=word,
                    start=round(t, 3),
                    end=round(end, 3),
                    score=0.9,
                    speaker=turn.speaker,
                    segment=segment,
                    model="synthetic",
                )
            )
            t = end + rng.uniform(0.02, 0.12)
            if rng.random() < 0.12:
                segment += 1
        segment += 1
    return rows


def _emotions(
    rng: np.random.Generator,
    video_id: str,
    turns: list[Turn],
    duration_s: float,
    n_tracks: int,
    speakers: tuple[str, ...],
    fps: float,
) -> dict[str, list]:
    frames = np.arange(int(duration_s * fps))  # shape: (n_frames,) analysed frame index
    t = frames / fps  # seconds
    columns: dict[str, list] = {
        k: [] for k in ("video_id", "track_id", "frame", "t", "valence", "arousal", "speaking", "speaker", "model")
    }
    for track in range(n_tracks):
        voice = speakers[track] if track < len(speakers) else None
        speaks = np.zeros(len(t), bool)
        for turn in turns:
            speaks |= (turn.speaker == voice) & (t >= turn.start) & (t < turn.end)
        visible = _visibility(rng, len(t))
        valence = _drift(rng, len(t), mean=rng.uniform(-0.3, 0.4))
        arousal = _drift(rng, len(t), mean=rng.uniform(-0.2, 0.3))
        n = int(visible.sum())
        columns["video_id"] += [video_id] * n
        columns["track_id"] += [track] * n
        columns["frame"] += (frames[visible] * 6).tolist()  # source video at 30 fps
        columns["t"] += t[visible].tolist()
        columns["valence"] += valence[visible].tolist()
        columns["arousal"] += arousal[visible].tolist()
        columns["speaking"] += speaks[visible].tolist()
        columns["speaker"] += [voice] * n
        columns["model"] += ["rcma-synthetic"] * n
    return columns


def _tracks(video_id: str, emotions: dict[str, list], fps: float) -> list[dict]:
    """One row per face track of ``emotions``: its voice and its seconds of speaking."""
    track_id, t = np.array(emotions["track_id"]), np.array(emotions["t"])
    rows = []
    for track in np.unique(track_id).tolist():
        mine = np.flatnonzero(track_id == track)
        voice = emotions["speaker"][mine[0]]
        rows.append(
            dict(
                video_id=video_id,
                track_id=track,
                first_t=float(t[mine].min()),
                last_t=float(t[mine].max()),
                n_faces=len(mine),
                speaker=voice,
                link_score=None if voice is None else 0.9,
                speaking_s=sum(emotions["speaking"][i] for i in mine) / fps,
                method="synthetic" if voice else "no voice",
            )
        )
    return rows


def _drift(rng: np.random.Generator, n: int, *, mean: float) -> np.ndarray:
    """A smooth AR(1) walk in [-1, 1] with occasional emotional events."""
    x = np.empty(n)
    level = mean
    for i in range(n):
        if rng.random() < 0.004:
            level = float(np.clip(mean + rng.normal(0, 0.6), -0.9, 0.9))
        elif rng.random() < 0.01:
            level = mean
        x[i] = (x[i - 1] if i else mean) * 0.95 + level * 0.05 + rng.normal(0, 0.03)
    return np.clip(x, -1.0, 1.0)


def _visibility(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mostly on screen, with a few absences (cuts, turning away)."""
    visible = np.ones(n, bool)
    for _ in range(max(1, n // 600)):
        if rng.random() < 0.5:
            start = int(rng.integers(n))
            visible[start : start + int(rng.integers(10, max(11, n // 60)))] = False
    return visible


def _video_row(video_id: str, duration_s: float, fps: float, run_id: str) -> dict:
    now = datetime.now(UTC)
    return dict(
        video_id=video_id,
        uri=f"file:///corpus/{video_id}.mp4",
        name=f"{video_id}.mp4",
        size_bytes=1000,
        duration_s=duration_s,
        fps=30.0,
        width=1280,
        height=720,
        n_frames=int(duration_s * 30),
        has_audio=True,
        analysis_fps=fps,
        n_frames_analysed=int(duration_s * fps),
        status="ok",
        error=None,
        run_id=run_id,
        started=now,
        finished=now,
        elapsed_s=1.0,
        stage_seconds="{}",
        config_hash="synthetic",
        pipeline_version="0.1.0",
        backends="{}",
    )
