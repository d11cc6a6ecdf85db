-- Views over the affectflow Parquet tables. Each `{table}` placeholder is replaced by a
-- read_parquet() over `<out>/<table>/*/*.parquet` (Hive partitions, so filters on video_id
-- prune files), or by an empty relation of the right schema while the table has no files.
-- A video's rows are visible only once its `videos` row exists: that row is written last
-- (and removed first when a video is redone), so a crash never shows partial results.
--
-- The commit rule is an inner join on the distinct committed ids rather than
-- `video_id IN (SELECT ...)`: DuckDB carries a `video_id = ...` filter across an inner join
-- to both sides, so a query about one video opens that video's files only (an IN/semi join
-- would read every `videos` file on each query).
--
-- Times are seconds from the start of the video; valence and arousal are in [-1, 1].

CREATE OR REPLACE VIEW videos AS
SELECT * FROM {videos};

CREATE OR REPLACE VIEW runs AS
SELECT * FROM {runs};

CREATE OR REPLACE VIEW faces AS
SELECT rows.* FROM {faces} AS rows JOIN (SELECT DISTINCT video_id FROM videos) USING (video_id);

CREATE OR REPLACE VIEW speaker_turns AS
SELECT rows.* FROM {speaker_turns} AS rows JOIN (SELECT DISTINCT video_id FROM videos) USING (video_id);

CREATE OR REPLACE VIEW words AS
SELECT rows.* FROM {words} AS rows JOIN (SELECT DISTINCT video_id FROM videos) USING (video_id);

CREATE OR REPLACE VIEW emotions AS
SELECT rows.* FROM {emotions} AS rows JOIN (SELECT DISTINCT video_id FROM videos) USING (video_id);


-- ---------------------------------------------------------------------------------------
-- Derived views. Everything below reads only the views above.
-- ---------------------------------------------------------------------------------------

-- Quadrant of Russell's circumplex for one (valence, arousal) point; 0 counts as positive.
--   excited: pleasant, activated (happy, elated)      tense: unpleasant, activated (angry, afraid)
--   sad:     unpleasant, deactivated (sad, bored)     calm:  pleasant, deactivated (relaxed, content)
CREATE OR REPLACE MACRO circumplex_quadrant(valence, arousal) AS
CASE
    WHEN valence IS NULL OR arousal IS NULL THEN NULL
    WHEN arousal >= 0 THEN CASE WHEN valence >= 0 THEN 'excited' ELSE 'tense' END
    ELSE CASE WHEN valence >= 0 THEN 'calm' ELSE 'sad' END
END;

-- Timeline of one face track in bins of `bin_s` seconds: SELECT * FROM emotion_timeline(10).
-- t_start is the bin's start (s); min/max keep short peaks visible after aggregation.
CREATE OR REPLACE MACRO emotion_timeline(bin_s) AS TABLE
SELECT
    video_id,
    track_id,
    floor(t / bin_s) * bin_s AS t_start,
    count(*) AS n_frames,
    avg(valence) AS valence,
    avg(arousal) AS arousal,
    min(valence) AS valence_min,
    max(valence) AS valence_max,
    min(arousal) AS arousal_min,
    max(arousal) AS arousal_max
FROM emotions
GROUP BY video_id, track_id, floor(t / bin_s) * bin_s;

CREATE OR REPLACE VIEW timeline_second AS SELECT * FROM emotion_timeline(1);

CREATE OR REPLACE VIEW timeline_minute AS SELECT * FROM emotion_timeline(60);

-- Speaker turns cut at every turn boundary into non-overlapping segments [start, end) with
-- the speakers active in each. Where turns overlap, `speaker` is the one whose turn began
-- last (who took the floor); `speakers` lists them all. Silences have no segment.
CREATE OR REPLACE VIEW speech_segments AS
WITH boundaries AS (
    SELECT video_id, start AS t FROM speaker_turns
    UNION
    SELECT video_id, "end" FROM speaker_turns
),
segments AS (
    SELECT video_id, t AS start, lead(t) OVER (PARTITION BY video_id ORDER BY t) AS "end"
    FROM boundaries
)
SELECT
    s.video_id,
    s.start,
    s."end",
    arg_max(turn.speaker, turn.start) AS speaker,
    list(DISTINCT turn.speaker ORDER BY turn.speaker) AS speakers
FROM segments AS s
JOIN speaker_turns AS turn
    ON turn.video_id = s.video_id AND turn.start <= s.start AND turn."end" >= s."end"
WHERE s."end" > s.start
GROUP BY s.video_id, s.start, s."end";

