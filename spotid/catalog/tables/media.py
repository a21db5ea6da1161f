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


# -- used by detect / identify (detect.run) --
def _of_deployment(deployment: str | None, column: str = "deployment_id") -> tuple[str, tuple]:
    """The optional `` AND <column> = ?`` part and its argument (none without ``deployment``)."""
    return (f" AND {column} = ?", (deployment,)) if deployment else ("", ())


def awaiting_detection(cat: Catalog | sqlite3.Connection, deployment: str | None = None) -> list[sqlite3.Row]:
    """Media detect still has to process (no ``detection_status`` row): photos and video frames, not videos
    (they go through their frames), of all deployments or of ``deployment``, by id: ``id, path, rel_path, kind,
    parent_id``."""
    where, args = _of_deployment(deployment, "m.deployment_id")
    return cat.execute("SELECT m.id, m.path, m.rel_path, m.kind, m.parent_id FROM media m "
                       "LEFT JOIN detection_status s ON s.media_id = m.id WHERE s.media_id IS NULL "
                       f"AND m.kind != 'video'{where} ORDER BY m.id", args).fetchall()


def count_frames(cat: Catalog | sqlite3.Connection, deployment: str | None = None) -> int:
    """How many media rows detect analyses (every kind but 'video'), of all deployments or of ``deployment``."""
    where, args = _of_deployment(deployment)
    return int(cat.execute(f"SELECT COUNT(*) FROM media WHERE kind != 'video'{where}", args).fetchone()[0])


def count_ingest_failures(cat: Catalog | sqlite3.Connection, deployment: str | None = None) -> int:
    """How many files ingest could not read, of all deployments or of ``deployment``."""
    where, args = _of_deployment(deployment)
    return int(cat.execute(f"SELECT COUNT(*) FROM ingest_failures WHERE 1{where}", args).fetchone()[0])


def videos_without_frames(cat: Catalog | sqlite3.Connection, deployment: str | None = None) -> list[str]:
    """``rel_path`` of the videos no frame was sampled from (ingested by a spotid that did not sample videos),
    of all deployments or of ``deployment``, in table order."""
    where, args = _of_deployment(deployment, "v.deployment_id")
    return [r[0] for r in cat.execute("SELECT v.rel_path FROM media v WHERE v.kind = 'video' AND NOT EXISTS "
                                      f"(SELECT 1 FROM media c WHERE c.parent_id = v.id){where}", args)]


def deployment_ids(cat: Catalog | sqlite3.Connection) -> list[str]:
    """The distinct ``deployment_id`` of the media rows, in the order SQLite returns them."""
    return [r[0] for r in cat.execute("SELECT DISTINCT deployment_id FROM media")]
