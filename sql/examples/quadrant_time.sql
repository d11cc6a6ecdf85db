-- Where each video sits on the circumplex: seconds and share of face-track time in each
-- quadrant (excited, tense, sad, calm), videos ranked by the share of one quadrant.
--
-- Run:    affectflow sql --out OUT -f sql/examples/quadrant_time.sql [--param quadrant=sad]
-- Params: quadrant  excited | tense | sad | calm: rank by its share (default tense)
--         top_n     videos to list (default 20)
--         video_id  one video only (default: the whole corpus)

SET VARIABLE quadrant = coalesce(getvariable('quadrant'), 'tense');
SET VARIABLE top_n = coalesce(getvariable('top_n'), '20');
SELECT CASE WHEN getvariable('quadrant') NOT IN ('excited', 'tense', 'sad', 'calm')
    THEN error('quadrant must be one of excited, tense, sad, calm') END;

SELECT
    video_id,
    name,
    round(seconds, 1) AS seconds,
    round(excited_s, 1) AS excited_s,
    round(tense_s, 1) AS tense_s,
    round(sad_s, 1) AS sad_s,
    round(calm_s, 1) AS calm_s,
    round(
        CASE getvariable('quadrant')
            WHEN 'excited' THEN excited_s WHEN 'tense' THEN tense_s WHEN 'sad' THEN sad_s ELSE calm_s
        END / seconds,
        3
    ) AS share
FROM video_summary
WHERE video_id = coalesce(getvariable('video_id'), video_id)
ORDER BY share DESC NULLS LAST, name
LIMIT getvariable('top_n')::INTEGER;
