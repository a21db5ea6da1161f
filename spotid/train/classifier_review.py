"""Retrain the leopard / other classifier head from review decisions (``spotid train classifier --db``).

The crops people labelled (:func:`spotid.export.training_crops.reviewed_crops`: confirmed and unusable =
leopard, "not a leopard" = other) join the shipped recipe's sources (:func:`classifier.train_sources`, from
the feature cache) as one more source, ``review``, weighted ``review_weight`` times its share. A seeded
share of the review crops (``heldout_fraction`` per label) is held out, by group, so no individual or burst
is on both sides:

- a confirmed leopard's group is its individual (all its bursts);
- an unusable leopard's and a "not a leopard" crop's group is its burst (``seq<id>``, else the frame).

The held-out review crops are classified the way ``spotid detect`` classifies a box
(:meth:`CropClassifier.classify_file` on the frame, the detection's own confidence), by the new head and by
the parent (the catalog's active classifier), so the card holds both on the same crops. A run whose
held-out set is too small, or whose figures are NaN, writes nothing (:class:`TooLittleData`).
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spotid.train.classifier import CascadeTrainConfig, _Sink, export_cascade, load_features, source_file

log = logging.getLogger(__name__)

MIN_HELDOUT_CROPS = 4
MIN_HELDOUT_GROUPS = 2


class TooLittleData(ValueError):
    """The review decisions do not give a held-out set to measure a new model on; names the fix."""


@dataclass(frozen=True)
class ReviewSplit:
    train: list            # ReviewedCrop
    heldout: list
    groups_heldout: list[str]


def crop_group(c) -> str:
    """The unit a held-out split keeps whole (see the module docstring)."""
    return f"individual:{c.individual}" if c.individual else f"burst:{c.encounter}"


def split_review(crops: list, fraction: float, seed: int) -> ReviewSplit:
    """Per label, groups in the order of the hash of (seed, group) are held out until they hold
    ``fraction`` of that label's crops; a label with 2 or more groups keeps at least one on each side."""
    held: set[str] = set()
    for label in ("leopard", "other"):
        mine = [c for c in crops if c.label == label]
        size: dict[str, int] = {}
        for c in mine:
            size[crop_group(c)] = size.get(crop_group(c), 0) + 1
        if len(size) < 2:
            continue
        ranked = sorted(size, key=lambda g: hashlib.sha1(f"{seed}:{g}".encode()).hexdigest())
        n = 0
        for g in ranked[:-1]:
            held.add(g)
            n += size[g]
            if n >= fraction * len(mine):
                break
    return ReviewSplit([c for c in crops if crop_group(c) not in held],
                       [c for c in crops if crop_group(c) in held], sorted(held))


def _pixels(c, catalog_path) -> tuple[str, tuple[float, float, float, float]] | None:
    """(image file, normalised box) of a reviewed crop: the frame and the detection box, as detect sees
    it; when the frame is gone, identify's crop JPEG with the box recovered from its padding."""
    from spotid.export.training_crops import crop_file

    if c.frame_path and os.path.exists(c.frame_path):
        return c.frame_path, c.box
    f = crop_file(c.crop_path, catalog_path)
    if f is None:
        return None
    pad = 0.1   # identify's default crop padding per side (IdentifyConfig.pad)
    inner = 1 / (1 + 2 * pad)
    return str(f), ((1 - inner) / 2, (1 - inner) / 2, inner, inner)


def review_features(cfg: CascadeTrainConfig, crops: list, catalog_path, model=None) -> dict:
    """Backbone features of the review crops, four views each, in :func:`load_features`' layout."""
    import torch

    from spotid.detect.builtin import decode_reduced
    from spotid.detect.classifier import build_leopard_classifier

    if model is None:
        torch.manual_seed(cfg.seed)
        model = build_leopard_classifier(prior=cfg.prior)
    sink = _Sink(model, cfg, "review")
    for c in crops:
        px = _pixels(c, catalog_path)
        img = decode_reduced(px[0], 1280).image if px else None
        if img is None:
            log.warning("review crop of detection %d: no readable frame or crop JPEG, left out", c.detection_id)
            continue
        sink.add(img, px[1], c.label, crop_group(c))
    tmp = Path(cfg.cache) / "review.tmp.npz"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    sink.save(tmp)
    z = np.load(tmp)
    out = {k: z[k] for k in z.files}
    out["feats"] = out["feats"].astype(np.float32)
    tmp.unlink()
    return out


