"""SQL on the catalog tables review_decisions (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spotid.catalog import Catalog

# a decision that changed something and still stands (skips change nothing; undos are not undone in turn)
_LIVE = "undone_by IS NULL AND action NOT IN ('undo', 'skip')"


# -- used by review (decisions, app) --
def insert(cat: Catalog | sqlite3.Connection, *, sighting_id: int | None, action: str, reviewer: str,
           decided_at: str, previous_json: str, new_json: str, undoes: int | None = None) -> int:
    """Record one decision (``previous_json`` / ``new_json``: the audited state, see review.decisions); its id."""
    cur = cat.execute(
        "INSERT INTO review_decisions (sighting_id, action, reviewer, decided_at, previous_json, new_json, undoes) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)", (sighting_id, action, reviewer, decided_at, previous_json, new_json, undoes))
    return int(cur.lastrowid)


def get(cat: Catalog | sqlite3.Connection, decision_id: int) -> sqlite3.Row | None:
    """The whole ``review_decisions`` row ``decision_id``; None if absent."""
    return cat.execute("SELECT * FROM review_decisions WHERE id = ?", (decision_id,)).fetchone()


def recent_ids(cat: Catalog | sqlite3.Connection, limit: int, reviewer: str | None = None) -> list[int]:
    """Ids of the latest ``limit`` decisions (all, or ``reviewer``'s), newest first; undos and skips included."""
    sql, params = "SELECT id FROM review_decisions", ()
    if reviewer is not None:
        sql += " WHERE reviewer = ?"
        params = (reviewer,)
    return [int(r[0]) for r in cat.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))]


def last_for_sighting(cat: Catalog | sqlite3.Connection, sighting_id: int, *,
                      live_only: bool = False) -> sqlite3.Row | None:
    """(action, reviewer, decided_at) of the latest decision on the sighting; ``live_only``: the latest that
    changed something and was not undone. None when there is none."""
    live = f" AND {_LIVE}" if live_only else ""
    return cat.execute(f"SELECT action, reviewer, decided_at FROM review_decisions WHERE sighting_id = ?{live} "
                       "ORDER BY id DESC LIMIT 1", (sighting_id,)).fetchone()


def last_undoable_id(cat: Catalog | sqlite3.Connection, reviewer: str) -> int | None:
    """Id of ``reviewer``'s latest decision that is not an undo and not undone (skips included); None if none."""
    r = cat.execute("SELECT id FROM review_decisions WHERE reviewer = ? AND action != 'undo' "
                    "AND undone_by IS NULL ORDER BY id DESC LIMIT 1", (reviewer,)).fetchone()
    return None if r is None else int(r[0])


def live_after(cat: Catalog | sqlite3.Connection, after_id: int) -> list[sqlite3.Row]:
    """(id, action, reviewer, new_json) of the standing decisions after ``after_id`` that changed something, by id."""
    return cat.execute(f"SELECT id, action, reviewer, new_json FROM review_decisions WHERE id > ? AND {_LIVE} "
                       "ORDER BY id", (after_id,)).fetchall()


def set_undone_by(cat: Catalog | sqlite3.Connection, decision_id: int, undone_by: int) -> None:
    """Mark decision ``decision_id`` as undone by decision ``undone_by``."""
    cat.execute("UPDATE review_decisions SET undone_by = ? WHERE id = ?", (undone_by, decision_id))


def count_live_since(cat: Catalog | sqlite3.Connection, reviewer: str, since: str) -> int:
    """How many standing decisions that changed something ``reviewer`` made at or after ``since`` (ISO text)."""
    return int(cat.execute(f"SELECT COUNT(*) FROM review_decisions WHERE reviewer = ? AND decided_at >= ? AND {_LIVE}",
                           (reviewer, since)).fetchone()[0])


# -- used by export / census / workflow (camtrapdp, training_crops) --
def reviewer_by_sighting(cat: Catalog | sqlite3.Connection) -> dict[int | None, str]:
    """sighting_id -> reviewer of the latest decision on it that was not undone (any action, undos and skips
    included)."""
    return {r["sighting_id"]: r["reviewer"] for r in cat.execute(
        "SELECT sighting_id, reviewer FROM review_decisions WHERE undone_by IS NULL ORDER BY id")}


def labelling_decisions(cat: Catalog | sqlite3.Connection) -> list[sqlite3.Row]:
    """Per sighting whose latest live decision that changed something (not undone, not a skip or undo) is a
    confirm, new, unusable or not_leopard, that decision with its sighting, box, frame and crop, oldest first.
    Columns: action, reviewer, decided_at; ``sid``, status, individual_id, flank (the sighting's); ``did``, x, y,
    w, h, conf (the detection's); ``mid``, path, sequence_id (the media's); crop_path (NULL without a crop row).
    The sighting's status may have changed since (callers compare)."""
    return cat.execute(
        "SELECT rd.action, rd.reviewer, rd.decided_at, s.id AS sid, s.status, s.individual_id, s.flank, "
        "d.id AS did, d.x, d.y, d.w, d.h, d.conf, m.id AS mid, m.path, m.sequence_id, c.crop_path "
        "FROM review_decisions rd JOIN sightings s ON s.id = rd.sighting_id "
        "JOIN detections d ON d.id = s.detection_id JOIN media m ON m.id = d.media_id "
        "LEFT JOIN crops c ON c.detection_id = d.id "
        "WHERE rd.undone_by IS NULL AND rd.action IN ('confirm', 'new', 'unusable', 'not_leopard') "
        "AND rd.id = (SELECT MAX(r2.id) FROM review_decisions r2 WHERE r2.sighting_id = s.id "
        "             AND r2.undone_by IS NULL AND r2.action NOT IN ('skip', 'undo')) "
        "ORDER BY rd.id").fetchall()


# -- used by review (queue, browse) --
def live_skips(cat: Catalog | sqlite3.Connection, reviewer: str) -> dict[int, str]:
    """sighting id -> when ``reviewer`` last skipped it, for skips not undone."""
    return {int(r[0]): r[1] for r in cat.execute(
        "SELECT sighting_id, MAX(decided_at) FROM review_decisions "
        "WHERE action = 'skip' AND undone_by IS NULL AND reviewer = ? AND sighting_id IS NOT NULL "
        "GROUP BY sighting_id", (reviewer,))}


def count_live_decisions(cat: Catalog | sqlite3.Connection) -> int:
    """Decisions not undone, skips and undos left out."""
    return int(cat.execute("SELECT COUNT(*) FROM review_decisions WHERE undone_by IS NULL "
                           "AND action NOT IN ('skip', 'undo')").fetchone()[0] or 0)


def reviewers(cat: Catalog | sqlite3.Connection) -> tuple[str, ...]:
    """Every reviewer name that made a decision, sorted."""
    return tuple(r[0] for r in cat.execute("SELECT DISTINCT reviewer FROM review_decisions ORDER BY reviewer"))
