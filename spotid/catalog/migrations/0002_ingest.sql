-- Ingest: keep every Camtrap DP deployments field, and look media up by path.
-- extra_json holds the Camtrap DP deployment fields without a column of their own
-- (cameraDelay, cameraDepth, cameraTilt, cameraHeading, detectionDistance, timestampIssues,
-- baitUse, deploymentGroups, deploymentTags), keyed by their Camtrap DP names, so an export
-- writes back what was imported.
ALTER TABLE deployments ADD COLUMN extra_json TEXT;

CREATE INDEX media_path ON media(path);
