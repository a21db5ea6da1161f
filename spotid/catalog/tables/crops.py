"""SQL on the catalog tables crops and crop_local_features (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations
