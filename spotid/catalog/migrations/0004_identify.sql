-- identify: which flank model (and threshold) decided crops.flank, so a new flank model or threshold
-- re-classifies cached crops instead of silently keeping the old answer.
ALTER TABLE crops ADD COLUMN flank_model TEXT;
CREATE INDEX IF NOT EXISTS identify_detections_label ON detections(label, static_fp);
