"""SQL on the catalog tables sightings and match_candidates (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Sequence

from spotid.catalog import flank_seen_sql, now_iso, set_aside_sql
from spotid.types import SightingRow

if TYPE_CHECKING:
    from spotid.catalog import Catalog


# -- used by review (decisions) --
# Columns a review decision may set on a sighting (id, version and updated_at are kept by update_reviewed).
_REVIEWABLE = ("individual_id", "status", "probability", "flank", "set_aside_reason")


def review_state(cat: Catalog | sqlite3.Connection, sighting_id: int) -> SightingRow | None:
    """The sighting's id, individual_id, status, probability, version, flank and set_aside_reason; None if absent."""
    r = cat.execute("SELECT id, individual_id, status, probability, version, flank, set_aside_reason "
                    "FROM sightings WHERE id = ?", (sighting_id,)).fetchone()
    return None if r is None else SightingRow.from_row(r)


def update_reviewed(cat: Catalog | sqlite3.Connection, sighting_id: int, **values) -> int:
    """Set ``values`` (column -> value, columns of ``_REVIEWABLE``) on one sighting, increment its ``version``
    (the optimistic lock) and stamp ``updated_at``; returns the rows changed (0: no such sighting)."""
    bad = [k for k in values if k not in _REVIEWABLE]
    if bad or not values:
        raise ValueError(f"update_reviewed sets some of {', '.join(_REVIEWABLE)}, not {bad or 'nothing'}")
    cols = ", ".join(f"{k} = ?" for k in values)
    cur = cat.execute(f"UPDATE sightings SET {cols}, version = version + 1, updated_at = ? WHERE id = ?",
                      (*values.values(), now_iso(), sighting_id))
    return cur.rowcount


def crop_flank(cat: Catalog | sqlite3.Connection, sighting_id: int) -> str | None:
    """The flank the classifier gave the sighting's crop (``crops.flank``); None without a crop row."""
    r = cat.execute("SELECT c.flank FROM sightings s JOIN crops c ON c.detection_id = s.detection_id "
                    "WHERE s.id = ?", (sighting_id,)).fetchone()
    return None if r is None else r[0]


def candidate_probability(cat: Catalog | sqlite3.Connection, sighting_id: int, individual_id: int) -> float | None:
    """identify's probability that the sighting is ``individual_id`` (``match_candidates``); None if not a candidate."""
    r = cat.execute("SELECT probability FROM match_candidates WHERE sighting_id = ? AND individual_id = ?",
                    (sighting_id, individual_id)).fetchone()
    return None if r is None else r[0]


def count_of_individual(cat: Catalog | sqlite3.Connection, individual_id: int, *, counted_only: bool = False,
                        except_id: int | None = None) -> int:
    """How many sightings are assigned to ``individual_id``; ``counted_only``: only status 'auto' or 'confirmed';
    ``except_id``: not counting that sighting."""
    sql, params = "SELECT COUNT(*) FROM sightings WHERE individual_id = ?", [individual_id]
    if except_id is not None:
        sql += " AND id != ?"
        params.append(except_id)
    if counted_only:
        sql += " AND status IN ('auto', 'confirmed')"
    return int(cat.execute(sql, params).fetchone()[0])


def ids_of_individual(cat: Catalog | sqlite3.Connection, individual_id: int) -> list[int]:
    """Ids of the sightings assigned to ``individual_id`` (any status), by id."""
    return [int(r[0]) for r in cat.execute("SELECT id FROM sightings WHERE individual_id = ? ORDER BY id",
                                           (individual_id,))]


def count_candidates_of_individual(cat: Catalog | sqlite3.Connection, individual_id: int) -> int:
    """How many ``match_candidates`` rows propose ``individual_id``."""
    return int(cat.execute("SELECT COUNT(*) FROM match_candidates WHERE individual_id = ?",
                           (individual_id,)).fetchone()[0])


# -- used by export / census / workflow (census, report, workflow truth, workflow demo, train common) --
def _marks(values: Sequence) -> str:
    """``?, ?, ...`` for an IN-list of ``values`` (empty for none: ``IN ()`` matches nothing)."""
    return ",".join("?" * len(values))


