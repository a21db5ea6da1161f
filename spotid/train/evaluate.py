"""Embedding-only and flank evaluation of a model folder on labelled folders (used by the model
cards, ``benchmarks/embedder.py`` and ``models/*/reproduce.sh``).

The embedder's card lists the individuals it was trained on; :func:`evaluate_embedder` reports the
figure on individuals it never saw (the honest one) and on the whole set (partly trained on).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from spotid.train.common import load_images, reid_metrics, scan_identity_dirs


def evaluate_embedder(model: str | Path | None, data: Sequence[str | Path], *, cache_dir: str | Path | None = None,
                      flank_regex: str = "(?i)(left|right)", encounter_regex: str = r"^(.+)_[^_]+$") -> dict:
    """Leave-one-out, same flank, encounter rule (see ``reid_metrics``), embedding only.

    Returns ``{"heldout": metrics on individuals not in the card's train lists, "trained": on the
    trained individuals, "full": all, "model": version}``. Flanks come from sub-folders or file names
    (the labels), not from the flank classifier, so this isolates the embedder.
    """
    from spotid.identify.embedder import Embedder

    emb = Embedder(model)
    samples = [s for s in scan_identity_dirs(data, flank_regex=flank_regex, encounter_regex=encounter_regex)
               if s.flank in ("left", "right")]
    trained = set()
    for d in (emb.card.get("training_data") or {}).values():
        trained |= set(d.get("train_individuals", []))
    h, w = emb.input_size
    imgs, ok = load_images([s.path for s in samples], (h, w), cache_dir=cache_dir, show_progress=False)
    keep = [i for i, good in enumerate(ok) if good]
    samples = [samples[i] for i in keep]
    arrays = [imgs[i].permute(1, 2, 0).numpy() for i in keep]
    vec = emb(arrays)

    def metrics(mask: np.ndarray) -> dict:
        idx = np.flatnonzero(mask)
        return reid_metrics(vec[idx], [samples[i].individual for i in idx], [samples[i].flank for i in idx],
                            [samples[i].encounter for i in idx])

    is_trained = np.array([s.individual in trained for s in samples], dtype=bool)
    return {"model": emb.version, "heldout": metrics(~is_trained), "trained": metrics(is_trained),
            "full": metrics(np.ones(len(samples), dtype=bool)), "images": len(samples),
            "heldout_individuals": len({s.individual for s, t in zip(samples, is_trained) if not t})}


def evaluate_flank(model: str | Path | None, data: Sequence[str | Path], *, heldout_only: bool = True,
                   cache_dir: str | Path | None = None, flank_regex: str = "(?i)(left|right)") -> dict:
    """Flank accuracy of a flank model folder on labelled folders (held-out individuals by default)."""
    from spotid.identify.flank import CLASSES, FlankClassifier
    from spotid.train.flank import flank_metrics

    clf = FlankClassifier(model)
    held = set()
    for d in (clf.card.get("training_data") or {}).values():
        held |= set(d.get("heldout_individuals", []))
    samples = [s for s in scan_identity_dirs(data, flank_regex=flank_regex) if s.flank in CLASSES]
    if heldout_only:
        samples = [s for s in samples if s.individual in held or not any(
            s.source == src for src in (clf.card.get("training_data") or {}))]
    h, w = clf.input_size
    imgs, ok = load_images([s.path for s in samples], (h, w), cache_dir=cache_dir, show_progress=False)
    keep = [i for i, good in enumerate(ok) if good]
    probs = clf.probabilities([imgs[i].permute(1, 2, 0).numpy() for i in keep])
    labels = [CLASSES.index(samples[i].flank) for i in keep]
    return {"model": clf.version, **flank_metrics(probs, labels, clf.threshold)}
