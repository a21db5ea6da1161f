"""SQL on the catalog tables crops and crop_local_features (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Iterable, Sequence

from spotid.types import CropRow

if TYPE_CHECKING:
    from spotid.catalog import Catalog


# -- used by review (app) --
def crop_path(cat: Catalog | sqlite3.Connection, detection_id: int) -> str | None:
    """The stored crop image path of a detection (``crops.crop_path``); None without a crop row or path."""
    r = cat.execute("SELECT crop_path FROM crops WHERE detection_id = ?", (detection_id,)).fetchone()
    return None if r is None else r[0]


# -- used by detect / identify (identify.cropstore, identify.pipeline) --
# crops' feature columns, in the order of identify.cropstore.feature_values
FEATURE_COLUMNS = ("keypoints", "descriptors", "infrared", "motion_keypoints", "motion_descriptors")
# the columns :func:`upsert_cache` writes, in the order of its rows' values
CACHE_COLUMNS = ("detection_id", "quality", "blur", "size_px", "touches_edge", "flank", "flank_conf", "embedding",
                 "embedder", *FEATURE_COLUMNS, "features_version", "crop_path", "flank_model")
# the columns :func:`update_features` sets, then ``detection_id``, in the order of its rows' values
REFRESH_COLUMNS = ("embedding", "embedder", *FEATURE_COLUMNS, "features_version")
# detection ids per SELECT ... IN (...), below SQLite's limit on bound parameters
_IN_CHUNK = 500


def _conn(cat: Catalog | sqlite3.Connection) -> sqlite3.Connection:
    return getattr(cat, "conn", cat)


def of_detections(cat: Catalog | sqlite3.Connection, ids: Sequence[int]) -> dict[int, CropRow]:
    """detection id -> its whole ``crops`` row, for those of ``ids`` that have one (read 500 ids at a time)."""
    out = {}
    for i in range(0, len(ids), _IN_CHUNK):
        chunk = list(ids[i:i + _IN_CHUNK])
        for r in cat.execute(f"SELECT * FROM crops WHERE detection_id IN ({','.join('?' * len(chunk))})", chunk):
            out[r["detection_id"]] = CropRow.from_row(r)
    return out


def upsert_cache(cat: Catalog | sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Insert or replace (keyed by detection id) each crop's cached values, given as tuples in
    :data:`CACHE_COLUMNS` order; inside the caller's transaction."""
    _conn(cat).executemany(
        f"INSERT INTO crops ({', '.join(CACHE_COLUMNS)}) VALUES ({','.join('?' * len(CACHE_COLUMNS))}) "
        "ON CONFLICT(detection_id) DO UPDATE SET " + ", ".join(f"{c}=excluded.{c}" for c in CACHE_COLUMNS[1:]), rows)


def update_features(cat: Catalog | sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Set embedding, embedder, features and features_version of existing crops: tuples of the
    :data:`REFRESH_COLUMNS` values then the detection id; inside the caller's transaction."""
    _conn(cat).executemany("UPDATE crops SET " + ", ".join(f"{c}=?" for c in REFRESH_COLUMNS)
                           + " WHERE detection_id=?", rows)


def local_features(cat: Catalog | sqlite3.Connection, ids: Sequence[int]) -> list[sqlite3.Row]:
    """The whole ``crop_local_features`` rows (``detection_id, matcher, version, keypoints, descriptors,
    infrared``) of the detections ``ids``, read 500 ids at a time, in that order of chunks."""
    out: list[sqlite3.Row] = []
    for i in range(0, len(ids), _IN_CHUNK):
        chunk = list(ids[i:i + _IN_CHUNK])
        out += cat.execute("SELECT * FROM crop_local_features WHERE detection_id IN "
                           f"({','.join('?' * len(chunk))})", chunk).fetchall()
    return out


def upsert_local_features(cat: Catalog | sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Insert or replace (keyed by detection id and matcher) tuples ``(detection_id, matcher, version,
    keypoints, descriptors, infrared)``; inside the caller's transaction."""
    _conn(cat).executemany(
        "INSERT INTO crop_local_features (detection_id, matcher, version, keypoints, descriptors, infrared) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(detection_id, matcher) DO UPDATE SET "
        "version=excluded.version, keypoints=excluded.keypoints, descriptors=excluded.descriptors, "
        "infrared=excluded.infrared", rows)


# -- used by review (queue) --
def flank_conf(cat: Catalog | sqlite3.Connection, detection_id: int) -> float | None:
    """The flank classifier's confidence for the detection's crop; None without a crop or a value."""
    r = cat.execute("SELECT flank_conf FROM crops WHERE detection_id = ?", (detection_id,)).fetchone()
    return None if r is None or r[0] is None else float(r[0])
