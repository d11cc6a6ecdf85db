-- The most negative moments of the corpus, with who was speaking (and on which face) and what was said.
-- A moment is a window of window_s seconds (all face tracks averaged) that is lower than the
-- windows just before and after it, so one sad scene gives one moment, not ten.
--
-- Run:    affectflow sql --out OUT -f sql/examples/most_negative_moments.sql [--param top_n=20]
-- Params: top_n     moments to list (default 10)
--         window_s  window length in seconds (default 5)
--         video_id  one video only (default: the whole corpus)
--         t_from, t_to  time range in seconds (default: whole videos)

SET VARIABLE top_n = coalesce(getvariable('top_n'), '10');
SET VARIABLE window_s = coalesce(getvariable('window_s'), '5');

WITH windows AS (
    SELECT
        video_id,
        floor(t / getvariable('window_s')::DOUBLE) * getvariable('window_s')::DOUBLE AS t_start,
        avg(valence) AS valence,
        avg(arousal) AS arousal
    FROM emotions
    WHERE video_id = coalesce(getvariable('video_id'), video_id)
      AND t >= coalesce(getvariable('t_from')::DOUBLE, 0)
      AND t < coalesce(getvariable('t_to')::DOUBLE, 'infinity')
    GROUP BY ALL
),
moments AS (
    SELECT *, t_start + getvariable('window_s')::DOUBLE AS t_end
    FROM windows
    WINDOW w AS (PARTITION BY video_id ORDER BY t_start)
    QUALIFY valence <= coalesce(lag(valence) OVER w, 'infinity')
        AND valence <= coalesce(lead(valence) OVER w, 'infinity')
    ORDER BY valence
    LIMIT getvariable('top_n')::INTEGER
)
SELECT
    m.video_id,
    v.name,
    to_seconds(m.t_start) AS at,
    m.t_start,
    m.t_end,
    round(m.valence, 3) AS valence,
    round(m.arousal, 3) AS arousal,
    (
        SELECT string_agg(DISTINCT turn.speaker || coalesce(' (face ' || turn.track_id || ')', ' (no face)'), ', ')
        FROM turn_faces AS turn
        WHERE turn.video_id = m.video_id AND turn."end" > m.t_start AND turn.start < m.t_end
    ) AS speakers,
    (
        SELECT string_agg(w.word, ' ' ORDER BY w.start)
        FROM words AS w
        WHERE w.video_id = m.video_id AND w."end" > m.t_start AND w.start < m.t_end
    ) AS said
FROM moments AS m
JOIN videos AS v USING (video_id)
ORDER BY m.valence, m.video_id, m.t_start;