def assigned_with_media(cat: Catalog | sqlite3.Connection, statuses: Sequence[str]) -> list[sqlite3.Row]:
    """The sightings with an individual and one of ``statuses``, with their frame, in table order. Columns:
    ``sid`` (sighting id), ``iid`` (individual id as stored, merges not followed), status, ``did`` (detection
    id), ``mid`` (media id), ``ts`` (media timestamp), ``dep`` (deployment id)."""
    return cat.execute(
        "SELECT s.id sid, s.individual_id iid, s.status, d.id did, m.id mid, m.timestamp ts, "
        "m.deployment_id dep FROM sightings s JOIN detections d ON d.id = s.detection_id "
        f"JOIN media m ON m.id = d.media_id WHERE s.individual_id IS NOT NULL AND s.status IN ({_marks(statuses)})",
        tuple(statuses)).fetchall()


def count_by_status(cat: Catalog | sqlite3.Connection, *, not_in: Sequence[str] | None = None) -> dict[str, int]:
    """status -> number of sightings, statuses with none absent; ``not_in``: leaving out those statuses."""
    sql, params = "SELECT status, COUNT(*) AS n FROM sightings", ()
    if not_in is not None:
        sql += f" WHERE status NOT IN ({_marks(not_in)})"
        params = tuple(not_in)
    return {r["status"]: r["n"] for r in cat.execute(sql + " GROUP BY status", params)}


def unusable_with_time(cat: Catalog | sqlite3.Connection) -> list[sqlite3.Row]:
    """The sightings set aside as not identifiable (status 'unusable'), in table order. Columns: ``ts`` (their
    media's timestamp) and ``why`` (``set_aside_reason``; NULL when a person marked it)."""
    return cat.execute("SELECT m.timestamp ts, s.set_aside_reason why FROM sightings s JOIN detections d "
                       "ON d.id = s.detection_id JOIN media m ON m.id = d.media_id "
                       "WHERE s.status = 'unusable'").fetchall()


def with_crops(cat: Catalog | sqlite3.Connection, sighting_ids: Sequence[int]) -> list[sqlite3.Row]:
    """The sightings ``sighting_ids`` with their crop (read 500 ids at a time, SQLite's variable limit; in table
    order within each 500). Columns: ``sid``, status, ``det`` (detection id), quality and crop_path (the crop's;
    NULL without a crop row)."""
    ids = list(sighting_ids)
    out: list[sqlite3.Row] = []
    for k in range(0, len(ids), 500):
        chunk = ids[k:k + 500]
        out += cat.execute("SELECT s.id sid, s.status, d.id det, c.quality, c.crop_path FROM sightings s "
                           "JOIN detections d ON d.id = s.detection_id LEFT JOIN crops c ON c.detection_id = d.id "
                           f"WHERE s.id IN ({_marks(chunk)})", chunk).fetchall()
    return out


def count_with_status(cat: Catalog | sqlite3.Connection, status: str) -> int:
    """How many sightings have ``status``."""
    return int(cat.execute("SELECT COUNT(*) FROM sightings WHERE status = ?", (status,)).fetchone()[0])


def count_assigned(cat: Catalog | sqlite3.Connection, statuses: Sequence[str]) -> int:
    """How many sightings have an individual and one of ``statuses``."""
    return int(cat.execute(f"SELECT COUNT(*) FROM sightings WHERE individual_id IS NOT NULL AND status IN "
                           f"({_marks(statuses)})", tuple(statuses)).fetchone()[0])


def assigned_with_flank(cat: Catalog | sqlite3.Connection, statuses: Sequence[str]) -> list[sqlite3.Row]:
    """The sightings with one of ``statuses`` and an individual that exists, in table order. Columns:
    individual_id, detection_id and flank (the individual's)."""
    return cat.execute("SELECT s.individual_id, s.detection_id, i.flank FROM sightings s "
                       f"JOIN individuals i ON i.id = s.individual_id WHERE s.status IN ({_marks(statuses)})",
                       tuple(statuses)).fetchall()


