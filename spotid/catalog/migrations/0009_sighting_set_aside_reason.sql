-- Why identify set a sighting aside (status 'unusable' written by identify, e.g. "no left/right flank"),
-- so the review page can say it and a person can go through those sightings. NULL for every other
-- status and once a person has decided the sighting (the review log keeps the old value).
ALTER TABLE sightings ADD COLUMN set_aside_reason TEXT;

-- Sightings identify set aside before reasons were recorded: no person's decision stands on them.
UPDATE sightings SET set_aside_reason = 'set aside by an earlier identify run (its reason was not recorded)'
WHERE status = 'unusable'
  AND NOT EXISTS (SELECT 1 FROM review_decisions rd
                  WHERE rd.sighting_id = sightings.id AND rd.undone_by IS NULL AND rd.action NOT IN ('skip', 'undo'));
