"""Review decisions as training labels (``spotid export training-crops``, ``spotid train classifier --db``).

A sighting counts when its state comes from a person: the latest live (not undone) decision on it is

=================  ===============  =========================================================================
action             sighting status  labels
=================  ===============  =========================================================================
``confirm``/``new`` ``confirmed``    leopard; its flank (left/right, as the reviewer set it); its identity
                                    (the individual, merges followed)
``unusable``       ``unusable``     leopard (a leopard whose coat cannot be read); no flank, no identity
``not_leopard``    ``rejected``     other (the box holds another animal, a person or nothing)
=================  ===============  =========================================================================

``reject`` (a wrong match, the animal may still be a leopard) and ``skip`` say nothing about the crop. A
sighting whose status no longer matches its decision (a later identify run or merge changed it) is left out.
Sightings confirmed by a merge keep the decision that confirmed them.

Folders written by :func:`export_training_crops` (crops copied from ``crops.crop_path``, identify's crop
cache; the file name is ``det<detection id>.jpg``)::

    OUT/leopard-other/{leopard,other}/det123.jpg
    OUT/flank/{left,right}/det123.jpg
    OUT/identity/<individual>/{left,right}/det123.jpg      (the layout of ``spotid train embedder --data``)
    OUT/manifest.csv   one row per crop: path, detection_id, sighting_id, media, box, decision, label,
                       flank, individual, encounter, reviewer, decided_at
"""
from __future__ import annotations

import csv
import io
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from spotid.catalog import Catalog
from spotid.catalog.tables import individuals as individuals_table  # (export_training_crops counts "individuals")
from spotid.catalog.tables import reviews
from spotid.util import atomic_write_text

log = logging.getLogger(__name__)

DECISION_STATUS = {"confirm": "confirmed", "new": "confirmed", "unusable": "unusable", "not_leopard": "rejected"}


@dataclass(frozen=True)
class ReviewedCrop:
    """One crop a person labelled. ``box`` normalised ``(x, y, w, h)`` in ``frame_path``; ``encounter``
    groups frames of one burst (``seq<id>``, else ``media<id>``): held-out splits never cut through it."""

    detection_id: int
    sighting_id: int
    crop_path: str
    frame_path: str
    box: tuple[float, float, float, float]
    det_conf: float
    decision: str            # confirm | new | unusable | not_leopard
    label: str               # leopard | other
    flank: str | None        # left | right for confirmed sightings, else None
    individual: str | None   # the individual's name (merges followed) for confirmed sightings
    encounter: str
    reviewer: str
    decided_at: str


def _current_individual(cat: Catalog, iid: int | None) -> str | None:
    seen = set()
    while iid is not None and iid not in seen:
        seen.add(iid)
        r = individuals_table.get(cat, iid)
        if r is None:
            return None
        if r.merged_into is None:
            return r.name
        iid = int(r.merged_into)
    return None


def reviewed_crops(cat: Catalog) -> list[ReviewedCrop]:
    """Every sighting whose current state a person decided (see the module docstring), oldest first.
    Crops whose JPEG is missing are kept (``crop_path`` may be ''): callers that need pixels check."""
    rows = reviews.labelling_decisions(cat)
    out = []
    for r in rows:
        if DECISION_STATUS[r["action"]] != r["status"]:
            continue   # changed outside review since: the decision no longer describes the sighting
        confirmed = r["status"] == "confirmed"
        flank = r["flank"] if confirmed and r["flank"] in ("left", "right") else None
        out.append(ReviewedCrop(
            int(r["did"]), int(r["sid"]), r["crop_path"] or "", r["path"],
            (float(r["x"]), float(r["y"]), float(r["w"]), float(r["h"])), float(r["conf"]),
            r["action"], "other" if r["action"] == "not_leopard" else "leopard", flank,
            _current_individual(cat, r["individual_id"]) if confirmed else None,
            f"seq{r['sequence_id']}" if r["sequence_id"] is not None else f"media{r['mid']}",
            r["reviewer"], r["decided_at"]))
    return out


def crop_file(crop_path: str, catalog_path: str | Path) -> Path | None:
    """The crop JPEG on disk: ``crop_path`` as stored, or relative to the catalog's folder (a moved
    catalog, as the review page accepts); None when neither exists."""
    if not crop_path:
        return None
    p = Path(crop_path)
    if p.exists():
        return p
    q = Path(catalog_path).resolve().parent / p
    return q if q.exists() else None


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(name: str) -> str:
    return _SAFE.sub("_", name).strip("._") or "unnamed"


@dataclass(frozen=True)
class ExportResult:
    out: Path
    crops: int                   # rows in the manifest
    by_folder: dict[str, int]    # "leopard-other/leopard": n, "flank/left": n, "identity": n (files), ...
    individuals: int
    missing: list[int]           # detection ids whose crop JPEG was not found (not exported)


MANIFEST_COLUMNS = ("path", "detection_id", "sighting_id", "media_path", "box", "decision", "label", "flank",
                    "individual", "encounter", "reviewer", "decided_at")


def export_training_crops(cat: Catalog, out: str | Path) -> ExportResult:
    """Write the folders and ``manifest.csv`` of the module docstring under ``out`` (created; files of
    an earlier export are overwritten, nothing else is deleted). Raises ValueError when the catalog holds
    no reviewed crop (the message says what to review)."""
    crops = reviewed_crops(cat)
    if not crops:
        raise ValueError("no review decision to export: confirm, mark unusable or 'not a leopard' sightings "
                         "first (spotid review --db ...)")
    out = Path(out)
    by: dict[str, int] = {}
    missing: list[int] = []
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MANIFEST_COLUMNS)
    individuals = set()
    for c in crops:
        src = crop_file(c.crop_path, cat.path)
        if src is None:
            missing.append(c.detection_id)
            continue
        name = f"det{c.detection_id}.jpg"
        targets = [f"leopard-other/{c.label}"]
        if c.flank:
            targets.append(f"flank/{c.flank}")
        if c.flank and c.individual:
            targets.append(f"identity/{_safe(c.individual)}/{c.flank}")
            individuals.add((c.individual, c.flank))
        for t in targets:
            d = out / t
            d.mkdir(parents=True, exist_ok=True)
            tmp = d / f".{name}.tmp"
            shutil.copyfile(src, tmp)
            os.replace(tmp, d / name)
            key = "identity" if t.startswith("identity/") else t
            by[key] = by.get(key, 0) + 1
        w.writerow([f"leopard-other/{c.label}/{name}", c.detection_id, c.sighting_id, c.frame_path,
                    " ".join(f"{v:.6f}" for v in c.box), c.decision, c.label, c.flank or "", c.individual or "",
                    c.encounter, c.reviewer, c.decided_at])
    if missing:
        log.warning("%d reviewed crops have no crop JPEG (detections %s...): re-run spotid identify --db to cut "
                    "them again", len(missing), missing[:5])
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "manifest.csv", buf.getvalue())
    return ExportResult(out, len(crops) - len(missing), by, len(individuals), missing)