def evaluate_review(model_dir: str | Path, crops: list, catalog_path) -> dict:
    """How the classifier at ``model_dir`` labels held-out review crops, as ``spotid detect`` would
    (frame + box, the detection's confidence): per true label the count and how many came out
    ``leopard`` and their mean P(leopard); for the leopards also how many are below the card's founding
    floor (``below_found_floor``, None without one: such a leopard can match a known individual but found
    none); ``leopard_recall``, ``other_rejected`` (None without crops of that label) and their mean
    ``balanced_accuracy`` (NaN when neither is defined)."""
    from spotid.detect.classifier import CropClassifier
    from spotid.types import Detection

    clf = CropClassifier(model_dir=model_dir)
    counts = {"leopard": [0, 0], "other": [0, 0]}
    p_leopard: dict[str, list[float]] = {"leopard": [], "other": []}
    used = []
    for c in crops:
        px = _pixels(c, catalog_path)
        if px is None:
            continue
        out = clf.classify_file(px[0], [Detection(1, c.det_conf, px[1])])
        if not out or not out[0].classifications:
            continue
        counts[c.label][0] += 1
        counts[c.label][1] += int(out[0].label == "leopard")
        p_leopard[c.label].append(dict(out[0].classifications).get("leopard", 0.0))
        used.append(c.detection_id)
    rec = counts["leopard"][1] / counts["leopard"][0] if counts["leopard"][0] else None
    rej = 1 - counts["other"][1] / counts["other"][0] if counts["other"][0] else None
    defined = [v for v in (rec, rej) if v is not None]
    def side(label):
        ps = p_leopard[label]
        return {"n": counts[label][0], "labelled_leopard": counts[label][1],
                "mean_p_leopard": round(float(np.mean(ps)), 4) if ps else None}

    floor = clf.found_min_leopard_p
    leopards = {**side("leopard"),
                "below_found_floor": None if floor is None else sum(p < floor for p in p_leopard["leopard"])}
    return {"model": clf.version, "leopard": leopards, "other": side("other"),
            "leopard_recall": rec, "other_rejected": rej,
            "balanced_accuracy": sum(defined) / len(defined) if defined else math.nan, "detections": used}


def _finite(m: dict) -> bool:
    return all(v is None or (isinstance(v, (int, float)) and math.isfinite(v))
               for k, v in m.items() if k in ("leopard_recall", "other_rejected", "balanced_accuracy"))


def heldout_sources(cfg: CascadeTrainConfig, state_dirs: dict[str, Path]) -> dict:
    """The recipe's held-out sources (``cfg.holdout`` and ``voc-test``) found in the feature cache,
    classified by each head in ``state_dirs`` (name -> model folder) on the reference boxes' base view:
    ``{source: {name: {true label: {predicted: n}}}}`` (features only, without the ImageNet veto)."""
    import torch

    from spotid.train.classifier import confusion

    names = [s for s in (*cfg.holdout, "voc-test") if source_file(cfg, s).exists()]
    if not names:
        return {}
    feats = load_features(cfg, names)
    out: dict = {}
    for s in names:
        for name, folder in state_dirs.items():
            from spotid.modelstore import load_card

            card = load_card(folder)
            state = {k: v.float() for k, v in torch.load(card.weights_path, map_location="cpu", weights_only=True).items()}
            if "head.weight" not in state:
                continue
            out.setdefault(s, {})[name] = confusion(state, feats[s])
    return out


