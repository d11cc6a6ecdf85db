"""One committed video's rows, read through the views, as the exporters' single input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd


@dataclass(frozen=True)
class VideoResults:
    """Every table's rows of one video; each frame sorted by time (s from the start of the video)."""

    video: dict[str, Any]  # the `videos` row
    emotions: pd.DataFrame  # track_id, frame, t, valence, arousal ([-1, 1]), speaking, speaker, person_id, model
    words: pd.DataFrame  # word, start, end, score, speaker, segment, model
    turns: pd.DataFrame  # speaker, person_id, start, end, model
    tracks: pd.DataFrame  # track_id, person_id, first_t, last_t, n_faces, speaker, link_score, speaking_s, method
    faces: pd.DataFrame  # track_id, frame, t, x1, y1, x2, y2 (source pixels), score

    @property
    def video_id(self) -> str:
        return str(self.video["video_id"])

    @property
    def duration_s(self) -> float:
        return float(self.video.get("duration_s") or 0.0)

    @property
    def name(self) -> str:
        return str(self.video.get("name") or self.video.get("uri") or self.video_id)


# person_id: the corpus-wide person of a face track or a voice (NULL before `affectflow people link`).
TRACK_PEOPLE = (
    "LEFT JOIN (SELECT video_id, track_id, any_value(person_id) AS person_id FROM person_tracks"
    " WHERE track_id IS NOT NULL GROUP BY ALL) USING (video_id, track_id)"
)
SPEAKER_PEOPLE = (
    "LEFT JOIN (SELECT video_id, speaker, any_value(person_id) AS person_id FROM person_tracks"
    " WHERE speaker IS NOT NULL GROUP BY ALL) USING (video_id, speaker)"
)
QUERIES = {
    "emotions": "SELECT track_id, frame, t, valence, arousal, speaking, speaker, person_id, model"
    f" FROM emotions {TRACK_PEOPLE} {{where}} ORDER BY track_id, t",
    "words": 'SELECT word, start, "end", score, speaker, segment, model FROM words {where} ORDER BY start, "end"',
    "turns": f'SELECT speaker, person_id, start, "end", model FROM speaker_turns {SPEAKER_PEOPLE} {{where}}'
    ' ORDER BY start, "end"',
    "tracks": "SELECT track_id, person_id, first_t, last_t, n_faces, speaker, link_score, speaking_s, method"
    f" FROM tracks {TRACK_PEOPLE} {{where}} ORDER BY track_id",
    "faces": "SELECT track_id, frame, t, x1, y1, x2, y2, score FROM faces {where} ORDER BY track_id, t",
}


def committed_videos(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """video_id, name, status of every committed video, by name."""
    return con.execute("SELECT video_id, name, status FROM videos ORDER BY name, video_id").df()


def load_results(con: duckdb.DuckDBPyConnection, video_id: str) -> VideoResults:
    """The rows of ``video_id`` (which must be committed: check with ``committed_videos`` first)."""
    con.execute("SET VARIABLE export_video = ?", [video_id])
    where = "WHERE video_id = getvariable('export_video')"
    video = con.execute(f"SELECT * FROM videos {where}").df().to_dict("records")[0]
    frames = {name: con.execute(sql.format(where=where)).df() for name, sql in QUERIES.items()}
    return VideoResults(video=video, **frames)
