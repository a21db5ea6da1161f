"""SQL on the catalog tables review_decisions (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations
