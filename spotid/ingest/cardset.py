"""Ingest a set of cards laid out one folder per deployment beside a ``deployments.csv`` (Camtrap DP
deployment columns), as ``spotid synth card`` writes them and as a season's archive is often kept."""
from __future__ import annotations

from pathlib import Path

from spotid.catalog import Catalog


def ingest_card_set(cat: Catalog, root: str | Path, cfg=None) -> None:
    """Import ``root/deployments.csv``, then ingest each deployment's folder ``root/<deploymentID>``
    (``cfg``: an IngestConfig; default the package defaults)."""
    from spotid.catalog.tables import deployments as deployments_table
    from spotid.config import resolve_config
    from spotid.ingest.deployments import import_deployments_csv
    from spotid.ingest.ingester import IngestConfig, Ingester

    root = Path(root)
    import_deployments_csv(cat, root / "deployments.csv")
    cfg = cfg or resolve_config(IngestConfig)
    for dep in deployments_table.ids(cat):
        if (root / dep).is_dir():
            Ingester(cat, cfg)(root / dep, dep)
