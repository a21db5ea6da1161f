-- spotid catalog, initial schema.
-- Timestamps are ISO 8601 strings WITH a UTC offset (e.g. 2024-03-01T22:13:05+10:00).
-- Boxes are normalised [x_min, y_min, width, height] in 0..1 of the full frame (MegaDetector convention).

CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    stage         TEXT NOT NULL,                 -- ingest | detect | identify | census | train | ...
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    status        TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
    config_json   TEXT NOT NULL DEFAULT '{}',     -- resolved configuration of the run
    model_version TEXT,                           -- e.g. "detector-builtin@sha256:ab12..."
    summary_json  TEXT
);

CREATE TABLE deployments (
    id                 TEXT PRIMARY KEY,          -- Camtrap DP deploymentID
    location_id        TEXT,                      -- station; two paired cameras share a location_id
    location_name      TEXT,
    latitude           REAL,
    longitude          REAL,
    coordinate_uncertainty REAL,
    start              TEXT,                      -- deploymentStart, ISO with offset
    end                TEXT,                      -- deploymentEnd, ISO with offset
    tz                 TEXT,                      -- "+10:00"; applied to naive EXIF times
    camera_id          TEXT,
    camera_model       TEXT,
    camera_height      REAL,
    setup_by           TEXT,
    feature_type       TEXT,
    habitat            TEXT,
    comments           TEXT,
    auto_created       INTEGER NOT NULL DEFAULT 0, -- 1 when an ingest created it for an unknown ID
    created_at         TEXT NOT NULL
);

CREATE TABLE sequences (
    id             INTEGER PRIMARY KEY,
    deployment_id  TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    start          TEXT NOT NULL,
    end            TEXT NOT NULL,
    n_media        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sequences_deployment ON sequences(deployment_id, start);

CREATE TABLE media (
    id             INTEGER PRIMARY KEY,
    deployment_id  TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    sha            TEXT NOT NULL UNIQUE,          -- blake2b-160 hex of the file content: duplicate key
    path           TEXT NOT NULL,                 -- absolute path where it was ingested from
    rel_path       TEXT NOT NULL,                 -- path relative to the card root ('/' separators)
    kind           TEXT NOT NULL CHECK (kind IN ('image', 'video')),
    timestamp      TEXT,                          -- ISO with offset
    time_source    TEXT,                          -- DateTimeOriginal | DateTimeDigitized | DateTime | mtime
    width          INTEGER,
    height         INTEGER,
    size_bytes     INTEGER NOT NULL,
    make           TEXT,
    model          TEXT,
    serial         TEXT,
    sequence_id    INTEGER REFERENCES sequences(id) ON DELETE SET NULL,
    frame_num      INTEGER,
    warning        TEXT,
    run_id         INTEGER REFERENCES runs(id)
);
CREATE INDEX media_deployment_time ON media(deployment_id, timestamp);
CREATE INDEX media_sequence ON media(sequence_id);

-- Files that could not be ingested (0-byte, undecodable, ...). Kept so a biologist can see them.
CREATE TABLE ingest_failures (
    id             INTEGER PRIMARY KEY,
    run_id         INTEGER REFERENCES runs(id),
    deployment_id  TEXT,
    path           TEXT NOT NULL,
    reason         TEXT NOT NULL,
    recorded_at    TEXT NOT NULL,
    UNIQUE (path)
);

-- One row per media the detector has processed (also for empty frames and failures), so that
-- a resumed run knows what is done without re-running the empties.
CREATE TABLE detection_status (
    media_id       INTEGER PRIMARY KEY REFERENCES media(id) ON DELETE CASCADE,
    run_id         INTEGER REFERENCES runs(id),
    detector       TEXT NOT NULL,                 -- model version string
    failure        TEXT,                          -- MegaDetector-style failure string, NULL when ok
    processed_at   TEXT NOT NULL
);

CREATE TABLE detections (
    id             INTEGER PRIMARY KEY,
    media_id       INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    run_id         INTEGER REFERENCES runs(id),
    detector       TEXT NOT NULL,
    category       INTEGER NOT NULL CHECK (category IN (1, 2, 3)),  -- 1 animal, 2 person, 3 vehicle
    conf           REAL NOT NULL,
    x              REAL NOT NULL,                 -- normalised x_min
    y              REAL NOT NULL,                 -- normalised y_min
    w              REAL NOT NULL,
    h              REAL NOT NULL,
    label          TEXT,                          -- top classification ('leopard', 'other', ...)
    label_conf     REAL,
    classifications_json TEXT,                    -- [[name, conf], ...] highest first
    static_fp      INTEGER NOT NULL DEFAULT 0     -- flagged by repeat-detection suppression
);
CREATE INDEX detections_media ON detections(media_id);

-- Per-crop derived data for re-ID, computed once and cached.
CREATE TABLE crops (
    detection_id   INTEGER PRIMARY KEY REFERENCES detections(id) ON DELETE CASCADE,
    quality        REAL,
    blur           REAL,
    size_px        INTEGER,
    touches_edge   INTEGER,
    flank          TEXT CHECK (flank IN ('left', 'right', 'front', 'back', 'unknown')),
    flank_conf     REAL,
    embedding      BLOB,                          -- float32 little-endian, L2-normalised
    embedder       TEXT,                          -- model version of the embedding
    keypoints      BLOB,                          -- float32 (N, 2) crop pixel coordinates
    descriptors    BLOB,                          -- float32 (N, 128) RootSIFT
    features_version TEXT,
    crop_path      TEXT                           -- optional cached JPEG of the crop
);

CREATE TABLE individuals (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,          -- e.g. "AL-012-L"
    flank          TEXT NOT NULL CHECK (flank IN ('left', 'right')),
    status         TEXT NOT NULL DEFAULT 'proposed' CHECK (status IN ('proposed', 'confirmed', 'merged', 'rejected')),
    merged_into    INTEGER REFERENCES individuals(id),
    created_at     TEXT NOT NULL,
    created_by     TEXT,                          -- run:<id> or reviewer name
    truth_id       TEXT,                          -- known identity when imported from labels
    notes          TEXT
);

-- A leopard detection, assigned to an individual or pending review.
CREATE TABLE sightings (
    id             INTEGER PRIMARY KEY,
    detection_id   INTEGER NOT NULL UNIQUE REFERENCES detections(id) ON DELETE CASCADE,
    individual_id  INTEGER REFERENCES individuals(id),
    flank          TEXT,
    status         TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'auto', 'confirmed', 'rejected', 'new', 'unusable')),
    probability    REAL,                          -- calibrated P(same individual) of the assignment
    run_id         INTEGER REFERENCES runs(id),
    model_version  TEXT,
    version        INTEGER NOT NULL DEFAULT 0,    -- optimistic lock for concurrent reviewers
    updated_at     TEXT NOT NULL
);
CREATE INDEX sightings_individual ON sightings(individual_id);

