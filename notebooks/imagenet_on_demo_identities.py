"""Exploration (2026-12-07): can the backbone's own ImageNet head tell the demo's false identities from leopards?

    python notebooks/imagenet_on_demo_identities.py /tmp/ct26 /tmp/ct39

Reads the catalogs ``benchmarks/census_truth.py --out DIR`` left (``seedN/demo.db``, ``seedN/card/truth.json``).
For every identity the census counted, it decodes the identity's boxes, runs the leopard classifier's backbone,
and averages ImageNet's probabilities over the boxes: the spotted-cat mass (leopard, snow leopard, jaguar,
cheetah) and the animal mass (ImageNet classes 0-397). It prints the identities on no leopard (a rendered
animal or scenery the classifier called leopard) and how many identities of each kind a floor on either mass
would remove.

Answer on held-out seeds 26-50 (docs/results.md, 2026-12-07 late): no. The 15 false identities are objects to
ImageNet (fences, benches, curtains; spotted-cat mass <= 0.011), but so are most rendered leopards (189 of 231
under 0.5 spotted-cat mass); an animal-mass floor of 0.3 removes 11 false identities and 29 leopard ones. On real
photos the same head puts spotted-cat mass > 0.5 on 72 of 73 leopard boxes: the renders, not the head, fail.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SPOTTED = [288, 289, 290, 293]
ANIMALS = slice(0, 398)


def identities(seed_dir: Path, cc) -> list[dict]:
    from spotid.catalog import Catalog
    from spotid.catalog.tables import sightings
    from spotid.detect.builtin import decode_reduced
    from spotid.synth.truth import truth_boxes
    from spotid.types import Detection
    from spotid.workflow.truth import read_truth

    card = seed_dir / "card"
    _, _, truth = read_truth(card)
    with Catalog(seed_dir / "demo.db", create=False) as cat:
        boxes = truth_boxes(cat, truth, card, min_iou=0.1)
        counted = sightings.assigned_with_flank(cat, ("auto", "confirmed"))
        det = {int(r["id"]): r for r in cat.query(
            "SELECT d.id, d.conf, d.x, d.y, d.w, d.h, d.label_conf, m.path FROM detections d "
            "JOIN media m ON m.id = d.media_id")}
    by: dict[int, list[int]] = {}
    for r in counted:
        by.setdefault(int(r["individual_id"]), []).append(int(r["detection_id"]))
    out = []
    for ind, ds in by.items():
        crops = []
        for d in ds:
            r = det[d]
            img = decode_reduced(r["path"], 1024).image
            crops += cc._crops(img, [Detection(1, r["conf"], (r["x"], r["y"], r["w"], r["h"]))])
        with torch.inference_mode():
            p = cc.model.imagenet_probs(cc.model.features(cc._tensor(crops))).numpy().mean(0)
        out.append({"seed": seed_dir.name, "individual": ind, "leopard": any(d in boxes for d in ds),
                    "spotted": float(p[SPOTTED].sum()), "animal": float(p[ANIMALS].sum()),
                    "top": [int(i) for i in np.argsort(-p)[:3]]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", type=Path, nargs="+", help="census_truth.py --out folder(s)")
    args = ap.parse_args()
    from spotid.detect.classifier import CropClassifier

    cc = CropClassifier()
    rows = [r for d in args.dirs for s in sorted(d.glob("seed*")) if (s / "demo.db").is_file()
            for r in identities(s, cc)]
    if not rows:
        raise SystemExit("no seedN/demo.db found: run benchmarks/census_truth.py --out DIR first")
    for r in rows:
        if not r["leopard"]:
            print(f"{r['seed']} identity {r['individual']}: no leopard; spotted-cat {r['spotted']:.3f}, "
                  f"animal {r['animal']:.2f}, ImageNet top {r['top']}")
    leo = np.array([r["leopard"] for r in rows])
    for key in ("spotted", "animal"):
        v = np.array([r[key] for r in rows])
        for t in (0.1, 0.3, 0.5):
            print(f"{key} mass < {t}: removes {int((v[leo] < t).sum())} of {int(leo.sum())} leopard identities, "
                  f"{int((v[~leo] < t).sum())} of {int((~leo).sum())} on no leopard")


if __name__ == "__main__":
    main()
