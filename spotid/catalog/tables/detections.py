"""SQL on the catalog tables detections and detection_status (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from spotid.types import DetectionRow

if TYPE_CHECKING:
    from spotid.catalog import Catalog


# -- used by review (app) --
def animal_boxes(cat: Catalog | sqlite3.Connection, media_id: int) -> list[DetectionRow]:
    """The animal boxes (category 1; x, y, w, h only) of one media row, in table order."""
    return [DetectionRow.from_row(r) for r in cat.execute(
        "SELECT x, y, w, h FROM detections WHERE media_id = ? AND category = 1", (media_id,))]


# -- used by export / census / workflow (camtrapdp, mdjson_export, report, synth truth, workflow truth) --
def with_media_and_sighting(cat: Catalog | sqlite3.Connection) -> list[sqlite3.Row]:
    """Every detection with its frame and sighting (none: the sighting columns are NULL), by media_id then id.
    Columns: the detection's id, media_id, category, conf, x, y, w, h, label, label_conf, detector, static_fp;
    the media's deployment_id, sequence_id, ``mts`` (timestamp), frame_offset_s; the sighting's ``sid`` (id),
    individual_id, ``sstatus`` (status), ``sflank`` (flank), probability, model_version, updated_at."""
    return cat.execute(
        "SELECT d.id, d.media_id, d.category, d.conf, d.x, d.y, d.w, d.h, d.label, d.label_conf, d.detector, "
        "d.static_fp, m.deployment_id, m.sequence_id, m.timestamp mts, m.frame_offset_s, s.id sid, s.individual_id, "
        "s.status sstatus, s.flank sflank, "
        "s.probability, s.model_version, s.updated_at FROM detections d JOIN media m ON m.id = d.media_id "
        "LEFT JOIN sightings s ON s.detection_id = d.id ORDER BY d.media_id, d.id").fetchall()


def processed_media_ids(cat: Catalog | sqlite3.Connection) -> list[int]:
    """Media ids the detector processed without a failure (``detection_status``), in table order."""
    return [r[0] for r in cat.execute("SELECT media_id FROM detection_status WHERE failure IS NULL")]


def status_with_media(cat: Catalog | sqlite3.Connection, deployment: str | None = None) -> list[sqlite3.Row]:
    """Every frame the detector processed (all, or ``deployment``'s), by media id. Columns: the media's id,
    deployment_id, rel_path; ``detection_status``'s failure (None: processed) and detector."""
    where, params = "", ()
    if deployment:
        where, params = "WHERE m.deployment_id = ?", (deployment,)
    return cat.execute(f"SELECT m.id, m.deployment_id, m.rel_path, ds.failure, ds.detector FROM detection_status ds "
                       f"JOIN media m ON m.id = ds.media_id {where} ORDER BY m.id", params).fetchall()


def for_mdjson(cat: Catalog | sqlite3.Connection) -> list[DetectionRow]:
    """Every detection's media_id, category, conf, box (x, y, w, h), classifications_json and static_fp; by
    media_id, then confidence high to low."""
    return [DetectionRow.from_row(r) for r in cat.execute(
        "SELECT media_id, category, conf, x, y, w, h, classifications_json, static_fp "
        "FROM detections ORDER BY media_id, conf DESC")]


def count_leopards(cat: Catalog | sqlite3.Connection, *, without_sighting: bool = False) -> int:
    """How many detections the classifier labelled 'leopard' that are not static false positives;
    ``without_sighting``: only those with no sighting yet (identify has not seen them)."""
    if without_sighting:
        sql = ("SELECT COUNT(*) FROM detections d LEFT JOIN sightings s ON s.detection_id = d.id "
               "WHERE d.label = 'leopard' AND d.static_fp = 0 AND s.id IS NULL")
    else:
        sql = "SELECT COUNT(*) FROM detections WHERE label = 'leopard' AND static_fp = 0"
    return int(cat.execute(sql).fetchone()[0])


def boxes_with_frames(cat: Catalog | sqlite3.Connection) -> list[sqlite3.Row]:
    """Every detection's id and box (x, y, w, h) with its frame's path, width and height, in table order."""
    return cat.execute("SELECT d.id, d.x, d.y, d.w, d.h, m.path, m.width, m.height FROM detections d "
                       "JOIN media m ON m.id = d.media_id").fetchall()


def insert(cat: Catalog | sqlite3.Connection, *, media_id: int, detector: str, category: int, conf: float,
           x: float, y: float, w: float, h: float, label: str | None) -> int:
    """Add a detection (box normalised x, y, w, h) with its classifier label; returns its id."""
    cur = cat.execute("INSERT INTO detections (media_id, detector, category, conf, x, y, w, h, label) "
                      "VALUES (?,?,?,?,?,?,?,?,?)", (media_id, detector, category, conf, x, y, w, h, label))
    return int(cur.lastrowid)