CREATE TABLE match_candidates (
    id             INTEGER PRIMARY KEY,
    sighting_id    INTEGER NOT NULL REFERENCES sightings(id) ON DELETE CASCADE,
    individual_id  INTEGER NOT NULL REFERENCES individuals(id) ON DELETE CASCADE,
    rank           INTEGER NOT NULL,
    embed_score    REAL,                          -- cosine similarity
    verify_inliers INTEGER,                       -- RANSAC inliers against the best reference crop
    probability    REAL,                          -- calibrated P(same)
    reference_detection_id INTEGER REFERENCES detections(id) ON DELETE SET NULL,
    evidence_json  TEXT,                          -- matched keypoint pairs for the review page
    run_id         INTEGER REFERENCES runs(id),
    model_version  TEXT,
    UNIQUE (sighting_id, individual_id)
);

-- Audit log of every review decision. Undo writes a new row pointing at the undone one.
CREATE TABLE review_decisions (
    id             INTEGER PRIMARY KEY,
    sighting_id    INTEGER REFERENCES sightings(id) ON DELETE SET NULL,
    action         TEXT NOT NULL,                 -- confirm | reject | new | merge | skip | undo
    reviewer       TEXT NOT NULL,
    decided_at     TEXT NOT NULL,
    previous_json  TEXT NOT NULL,                 -- state before the decision
    new_json       TEXT NOT NULL,                 -- state after the decision
    undoes         INTEGER REFERENCES review_decisions(id),
    undone_by      INTEGER REFERENCES review_decisions(id)
);

-- Left and right flank identities that belong to one animal, with the reason.
CREATE TABLE flank_links (
    id             INTEGER PRIMARY KEY,
    left_id        INTEGER NOT NULL REFERENCES individuals(id) ON DELETE CASCADE,
    right_id       INTEGER NOT NULL REFERENCES individuals(id) ON DELETE CASCADE,
    reason         TEXT NOT NULL,
    evidence_json  TEXT,
    created_at     TEXT NOT NULL,
    UNIQUE (left_id, right_id)
);

-- Small key/value settings, e.g. the active model paths.
CREATE TABLE settings (
    key            TEXT PRIMARY KEY,
    value          TEXT NOT NULL
);
