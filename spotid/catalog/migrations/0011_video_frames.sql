-- Video frames: ingest samples each video into still frames (spotid/ingest/video.py), stored as JPEGs in
-- the frame cache beside the catalog and recorded as media rows of kind 'image' whose parent_id is the
-- video's row, so detect, identify, review, census and export treat them like photos. frame_offset_s is
-- the frame's time from the video's first frame (seconds); the frame's timestamp is the video's plus it.
-- Both are NULL for every other media row (photos and the videos themselves).
ALTER TABLE media ADD COLUMN parent_id INTEGER REFERENCES media(id) ON DELETE CASCADE;
ALTER TABLE media ADD COLUMN frame_offset_s REAL;
CREATE INDEX IF NOT EXISTS media_parent ON media(parent_id);
