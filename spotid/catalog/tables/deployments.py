"""SQL on the catalog tables deployments (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from spotid.catalog import now_iso

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


# -- used by ingest (deployments, media_root, cardset, cli, health) --
# Columns an upsert may set (Camtrap DP fields, extra_json, auto_created); created_at is stamped on insert only.
_UPSERTABLE = ("id", "latitude", "longitude", "start", "end", "tz", "location_id", "location_name", "camera_id",
               "camera_model", "coordinate_uncertainty", "camera_height", "setup_by", "feature_type", "habitat",
               "comments", "extra_json", "auto_created")


def get(cat: Catalog | sqlite3.Connection, deployment_id: str) -> sqlite3.Row | None:
    """The whole ``deployments`` row of ``deployment_id`` (every column); None if there is none."""
    return cat.execute("SELECT * FROM deployments WHERE id = ?", (deployment_id,)).fetchone()


def ids(cat: Catalog | sqlite3.Connection) -> list[str]:
    """Every deployment id, sorted."""
    return [r[0] for r in cat.execute("SELECT id FROM deployments ORDER BY id")]


def with_media_counts(cat: Catalog | sqlite3.Connection) -> list[sqlite3.Row]:
    """Every ``deployments`` row (every column) plus ``n_media``, its number of media rows, by id."""
    return cat.execute("SELECT d.*, (SELECT COUNT(*) FROM media m WHERE m.deployment_id = d.id) AS n_media "
                       "FROM deployments d ORDER BY d.id").fetchall()


def upsert(cat: Catalog | sqlite3.Connection, values: dict[str, Any]) -> None:
    """Insert the deployment ``values`` (column -> value, ``id`` required, columns of ``_UPSERTABLE``), or, when
    its id exists, set every given column but ``id``; ``created_at`` is stamped on insert and kept on update."""
    bad = [k for k in values if k not in _UPSERTABLE]
    if bad or "id" not in values:
        raise ValueError(f"upsert sets id and some of {', '.join(_UPSERTABLE[1:])}, not {bad or 'no id'}")
    cols = list(values)
    cat.execute(f"INSERT INTO deployments ({', '.join(cols)}, created_at) VALUES ({', '.join('?' * (len(cols) + 1))}) "
                "ON CONFLICT(id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id"),
                (*values.values(), now_iso()))


def media_root(cat: Catalog | sqlite3.Connection, deployment_id: str) -> str | None:
    """``deployments.media_root`` of ``deployment_id``: None when it is NULL or there is no such deployment."""
    r = cat.execute("SELECT media_root FROM deployments WHERE id = ?", (deployment_id,)).fetchone()
    return None if r is None else r[0]


def set_media_root(cat: Catalog | sqlite3.Connection, deployment_id: str, root: str) -> None:
    """Set ``deployments.media_root`` (an absolute folder, see spotid/ingest/media_root.py) of one deployment."""
    cat.execute("UPDATE deployments SET media_root = ? WHERE id = ?", (root, deployment_id))


# -- used by review (browse) --
def count_stations(cat: Catalog | sqlite3.Connection) -> int:
    """Stations: distinct location_id (a deployment without one is a station of its own)."""
    return int(cat.execute("SELECT COUNT(DISTINCT COALESCE(location_id, id)) FROM deployments").fetchone()[0] or 0)
