-- Videos whose mean arousal rose the most since an earlier run (e.g. last week's, before a
-- model or config change). Tables keep only the latest analysis of each video, so the
-- earlier run is another output root, attached as schema `baseline`; videos match by
-- video_id (a content hash: the same bytes are the same video in both).
--
-- Run:    affectflow sql --out OUT --attach baseline=LAST_WEEK_OUT -f sql/examples/arousal_rise.sql
-- Params: top_n     videos to list (default 10)
--         video_id  one video only (default: the whole corpus)

SET VARIABLE top_n = coalesce(getvariable('top_n'), '10');
SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM duckdb_schemas() WHERE schema_name = 'baseline')
    THEN error('arousal_rise.sql compares with an earlier run: add --attach baseline=EARLIER_OUT') END;

SELECT
    now.video_id,
    now.name,
    then_v.finished AS baseline_finished,
    now_v.finished AS finished,
    round(before.arousal_mean, 3) AS arousal_before,
    round(now.arousal_mean, 3) AS arousal_now,
    round(now.arousal_mean - before.arousal_mean, 3) AS rise,
    round(now.valence_mean - before.valence_mean, 3) AS valence_change
FROM video_summary AS now
JOIN baseline.video_summary AS before USING (video_id)
JOIN videos AS now_v USING (video_id)
JOIN baseline.videos AS then_v USING (video_id)
WHERE now.video_id = coalesce(getvariable('video_id'), now.video_id)
ORDER BY rise DESC, now.name
LIMIT getvariable('top_n')::INTEGER;
