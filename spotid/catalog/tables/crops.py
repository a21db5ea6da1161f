"""SQL on the catalog tables crops and crop_local_features (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spotid.catalog import Catalog


# -- used by review (app) --
def crop_path(cat: Catalog | sqlite3.Connection, detection_id: int) -> str | None:
    """The stored crop image path of a detection (``crops.crop_path``); None without a crop row or path."""
    r = cat.execute("SELECT crop_path FROM crops WHERE detection_id = ?", (detection_id,)).fetchone()
    return None if r is None else r[0]
