"""The tables: their Arrow schemas, and every record → rows conversion, in one place.

The schemas are the contract of the output root (README "Tables", ``sql/views.sql``);
the conversions turn the stages' records (``tasks/records.py``) into them. The store
(``store.py``) is the one writer; this module only builds in-memory tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pyarrow as pa

from affectflow.tasks.records import Emotions, FaceTracks, SpeakerTurn, TrackLink, Word

_landmarks = pa.list_(pa.float32(), 10)  # 5 points (x, y): eyes, nose, mouth corners

SCHEMAS: dict[str, pa.Schema] = {
    "videos": pa.schema(
        [
            ("video_id", pa.string()),
            ("uri", pa.string()),
            ("name", pa.string()),
            ("size_bytes", pa.int64()),
            ("duration_s", pa.float64()),
            ("fps", pa.float64()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("n_frames", pa.int64()),
            ("has_audio", pa.bool_()),
            ("analysis_fps", pa.float64()),
            ("n_frames_analysed", pa.int64()),
            ("status", pa.string()),  # ok | failed
            ("error", pa.string()),
            ("run_id", pa.string()),
            ("started", pa.timestamp("us", tz="UTC")),
            ("finished", pa.timestamp("us", tz="UTC")),
            ("elapsed_s", pa.float64()),
            ("stage_seconds", pa.string()),  # JSON {stage: seconds}
            ("config_hash", pa.string()),
            ("pipeline_version", pa.string()),
            ("backends", pa.string()),  # JSON {stage: backend and weights that produced it}
        ]
    ),
    "faces": pa.schema(
        [
            ("video_id", pa.string()),
            ("track_id", pa.int32()),
            ("frame", pa.int64()),
            ("t", pa.float64()),
            ("x1", pa.float32()),
            ("y1", pa.float32()),
            ("x2", pa.float32()),
            ("y2", pa.float32()),
            ("score", pa.float32()),
            ("landmarks", _landmarks),
        ]
    ),
    "tracks": pa.schema(  # one row per face track: who it is (its own voice), from the who-is-speaking stage
        [
            ("video_id", pa.string()),
            ("track_id", pa.int32()),
            ("first_t", pa.float64()),  # s, its first analysed face
            ("last_t", pa.float64()),  # s, its last
            ("n_faces", pa.int32()),  # face rows of the track
            ("speaker", pa.string()),  # the diarized label of this face's own voice; NULL: none (listener, no audio)
            ("link_score", pa.float32()),  # evidence for the link, higher is surer; NULL when not linked
            ("speaking_s", pa.float64()),  # seconds this face speaks
            ("method", pa.string()),  # how the link was found
        ]
    ),
    "speaker_turns": pa.schema(
        [
            ("video_id", pa.string()),
            ("speaker", pa.string()),
            ("start", pa.float64()),
            ("end", pa.float64()),
            ("model", pa.string()),
        ]
    ),
    "words": pa.schema(
        [
            ("video_id", pa.string()),
            ("word", pa.string()),
            ("start", pa.float64()),
            ("end", pa.float64()),
            ("score", pa.float32()),
            ("speaker", pa.string()),
            ("segment", pa.int32()),
            ("model", pa.string()),
        ]
    ),
    "emotions": pa.schema(
        [
            ("video_id", pa.string()),
            ("track_id", pa.int32()),
            ("frame", pa.int64()),
            ("t", pa.float64()),
            ("valence", pa.float32()),
            ("arousal", pa.float32()),
            ("speaking", pa.bool_()),  # this face is the one speaking at t; NULL: who-is-speaking did not run
            ("speaker", pa.string()),  # this face's own voice (tracks.speaker); NULL: it has none
            ("model", pa.string()),
        ]
    ),
    "runs": pa.schema(
        [
            ("run_id", pa.string()),
            ("flow", pa.string()),
            ("started", pa.timestamp("us", tz="UTC")),
            ("finished", pa.timestamp("us", tz="UTC")),
            ("source", pa.string()),
            ("out", pa.string()),
            ("n_ok", pa.int32()),
            ("n_failed", pa.int32()),
            ("n_skipped", pa.int32()),
            ("parameters", pa.string()),  # JSON
            ("versions", pa.string()),  # JSON
            ("status", pa.string()),  # finished | interrupted (counts up to the signal); NULL in older runs
        ]
    ),
    # Biometric data (docs/people.md): one identity embedding per face track and per diarized voice.
    "identities": pa.schema(
        [
            ("video_id", pa.string()),
            ("kind", pa.string()),  # face | voice
            ("track_id", pa.int32()),  # face: the track; NULL for a voice
            ("speaker", pa.string()),  # voice: the diarized label; NULL for a face
            ("model", pa.string()),  # the embedding model: only vectors of one model are ever compared
            ("dim", pa.int32()),
            ("vector", pa.list_(pa.float32())),  # L2-normalised mean of the track's / voice's embeddings
            ("n", pa.int32()),  # face rows (face) or speech chunks (voice) averaged
        ]
    ),
    # Corpus-wide people (tasks/people/): one snapshot per link, ``<table>/link_id=<id>/part-0.parquet``;
    # ``link_id`` is the Hive partition (not a column of the files), ``people`` is written last.
    "person_tracks": pa.schema(
        [
            ("video_id", pa.string()),
            ("track_id", pa.int32()),  # NULL: a voice with no face in this video
            ("speaker", pa.string()),  # NULL: a face with no voice of its own
            ("person_id", pa.string()),
            ("similarity", pa.float32()),  # cosine similarity to the person when joined; NULL: it founded them
            ("evidence", pa.string()),  # face | voice | both | new | manual
            ("link_id", pa.string()),
        ]
    ),
    "person_decisions": pa.schema(
        [
            ("seq", pa.int32()),  # order in which the decisions were made (and are re-applied)
            ("action", pa.string()),  # name | merge | split
            ("person_id", pa.string()),
            ("other", pa.string()),  # merge: the person folded into person_id; name: the name
            ("video_id", pa.string()),  # split: the track/voice moved to a new person
            ("track_id", pa.int32()),
            ("speaker", pa.string()),
            ("made", pa.timestamp("us", tz="UTC")),
            ("link_id", pa.string()),
        ]
    ),
    "people": pa.schema(
        [
            ("person_id", pa.string()),
            ("name", pa.string()),
            ("n_videos", pa.int32()),
            ("n_tracks", pa.int32()),  # face tracks and face-less voices
            ("first_seen", pa.timestamp("us", tz="UTC")),  # the earliest of their videos' runs
            ("last_seen", pa.timestamp("us", tz="UTC")),
            ("face_model", pa.string()),
            ("voice_model", pa.string()),
            ("thresholds", pa.string()),  # JSON: the similarity thresholds this link used
            ("link_id", pa.string()),
        ]
    ),
}
VIDEO_TABLES = ("faces", "tracks", "speaker_turns", "words", "emotions", "identities")  # written before "videos"
PEOPLE_TABLES = ("person_tracks", "person_decisions", "people")  # one snapshot per link, "people" last
TABLES = tuple(SCHEMAS)


def to_table(name: str, rows: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> pa.Table:
    """Build a table with the store's exact schema from columns or row dicts; absent columns are NULL."""
    schema = SCHEMAS[name]
    if isinstance(rows, Mapping):
        n = len(next(iter(rows.values()), []))
        return pa.Table.from_pydict({f.name: rows.get(f.name, [None] * n) for f in schema}, schema=schema)
    return pa.Table.from_pylist(list(rows), schema=schema)


