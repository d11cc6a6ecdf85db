-- The transcript of one video, one line per utterance, with who said it and the mean
-- valence/arousal of the faces on screen while it was said.
--
-- Run:    affectflow sql --out OUT -f sql/examples/utterance_emotions.sql --param video_id=ID
-- Params: video_id  the video (required)
--         t_from, t_to  time range in seconds (default: the whole video)

SELECT CASE WHEN getvariable('video_id') IS NULL
    THEN error('utterance_emotions.sql needs the video: --param video_id=ID') END;

SELECT
    to_seconds(u.start) AS at,
    u.start,
    u."end",
    u.speaker,
    u.text,
    round(avg(e.valence), 3) AS valence,
    round(avg(e.arousal), 3) AS arousal,
    circumplex_quadrant(avg(e.valence), avg(e.arousal)) AS quadrant
FROM utterances AS u
LEFT JOIN emotions AS e ON e.video_id = u.video_id AND e.t >= u.start AND e.t < u."end"
WHERE u.video_id = getvariable('video_id')
  AND u."end" > coalesce(getvariable('t_from')::DOUBLE, 0)
  AND u.start < coalesce(getvariable('t_to')::DOUBLE, 'infinity')
GROUP BY u.video_id, u.segment, u.start, u."end", u.speaker, u.text
ORDER BY u.start;