def confirmed_with_crops(cat: Catalog | sqlite3.Connection) -> list[sqlite3.Row]:
    """Confirmed sightings whose crop has a stored path, in table order. Columns: crop_path, name (the
    individual's as stored, merges not followed: a merge moves the sightings), flank (the sighting's, else the
    individual's), sequence_id, media_id, deployment_id and timestamp (the frame's)."""
    return cat.execute(
        "SELECT c.crop_path, i.name, COALESCE(s.flank, i.flank) AS flank, m.sequence_id, m.id AS media_id, "
        "m.deployment_id, m.timestamp "
        "FROM sightings s JOIN crops c ON c.detection_id = s.detection_id "
        "JOIN individuals i ON i.id = s.individual_id JOIN detections d ON d.id = s.detection_id "
        "JOIN media m ON m.id = d.media_id "
        "WHERE s.status = 'confirmed' AND c.crop_path IS NOT NULL").fetchall()


def accept_founders_of_proposed(cat: Catalog | sqlite3.Connection) -> int:
    """Status 'auto' for the pending sightings without a match probability whose individual is 'proposed' (the
    sightings that founded a machine-proposed individual), ``updated_at`` stamped; returns how many."""
    cur = cat.execute(
        "UPDATE sightings SET status = 'auto', updated_at = ? WHERE status = 'pending' AND probability IS NULL "
        "AND individual_id IN (SELECT id FROM individuals WHERE status = 'proposed')", (now_iso(),))
    return int(cur.rowcount)


def insert(cat: Catalog | sqlite3.Connection, *, detection_id: int, individual_id: int | None, status: str,
           updated_at: str) -> int:
    """Add a sighting with only these columns (the others take the schema's defaults); returns its id."""
    cur = cat.execute("INSERT INTO sightings (detection_id, individual_id, status, updated_at) VALUES (?,?,?,?)",
                      (detection_id, individual_id, status, updated_at))
    return int(cur.lastrowid)


# -- used by detect / identify (identify.pipeline, identify.writer) --
def gallery(cat: Catalog | sqlite3.Connection, flank: str) -> list[sqlite3.Row]:
    """identify's known crops of one flank, by detection id: sightings auto, confirmed or pending of
    individuals confirmed, proposed or merged of that flank whose flank was seen (:func:`flank_seen_sql`), with
    their crop's ``detection_id, embedding, embedder, keypoints, descriptors, infrared, motion_keypoints,
    motion_descriptors, features_version, crop_path``, the box ``x, y, w, h``, the frame's ``deployment_id`` and
    ``ind``: the individual, or the one it was merged into."""
    return cat.execute(
        "SELECT c.detection_id, c.embedding, c.embedder, c.keypoints, c.descriptors, c.infrared, "
        "c.motion_keypoints, c.motion_descriptors, c.features_version, c.crop_path, "
        "d.x, d.y, d.w, d.h, m.deployment_id, "
        "COALESCE(i.merged_into, i.id) AS ind FROM sightings s JOIN individuals i ON i.id = s.individual_id "
        "JOIN crops c ON c.detection_id = s.detection_id JOIN detections d ON d.id = s.detection_id "
        "JOIN media m ON m.id = d.media_id "
        "WHERE s.status IN ('auto', 'confirmed', 'pending') AND i.status IN ('confirmed', 'proposed', 'merged') "
        f"AND i.flank = ? AND {flank_seen_sql()} ORDER BY s.detection_id", (flank,)).fetchall()


def delete_set_aside(cat: Catalog | sqlite3.Connection, deployment: str | None = None) -> int:
    """Delete the sightings identify set aside that no person has decided since (:func:`set_aside_sql`), of
    all deployments or of ``deployment``'s media; their candidates go with them. Returns how many."""
    sql = f"DELETE FROM sightings WHERE {set_aside_sql('sightings')}"
    args: list = []
    if deployment:
        sql += (" AND detection_id IN (SELECT d.id FROM detections d JOIN media m ON m.id = d.media_id "
                "WHERE m.deployment_id = ?)")
        args.append(deployment)
    return cat.execute(sql, args).rowcount


