"""A candidate model against the catalog's active one, on the same held-out data (``spotid models use``).

Figures in two cards are rarely on the same data, so they are computed here for both models:

- **classifier**: the catalog's reviewed crops (:func:`spotid.export.training_crops.reviewed_crops`) that
  neither model trained on (a card written by ``spotid train classifier --db`` from this catalog lists its
  ``review.train_detections``), labelled as ``spotid detect`` labels a box
  (:func:`spotid.train.classifier_review.evaluate_review`); the score is the balanced accuracy of
  leopard recall and "not a leopard" rejected.
- **embedder**: the catalog's confirmed sightings (:func:`spotid.train.common.catalog_samples`) of
  individuals neither card trained on (``training_data.catalog.train_individuals``); the score is the
  encounter-rule re-ID top-1 (:func:`spotid.train.common.reid_metrics`).

Any kind: a candidate whose card holds a NaN metric counts as worse (it was never measured).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Comparison:
    kind: str
    new_version: str
    current_version: str
    data: str = ""                      # what both were measured on, for people
    new: dict | None = None             # figures of the candidate (None: not measured here)
    current: dict | None = None
    score: str = ""                     # the key compared
    worse: bool | None = None           # None: no common data to tell
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("kind", "new_version", "current_version", "data", "new", "current",
                                               "score", "worse", "notes")}


def nan_metrics(obj, prefix: str = "") -> list[str]:
    """Paths of the NaN numbers in a card's ``metrics`` (nested dicts and lists)."""
    if isinstance(obj, float) and math.isnan(obj):
        return [prefix or "metrics"]
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in nan_metrics(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in nan_metrics(v, f"{prefix}[{i}]")]
    return []


def _same_catalog(card, db: Path, key: str) -> bool:
    where = (card.get(key) or {}).get("catalog")
    return bool(where) and Path(where).resolve() == db.resolve()


def _classifier(cmp: Comparison, new, current, db: Path) -> None:
    from spotid.catalog import Catalog
    from spotid.export.training_crops import reviewed_crops
    from spotid.train.classifier_review import MIN_HELDOUT_CROPS, evaluate_review

    trained: set[int] = set()
    for card in (new, current):
        if _same_catalog(card, db, "review"):
            trained |= set(card.get("review", {}).get("train_detections", []))
    with Catalog(db, create=False) as cat:
        crops = [c for c in reviewed_crops(cat) if c.detection_id not in trained]
    cmp.score = "balanced_accuracy"
    cmp.data = (f"{len(crops)} reviewed crops of {db.name} neither model trained on "
                f"({sum(c.label == 'leopard' for c in crops)} leopard, {sum(c.label == 'other' for c in crops)} "
                "not a leopard)")
    if len(crops) < MIN_HELDOUT_CROPS:
        cmp.notes.append(f"fewer than {MIN_HELDOUT_CROPS} reviewed crops neither model trained on: not compared "
                         "(review more sightings)")
        return
    cmp.new = evaluate_review(new.folder, crops, db)
    cmp.current = evaluate_review(current.folder, crops, db)
    for m in (cmp.new, cmp.current):
        m.pop("detections", None)
    a, b = cmp.new["balanced_accuracy"], cmp.current["balanced_accuracy"]
    cmp.worse = bool(a < b - 1e-9) if math.isfinite(a) and math.isfinite(b) else None


def _embedder(cmp: Comparison, new, current, db: Path) -> None:
    import cv2

    from spotid.identify.embedder import Embedder
    from spotid.train.common import MIN_HELDOUT_QUERIES, catalog_samples, heldout_queries, reid_metrics

    trained: set[str] = set()
    for card in (new, current):
        trained |= set(((card.get("training_data") or {}).get("catalog") or {}).get("train_individuals", []))
    samples = [s for s in catalog_samples(db) if s.individual not in trained]
    cmp.score = "top1"
    cmp.data = (f"{len(samples)} confirmed crops of {len({s.individual for s in samples})} individuals of {db.name} "
                "neither model trained on")
    if heldout_queries(samples) < MIN_HELDOUT_QUERIES:
        cmp.notes.append(f"fewer than {MIN_HELDOUT_QUERIES} re-ID queries among them: not compared "
                         "(confirm more sightings in review)")
        return
    imgs = [cv2.cvtColor(cv2.imread(s.path), cv2.COLOR_BGR2RGB) for s in samples]   # as identify reads crops
    figs = []
    for card in (new, current):
        emb = Embedder(card.folder)(imgs)
        figs.append(reid_metrics(np.asarray(emb), [s.individual for s in samples], [s.flank for s in samples],
                                 [s.encounter for s in samples]))
    cmp.new, cmp.current = figs
    a, b = cmp.new["top1"], cmp.current["top1"]
    cmp.worse = bool(a < b - 1e-9) if math.isfinite(a) and math.isfinite(b) else None


def compare_models(new, current, db: str | Path) -> Comparison:
    """``new`` and ``current``: :class:`~spotid.modelstore.ModelCard` of one kind; ``db`` the catalog."""
    db = Path(db)
    cmp = Comparison(new.kind, new.version, current.version)
    nans = nan_metrics(new.get("metrics") or {})
    if new.version == current.version:
        cmp.notes.append("the candidate is the active model")
        return cmp
    if new.kind == "classifier" and new.get("arch") == current.get("arch") == "efficientnet_lite0-linear":
        _classifier(cmp, new, current, db)
    elif new.kind == "embedder":
        _embedder(cmp, new, current, db)
    else:
        cmp.notes.append(f"no common held-out data for {new.kind} models in a catalog: compare the cards' figures")
    if nans:
        cmp.worse = True
        cmp.notes.append(f"its card's held-out metrics are NaN ({', '.join(nans[:4])}): it was never measured")
    return cmp
