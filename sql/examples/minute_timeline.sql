-- Per-minute timeline of one video, per face track: mean valence and arousal with their
-- range in each minute (bin_s changes the bin length).
--
-- Run:    affectflow sql --out OUT -f sql/examples/minute_timeline.sql --param video_id=ID
-- Params: video_id  the video (required; list them with: affectflow sql --out OUT "FROM videos")
--         bin_s     bin length in seconds (default 60)
--         t_from, t_to  time range in seconds (default: the whole video)

SELECT CASE WHEN getvariable('video_id') IS NULL
    THEN error('minute_timeline.sql needs the video: --param video_id=ID') END;
SET VARIABLE bin_s = coalesce(getvariable('bin_s'), '60');

SELECT
    video_id,
    track_id,
    to_seconds(t_start) AS at,
    t_start,
    n_frames,
    round(valence, 3) AS valence,
    round(valence_min, 3) AS valence_min,
    round(valence_max, 3) AS valence_max,
    round(arousal, 3) AS arousal,
    round(arousal_min, 3) AS arousal_min,
    round(arousal_max, 3) AS arousal_max
FROM emotion_timeline(getvariable('bin_s')::DOUBLE)
WHERE video_id = getvariable('video_id')
  AND t_start + getvariable('bin_s')::DOUBLE > coalesce(getvariable('t_from')::DOUBLE, 0)
  AND t_start < coalesce(getvariable('t_to')::DOUBLE, 'infinity')
ORDER BY track_id, t_start;
