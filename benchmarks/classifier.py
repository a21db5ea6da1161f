"""The leopard classifier's three issue-20 targets, old classifier vs new, with the detector in the loop.

For each classifier (``--new`` = the cascade card; optionally ``--old`` = a previous card) the real
``spotid detect`` path runs (:func:`spotid.detect.detector.make_detector`, builtin detector, the
classifier's own detector threshold, no static-FP pass) over:

1. amur-leopard-voc ``test-images`` (never trained on): share of the hand-drawn leopard boxes the
   detector finds (IoU >= 0.5 at the typical threshold) that are labelled leopard;
2. the other-animal camera-trap frames of ../shared (megadetector-test 31, southwest 15, serengeti-bursts
   10: no leopard in any): frames with ANY kept box labelled leopard (at whatever confidence the
   detector keeps; this is how "11 of 52" was counted in the issue, recounted here on the 56 readable
   frames) and such boxes;
3. megadetector-test: animal/empty agreement with MDv5a (truth boxes conf >= 0.2; ours at the typical
   threshold the run reports: the detector card's, or the cascade card's when it sets one).

Plus the classifier alone on reference boxes (VOC hand boxes, MDv5a/animl boxes conf >= 0.3) and a
synthetic card (``--synth FOLDER`` with truth.json): leopards labelled leopard.

Held-out discipline: ``--heldout SOURCE=DIR`` evaluates SOURCE's frames with the model in DIR instead of
``--new`` (a fold trained without SOURCE). The shipped card is trained without megadetector-test;
southwest figures must come from a fold trained without southwest.

    python benchmarks/classifier.py --new models/classifier --heldout southwest=/tmp/fold-southwest \
        [--old /tmp/old_classifier] [--synth /tmp/syn777] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
OTHER_SETS = ("megadetector-test", "southwest", "serengeti-bursts")


def truth_sets(shared: Path, synth: list[Path]) -> dict[str, tuple[Path, list[Path], dict]]:
    """name -> (root, frames, truth {file: [TruthBox]}) with labels leopard / other."""
    from spotid.detect.run import list_frames
    from spotid.detect.truth import read_animl_csv, read_coco_ct, read_md_truth, read_voc

    ct = shared / "camera-traps"
    out = {}
    voc = shared / "detection/amur-leopard-voc"
    t = read_voc(voc / "annotations", voc / "test-images")
    out["voc-test"] = (voc / "test-images", [voc / "test-images" / f for f in sorted(t)], t)
    md = ct / "megadetector-test"
    t = read_md_truth(md / "mdv5a-results.json", 0.2)
    out["megadetector-test"] = (md, [md / f for f in sorted(t)], t)
    sw = ct / "southwest"
    rows = read_animl_csv(sw / "animl-ground-truth/main/Detections.csv", 0.2)
    frames = [p for p in sorted(sw.iterdir()) if p.suffix.lower() in {".jpg", ".jpeg"} and p.stat().st_size > 0]
    out["southwest"] = (sw, frames, {p.name: rows.get(p.name, []) for p in frames})
    sb = ct / "serengeti-bursts"
    frames = list_frames(sb)
    out["serengeti-bursts"] = (sb, frames, {p.name: [] for p in frames})   # no reference boxes
    for folder in synth:
        t = read_coco_ct(folder / "truth.json")
        # every frame with an animal (up to 200) and 50 empty ones: enough, and minutes not hours
        keys = [k for k in sorted(t) if t[k]][:200] + [k for k in sorted(t) if not t[k]][:50]
        t = {k: t[k] for k in keys}
        out[f"synthetic:{folder.name}"] = (folder, [folder / k for k in keys], t)
    return out


def run_cascade(clf_dir: Path, root: Path, frames: list[Path]) -> tuple[dict, float, str]:
    """The builtin detector with this classifier, as ``spotid detect`` runs it: (results by file, the
    typical threshold it reports, its version)."""
    from spotid.detect.config import DetectConfig
    from spotid.detect.detector import make_detector

    det = make_detector(DetectConfig(classifier=str(clf_dir), static_fp=False, decode_workers=1))
    return {r.file: r for r in det(frames, root)}, det.typical_threshold, det.version


def hand_boxes(clf_dir: Path, root: Path, truth: dict, min_truth_conf: float = 0.0) -> tuple[dict, float | None]:
    """Classifier alone on the reference animal boxes: counts of labels per truth label, and the lowest
    P(leopard) of a leopard box labelled leopard (None without one): identify's founding floor (card
    ``cascade.found_min_leopard_p``) must stay below it, or real leopards found no individual."""
    from spotid.detect.classifier import CropClassifier
    from spotid.types import Detection

    clf = CropClassifier(model_dir=clf_dir)
    counts: dict[str, dict[str, int]] = {}
    leopard_p = []
    for f, boxes in truth.items():
        animals = [b for b in boxes if b.category == 1 and b.label]
        if not animals:
            continue
        dets = clf.classify_file(root / f, [Detection(1, 1.0, b.bbox) for b in animals])
        for b, d in zip(animals, dets):
            c = counts.setdefault(b.label, {})
            c[d.label or "none"] = c.get(d.label or "none", 0) + 1
            if b.label == "leopard" and d.label == "leopard":
                leopard_p.append(float(d.label_conf))
    return counts, (round(min(leopard_p), 4) if leopard_p else None)


def measure(clf_dir: Path, sets: dict, heldout: dict[str, Path]) -> dict:
    from spotid.detect.evaluate import evaluate

    rep: dict = {"frames_with_leopard": {}, "sets": {}}
    for name, (root, frames, truth) in sets.items():
        model = heldout.get(name, clf_dir)
        res, typical, version = run_cascade(model, root, frames)
        res = {k if k in truth else Path(k).name: v for k, v in res.items()}
        ev = evaluate(res, truth, threshold=typical)
        leo_frames = sorted(k for k, r in res.items() if any(d.label == "leopard" for d in r.detections))
        leo_boxes = sum(d.label == "leopard" for r in res.values() for d in r.detections)
        dropped = sum(len(r.extra.get("not_animal_detections", [])) for r in res.values())
        rep["sets"][name] = {"model": version, "typical_threshold": typical, "frames": len(res),
                             "leopard_found": ev.leopard_boxes_found, "leopard_as_leopard": ev.leopard_classified_leopard,
                             "other_found": ev.other_boxes_found, "other_as_other": ev.other_classified_other,
                             "agreement": ev.image_agreement, "images": ev.images,
                             "frames_with_leopard_box": len(leo_frames), "leopard_boxes": leo_boxes,
                             "not_animal_dropped": dropped, "recall": round(ev.recall, 3),
                             "precision": round(ev.precision, 3)}
        if name in OTHER_SETS:
            rep["frames_with_leopard"][name] = leo_frames
        if not name.startswith("synthetic") and name != "serengeti-bursts":
            rep["sets"][name]["hand_boxes"], rep["sets"][name]["hand_leopard_p_min"] = hand_boxes(model, root, truth)
    return rep


def summary(rep: dict) -> dict:
    s = rep["sets"]
    voc = s["voc-test"]
    other_frames = sum(s[n]["frames"] for n in OTHER_SETS)
    hb = voc.get("hand_boxes", {}).get("leopard", {})
    others_hb = {}
    for n in ("megadetector-test", "southwest"):
        for lab, c in s[n].get("hand_boxes", {}).get("other", {}).items():
            others_hb[lab] = others_hb.get(lab, 0) + c
    return {
        "voc_test_leopard_through_detector": f"{voc['leopard_as_leopard']}/{voc['leopard_found']}",
        "other_frames_with_a_leopard_box": f"{sum(s[n]['frames_with_leopard_box'] for n in OTHER_SETS)}/{other_frames}",
        "other_leopard_boxes": sum(s[n]["leopard_boxes"] for n in OTHER_SETS),
        "megadetector_test_agreement": f"{s['megadetector-test']['agreement']}/{s['megadetector-test']['images']}",
        "southwest_agreement": f"{s['southwest']['agreement']}/{s['southwest']['images']}",
        "voc_test_hand_boxes_leopard": f"{hb.get('leopard', 0)}/{sum(hb.values())}",
        "voc_test_hand_boxes_leopard_p_min": voc.get("hand_leopard_p_min"),
        "other_hand_boxes_labels": others_hb,
        **{f"{n}_leopard": f"{v['leopard_as_leopard']}/{v['leopard_found']}" for n, v in s.items()
           if n.startswith("synthetic")},
        **{f"{n}_other_as_other": f"{v['other_as_other']}/{v['other_found']}" for n, v in s.items()
           if n.startswith("synthetic")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=Path, help="the previous classifier folder, for a side-by-side (optional)")
    ap.add_argument("--new", type=Path, default=ROOT / "models/classifier")
    ap.add_argument("--heldout", action="append", default=[], help="SOURCE=DIR: a fold trained without SOURCE")
    ap.add_argument("--synth", action="append", type=Path, default=[], help="synthetic card folder (truth.json)")
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not args.shared.is_dir():
        sys.exit("benchmarks/classifier.py needs ../shared/data (real frames); it is absent")
    import torch

    torch.set_num_threads(args.threads)
    heldout = {}
    for h in args.heldout:
        src, _, d = h.partition("=")
        heldout[src] = Path(d)
    sets = truth_sets(args.shared, args.synth)
    report = {"new": measure(args.new, sets, heldout), "heldout_models": {k: str(v) for k, v in heldout.items()}}
    report["summary"] = {"new": summary(report["new"])}
    if args.old is not None:
        report["old"] = measure(args.old, sets, {})
        report["summary"]["old"] = summary(report["old"])
    if args.json:
        print(json.dumps(report, indent=1))
        return
    old = report["summary"].get("old", {})
    print(f"{'figure':42s} {'old':>16s} {'new':>16s}")
    for k in report["summary"]["new"]:
        print(f"{k:42s} {old.get(k, '-')!s:>16s} {report['summary']['new'][k]!s:>16s}")
    for side in ("old", "new"):
        for n, fr in report.get(side, {}).get("frames_with_leopard", {}).items():
            if fr:
                print(f"{side}: {n} frames with a leopard box: {', '.join(f[:40] for f in fr)}")


if __name__ == "__main__":
    main()
