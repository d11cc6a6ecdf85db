"""`affectflow demo`: generate a few clips, run the whole pipeline, show what came out."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from affectflow.flows.runner import run_with_progress
from affectflow.tasks.query.views import connect
from affectflow.tasks.synth.corpus import build_corpus

SAMPLE_SQL = """
SELECT v.name, count(*) AS frames, count(DISTINCT e.track_id) AS tracks,
       round(avg(e.valence), 3) AS mean_valence, round(avg(e.arousal), 3) AS mean_arousal,
       round(avg(e.speaking::INT), 2) AS share_speaking  -- of the face rows: this face is speaking
FROM emotions e JOIN videos v USING (video_id)
GROUP BY v.name ORDER BY v.name
"""


def run_demo(directory: str) -> int:
    """Build the demo media (once, tasks/synth), process it, print a summary and a sample query."""
    root = Path(directory)
    media, out = root / "media", root / "tables"
    if not media.is_dir():
        print(f"generating demo media in {media} (real faces from scikit-image and matplotlib, voices from espeak-ng)")
        partial = root / ".media-partial"  # renamed when complete: a run cut short is not taken for the media
        shutil.rmtree(partial, ignore_errors=True)
        try:
            build_corpus(partial, with_bad_files=False)
        except RuntimeError as err:  # a missing tool or sample file (espeak-ng, ffmpeg, matplotlib's photo)
            print(f"error: {err}", file=sys.stderr)
            return 3
        partial.rename(media)
    summary = run_with_progress(str(media), str(out), fps=5.0, stages=None)
    con = connect(str(out))
    print(f"\ntables: {out.resolve()}/<table>/video_id=<id>/part-0.parquet")
    print(f'query them: affectflow sql --out {out} "SELECT * FROM emotion_summary"\n')
    print("sample query — emotion per video:")
    con.sql(SAMPLE_SQL).show()
    video_id = con.execute("SELECT video_id FROM videos WHERE name = 'two_people.mp4'").fetchone()
    if video_id:
        from affectflow.tasks.query.plots import plot_timeline

        png = plot_timeline(str(out), video_id[0], str(root / "two_people-timeline.png"))
        print(f"timeline plot: {png}")
    return 0 if summary.ok else 1
