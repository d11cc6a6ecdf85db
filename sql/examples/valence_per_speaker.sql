-- Valence and arousal per speaker per video: the faces on screen while each speaker holds
-- the floor (speaker NULL: nobody is speaking). Seconds are face-track seconds.
--
-- Run:    affectflow sql --out OUT -f sql/examples/valence_per_speaker.sql [--param video_id=ID]
-- Params: video_id  one video only (default: the whole corpus)
--         t_from, t_to  time range in seconds (default: whole videos)

SELECT
    e.video_id,
    v.name,
    e.speaker,
    round(count(*) / any_value(v.analysis_fps), 1) AS seconds,
    round(avg(e.valence), 3) AS valence_mean,
    round(quantile_cont(e.valence, 0.1), 3) AS valence_p10,
    round(quantile_cont(e.valence, 0.9), 3) AS valence_p90,
    round(avg(e.arousal), 3) AS arousal_mean
FROM emotion_speech AS e
JOIN videos AS v USING (video_id)
WHERE e.video_id = coalesce(getvariable('video_id'), e.video_id)
  AND e.t >= coalesce(getvariable('t_from')::DOUBLE, 0)
  AND e.t < coalesce(getvariable('t_to')::DOUBLE, 'infinity')
GROUP BY e.video_id, v.name, e.speaker
ORDER BY v.name, e.video_id, e.speaker NULLS LAST;
