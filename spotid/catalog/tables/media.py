"""SQL on the catalog tables media, sequences and ingest_failures (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from spotid.types import MediaRow

if TYPE_CHECKING:
    from spotid.catalog import Catalog


# -- used by review (app, census_view) --
def image(cat: Catalog | sqlite3.Connection, media_id: int) -> MediaRow | None:
    """The path and deployment_id of media row ``media_id`` when it is a still image (kind 'image'); else None."""
    r = cat.execute("SELECT path, deployment_id FROM media WHERE id = ? AND kind = 'image'", (media_id,)).fetchone()
    return None if r is None else MediaRow.from_row(r)


def per_year(cat: Catalog | sqlite3.Connection) -> list[sqlite3.Row]:
    """Per calendar year of the local camera time (media with a timestamp), by year: ``yr``, first and last day
    ``day0`` / ``day1`` (YYYY-MM-DD), ``n_media`` frames and ``n_counted`` sightings (status 'auto' or 'confirmed'
    with an individual) on them."""
    # (aliases must not be column names: detections has a column y, which GROUP BY would pick)
    return cat.execute("SELECT substr(m.timestamp, 1, 4) yr, MIN(substr(m.timestamp, 1, 10)) day0, "
                       "MAX(substr(m.timestamp, 1, 10)) day1, COUNT(DISTINCT m.id) n_media, "
                       "COUNT(s.id) n_counted FROM media m LEFT JOIN detections d ON d.media_id = m.id "
                       "LEFT JOIN sightings s ON s.detection_id = d.id AND s.status IN ('auto', 'confirmed') "
                       "AND s.individual_id IS NOT NULL WHERE m.timestamp IS NOT NULL GROUP BY yr ORDER BY yr"
                       ).fetchall()