def train_classifier_from_review(cfg: CascadeTrainConfig, db: str | Path, out: str | Path, *,
                                 review_weight: float = 3.0, heldout_fraction: float = 0.3,
                                 parent: str | Path | None = None, found_min_leopard_p: float | None = None) -> dict:
    """Fit the head on the recipe's sources plus the catalog's review crops and write the model folder
    ``out`` (replaced only when the run succeeds). ``parent``: the classifier to compare with (default:
    the catalog's active one). ``found_min_leopard_p``: identify's founding floor for the new card (default:
    the parent card's; the held-out figures count the confirmed leopards below it). Raises
    :class:`TooLittleData` (nothing written) when the review decisions give no usable held-out set or the
    figures are not finite."""
    from spotid.catalog import Catalog
    from spotid.export.training_crops import reviewed_crops
    from spotid.modelstore import resolve

    db = Path(db)
    with Catalog(db, create=False) as cat:
        crops = [c for c in reviewed_crops(cat) if _pixels(c, db) is not None]
        parent_card = resolve("classifier", parent, catalog=None if parent else cat)
    need = int(math.ceil(MIN_HELDOUT_CROPS / heldout_fraction))
    hint = (f"confirm (or mark 'not a leopard') at least {need} sightings of {2 * MIN_HELDOUT_GROUPS} or more "
            f"individuals or bursts in review (spotid review --db {db}), then retrain")
    if not crops:
        raise TooLittleData(f"{db} holds no reviewed crop with a readable frame or crop JPEG: {hint}")
    split = split_review(crops, heldout_fraction, cfg.seed)
    if len(split.heldout) < MIN_HELDOUT_CROPS or len(split.groups_heldout) < MIN_HELDOUT_GROUPS or not split.train:
        raise TooLittleData(
            f"too little review data to measure a new classifier: {len(crops)} reviewed crops; held out "
            f"{len(split.heldout)} crops of {len(split.groups_heldout)} individuals/bursts (need at least "
            f"{MIN_HELDOUT_CROPS} of {MIN_HELDOUT_GROUPS}), {len(split.train)} left to train on: {hint}")
    review = review_features(cfg, split.train, db)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    per_label = {lab: sum(c.label == lab for c in split.train) for lab in ("leopard", "other")}
    heldout_ids = sorted(c.detection_id for c in split.heldout)
    if found_min_leopard_p is None:
        found_min_leopard_p = parent_card.get("cascade", {}).get("found_min_leopard_p")
    try:
        summary = export_cascade(cfg, tmp, extra={"review": review}, boost={"review": review_weight},
                                 found_min_leopard_p=found_min_leopard_p, card_extra={
            "parent": parent_card.version,
            "review": {"catalog": str(db.resolve()), "train_crops": per_label, "review_weight": review_weight,
                       "heldout_fraction": heldout_fraction, "seed": cfg.seed,
                       "heldout_detections": heldout_ids, "heldout_groups": split.groups_heldout,
                       "train_detections": sorted(c.detection_id for c in split.train),
                       "split": "by individual (confirmed) or burst (unusable, not a leopard), seeded hash"}})
        new = evaluate_review(tmp, split.heldout, db)
        old = evaluate_review(parent_card.folder, split.heldout, db)
        if not _finite(new) or not _finite(old):
            raise TooLittleData(f"the held-out figures are not finite (new {new['balanced_accuracy']}, parent "
                                f"{old['balanced_accuracy']}): {hint}")
        sources = heldout_sources(cfg, {"new": tmp, "parent": parent_card.folder})
        metrics = {"review_heldout": {k: v for k, v in new.items() if k != "detections"},
                   "review_heldout_parent": {k: v for k, v in old.items() if k != "detections"},
                   "heldout_sources_features": sources}
        _set_metrics(tmp, metrics)
        if out.exists():
            if not (out / "card.json").exists():
                raise TooLittleData(f"{out} exists and is no model folder: pass another --out")
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {**summary, "folder": str(out), "parent": parent_card.version, "review_train": per_label,
            "heldout": {"crops": len(split.heldout), "groups": len(split.groups_heldout)},
            "new": metrics["review_heldout"], "before": metrics["review_heldout_parent"],
            "heldout_sources": sources}


def _set_metrics(folder: Path, metrics: dict) -> None:
    """Merge ``metrics`` into the card's ``metrics`` (the weights, hence the sha256, are unchanged)."""
    import json

    from spotid.util import atomic_write_json

    card = json.loads((folder / "card.json").read_text())
    card["metrics"] = {**card.get("metrics", {}), **metrics}
    atomic_write_json(folder / "card.json", card, indent=2)

