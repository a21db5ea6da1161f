"""Command-line support shared by every stage's ``cli.py`` (typer lives here, not in the base modules).

Only command-line modules import this (``tests/test_layers.py`` checks it).
"""
from __future__ import annotations

from pathlib import Path


def open_catalog(db: str | Path, *, create: bool = True):
    """The catalog at ``db`` for a CLI command (``create``: a new file may be started, as ingest does);
    a file that is not a catalog, or a missing one when ``create`` is off, is a usage error on ``--db``
    whose message names the fix (typer.BadParameter)."""
    import typer

    from spotid.catalog import Catalog, CatalogError

    try:
        return Catalog(db, create=create)
    except CatalogError as e:
        raise typer.BadParameter(str(e), param_hint="--db") from None


def existing_catalog(db: str | Path):
    """The catalog at ``db`` for a CLI command that works on one made by ingest (:func:`open_catalog`)."""
    return open_catalog(db, create=False)