def faces_table(video_id: str, faces: FaceTracks) -> pa.Table:
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


def tracks_table(video_id: str, links: Sequence[TrackLink]) -> pa.Table:
    """One row per face track; TrackLink's fields are the table's columns."""
    return to_table("tracks", [dict(video_id=video_id, **asdict(link)) for link in links])


def turns_table(video_id: str, turns: Sequence[SpeakerTurn], model: str) -> pa.Table:
    return to_table(
        "speaker_turns",
        [dict(video_id=video_id, speaker=t.speaker, start=t.start, end=t.end, model=model) for t in turns],
    )


def words_table(video_id: str, words: Sequence[Word], model: str) -> pa.Table:
    return to_table(
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
            for w in words
        ],
    )


def emotions_table(video_id: str, emotions: Emotions) -> pa.Table:
    n = len(emotions.t)
    columns: dict[str, Any] = dict(
        track_id=emotions.track_id,
        frame=emotions.frame,
        t=emotions.t,
        valence=emotions.valence,
        arousal=emotions.arousal,
    )
    speaking: Any = [None] * n if emotions.speaking is None else emotions.speaking  # (N,) bool, or NULLs
    return to_table(
        "emotions",
        {
            "video_id": [video_id] * n,
            **columns,
            "speaking": speaking,
            "speaker": emotions.speaker,
            "model": [emotions.model] * n,
        },
    )


def identities_table(video_id: str, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """One row per identity embedding (tasks/people/identity.py's ``Identity`` fields)."""
    return to_table("identities", [dict(video_id=video_id, **row) for row in rows])
