"""Command-line support shared by every stage's ``cli.py`` (typer lives here, not in the base modules).

Only command-line modules import this (``tests/test_layers.py`` checks it).

Exit codes of every command: 0 done (also when there was nothing new to do, e.g. a re-run); 1 the work ran
but its result failed a check (e.g. ``export camtrapdp --validate-with`` found the package invalid) or an
unexpected error; 2 a usage mistake, with a message naming the fix: bad option or input, a ``--db`` that is
not a spotid catalog, or a stage run before the one it needs (:func:`require`); 130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def catalog_errors() -> Iterator[None]:
    """Turn a :class:`~spotid.catalog.CatalogError` raised inside into a usage error on ``--db`` (exit 2),
    for code that opens the catalog itself (``spotid models use``)."""
    import typer

    from spotid.catalog import CatalogError

    try:
        yield
    except CatalogError as e:
        raise typer.BadParameter(str(e), param_hint="--db") from None


def open_catalog(db: str | Path, *, create: bool = True):
    """The catalog at ``db`` for a CLI command (``create``: a new file may be started, as ingest does);
    a file that is not a catalog, or a missing one when ``create`` is off, is a usage error on ``--db``
    whose message names the fix (typer.BadParameter). Check the command's other input first: a command
    that fails on it must not leave a new catalog behind."""
    from spotid.catalog import Catalog

    with catalog_errors():
        return Catalog(db, create=create)


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


def require(cat, stage: str, deployment: str | None = None) -> None:
    """Refuse (exit 2, on ``--db``) a stage run before the one it needs, naming the command to run first
    (:func:`spotid.catalog.missing_step`)."""
    import typer

    from spotid.catalog import missing_step

    why = missing_step(cat, stage, deployment)
    if why:
        raise typer.BadParameter(why, param_hint="--db")