def insert_set_aside(cat: Catalog | sqlite3.Connection, *, detection_id: int, flank: str, run_id: int,
                     model_version: str, updated_at: str, reason: str) -> int | None:
    """Add a sighting without an individual, status 'unusable', with its ``set_aside_reason``; its id, or None
    (nothing written) when the detection already has a sighting."""
    cur = cat.execute(
        "INSERT OR IGNORE INTO sightings (detection_id, individual_id, flank, status, run_id, "
        "model_version, updated_at, set_aside_reason) VALUES (?, NULL, ?, 'unusable', ?, ?, ?, ?)",
        (detection_id, flank, run_id, model_version, updated_at, reason))
    return None if cur.rowcount == 0 else int(cur.lastrowid)


def insert_identified(cat: Catalog | sqlite3.Connection, *, detection_id: int, individual_id: int, flank: str,
                      status: str, probability: float | None, run_id: int, model_version: str,
                      updated_at: str) -> int | None:
    """Add a sighting assigned to ``individual_id`` (``probability`` None: a new individual's founding frame);
    its id, or None (nothing written) when the detection already has a sighting."""
    cur = cat.execute(
        "INSERT OR IGNORE INTO sightings (detection_id, individual_id, flank, status, probability, run_id, "
        "model_version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (detection_id, individual_id, flank, status, probability, run_id, model_version, updated_at))
    return None if cur.rowcount == 0 else int(cur.lastrowid)


def insert_candidate(cat: Catalog | sqlite3.Connection, *, sighting_id: int, individual_id: int, rank: int,
                     embed_score: float | None, verify_inliers: int | None, probability: float | None,
                     reference_detection_id: int, evidence_json: str, run_id: int, model_version: str) -> None:
    """Add one ranked candidate individual of a sighting (ignored when it is one of its candidates already)."""
    cat.execute(
        "INSERT OR IGNORE INTO match_candidates (sighting_id, individual_id, rank, embed_score, verify_inliers, "
        "probability, reference_detection_id, evidence_json, run_id, model_version) "
        "VALUES (?,?,?,?,?,?,?,?,?,?)",
        (sighting_id, individual_id, rank, embed_score, verify_inliers, probability, reference_detection_id,
         evidence_json, run_id, model_version))


# -- used by review (browse, demo, queue) --
def count(cat: Catalog | sqlite3.Connection) -> int:
    """How many sightings the catalog holds."""
    return int(cat.execute("SELECT COUNT(*) FROM sightings").fetchone()[0])


def detection_of(cat: Catalog | sqlite3.Connection, sighting_id: int) -> int | None:
    """The detection id of a sighting; None if there is no such sighting."""
    r = cat.execute("SELECT detection_id FROM sightings WHERE id = ?", (sighting_id,)).fetchone()
    return None if r is None else int(r[0])


def queued_sql(include_auto: bool, include_set_aside: bool) -> str:
    """SQL condition on sightings ``s`` for what the review queue holds: pending, plus 'auto' with
    ``include_auto``, plus those identify set aside (:func:`set_aside_sql`) with ``include_set_aside``."""
    cond = ["s.status = 'pending'"]
    if include_auto:
        cond.append("s.status = 'auto'")
    if include_set_aside:
        cond.append(set_aside_sql())
    return "(" + " OR ".join(cond) + ")"


def queue_rows(cat: Catalog | sqlite3.Connection, include_auto: bool, include_set_aside: bool) -> list[sqlite3.Row]:
    """The queued sightings (:func:`queued_sql`), in table order: ``id, probability``, the best and second-best
    candidate probabilities ``p1, p2``, the frame's ``timestamp`` and the sighting's ``status``."""
    return cat.execute(
        f"""
        SELECT s.id, s.probability,
               (SELECT MAX(probability) FROM match_candidates mc WHERE mc.sighting_id = s.id) AS p1,
               (SELECT probability FROM match_candidates mc WHERE mc.sighting_id = s.id
                  ORDER BY probability DESC LIMIT 1 OFFSET 1) AS p2,
               m.timestamp, s.status
        FROM sightings s
        JOIN detections d ON d.id = s.detection_id
        JOIN media m ON m.id = d.media_id
        WHERE {queued_sql(include_auto, include_set_aside)}
        """).fetchall()


def queue_count(cat: Catalog | sqlite3.Connection, include_auto: bool, include_set_aside: bool) -> int:
    """How many sightings the review queue holds (:func:`queued_sql`)."""
    return int(cat.execute(f"SELECT COUNT(*) FROM sightings s WHERE {queued_sql(include_auto, include_set_aside)}"
                           ).fetchone()[0])


def counted_stats(cat: Catalog | sqlite3.Connection, individual_id: int) -> sqlite3.Row:
    """Of the individual's auto/confirmed sightings: ``n``, ``last_seen`` (latest frame time) and ``stations``
    (comma-joined distinct stations: location_id, else deployment id; NULL when none)."""
    return cat.execute(
        """SELECT COUNT(*) AS n, MAX(m.timestamp) AS last_seen,
                  GROUP_CONCAT(DISTINCT COALESCE(dep.location_id, m.deployment_id)) AS stations
           FROM sightings s JOIN detections d ON d.id = s.detection_id JOIN media m ON m.id = d.media_id
           LEFT JOIN deployments dep ON dep.id = m.deployment_id
           WHERE s.individual_id = ? AND s.status IN ('auto', 'confirmed')""", (individual_id,)).fetchone()


def get(cat: Catalog | sqlite3.Connection, sighting_id: int) -> SightingRow | None:
    """Sighting ``sighting_id``: id, detection_id, individual_id, flank, status, probability, model_version,
    version and set_aside_reason; None if absent."""
    r = cat.execute("SELECT id, detection_id, individual_id, flank, status, probability, model_version, version, "
                    "set_aside_reason FROM sightings WHERE id = ?", (sighting_id,)).fetchone()
    return None if r is None else SightingRow.from_row(r)


def candidates(cat: Catalog | sqlite3.Connection, sighting_id: int) -> list[sqlite3.Row]:
    """The sighting's ranked candidates (``match_candidates``: individual_id, rank, embed_score, verify_inliers,
    probability, reference_detection_id, evidence_json), by rank, then probability (highest first, NULL last)."""
    return cat.execute(
        "SELECT individual_id, rank, embed_score, verify_inliers, probability, reference_detection_id, evidence_json "
        "FROM match_candidates WHERE sighting_id = ? "
        "ORDER BY rank, probability IS NULL, probability DESC", (sighting_id,)).fetchall()


def time_span(cat: Catalog | sqlite3.Connection) -> tuple[str | None, str | None]:
    """Earliest and latest frame time of any sighting (None, None without sightings)."""
    r = cat.execute("SELECT MIN(m.timestamp), MAX(m.timestamp) FROM sightings s JOIN detections d ON d.id = "
                    "s.detection_id JOIN media m ON m.id = d.media_id").fetchone()
    return r[0], r[1]


def count_stations_with_counted(cat: Catalog | sqlite3.Connection) -> int:
    """Stations (location_id, else deployment id) with at least one auto/confirmed sighting."""
    return int(cat.execute(
        "SELECT COUNT(DISTINCT COALESCE(dep.location_id, m.deployment_id)) FROM sightings s "
        "JOIN detections d ON d.id = s.detection_id JOIN media m ON m.id = d.media_id "
        "LEFT JOIN deployments dep ON dep.id = m.deployment_id WHERE s.status IN ('auto', 'confirmed')"
    ).fetchone()[0] or 0)


def count_set_aside(cat: Catalog | sqlite3.Connection) -> int:
    """Sightings identify set aside that no person has decided since (:func:`set_aside_sql`)."""
    return int(cat.execute(f"SELECT COUNT(*) FROM sightings s WHERE {set_aside_sql()}").fetchone()[0] or 0)
