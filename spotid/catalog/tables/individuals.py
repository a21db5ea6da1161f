"""SQL on the catalog tables individuals and flank_links (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations
