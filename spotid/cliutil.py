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


def set_threads(n: int | None) -> int:
    """Give torch and OpenCV ``n`` CPU threads; ``None`` or 0 means all cores, the default of every
    stage's ``--threads`` (detect, identify, process): the cores this process may run on, capped by
    OMP_NUM_THREADS when set (a shared machine or a batch job limiting it). Returns the number used."""
    import os

    if not n or n < 0:
        try:
            n = len(os.sched_getaffinity(0))   # taskset/cgroup cpusets, unlike os.cpu_count()
        except AttributeError:  # pragma: no cover - macOS, Windows
            n = os.cpu_count() or 1
        omp = os.environ.get("OMP_NUM_THREADS", "")
        if omp.isdigit() and int(omp) > 0:
            n = min(n, int(omp))
    import cv2
    import torch

    torch.set_num_threads(n)
    cv2.setNumThreads(n)
    return n
