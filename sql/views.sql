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

-- One row per face track: who it is. `speaker` is the diarized label of this face's own voice
-- (NULL: a listener, a face without audio, or a link too unsure to make), `speaking_s` the
-- seconds it speaks, `link_score` the evidence and `method` how the link was found.
CREATE OR REPLACE VIEW tracks AS
SELECT rows.* FROM {tracks} AS rows JOIN (SELECT DISTINCT video_id FROM videos) USING (video_id);

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

-- The face of every stretch of speech (a turn, a word, an utterance): the track linked to its
-- speaker (tracks.speaker) whose time on screen is nearest — a voice linked to two tracks,
-- e.g. across a cut, gets the one it speaks on. Stretches whose voice has no face (an
-- off-screen narrator, a phone) or no speaker have no row here. Joined on all four columns.
CREATE OR REPLACE VIEW speech_faces AS
WITH spans AS (
    SELECT video_id, speaker, start, "end" FROM speaker_turns
    UNION
    SELECT video_id, speaker, start, "end" FROM words
    UNION
    SELECT video_id, speaker, start, "end" FROM utterances
)
SELECT
    s.video_id,
    s.speaker,
    s.start,
    s."end",
    arg_min(face.track_id, [greatest(face.first_t - s."end", s.start - face.last_t, 0), face.track_id]) AS track_id
FROM spans AS s
JOIN tracks AS face ON face.video_id = s.video_id AND face.speaker = s.speaker
GROUP BY s.video_id, s.speaker, s.start, s."end";

-- Every speaker turn with the face that spoke it (track_id NULL: a voice without a face).
CREATE OR REPLACE VIEW turn_faces AS
SELECT turn.video_id, turn.speaker, face.track_id, turn.start, turn."end", turn.model
FROM speaker_turns AS turn
LEFT JOIN speech_faces AS face USING (video_id, speaker, start, "end");

-- Every word with the face that said it (track_id NULL: its voice has no face, or no speaker).
CREATE OR REPLACE VIEW word_faces AS
SELECT w.video_id, w.word, w.start, w."end", w.speaker, face.track_id, w.score, w.segment, w.model
FROM words AS w
LEFT JOIN speech_faces AS face USING (video_id, speaker, start, "end");

-- Each utterance with its speaker's face and that face's mean valence/arousal while it was said
-- (NULL when the voice has no face, or its face was not on screen): the speaking person's own
-- face, never the other faces on screen.
CREATE OR REPLACE VIEW utterance_emotions AS
SELECT
    u.video_id,
    u.segment,
    u.start,
    u."end",
    u.speaker,
    face.track_id,
    u.n_words,
    u.text,
    count(e.t) AS n_frames,
    avg(e.valence) AS valence,
    avg(e.arousal) AS arousal
FROM utterances AS u
LEFT JOIN speech_faces AS face USING (video_id, speaker, start, "end")
LEFT JOIN emotions AS e
    ON e.video_id = u.video_id AND e.track_id = face.track_id AND e.t >= u.start AND e.t < u."end"
GROUP BY ALL;

-- Every emotion row with its circumplex quadrant, the face's own voice (`speaker`) and whether
-- it is speaking at t, and who holds the floor at t (`active_speaker`: the speaker whose turn
-- began last; `active_speakers`: all, where turns overlap; NULL in silences). One row per
-- emotion row; intervals are [start, end).
CREATE OR REPLACE VIEW emotion_speaker AS
SELECT
    e.video_id,
    e.track_id,
    e.frame,
    e.t,
    e.valence,
    e.arousal,
    circumplex_quadrant(e.valence, e.arousal) AS quadrant,
    e.speaker,
    e.speaking,
    CASE WHEN e.t < s."end" THEN s.speaker END AS active_speaker,
    CASE WHEN e.t < s."end" THEN s.speakers END AS active_speakers,
    e.model
FROM emotions AS e
ASOF LEFT JOIN speech_segments AS s ON e.video_id = s.video_id AND e.t >= s.start;

