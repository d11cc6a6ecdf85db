-- Valence and arousal of each person in each video (one person over the whole corpus).
--
-- Run:    affectflow sql --out OUT -f sql/examples/people/person_valence_per_video.sql [--param person_id=P000003]
-- Params: person_id  one person only (default: everyone)

SELECT
    t.person_id,
    any_value(t.name) AS name,
    t.video_id,
    v.name AS video,
    round(count(*) / any_value(v.analysis_fps), 1) AS seconds,
    round(avg(t.valence), 3) AS valence_mean,
    round(avg(t.arousal), 3) AS arousal_mean
FROM person_timeline AS t
JOIN videos AS v USING (video_id)
WHERE t.person_id = coalesce(getvariable('person_id'), t.person_id)
GROUP BY t.person_id, t.video_id, v.name, v.started
ORDER BY t.person_id, v.started, t.video_id;
