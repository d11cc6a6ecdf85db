"""Per-video results in the formats people already use: CSV, JSON, SRT/VTT, RTTM, ELAN, TextGrid.

Read side only: the rows come from the output root through the DuckDB views
(``tasks/query/views.connect``), so an export sees exactly what ``affectflow sql`` sees —
committed videos only — locally or on S3. Each format is written by the format's own library
where one exists (srt, webvtt-py, pyannote.core, pympi-ling, praatio).
"""

from affectflow.tasks.exports.export import FORMATS, ExportError, export_videos

__all__ = ["FORMATS", "ExportError", "export_videos"]
