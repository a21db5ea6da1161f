-- identify with calibrated fusion: every other local matcher's features of a crop (ALIKED, ...), one
-- row per (crop, matcher), so adding a matcher adds rows, not columns. RootSIFT stays in crops.
CREATE TABLE IF NOT EXISTS crop_local_features (
    detection_id INTEGER NOT NULL REFERENCES crops(detection_id) ON DELETE CASCADE,
    matcher TEXT NOT NULL,
    version TEXT NOT NULL,
    keypoints BLOB,
    descriptors BLOB,
    infrared INTEGER,
    PRIMARY KEY (detection_id, matcher)
);
