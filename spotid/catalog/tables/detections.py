"""SQL on the catalog tables detections and detection_status (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Sequence

from spotid.catalog import flank_seen_sql
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


# -- used by detect / identify (detect.run, identify.pipeline, identify.calibrate_cards) --
#: setting key prefix: + ``detections.detector`` -> the P(leopard) floor for founding a new individual that
#: the card of the classifier behind that detector version sets ('' = none)
LEOPARD_FLOOR_KEY = "detect.found_min_leopard_p:"


def record_leopard_floor(cat: Catalog, detector: str, p: float | None) -> None:
    """Store the founding floor of ``detector`` (a ``detections.detector`` version): its classifier card's
    ``cascade.found_min_leopard_p``, or None (an MD JSON import, no spotid classifier, a card without one)."""
    cat.set_setting(LEOPARD_FLOOR_KEY + detector, "" if p is None else repr(float(p)))


def leopard_floor(cat: Catalog, detector: str | None) -> tuple[float | None, bool]:
    """The founding floor detect recorded for boxes of ``detector`` (None: none) and whether detect recorded
    one at all (False: the boxes were detected by a spotid older than the setting, or imported)."""
    v = cat.get_setting(LEOPARD_FLOOR_KEY + detector) if detector else None
    return (float(v) if v else None), v is not None


# ids per UPDATE ... IN (...) statement, below SQLite's limit on bound parameters
_IN_CHUNK = 500


def insert_status(cat: Catalog | sqlite3.Connection, media_id: int, *, run_id: int, detector: str,
                  failure: str | None, processed_at: str) -> bool:
    """Record that detect processed ``media_id`` (``failure``: MegaDetector's failure text, None when read);
    False, and nothing written, when it already has a ``detection_status`` row (another run got there first)."""
    cur = cat.execute("INSERT OR IGNORE INTO detection_status (media_id, run_id, detector, failure, processed_at) "
                      "VALUES (?, ?, ?, ?, ?)", (media_id, run_id, detector, failure, processed_at))
    return cur.rowcount != 0


def insert(cat: Catalog | sqlite3.Connection, media_id: int, *, detector: str, category: int, conf: float,
           x: float, y: float, w: float, h: float, label: str | None = None, run_id: int | None = None,
           label_conf: float | None = None, classifications_json: str | None = None) -> int:
    """Add one box (normalised x, y, w, h, top-left origin) of ``media_id``; returns its id.
    ``classifications_json``: ``[[name, conf], ...]``, highest first; ``run_id``: the detect run (None for boxes
    that come from elsewhere, e.g. a synthetic truth)."""
    cur = cat.execute("INSERT INTO detections (media_id, run_id, detector, category, conf, x, y, w, h, label, "
                      "label_conf, classifications_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (media_id, run_id, detector, category, conf, x, y, w, h, label, label_conf,
                       classifications_json))
    return int(cur.lastrowid)


def boxes_of_deployment(cat: Catalog | sqlite3.Connection, deployment: str) -> list[sqlite3.Row]:
    """Every detection of the deployment's media (all runs), in table order: ``id, media_id, x, y, w, h, conf``
    and its frame's ``sequence_id, timestamp, time_source`` (what repeat-detection suppression needs)."""
    return cat.execute("SELECT d.id, d.media_id, d.x, d.y, d.w, d.h, d.conf, m.sequence_id, m.timestamp, "
                       "m.time_source FROM detections d JOIN media m ON m.id = d.media_id WHERE m.deployment_id = ?",
                       (deployment,)).fetchall()


def set_static_fp(cat: Catalog | sqlite3.Connection, ids, flagged: bool) -> None:
    """Set ``static_fp`` to 1 (``flagged``) or 0 on the detections ``ids``, in statements of 500 ids, in order."""
    ids = list(ids)
    for i in range(0, len(ids), _IN_CHUNK):
        chunk = ids[i:i + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        cat.execute(f"UPDATE detections SET static_fp = {int(bool(flagged))} WHERE id IN ({marks})", chunk)


def count(cat: Catalog | sqlite3.Connection) -> int:
    """How many detections the catalog holds (all runs, all categories)."""
    return int(cat.execute("SELECT COUNT(*) AS n FROM detections").fetchone()[0])


def leopards_to_identify(cat: Catalog | sqlite3.Connection, deployment: str | None = None, *,
                         burst_s: float | None = None) -> list[sqlite3.Row]:
    """Leopard detections (``label = 'leopard'``, not ``static_fp``) without a sighting, of all media or of
    ``deployment``'s, by frame time then id: detection ``id, x, y, w, h, conf, label_conf`` (P(leopard)),
    ``detector`` (its version); its frame's ``path, media_id, sequence_id, deployment_id`` and ``timestamp``
    (NULL when it is a file copy time, ``time_source`` 'mtime': that says nothing about when the camera
    fired); ``burst_frames``: frames of its sequence (1 without one),
    only those taken within ``burst_s`` seconds of this frame when it is given and the frame has a time (a
    sequence joins frames up to ingest's gap apart, 60 s by default: frames 49 s apart are two passes of the
    animal, not one burst)."""
    sql = ("SELECT d.id, d.x, d.y, d.w, d.h, d.conf, d.label_conf, d.detector, m.path, m.id AS media_id, m.sequence_id, "
           "m.deployment_id, CASE WHEN m.time_source = 'mtime' THEN NULL ELSE m.timestamp END AS timestamp, "
           "CASE WHEN m.sequence_id IS NULL THEN 1 "
           "WHEN ? IS NULL OR m.timestamp IS NULL THEN COALESCE(q.n_media, 1) "
           "ELSE (SELECT COUNT(*) FROM media b WHERE b.sequence_id = m.sequence_id "
           "AND ABS(CAST(strftime('%s', b.timestamp) AS INTEGER) - CAST(strftime('%s', m.timestamp) AS INTEGER)) <= ?) "
           "END AS burst_frames "
           "FROM detections d "
           "JOIN media m ON m.id = d.media_id LEFT JOIN sequences q ON q.id = m.sequence_id "
           "LEFT JOIN sightings s ON s.detection_id = d.id "
           "WHERE d.label = 'leopard' AND d.static_fp = 0 AND s.id IS NULL")
    args: list = [burst_s, burst_s]
    if deployment:
        sql += " AND m.deployment_id = ?"
        args.append(deployment)
    return cat.execute(sql + " ORDER BY m.timestamp, d.id", args).fetchall()


# -- used by ingest (media_root) --
def clear_file_not_found(cat: Catalog | sqlite3.Connection, deployment_id: str) -> int:
    """Delete the ``detection_status`` rows of the deployment's media whose failure is detect's
    ``file not found: <media.path>`` at the media row's current path (so the next detect run processes those
    frames again); returns how many were deleted. Call before the paths change."""
    return cat.execute(
        "DELETE FROM detection_status WHERE media_id IN (SELECT id FROM media WHERE deployment_id = ?) "
        "AND failure = 'file not found: ' || (SELECT m.path FROM media m WHERE m.id = media_id)",
        (deployment_id,)).rowcount


# -- used by review (queue, browse) --
#: Columns and joins of the review page's crop record (a detection with its crop, frame and station);
#: compose as f"SELECT {extra}, {CROP_COLS} {CROP_FROM} ...".
CROP_COLS = """d.id AS detection_id, d.media_id, d.x, d.y, d.w, d.h,
           c.quality, c.flank, c.crop_path IS NOT NULL AS has_image,
           m.timestamp, m.deployment_id, COALESCE(dep.location_id, m.deployment_id) AS station, m.rel_path"""
CROP_FROM = """FROM detections d
    JOIN media m ON m.id = d.media_id
    LEFT JOIN crops c ON c.detection_id = d.id
    LEFT JOIN deployments dep ON dep.id = m.deployment_id"""
_CROP_SQL = f"SELECT {CROP_COLS} {CROP_FROM}"


def crop_records(cat: Catalog | sqlite3.Connection, detection_ids: Sequence[int]) -> list[sqlite3.Row]:
    """The crop records (columns of :data:`CROP_COLS`) of these detections, in table order."""
    ids = list(detection_ids)
    return cat.execute(f"{_CROP_SQL} WHERE d.id IN ({','.join('?' * len(ids))})", ids).fetchall()


def best_reference_records(cat: Catalog | sqlite3.Connection, individual_id: int, flank: str | None,
                           n: int) -> list[sqlite3.Row]:
    """Crop records of the individual's ``n`` best crops (highest ``crops.quality``, then detection id) among its
    auto/confirmed sightings with a crop image whose flank was seen (:func:`flank_seen_sql`); of ``flank`` ('left'
    or 'right', the sighting's flank or else the crop's) or any flank."""
    sql = (f"{_CROP_SQL} JOIN sightings s ON s.detection_id = d.id "
           "WHERE s.individual_id = ? AND s.status IN ('auto', 'confirmed') AND c.crop_path IS NOT NULL "
           f"AND {flank_seen_sql()}")
    params: list = [individual_id]
    if flank in ("left", "right"):
        sql += " AND COALESCE(s.flank, c.flank) = ?"
        params.append(flank)
    sql += " ORDER BY c.quality IS NULL, c.quality DESC, d.id LIMIT ?"
    params.append(n)
    return cat.execute(sql, params).fetchall()


def best_crop_records(cat: Catalog | sqlite3.Connection, individual_ids: Sequence[int]) -> list[sqlite3.Row]:
    """For each of these individuals, the crop record (:data:`CROP_COLS` plus ``individual_id``, ``rn``) of its
    best auto/confirmed sighting with a crop image (highest quality, then lowest detection id)."""
    ids = list(individual_ids)
    return cat.execute(
        f"""SELECT * FROM (
            SELECT s.individual_id, ROW_NUMBER() OVER (PARTITION BY s.individual_id
                   ORDER BY c.quality IS NULL, c.quality DESC, d.id) AS rn, {CROP_COLS} {CROP_FROM}
            JOIN sightings s ON s.detection_id = d.id
            WHERE s.status IN ('auto', 'confirmed') AND c.crop_path IS NOT NULL
              AND s.individual_id IN ({','.join('?' * len(ids))}))
            WHERE rn = 1""", ids).fetchall()


def sighting_crop_records(cat: Catalog | sqlite3.Connection, individual_ids: Sequence[int]) -> list[sqlite3.Row]:
    """Every sighting of these individuals as ``sid, sstatus, probability, version`` plus its crop record
    (:data:`CROP_COLS`), by frame time then sighting id."""
    ids = list(individual_ids)
    return cat.execute(
        f"SELECT s.id AS sid, s.status AS sstatus, s.probability, s.version, {CROP_COLS} {CROP_FROM}"
        f" JOIN sightings s ON s.detection_id = d.id WHERE s.individual_id IN ({','.join('?' * len(ids))})"
        " ORDER BY m.timestamp, s.id", ids).fetchall()
