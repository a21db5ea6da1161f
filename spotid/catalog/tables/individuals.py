"""SQL on the catalog tables individuals and flank_links (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations

import re
import sqlite3
from typing import TYPE_CHECKING, Sequence

from spotid.types import IndividualRow

if TYPE_CHECKING:
    from spotid.catalog import Catalog


# -- used by review (decisions, app) --
def get(cat: Catalog | sqlite3.Connection, individual_id: int) -> IndividualRow | None:
    """The whole ``individuals`` row ``individual_id``; None if absent."""
    r = cat.execute("SELECT * FROM individuals WHERE id = ?", (individual_id,)).fetchone()
    return None if r is None else IndividualRow.from_row(r)


def id_by_name(cat: Catalog | sqlite3.Connection, name: str) -> int | None:
    """The id of the individual named ``name`` (names are unique); None if no individual has it."""
    r = cat.execute("SELECT id FROM individuals WHERE name = ?", (name,)).fetchone()
    return None if r is None else int(r[0])


def names_like(cat: Catalog | sqlite3.Connection, pattern: str) -> list[str]:
    """Names matching the SQL LIKE ``pattern`` (e.g. ``'L-%'``), in table order."""
    return [r[0] for r in cat.execute("SELECT name FROM individuals WHERE name LIKE ?", (pattern,))]


def next_name(cat: Catalog | sqlite3.Connection, flank: str) -> str:
    """The next free name of ``flank``'s sequence (``L-0007`` / ``R-0012``): one past the highest
    number taken, so that identify's and reviewers' individuals share one sequence per flank."""
    prefix = {"left": "L", "right": "R"}[flank]
    nums = [int(m.group(1)) for name in names_like(cat, f"{prefix}-%")
            if (m := re.fullmatch(rf"{prefix}-(\d+)", name))]
    return f"{prefix}-{max(nums, default=0) + 1:04d}"


def names(cat: Catalog | sqlite3.Connection) -> dict[int, str]:
    """id -> name of every individual, merged and rejected ones included."""
    return {int(r[0]): r[1] for r in cat.execute("SELECT id, name FROM individuals")}


def assignable(cat: Catalog | sqlite3.Connection, flanks: Sequence[str]) -> list[IndividualRow]:
    """Confirmed and proposed individuals of the given flanks (id, name, status, flank), by name."""
    marks = ", ".join("?" * len(flanks))
    return [IndividualRow.from_row(r) for r in cat.execute(
        f"SELECT id, name, status, flank FROM individuals WHERE flank IN ({marks}) "
        "AND status IN ('confirmed', 'proposed') ORDER BY name", tuple(flanks))]


def insert(cat: Catalog | sqlite3.Connection, *, name: str, flank: str, status: str, created_at: str,
           created_by: str | None, notes: str | None = None) -> int:
    """Add an individual (``created_by``: a reviewer's name or ``run:<id>``; ``notes``: e.g. why identify
    joined its bursts); returns its id."""
    cur = cat.execute("INSERT INTO individuals (name, flank, status, created_at, created_by, notes) "
                      "VALUES (?, ?, ?, ?, ?, ?)", (name, flank, status, created_at, created_by, notes))
    return int(cur.lastrowid)


def confirm(cat: Catalog | sqlite3.Connection, individual_id: int, *, name: str | None = None) -> None:
    """Status 'confirmed' (a person vouched for it), renamed to ``name`` when given."""
    cat.execute("UPDATE individuals SET status = 'confirmed', name = COALESCE(?, name) WHERE id = ?",
                (name, individual_id))


def mark_merged(cat: Catalog | sqlite3.Connection, individual_id: int, *, into: int) -> None:
    """Status 'merged' with ``merged_into = into``."""
    cat.execute("UPDATE individuals SET status = 'merged', merged_into = ? WHERE id = ?", (into, individual_id))


def restore(cat: Catalog | sqlite3.Connection, individual_id: int, *, name: str, status: str,
            merged_into: int | None) -> None:
    """Set name, status and merged_into back to a recorded state (review's undo)."""
    cat.execute("UPDATE individuals SET name = ?, status = ?, merged_into = ? WHERE id = ?",
                (name, status, merged_into, individual_id))


def delete(cat: Catalog | sqlite3.Connection, individual_id: int) -> None:
    """Remove the individual (its flank links go with it: ON DELETE CASCADE)."""
    cat.execute("DELETE FROM individuals WHERE id = ?", (individual_id,))


def count_merged_into(cat: Catalog | sqlite3.Connection, individual_id: int) -> int:
    """How many individuals were merged into ``individual_id``."""
    return int(cat.execute("SELECT COUNT(*) FROM individuals WHERE merged_into = ?", (individual_id,)).fetchone()[0])


def count_flank_links(cat: Catalog | sqlite3.Connection, individual_id: int) -> int:
    """How many ``flank_links`` rows name ``individual_id`` as their left or right flank."""
    return int(cat.execute("SELECT COUNT(*) FROM flank_links WHERE left_id = ? OR right_id = ?",
                           (individual_id, individual_id)).fetchone()[0])


# -- used by export / census / workflow (camtrapdp, census, linking, training_crops, workflow truth) --
def brief_rows(cat: Catalog | sqlite3.Connection) -> list[IndividualRow]:
    """id, name, flank, status and merged_into of every individual (merged and rejected ones included), in table
    order."""
    return [IndividualRow.from_row(r) for r in cat.execute(
        "SELECT id, name, flank, status, merged_into FROM individuals")]


def flank_links(cat: Catalog | sqlite3.Connection) -> list[sqlite3.Row]:
    """Every stored flank link (columns left_id, right_id, reason, evidence_json), in table order; the ids are
    as stored, merges not followed."""
    return cat.execute("SELECT left_id, right_id, reason, evidence_json FROM flank_links").fetchall()


def upsert_flank_link(cat: Catalog | sqlite3.Connection, left_id: int, right_id: int, *, reason: str,
                      evidence_json: str, created_at: str) -> None:
    """Store the link of a left and a right identity; an existing link of the pair gets the new reason and
    evidence (its created_at is kept)."""
    cat.execute("INSERT INTO flank_links (left_id, right_id, reason, evidence_json, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(left_id, right_id) DO UPDATE SET "
                "reason = excluded.reason, evidence_json = excluded.evidence_json",
                (left_id, right_id, reason, evidence_json, created_at))


def insert_with_truth(cat: Catalog | sqlite3.Connection, *, name: str, flank: str, status: str, created_at: str,
                      truth_id: str) -> int:
    """Add an individual of a synthetic world, with the true animal's id (``truth_id``); returns its id."""
    cur = cat.execute("INSERT INTO individuals (name, flank, status, created_at, truth_id) VALUES (?,?,?,?,?)",
                      (name, flank, status, created_at, truth_id))
    return int(cur.lastrowid)


# -- used by detect / identify (identify.pipeline) --
def flanks(cat: Catalog | sqlite3.Connection) -> dict[int, str]:
    """id -> flank of every individual, merged and rejected ones included."""
    return {int(r[0]): r[1] for r in cat.execute("SELECT id, flank FROM individuals")}


# -- used by review (queue, browse) --
def merged_into(cat: Catalog | sqlite3.Connection, individual_id: int) -> int | None:
    """The individual ``individual_id`` was merged into; None when it was not (or does not exist)."""
    r = cat.execute("SELECT merged_into FROM individuals WHERE id = ?", (individual_id,)).fetchone()
    return None if r is None or r[0] is None else int(r[0])


def brief(cat: Catalog | sqlite3.Connection, individual_id: int) -> IndividualRow | None:
    """id, name, flank, status and notes of one individual; None if absent."""
    r = cat.execute("SELECT id, name, flank, status, notes FROM individuals WHERE id = ?", (individual_id,)).fetchone()
    return None if r is None else IndividualRow.from_row(r)


_SUMMARY_SQL = """
    SELECT i.id, i.name, i.flank, i.status, i.merged_into,
           COALESCE(SUM(s.status IN ('auto', 'confirmed')), 0) AS n_counted,
           COALESCE(SUM(s.status = 'pending'), 0) AS n_pending,
           MIN(CASE WHEN s.status IN ('auto', 'confirmed') THEN m.timestamp END) AS first_seen,
           MAX(CASE WHEN s.status IN ('auto', 'confirmed') THEN m.timestamp END) AS last_seen,
           GROUP_CONCAT(DISTINCT CASE WHEN s.status IN ('auto', 'confirmed')
                        THEN COALESCE(dep.location_id, m.deployment_id) END) AS stations
    FROM individuals i
    LEFT JOIN sightings s ON s.individual_id = i.id
    LEFT JOIN detections d ON d.id = s.detection_id
    LEFT JOIN media m ON m.id = d.media_id
    LEFT JOIN deployments dep ON dep.id = m.deployment_id
"""


def summaries(cat: Catalog | sqlite3.Connection, individual_id: int | None = None) -> list[sqlite3.Row]:
    """Every individual (or only ``individual_id``) by flank then name, with its sightings summed: ``id, name,
    flank, status, merged_into``, ``n_counted`` (auto/confirmed) and ``n_pending`` sightings, ``first_seen`` and
    ``last_seen`` (frame times of the counted ones) and ``stations`` (comma-joined; NULL when none)."""
    where, params = ("WHERE i.id = ?", (individual_id,)) if individual_id is not None else ("", ())
    return cat.execute(f"{_SUMMARY_SQL} {where} GROUP BY i.id ORDER BY i.flank, i.name", params).fetchall()


def linked_ids(cat: Catalog | sqlite3.Connection, individual_id: int) -> list[int]:
    """The identities of the other flank linked to ``individual_id`` (``flank_links``), in table order."""
    return [int(r[0]) for r in cat.execute(
        "SELECT CASE WHEN left_id = ? THEN right_id ELSE left_id END FROM flank_links "
        "WHERE left_id = ? OR right_id = ?", (individual_id,) * 3)]


def merged_from_ids(cat: Catalog | sqlite3.Connection, individual_id: int) -> list[int]:
    """The individuals merged into ``individual_id``, by name."""
    return [int(r[0]) for r in cat.execute("SELECT id FROM individuals WHERE merged_into = ? ORDER BY name",
                                           (individual_id,))]


def same_flank(cat: Catalog | sqlite3.Connection, flank: str, exclude_id: int) -> list[IndividualRow]:
    """Confirmed and proposed individuals of ``flank`` other than ``exclude_id`` (id, name, flank, status), by name."""
    return [IndividualRow.from_row(r) for r in cat.execute(
        "SELECT id, name, flank, status FROM individuals WHERE flank = ? AND id != ? "
        "AND status IN ('confirmed', 'proposed') ORDER BY name", (flank, exclude_id))]


def notes(cat: Catalog | sqlite3.Connection, individual_id: int) -> str | None:
    """The individual's notes; None when it has none (or does not exist)."""
    r = cat.execute("SELECT notes FROM individuals WHERE id = ?", (individual_id,)).fetchone()
    return None if r is None else r[0]


def counted_per_flank(cat: Catalog | sqlite3.Connection) -> dict[str, int]:
    """flank -> confirmed/proposed individuals with at least one auto/confirmed sighting."""
    return {r[0]: int(r[1]) for r in cat.execute(
        "SELECT i.flank, COUNT(DISTINCT i.id) FROM individuals i JOIN sightings s ON s.individual_id = i.id "
        "WHERE s.status IN ('auto', 'confirmed') AND i.status IN ('confirmed', 'proposed') GROUP BY i.flank")}


def count_counted_links(cat: Catalog | sqlite3.Connection) -> int:
    """Flank links whose left and right identities both have auto/confirmed sightings."""
    return int(cat.execute(
        """SELECT COUNT(*) FROM flank_links fl
           WHERE EXISTS (SELECT 1 FROM sightings s WHERE s.individual_id = fl.left_id AND s.status IN ('auto','confirmed'))
             AND EXISTS (SELECT 1 FROM sightings s WHERE s.individual_id = fl.right_id AND s.status IN ('auto','confirmed'))"""
    ).fetchone()[0] or 0)
