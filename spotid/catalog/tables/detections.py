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
