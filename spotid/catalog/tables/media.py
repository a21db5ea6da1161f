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


# -- used by export / census / workflow (camtrapdp, census, workflow truth) --
def time_span_by_deployment(cat: Catalog | sqlite3.Connection) -> dict[str, tuple[str, str]]:
    """deployment_id -> (first, last) ``media.timestamp`` (ISO text as stored) of its timestamped media;
    deployments without one are absent."""
    return {r["deployment_id"]: (r["t0"], r["t1"]) for r in cat.execute(
        "SELECT deployment_id, MIN(timestamp) t0, MAX(timestamp) t1 FROM media WHERE timestamp IS NOT NULL "
        "GROUP BY deployment_id")}


def for_export(cat: Catalog | sqlite3.Connection) -> list[MediaRow]:
    """Every media row (id, deployment_id, rel_path, kind, timestamp, warning, parent_id), by id; sampled video
    frames (``parent_id`` set) included."""
    return [MediaRow.from_row(r) for r in cat.execute(
        "SELECT id, deployment_id, rel_path, kind, timestamp, warning, parent_id FROM media ORDER BY id")]


def insert(cat: Catalog | sqlite3.Connection, *, deployment_id: str, sha: str, path: str, rel_path: str, kind: str,
           timestamp: str | None, size_bytes: int) -> int:
    """Add a media row with only these columns (the others stay NULL); returns its id."""
    cur = cat.execute("INSERT INTO media (deployment_id, sha, path, rel_path, kind, timestamp, size_bytes) "
                      "VALUES (?,?,?,?,?,?,?)", (deployment_id, sha, path, rel_path, kind, timestamp, size_bytes))
    return int(cur.lastrowid)