-- The transcript as utterances: the words of one transcription segment, in order.
CREATE OR REPLACE VIEW utterances AS
SELECT
    video_id,
    segment,
    min(start) AS start,
    max("end") AS "end",
    list_mode(list(speaker)) AS speaker,
    count(*) AS n_words,
    string_agg(word, ' ' ORDER BY start) AS text
FROM words
GROUP BY video_id, segment;

-- Every emotion row with the active speaker at its time t (from the diarized turns; NULL in
-- silences) and its circumplex quadrant. One row per emotion row; intervals are [start, end).
CREATE OR REPLACE VIEW emotion_speaker AS
SELECT
    e.video_id,
    e.track_id,
    e.frame,
    e.t,
    e.valence,
    e.arousal,
    circumplex_quadrant(e.valence, e.arousal) AS quadrant,
    CASE WHEN e.t < s."end" THEN s.speaker END AS speaker,
    CASE WHEN e.t < s."end" THEN s.speakers END AS speakers,
    e.model
FROM emotions AS e
ASOF LEFT JOIN speech_segments AS s ON e.video_id = s.video_id AND e.t >= s.start;

-- ... and also the word being said at t and the utterance it belongs to (NULL in silences).
CREATE OR REPLACE VIEW emotion_speech AS
SELECT
    e.* EXCLUDE (model),
    CASE WHEN e.t < w."end" THEN w.word END AS word,
    CASE WHEN e.t < u."end" THEN u.text END AS utterance,
    CASE WHEN e.t < u."end" THEN u.start END AS utterance_start,
    e.model
FROM emotion_speaker AS e
ASOF LEFT JOIN words AS w ON e.video_id = w.video_id AND e.t >= w.start
ASOF LEFT JOIN utterances AS u ON e.video_id = u.video_id AND e.t >= u.start;

-- Valence/arousal statistics at three levels: level = 'video' (all face tracks), 'track'
-- (one face track) or 'speaker' (all faces while that speaker held the floor; speaker NULL =
-- nobody speaking). *_s columns are seconds of face-track time, counted as analysed frames /
-- analysis_fps (two tracks on screen for 1 s count 2 s). A filter on level skips the other
-- levels' work, so video_summary never pays for the speaker join.
CREATE OR REPLACE VIEW emotion_summary AS
WITH by_level AS (
    SELECT 'video' AS level, video_id, NULL::INTEGER AS by_track, NULL::VARCHAR AS by_speaker,
           track_id, valence, arousal
    FROM emotions
    UNION ALL
    SELECT 'track', video_id, track_id, NULL, track_id, valence, arousal FROM emotions
    UNION ALL
    SELECT 'speaker', video_id, NULL, speaker, track_id, valence, arousal FROM emotion_speaker
)
SELECT
    e.video_id,
    e.level,
    e.by_track AS track_id,
    e.by_speaker AS speaker,
    count(*) AS n_frames,
    count(DISTINCT e.track_id) AS n_tracks,
    count(*) / any_value(v.analysis_fps) AS seconds,
    avg(e.valence) AS valence_mean,
    quantile_cont(e.valence, 0.1) AS valence_p10,
    quantile_cont(e.valence, 0.5) AS valence_p50,
    quantile_cont(e.valence, 0.9) AS valence_p90,
    avg(e.arousal) AS arousal_mean,
    quantile_cont(e.arousal, 0.1) AS arousal_p10,
    quantile_cont(e.arousal, 0.5) AS arousal_p50,
    quantile_cont(e.arousal, 0.9) AS arousal_p90,
    count_if(circumplex_quadrant(e.valence, e.arousal) = 'excited') / any_value(v.analysis_fps) AS excited_s,
    count_if(circumplex_quadrant(e.valence, e.arousal) = 'tense') / any_value(v.analysis_fps) AS tense_s,
    count_if(circumplex_quadrant(e.valence, e.arousal) = 'sad') / any_value(v.analysis_fps) AS sad_s,
    count_if(circumplex_quadrant(e.valence, e.arousal) = 'calm') / any_value(v.analysis_fps) AS calm_s
FROM by_level AS e
JOIN videos AS v USING (video_id)
GROUP BY e.video_id, e.level, e.by_track, e.by_speaker;

CREATE OR REPLACE VIEW video_summary AS
SELECT s.video_id, v.name, v.duration_s, s.* EXCLUDE (video_id, level, track_id, speaker)
FROM emotion_summary AS s
JOIN videos AS v USING (video_id)
WHERE s.level = 'video';

CREATE OR REPLACE VIEW track_summary AS
SELECT * EXCLUDE (level, speaker, n_tracks) FROM emotion_summary WHERE level = 'track';

CREATE OR REPLACE VIEW speaker_summary AS
SELECT * EXCLUDE (level, track_id) FROM emotion_summary WHERE level = 'speaker';
