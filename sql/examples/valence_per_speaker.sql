-- Valence and arousal per speaker per video, read from that speaker's own face (the face
-- track linked to the voice), while speaking and while listening. speaker NULL: faces
-- without a voice of their own. Seconds are face-track seconds.
--
-- Run:    affectflow sql --out OUT -f sql/examples/valence_per_speaker.sql [--param video_id=ID]
-- Params: video_id  one video only (default: the whole corpus)
--         t_from, t_to  time range in seconds (default: whole videos)

SELECT
    e.video_id,
    v.name,
    e.speaker,
    list(DISTINCT e.track_id ORDER BY e.track_id) AS tracks,
    round(count(*) / any_value(v.analysis_fps), 1) AS seconds,
    round(count_if(e.speaking) / any_value(v.analysis_fps), 1) AS speaking_s,
    round(avg(e.valence), 3) AS valence_mean,
    round(quantile_cont(e.valence, 0.1), 3) AS valence_p10,
    round(quantile_cont(e.valence, 0.9), 3) AS valence_p90,
    round(avg(e.arousal), 3) AS arousal_mean,
    round(avg(e.valence) FILTER (WHERE e.speaking), 3) AS valence_speaking,
    round(avg(e.arousal) FILTER (WHERE e.speaking), 3) AS arousal_speaking
FROM emotions AS e
JOIN videos AS v USING (video_id)
WHERE e.video_id = coalesce(getvariable('video_id'), e.video_id)
  AND e.t >= coalesce(getvariable('t_from')::DOUBLE, 0)
  AND e.t < coalesce(getvariable('t_to')::DOUBLE, 'infinity')
GROUP BY e.video_id, v.name, e.speaker
ORDER BY v.name, e.video_id, e.speaker NULLS LAST;
