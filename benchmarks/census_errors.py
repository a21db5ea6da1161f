"""What the demo census's errors are made of, read from the catalogs `census_truth.py` left behind.

    python benchmarks/census_errors.py /tmp/spotid-bench-census [MORE_DIRS ...] [--seeds 26..50] [--json OUT] [--imagenet]

Each DIR is a ``census_truth.py --out`` folder (``seedN/demo.db`` and ``seedN/card/truth.json``, the
catalog as the shipped demo left it: founders accepted, nobody reviewing). Nothing is re-run; 25 surveys read in
about 15 s. ``--seeds A..B``: only those seeds. It prints:

- per survey: leopards photographed, those photographed on a left/right flank (the census counts flanks:
  an animal seen only from the front or back cannot be counted), the MNA, and whether the MNA is within
  10% of each (:func:`spotid.workflow.truth.within_10pct`, the demo's bar);
- **counted identities on a leopard and on no leopard** (another species or scenery the classifier
  called leopard) with the classifier's P(leopard) of each identity's best frame, and how many of each a
  founding floor on that probability would have removed (the trade-off behind "a new identity must be
  clearly a leopard");
- **leopards photographed but not counted**, with what happened to their boxes: labelled another
  class, flagged static, or set aside by identify (its reason);
- with ``--imagenet`` (decodes every counted box, a few minutes): what the classifier's backbone's own
  ImageNet head makes of each identity (its boxes' mean spotted-cat mass, leopard + snow leopard + jaguar +
  cheetah, and animal mass, classes 0-397) and how many identities of each kind a floor on either would
  remove. Asked on 2026-12-07 (docs/results.md): no floor helps, the rendered leopards score as low as the
  scenery; on real photos the spotted-cat mass is > 0.5 for 72 of 73 leopard boxes.

Synthetic truth only: the P(leopard) of rendered animals says nothing about real ones (see
models/classifier/README.md for the real figures).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FLOORS = (0.9, 0.95, 0.97, 0.98, 0.99, 0.995)
IMAGENET_FLOORS = (0.1, 0.3, 0.5)
IMAGENET_ANIMALS = slice(0, 398)   # ImageNet-1k classes 0-397 are animals


def imagenet_masses(cat, by_identity: dict[int, list[int]], classifier) -> dict[int, dict]:
    """Per identity, the mean over its boxes of the classifier backbone's ImageNet spotted-cat and animal
    mass; each frame decoded once."""
    from spotid.backbone import IMAGENET_SPOTTED_CATS
    from spotid.catalog.tables import detections
    from spotid.types import Detection

    wanted = {d for ds in by_identity.values() for d in ds}
    by_frame: dict[str, list] = {}
    for r in detections.boxes_with_frames(cat):
        if int(r["id"]) in wanted:
            by_frame.setdefault(r["path"], []).append(r)
    crop_of = {}
    for path, rows in by_frame.items():
        crops = classifier.file_crops(path, [Detection(1, 1.0, (r["x"], r["y"], r["w"], r["h"])) for r in rows])
        crop_of.update({int(r["id"]): c for r, c in zip(rows, crops)})
    out = {}
    for ind, ds in by_identity.items():
        p = classifier.imagenet([crop_of[d] for d in ds if d in crop_of])
        if len(p):   # an identity whose frames are all missing or broken is left out of the floors
            m = p.mean(0)
            out[ind] = {"spotted": float(m[list(IMAGENET_SPOTTED_CATS)].sum()),
                        "animal": float(m[IMAGENET_ANIMALS].sum())}
    return out


def survey(seed_dir: Path, classifier=None) -> dict:
    """One survey's identities (on a leopard or not, best P(leopard); with ``classifier``, the ImageNet
    masses of :func:`imagenet_masses`) and uncounted leopards (why)."""
    from spotid.catalog import Catalog
    from spotid.catalog.tables import sightings
    from spotid.census.census import Census
    from spotid.census.config import CensusConfig
    from spotid.synth.truth import truth_boxes
    from spotid.workflow.truth import read_truth, within_10pct

    card = seed_dir / "card"
    _, photographed, truth = read_truth(card)
    anns = [a for a in truth.get("annotations", []) if a.get("individual_id")]
    on_flank = {a["individual_id"] for a in anns if a.get("flank") in ("left", "right")}
    with Catalog(seed_dir / "demo.db", create=False) as cat:
        mna = Census(CensusConfig())(cat).mna
        boxes = truth_boxes(cat, truth, card, min_iou=0.1)
        det = {int(r["id"]): r for r in cat.query(
            "SELECT id, label, label_conf, static_fp FROM detections")}
        sig = {int(r["detection_id"]): r for r in cat.query(
            "SELECT detection_id, status, set_aside_reason FROM sightings")}
        counted = sightings.assigned_with_flank(cat, ("auto", "confirmed"))
        by_identity: dict[int, list[int]] = {}
        for r in counted:
            by_identity.setdefault(int(r["individual_id"]), []).append(int(r["detection_id"]))
        masses = imagenet_masses(cat, by_identity, classifier) if classifier is not None else {}
    # P(leopard) as identify's found_min_leopard_p reads it: the label's probability (counted boxes are leopards)
    identities = [{"leopard": any(d in boxes for d in ds), "best_p": max(det[d]["label_conf"] or 1.0 for d in ds),
                   "frames": len(ds), **masses.get(ind, {})} for ind, ds in by_identity.items()]
    counted_dets = {int(r["detection_id"]) for r in counted}
    per_animal: dict[str, list[int]] = {}
    for d, a in boxes.items():
        per_animal.setdefault(a["individual_id"], []).append(d)
    missed = {}
    for animal in sorted({a["individual_id"] for a in anns}):
        dets = per_animal.get(animal, [])
        if any(d in counted_dets for d in dets):
            continue
        why = Counter()
        for d in dets:
            if det[d]["label"] != "leopard":
                why[f"labelled {det[d]['label']}"] += 1
            elif det[d]["static_fp"]:
                why["flagged static"] += 1
            elif d in sig and sig[d]["set_aside_reason"]:
                why[sig[d]["set_aside_reason"]] += 1
            else:
                why[f"sighting {sig[d]['status'] if d in sig else 'none'}"] += 1
        missed[animal] = dict(why) if dets else {"no detection": 1}
    return {"seed": seed_dir.name, "photographed": photographed, "on_flank": len(on_flank), "mna": mna,
            "within": bool(within_10pct(mna, photographed)), "within_on_flank": bool(within_10pct(mna, len(on_flank))),
            "identities": identities, "missed": missed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", type=Path, nargs="+", help="census_truth.py --out folder(s)")
    ap.add_argument("--seeds", default=None, metavar="A..B", help="only the seeds A to B (default: every seedN found)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--imagenet", action="store_true",
                    help="also what the classifier backbone's ImageNet head makes of each identity (decodes its boxes)")
    args = ap.parse_args()
    try:
        lo, hi = (int(x) for x in args.seeds.split("..")) if args.seeds else (0, 10**9)
    except ValueError:
        raise SystemExit(f"--seeds {args.seeds!r}: use A..B, e.g. --seeds 26..50") from None
    seeds = sorted((p for d in args.dirs for p in d.glob("seed*") if (p / "demo.db").is_file()
                    and (p / "card" / "truth.json").is_file() and p.name[4:].isdigit()
                    and lo <= int(p.name[4:]) <= hi), key=lambda p: int(p.name[4:]))
    if not seeds:
        raise SystemExit(f"no seedN/demo.db with card/truth.json under {', '.join(map(str, args.dirs))}: "
                         "run benchmarks/census_truth.py --out DIR first")
    classifier = None
    if args.imagenet:
        from spotid.detect.classifier import CropClassifier

        classifier = CropClassifier()
    rows = []
    for p in seeds:
        r = survey(p, classifier)
        rows.append(r)
        not_leopard = sum(not i["leopard"] for i in r["identities"])
        print(f"{r['seed']}: photographed {r['photographed']} (on a flank {r['on_flank']}), MNA {r['mna']}, "
              f"within 10%: {r['within']} ({r['within_on_flank']} of those on a flank), identities on no leopard "
              f"{not_leopard}, leopards not counted {len(r['missed'])}", flush=True)
    ids = [i for r in rows for i in r["identities"]]
    leo, other = [i for i in ids if i["leopard"]], [i for i in ids if not i["leopard"]]
    print(f"\n{len(rows)} surveys: within 10% of photographed {sum(r['within'] for r in rows)}, of photographed on "
          f"a flank {sum(r['within_on_flank'] for r in rows)}")
    print(f"counted identities: {len(leo)} on a leopard, {len(other)} on no leopard")
    print("founding floor on the best frame's P(leopard): identities it would remove (on a leopard / on no leopard)")
    for f in FLOORS:
        print(f"  {f}: {sum(i['best_p'] < f for i in leo)} / {sum(i['best_p'] < f for i in other)}")
    if classifier is not None:
        seen = [i for i in ids if "spotted" in i]
        print(f"ImageNet floors ({classifier.version}): identities a floor on the mean mass would remove "
              "(on a leopard / on no leopard)"
              + (f"; {len(ids) - len(seen)} identities left out, none of their frames could be read"
                 if len(seen) < len(ids) else ""))
        for key in ("spotted", "animal"):
            for f in IMAGENET_FLOORS:
                print(f"  {key} < {f}: {sum(i[key] < f for i in seen if i['leopard'])} / "
                      f"{sum(i[key] < f for i in seen if not i['leopard'])}")
    why = Counter(k for r in rows for m in r["missed"].values() for k in m)
    print(f"leopards photographed but not counted: {sum(len(r['missed']) for r in rows)}; animals whose boxes met each fate:")
    for k, n in why.most_common():
        print(f"  {n:3d}  {k}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
