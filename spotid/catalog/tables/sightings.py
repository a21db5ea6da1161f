"""SQL on the catalog tables sightings and match_candidates (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from spotid.catalog import now_iso
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
