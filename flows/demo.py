"""`affectflow demo`: generate a few clips, run the whole pipeline, show what came out."""

from __future__ import annotations

import sys
from pathlib import Path

from flows.runner import run_with_progress
from tasks.query import connect

REPO = Path(__file__).resolve().parent.parent
SAMPLE_SQL = """
SELECT v.name, count(*) AS frames, count(DISTINCT e.track_id) AS tracks,
       round(avg(e.valence), 3) AS mean_valence, round(avg(e.arousal), 3) AS mean_arousal,
       round(avg((e.speaker IS NOT NULL)::INT), 2) AS share_with_speech
FROM emotions e JOIN videos v USING (video_id)
GROUP BY v.name ORDER BY v.name
"""


def run_demo(directory: str) -> int:
    """Build the demo media (once), process it, print a summary and a sample query."""
    if not (REPO / "tests" / "mediagen").is_dir():
        print("error: the demo generates its media with tests/mediagen: run it from a source checkout", file=sys.stderr)
        return 3
    sys.path.insert(0, str(REPO))
    from tests.mediagen.corpus import build_corpus

    root = Path(directory)
    media, out = root / "media", root / "tables"
    if not media.is_dir():
        print(f"generating demo media in {media} (real faces from scikit-image, voices from espeak-ng)")
        build_corpus(media, with_bad_files=False)
    summary = run_with_progress(str(media), str(out), fps=5.0, stages=None)
    con = connect(str(out))
    print(f"\ntables: {out.resolve()}/<table>/video_id=<id>/part-0.parquet")
    print(f'query them: affectflow sql --out {out} "SELECT * FROM emotion_summary"\n')
    print("sample query — emotion per video:")
    con.sql(SAMPLE_SQL).show()
    video_id = con.execute("SELECT video_id FROM videos WHERE name = 'two_people.mp4'").fetchone()
    if video_id:
        from tasks.plots import plot_timeline

        png = plot_timeline(str(out), video_id[0], str(root / "two_people-timeline.png"))
        print(f"timeline plot: {png}")
    return 0 if summary.ok else 1
