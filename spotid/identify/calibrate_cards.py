"""Decision-model training rows from synthetic cards, matched exactly the way ``spotid identify`` does.

The folder sets that ``spotid train matcher DIR`` reads are crops without a detection box: their
keypoints include the padding, no static-scenery filter applies and every query is one frame. On a
card, identify crops detector boxes, keeps only keypoints inside the box, drops scenery that stays
put in one camera's frame and pools the frames of a burst. The chance inlier count between two
different animals is lower there, so a decision model fitted on folders alone is too strict for
identify: it demands ~14 inliers when a competitor has 5, and splits one new leopard into several.

Rows here come from a synthetic card (``spotid synth card``, which knows every leopard) run through
ingest and the shipped detector into a scratch catalog, then through :class:`Identifier`'s own crop,
feature and matcher code:

- per flank (as the flank classifier says), every leopard crop is a gallery item labelled with its
  true individual: a back or front view classified as a flank still shows that animal's coat, and a
  box cut through a leopard (IoU >= 0.1 with its truth box) is still that leopard; a detection
  matching no truth box (a false positive) is an individual of its own;
- each burst (sequence, flank) is a query against every crop outside the burst, its frames pooled by
  :func:`spotid.identify.match.pool_burst` as in identify;
- rows = the burst's ``top`` ranked individuals with (cos, inliers, cos_other, inliers_other) and
  whether it is the burst's animal, under ``splits`` seeded open-set splits (``unknown_fraction`` of
  the individuals out of the gallery) plus the full gallery. A burst whose animal was photographed
  nowhere else is a natural "new individual" query.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spotid.catalog import Catalog
from spotid.catalog.tables import detections

log = logging.getLogger(__name__)


@dataclass
class CardRows:
    """Decision rows ``x`` ``(N, 4)`` raw [cos, inliers, cos_other, inliers_other], ``y`` ``(N,)``
    correct, and what they came from."""

    x: np.ndarray
    y: np.ndarray
    bursts: int
    crops: int
    individuals: int

    def meta(self) -> dict:
        return {"rows": int(len(self.y)), "correct": int(self.y.sum()), "bursts": self.bursts, "crops": self.crops,
                "individuals": self.individuals}


def card_catalog(card: str | Path, work: str | Path) -> Path:
    """Ingest and detect a synth card into ``work/<card name>.db`` (reused when it already holds
    detections). Raises when ``card`` has no ``truth.json`` (not a synth card)."""
    from spotid.config import resolve_config
    from spotid.detect.config import DetectConfig
    from spotid.detect.detector import make_detector
    from spotid.detect.run import detect_catalog
    from spotid.ingest.cardset import ingest_card_set

    card = Path(card)
    if not (card / "truth.json").is_file():
        raise FileNotFoundError(f"{card} has no truth.json: pass a card made by `spotid synth card`")
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"{card.resolve().name}.db"
    if db.exists():
        with Catalog(db, create=False) as cat:
            if detections.count(cat):
                return db
    with Catalog(db) as cat:
        ingest_card_set(cat, card)
        dcfg = resolve_config(DetectConfig)
        detect_catalog(make_detector(dcfg), cat, dcfg)
    return db


def card_decision_rows(identifier, cat: Catalog, card: str | Path, *, unknown_fraction: float = 0.25,
                       splits: int = 4, top: int = 3, seed: int = 1000) -> CardRows:
    """Decision rows of one card's catalog (see the module docstring). ``identifier`` is an
    :class:`spotid.identify.pipeline.Identifier` whose matcher carries the pairwise calibration that
    ranks crops; the catalog must hold no sightings (a scratch catalog from :func:`card_catalog`).
    ValueError for an identifier scoring with the fusion: these rows fit the calibration scorer, and the
    fusion's ALIKED features would be computed for every crop and never used."""
    import json

    if getattr(identifier.matcher, "fusion", None) is not None:
        raise ValueError("card decision rows fit the calibration scorer: build the Identifier with "
                         "IdentifyConfig(scorer='calibration') (spotid train matcher --card does)")

    from spotid.identify.bursts import group_bursts
    from spotid.identify.match import Gallery, pool_burst
    from spotid.synth.truth import truth_boxes

    card = Path(card)
    truth = json.loads((card / "truth.json").read_text(encoding="utf-8"))
    boxes = truth_boxes(cat, truth, card, min_iou=0.1)
    rows = identifier.crop_rows(cat)
    rng = np.random.default_rng(seed)
    xs: list = []
    ys: list = []
    n_bursts = n_crops = 0
    animals = set()
    for flank in ("left", "right"):
        fr = [r for r in rows if not r.failed and r.flank == flank]
        if len(fr) < 2:
            continue
        label = {}
        for r in fr:
            b = boxes.get(r.detection_id)
            label[r.detection_id] = ("ind", b["individual_id"]) if b is not None else ("fp", r.detection_id)
        animals.update(lab for lab in label.values() if lab[0] != "fp")
        groups = list(group_bursts(fr).values())
        burst_of = {r.detection_id: g for g, members in enumerate(groups) for r in members}
        owner = np.array([burst_of[r.detection_id] for r in fr])
        gal = Gallery(np.stack([r.embedding for r in fr]), [r.features for r in fr],
                      [label[r.detection_id] for r in fr], [r.detection_id for r in fr], [r.place for r in fr])
        evidence = {r.detection_id: identifier.matcher.evidence(r.embedding, r.features, gal,
                                                                 owner != burst_of[r.detection_id], r.place)
                    for r in fr}
        real = sorted({lab for lab in label.values() if lab[0] != "fp"}, key=str)
        n_bursts += len(groups)
        n_crops += len(fr)
        for k in range(splits + 1):
            out = set()
            if k:  # an open-set split: these animals are nobody's gallery
                out = {real[j] for j in rng.permutation(len(real))[: int(round(unknown_fraction * len(real)))]}
            for members in groups:
                truth_lab = label[members[0].detection_id]
                frames = [{ind: e for ind, e in evidence[m.detection_id].items() if ind not in out} for m in members]
                for ind, e, other in pool_burst(frames)[:top]:
                    xs.append((e.cos, e.inliers, other.cos if other is not None else 0.0,
                               other.inliers if other is not None else 0))
                    ys.append(ind == truth_lab and truth_lab[0] != "fp")
    x = np.array(xs, np.float64).reshape(-1, 4)
    return CardRows(x, np.array(ys, bool), n_bursts, n_crops, len(animals))


def cards_decision_rows(identifier, cards, work: str | Path | None = None) -> list[tuple[Path, CardRows]]:
    """:func:`card_decision_rows` of each synth card, each ingested and detected into a scratch catalog
    in ``work`` (reused between fits; a temporary folder when None)."""
    import tempfile

    tmp = tempfile.TemporaryDirectory(prefix="spotid-cards-") if work is None else None
    folder = Path(work) if work is not None else Path(tmp.name)
    try:
        out = []
        for c in cards:
            with Catalog(card_catalog(c, folder), create=False) as cat:
                out.append((Path(c), card_decision_rows(identifier, cat, c)))
        return out
    finally:
        if tmp is not None:
            tmp.cleanup()
