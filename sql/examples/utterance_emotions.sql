-- The transcript of one video, one line per utterance, with who said it, the face that said
-- it (track_id) and that face's mean valence/arousal while it was said: the speaking
-- person's own face, never the mean of all faces on screen. NULL valence: the voice has no
-- face (off screen), or its face was not visible then.
--
-- Run:    affectflow sql --out OUT -f sql/examples/utterance_emotions.sql --param video_id=ID
-- Params: video_id  the video (required)
--         t_from, t_to  time range in seconds (default: the whole video)

SELECT CASE WHEN getvariable('video_id') IS NULL
    THEN error('utterance_emotions.sql needs the video: --param video_id=ID') END;

SELECT
    to_seconds(start) AS at,
    start,
    "end",
    speaker,
    track_id,
    text,
    round(valence, 3) AS valence,
    round(arousal, 3) AS arousal,
    circumplex_quadrant(valence, arousal) AS quadrant
FROM utterance_emotions
WHERE video_id = getvariable('video_id')
  AND "end" > coalesce(getvariable('t_from')::DOUBLE, 0)
  AND start < coalesce(getvariable('t_to')::DOUBLE, 'infinity')
ORDER BY start;
