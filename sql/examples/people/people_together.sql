-- The people who appear together: pairs of people and the videos they share.
--
-- Run:    affectflow sql --out OUT -f sql/examples/people/people_together.sql

WITH present AS (SELECT DISTINCT person_id, video_id FROM person_tracks)
SELECT
    a.person_id AS person_a,
    b.person_id AS person_b,
    count(*) AS n_videos,
    list(a.video_id ORDER BY a.video_id) AS videos
FROM present AS a
JOIN present AS b ON a.video_id = b.video_id AND a.person_id < b.person_id
GROUP BY a.person_id, b.person_id
ORDER BY n_videos DESC, person_a, person_b;