-- ... and also the word being said at t (by anyone) and the utterance it belongs to (NULL in silences).
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
-- (one face track) or 'speaker' (the face(s) of one voice, the person's own emotions;
-- speaker NULL = faces without a voice of their own). *_s columns are seconds of face-track
-- time, counted as analysed frames / analysis_fps (two tracks on screen for 1 s count 2 s);
-- speaking_s is the part of it in which the face speaks.
CREATE OR REPLACE VIEW emotion_summary AS
WITH by_level AS (
    SELECT 'video' AS level, video_id, NULL::INTEGER AS by_track, NULL::VARCHAR AS by_speaker,
           track_id, valence, arousal, speaking
    FROM emotions
    UNION ALL
    SELECT 'track', video_id, track_id, NULL, track_id, valence, arousal, speaking FROM emotions
    UNION ALL
    SELECT 'speaker', video_id, NULL, speaker, track_id, valence, arousal, speaking FROM emotions
)
SELECT
    e.video_id,
    e.level,
    e.by_track AS track_id,
    e.by_speaker AS speaker,
    count(*) AS n_frames,
    count(DISTINCT e.track_id) AS n_tracks,
    count(*) / any_value(v.analysis_fps) AS seconds,
    count_if(e.speaking) / any_value(v.analysis_fps) AS speaking_s,
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


-- ---------------------------------------------------------------------------------------
-- People across the corpus (tasks/people/, docs/people.md).
-- ---------------------------------------------------------------------------------------

-- Identity embeddings (biometric data): one vector per face track and per diarized voice.
CREATE OR REPLACE VIEW identities AS
SELECT rows.* FROM {identities} AS rows JOIN (SELECT DISTINCT video_id FROM videos) USING (video_id);

-- Each link writes a snapshot under link_id=<id> (a Hive partition), `people` last: only the
-- newest committed link counts, so a link that stopped half-way is never seen.
CREATE OR REPLACE VIEW people AS
SELECT * FROM {people} WHERE link_id = (SELECT max(link_id) FROM {people});

CREATE OR REPLACE VIEW person_tracks AS
SELECT rows.*
FROM {person_tracks} AS rows
JOIN (SELECT DISTINCT video_id FROM videos) USING (video_id)
WHERE rows.link_id = (SELECT max(link_id) FROM {people});

CREATE OR REPLACE VIEW person_decisions AS
SELECT * FROM {person_decisions} WHERE link_id = (SELECT max(link_id) FROM {people});

-- Every emotion row of a person's face tracks: one person over every video.
CREATE OR REPLACE VIEW person_timeline AS
SELECT p.person_id, pe.name, e.video_id, e.track_id, e.t, e.valence, e.arousal, e.speaking
FROM emotions AS e
JOIN person_tracks AS p ON p.video_id = e.video_id AND p.track_id = e.track_id
JOIN people AS pe USING (person_id);

-- One row per person: where they appear and how they feel on average (seconds are face-track seconds).
CREATE OR REPLACE VIEW person_summary AS
WITH seen AS (
    SELECT
        t.person_id,
        count(*) AS n_frames,
        count(*) / any_value(v.analysis_fps) AS seconds,
        count_if(t.speaking) / any_value(v.analysis_fps) AS speaking_s,
        avg(t.valence) AS valence_mean,
        avg(t.arousal) AS arousal_mean
    FROM person_timeline AS t
    JOIN videos AS v USING (video_id)
    GROUP BY t.person_id, t.video_id
)
SELECT
    pe.person_id,
    pe.name,
    pe.n_videos,
    pe.n_tracks,
    pe.first_seen,
    pe.last_seen,
    sum(s.seconds) AS seconds,
    sum(s.speaking_s) AS speaking_s,
    sum(s.valence_mean * s.n_frames) / sum(s.n_frames) AS valence_mean,
    sum(s.arousal_mean * s.n_frames) / sum(s.n_frames) AS arousal_mean
FROM people AS pe
LEFT JOIN seen AS s USING (person_id)
GROUP BY ALL;
