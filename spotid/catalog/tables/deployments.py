"""SQL on the catalog tables deployments (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations
