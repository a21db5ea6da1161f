"""A card of real leopard photos, run as a field team runs a new card: does it count leopards?

    python benchmarks/real_card.py [--images ../shared/data/detection/amur-leopard-voc/test-images]
        [--labels models/flank/amur_leopard_voc_flanks.csv] [--out /tmp/spotid-real-card]
        [--model flank=PATH ...] [--config FILE] [--json OUT]

Copies the photos into ``OUT/card/DCIM/100RECNX/`` with file times an hour apart (most of these web
photos carry no EXIF time; ingest then takes the file's mtime), adds a deployment, runs
``spotid process`` (ingest + detect + identify) and ``spotid census`` (``--include-pending``: nobody has
reviewed the proposals yet; the census without it is printed too), all as subprocesses of the CLI.

It then audits the hand-labelled boxes of the photos (``--labels``; a detection stands for a box when
their IoU >= 0.3): of the left/right boxes, how many got a leopard detection, how many of those were
placed on a flank and sent to identification (sighting not set aside), how many on the right flank,
and by whom (the flank classifier, or a match that placed an unsure view); front-view boxes placed on a
flank; every set-aside sighting with its reason; and the MNA. ``--model flank=PATH`` (also
``embedder=``, ``detector=``...) points a stage at another model folder (``SPOTID_MODEL_<KIND>``), so
the lead can rerun it with the other helpers' models (identify's settings: ``configs/identify.yaml``).

The flank classifier never trained on these photos: its training used the csv's ``train`` split only.
Other stages (the detector, the embedder, the matcher) may have seen them; this is a check of the
whole pipeline as a user meets it, not a held-out figure for any one model.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "detection" / "amur-leopard-voc"
if not SHARED.exists():
    SHARED = Path("/work/shared/data/detection/amur-leopard-voc")
DEPLOYMENT = "VOC-CARD-01"
START = datetime(2026, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=10)))


def make_card(images: Path, card: Path) -> list[Path]:
    """Copy every photo into ``card/DCIM/100RECNX`` (same file names), mtimes an hour apart."""
    dcim = card / "DCIM" / "100RECNX"
    if card.exists():
        shutil.rmtree(card)
    dcim.mkdir(parents=True)
    files = sorted(p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    out = []
    for k, p in enumerate(files):
        dst = dcim / p.name
        shutil.copyfile(p, dst)
        t = (START + timedelta(hours=k)).timestamp()
        os.utime(dst, (t, t))
        out.append(dst)
    return out


def spotid(*args: str, env: dict, json_out: bool = True) -> dict | str:
    cmd = [sys.executable, "-m", "spotid", *args] + (["--json"] if json_out else [])
    t0 = time.time()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT), check=False)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    print(f"  {' '.join(args[:2])}: {time.time() - t0:.0f} s", file=sys.stderr)
    return json.loads(res.stdout) if json_out else res.stdout


def iou(a, b) -> float:
    """IoU of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def audit(db: Path, labels: Path, names: set[str], min_iou: float = 0.3) -> dict:
    """Per hand-labelled box: its best leopard detection, that detection's sighting and flank."""
    from PIL import Image

    from spotid.catalog import Catalog
    from spotid.review.queue import flank_source

    with Catalog(db, create=False) as cat:
        rows = cat.query(
            "SELECT d.id, d.x, d.y, d.w, d.h, d.label, d.conf, m.path, c.flank AS crop_flank, c.flank_conf, "
            "s.flank, s.status, s.set_aside_reason, s.individual_id FROM detections d "
            "JOIN media m ON m.id = d.media_id "
            "LEFT JOIN crops c ON c.detection_id = d.id LEFT JOIN sightings s ON s.detection_id = d.id")
        dets: dict[str, list] = {}
        for r in rows:
            dets.setdefault(Path(r["path"]).name, []).append(dict(r))
        reasons: dict[str, int] = {}
        for r in cat.query("SELECT set_aside_reason, COUNT(*) AS n FROM sightings WHERE status = 'unusable' "
                           "GROUP BY set_aside_reason"):
            reasons[r["set_aside_reason"] or "(no reason: a person's decision)"] = int(r["n"])
        statuses = {r["status"]: int(r["n"])
                    for r in cat.query("SELECT status, COUNT(*) AS n FROM sightings GROUP BY status")}
    with open(labels, newline="", encoding="utf-8") as f:
        boxes = [r for r in csv.DictReader(f) if r["file"] in names]
    per_box = []
    for b in boxes:
        W, H = Image.open(SHARED / f"{b['split']}-images" / b["file"]).size
        gt = (float(b["xmin"]) / W, float(b["ymin"]) / H, float(b["xmax"]) / W, float(b["ymax"]) / H)
        best, best_iou = None, 0.0
        for d in dets.get(b["file"], []):
            if d["label"] != "leopard":
                continue
            v = iou(gt, (d["x"], d["y"], d["x"] + d["w"], d["y"] + d["h"]))
            if v > best_iou:
                best, best_iou = d, v
        hit = best is not None and best_iou >= min_iou
        placed = hit and best["status"] not in (None, "unusable") and best["flank"] in ("left", "right")
        per_box.append({"file": b["file"], "box": b["box"], "truth": b["flank"], "detected": hit,
                        "iou": round(best_iou, 3), "classifier": best["crop_flank"] if hit else None,
                        "classifier_conf": (round(best["flank_conf"], 3)
                                            if hit and best["flank_conf"] is not None else None),
                        "sighting_flank": best["flank"] if hit else None, "status": best["status"] if hit else None,
                        "set_aside_reason": best["set_aside_reason"] if hit else None, "placed": placed,
                        "flank_source": (flank_source(best["flank"], best["crop_flank"], best["status"] or "")
                                         if placed else None),
                        "right_flank": placed and best["flank"] == b["flank"]})
    lr = [p for p in per_box if p["truth"] in ("left", "right")]
    front = [p for p in per_box if p["truth"] in ("front", "back")]
    return {
        "left_right_boxes": len(lr),
        "left_right_detected": sum(p["detected"] for p in lr),
        "left_right_placed": sum(p["placed"] for p in lr),
        "left_right_placed_right_flank": sum(p["right_flank"] for p in lr),
        "left_right_placed_by": {s: sum(p["flank_source"] == s for p in lr if p["placed"])
                                 for s in ("classifier", "burst", "match")},
        "left_right_set_aside": sum(p["detected"] and p["status"] == "unusable" for p in lr),
        "front_back_boxes": len(front),
        "front_back_placed_on_a_flank": sum(p["placed"] for p in front),
        "sightings_by_status": statuses,
        "set_aside_reasons": reasons,
        "boxes": per_box,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=SHARED / "test-images")
    ap.add_argument("--labels", type=Path, default=ROOT / "models" / "flank" / "amur_leopard_voc_flanks.csv")
    ap.add_argument("--out", type=Path, default=Path("/tmp/spotid-real-card"))
    ap.add_argument("--model", action="append", default=[], help="KIND=PATH, e.g. flank=models/flank")
    ap.add_argument("--json", type=Path, help="also write the report here")
    ap.add_argument("--config", type=Path, help="a spotid config (e.g. 'identify: {scorer: calibration}') for process")
    args = ap.parse_args()
    if not args.images.is_dir():
        raise SystemExit(f"no folder {args.images}: pass --images (amur-leopard-voc test-images in ../shared)")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    for kv in args.model:
        kind, _, path = kv.partition("=")
        env[f"SPOTID_MODEL_{kind.upper()}"] = str(Path(path).resolve())
    args.out.mkdir(parents=True, exist_ok=True)
    card, db = args.out / "card", args.out / "spotid.db"
    db.unlink(missing_ok=True)
    files = make_card(args.images, card)
    spotid("deployments", "add", DEPLOYMENT, "--lat", "43.10", "--lon", "131.60", "--start",
           (START - timedelta(days=1)).date().isoformat(), "--end",
           (START + timedelta(hours=len(files) + 24)).date().isoformat(), "--tz", "+10:00", "--db", str(db),
           env=env, json_out=False)
    processed = spotid("process", str(card), "--deployment", DEPLOYMENT, "--db", str(db),
                       *(["--config", str(args.config.resolve())] if args.config else []), env=env)
    census_pending = spotid("census", "--db", str(db), "--include-pending", env=env)
    census = spotid("census", "--db", str(db), env=env)
    report = {"photos": len(files), "models": args.model,
              **audit(db, args.labels, {p.name for p in files}),
              "process": processed, "census_include_pending": census_pending, "census": census}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    lr, placed = report["left_right_boxes"], report["left_right_placed"]
    print(f"photos {len(files)}; left/right boxes {lr}: detected as leopard {report['left_right_detected']}, "
          f"placed on a flank and sent to identification {placed} ({placed / max(1, lr):.0%}; "
          f"target >= 80%), right flank {report['left_right_placed_right_flank']}, "
          f"by {report['left_right_placed_by']}; "
          f"set aside {report['left_right_set_aside']}")
    print(f"front/back boxes {report['front_back_boxes']}: placed on a flank {report['front_back_placed_on_a_flank']}")
    print(f"sightings by status {report['sightings_by_status']}")
    for reason, n in sorted(report["set_aside_reasons"].items(), key=lambda kv: -kv[1]):
        print(f"  set aside {n}: {reason}")
    for key, c in (("with pending", census_pending), ("confirmed/auto only", census)):
        print(f"census ({key}): {_mna_text(c)}")
    for p in report["boxes"]:
        if p["truth"] in ("left", "right"):
            print(f"  {p['file']} {p['truth']:>5}: classifier {p['classifier']} {p['classifier_conf']} -> "
                  f"{p['sighting_flank']} {p['status']} {p['flank_source'] or p['set_aside_reason'] or ''}")


def _mna_text(c: dict) -> str:
    s = c.get("summary") or {}
    return (f"MNA {s.get('mna')} (two-flank bounds {s.get('mna_min')}-{s.get('mna_max')}; "
            f"left {s.get('identities_left')}, right {s.get('identities_right')}), "
            f"{s.get('n_sightings')} sightings counted, "
            f"{s.get('n_unusable_sightings')} set aside")


if __name__ == "__main__":
    main()
