-- Review: indexes for the queue (pending sightings), the audit log and candidate look-ups.
CREATE INDEX IF NOT EXISTS review_sightings_status ON sightings(status);
CREATE INDEX IF NOT EXISTS review_decisions_sighting ON review_decisions(sighting_id, id);
CREATE INDEX IF NOT EXISTS review_decisions_reviewer ON review_decisions(reviewer, id);
CREATE INDEX IF NOT EXISTS review_candidates_individual ON match_candidates(individual_id);
