"""SQL on the catalog tables media, sequences and ingest_failures (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations
