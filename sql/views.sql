-- Views over the affectflow Parquet tables. Each `{table}` placeholder is replaced by a
-- read_parquet() over `<out>/<table>/*/*.parquet` (Hive partitions, so filters on video_id
-- prune files), or by an empty relation of the right schema while the table has no files.
-- A video's rows are visible only once its `videos` row exists: that row is written last
-- (and removed first when a video is redone), so a crash never shows partial results.

CREATE OR REPLACE VIEW videos AS
SELECT * FROM {videos};

CREATE OR REPLACE VIEW runs AS
SELECT * FROM {runs};

CREATE OR REPLACE VIEW faces AS
SELECT * FROM {faces}
WHERE video_id IN (SELECT video_id FROM videos);

CREATE OR REPLACE VIEW speaker_turns AS
SELECT * FROM {speaker_turns}
WHERE video_id IN (SELECT video_id FROM videos);

CREATE OR REPLACE VIEW words AS
SELECT * FROM {words}
WHERE video_id IN (SELECT video_id FROM videos);

CREATE OR REPLACE VIEW emotions AS
SELECT * FROM {emotions}
WHERE video_id IN (SELECT video_id FROM videos);
