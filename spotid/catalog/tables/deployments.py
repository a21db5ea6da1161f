"""SQL on the catalog tables deployments (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spotid.catalog import Catalog


# -- used by export / census / workflow (camtrapdp, census, census cli, workflow truth) --
def rows(cat: Catalog | sqlite3.Connection, *, by_id: bool = False) -> list[sqlite3.Row]:
    """Every ``deployments`` row, all columns; in table order, or ordered by id with ``by_id``."""
    return cat.execute("SELECT * FROM deployments" + (" ORDER BY id" if by_id else "")).fetchall()


def insert(cat: Catalog | sqlite3.Connection, deployment_id: str, *, location_id: str | None,
           latitude: float | None, longitude: float | None, start: str | None, end: str | None,
           created_at: str) -> None:
    """Add a deployment with its station (``location_id``), position and start/end (ISO text)."""
    cat.execute("INSERT INTO deployments (id, location_id, latitude, longitude, start, end, created_at) "
                "VALUES (?,?,?,?,?,?,?)", (deployment_id, location_id, latitude, longitude, start, end, created_at))


# -- used by detect / identify (identify.pipeline) --
def stations(cat: Catalog | sqlite3.Connection) -> dict[str, str]:
    """deployment id -> its station: ``location_id`` (two paired cameras share one), else its own id."""
    return {r[0]: str(r[1]) for r in cat.execute("SELECT id, COALESCE(location_id, id) AS st FROM deployments")}
