-- A person's most negative moments across the corpus: 5-second windows of lowest mean valence.
--
-- Run:    affectflow sql --out OUT -f sql/examples/people/person_negative_moments.sql --param person_id=P000003
-- Params: person_id  the person (required)
--         top_n      how many moments (default 10)

SELECT
    t.video_id,
    floor(t.t / 5) * 5 AS t_start,
    floor(t.t / 5) * 5 + 5 AS t_end,
    round(avg(t.valence), 3) AS valence,
    round(avg(t.arousal), 3) AS arousal
FROM person_timeline AS t
WHERE t.person_id = getvariable('person_id')
GROUP BY t.video_id, floor(t.t / 5)
ORDER BY valence, t.video_id, t_start
LIMIT coalesce(getvariable('top_n')::INTEGER, 10);
