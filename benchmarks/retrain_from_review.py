"""Issue 23's done-when for retraining: 20 review decisions, `spotid train classifier --db`, `spotid models use`,
and the change measured.

On the `spotid demo --seed S` catalog (synthetic card, full pipeline; built if ``--demo`` has no demo.db),
a scripted reviewer makes 20 decisions through :class:`spotid.review.decisions.Reviewer` (the review
page's code), reading the simulator's truth: every sighting whose box matches no leopard (IoU <= 0.3 with
the truth boxes) is "not a leopard"; then 2 confirms per machine-accepted individual (12 at most) and the
leopard sightings identify set aside as unusable (3 at most). Then the commands run as a user runs them.

Figures (both models, as ``spotid detect`` labels a box: frame + box at the detection's confidence):
1. the held-out review crops (`train classifier --db`'s split: whole individuals/bursts, seed 0);
2. every animal detection of the catalog outside the bursts and (true) individuals of the training review
   crops, labelled by the simulator's truth (leopard vs anything else, 'none' = no truth box).

    python benchmarks/retrain_from_review.py --demo /tmp/demo0 --work /tmp/retrain \\
        --train-args "--cache /tmp/feats --synth /tmp/syn11 --synth /tmp/syn21"   # models/classifier/reproduce.sh
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace

from spotid.catalog import Catalog
from spotid.review.decisions import Reviewer
from spotid.train.classifier_review import evaluate_review
from spotid.types import iou

ROOT = Path(__file__).resolve().parent.parent


def truth_of_detections(cat: Catalog, truth_file: Path) -> dict[int, dict]:
    """detection id -> {species ('none' without a truth box at IoU > 0.3), individual, path, box, conf, seq}."""
    t = json.loads(truth_file.read_text())
    cats = {c["id"]: c["name"] for c in t["categories"]}
    imgs = {i["id"]: i for i in t["images"]}
    boxes: dict[str, list] = {}
    for a in t["annotations"]:
        if "bbox" in a:
            im = imgs[a["image_id"]]
            x, y, w, h = a["bbox"]
            boxes.setdefault(im["file_name"], []).append(
                ((x / im["width"], y / im["height"], w / im["width"], h / im["height"]), cats[a["category_id"]],
                 a.get("individual_id")))
    out = {}
    for r in cat.query("SELECT d.id, d.x, d.y, d.w, d.h, d.conf, m.path, m.rel_path, m.deployment_id, m.sequence_id "
                       "FROM detections d JOIN media m ON m.id = d.media_id WHERE d.category = 1"):
        b = (r["x"], r["y"], r["w"], r["h"])
        key = f"{r['deployment_id']}/{r['rel_path']}"
        best = max(boxes.get(key, []), key=lambda tb: iou(b, tb[0]), default=None)
        hit = best is not None and iou(b, best[0]) > 0.3
        out[int(r["id"])] = {"species": best[1] if hit else "none", "individual": best[2] if hit else None,
                             "path": r["path"], "box": b, "conf": float(r["conf"]), "seq": r["sequence_id"]}
    return out


def decide(db: Path, truth: dict[int, dict], reviewer: str = "benchmark") -> Counter:
    n: Counter = Counter()
    with Catalog(db, create=False) as cat:
        rv = Reviewer(cat, reviewer)
        rows = cat.query("SELECT id, detection_id, status, individual_id FROM sightings ORDER BY id")
        version = lambda sid: int(cat.scalar("SELECT version FROM sightings WHERE id = ?", (sid,)))  # noqa: E731
        for r in rows:
            if truth[r["detection_id"]]["species"] != "leopard" and n["not_leopard"] < 5:
                rv.not_leopard(r["id"], version(r["id"]))
                n["not_leopard"] += 1
        per_ind = defaultdict(list)
        for r in rows:
            if truth[r["detection_id"]]["species"] == "leopard" and r["status"] == "auto":
                per_ind[r["individual_id"]].append(r["id"])
        for ind, sids in sorted(per_ind.items()):
            for sid in sids[:2]:
                if n["confirm"] < 12:
                    rv.confirm(sid, version(sid), ind)
                    n["confirm"] += 1
        for r in rows:
            if truth[r["detection_id"]]["species"] == "leopard" and r["status"] == "unusable" and n["unusable"] < 3:
                rv.unusable(r["id"], version(r["id"]))
                n["unusable"] += 1
    return n


def spotid(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "spotid", *args]
    print("$ spotid " + " ".join(shlex.quote(a) for a in args), flush=True)
    res = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    print(res.stdout + res.stderr, flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--demo", type=Path, required=True, help="Folder of a `spotid demo` run (built when missing).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--train-args", default="", help="Extra options for `spotid train classifier`.")
    a = ap.parse_args()
    if not (a.demo / "demo.db").exists():
        spotid("demo", "--out", str(a.demo), "--seed", str(a.seed))
    a.work.mkdir(parents=True, exist_ok=True)
    db = a.work / "demo.db"
    shutil.copy(a.demo / "demo.db", db)
    with Catalog(db, create=False) as cat:
        truth = truth_of_detections(cat, a.demo / "card" / "truth.json")
    n = decide(db, truth)
    print("decisions:", dict(n), flush=True)
    model = a.work / "demo-classifier"
    res = spotid("train", "classifier", "--db", str(db), "--out", str(model), "--threads", "1",
                 *shlex.split(a.train_args))
    if res.returncode:
        sys.exit(res.returncode)
    spotid("models", "use", "classifier", str(model), "--db", str(db))
    card = json.loads((model / "card.json").read_text())
    trained = set(card["review"]["train_detections"])
    seqs = {truth[d]["seq"] for d in trained}
    inds = {truth[d]["individual"] for d in trained if truth[d]["individual"]}
    held = [SimpleNamespace(detection_id=d, frame_path=t["path"], box=t["box"], det_conf=t["conf"], crop_path="",
                            label="leopard" if t["species"] == "leopard" else "other")
            for d, t in truth.items() if d not in trained and t["seq"] not in seqs
            and (t["individual"] is None or t["individual"] not in inds)]
    print(f"held-out detections: {len(held)} "
          f"({dict(Counter(truth[h.detection_id]['species'] for h in held))}); left out: {len(trained)} trained "
          f"crops, their {len(seqs)} bursts and true individuals {sorted(inds)}")
    summary = {"decisions": dict(n), "review_heldout": {"new": card["metrics"]["review_heldout"],
                                                        "parent": card["metrics"]["review_heldout_parent"]}}
    for name, folder in (("parent", ROOT / "models" / "classifier"), ("new", model)):
        m = evaluate_review(folder, held, db)
        m.pop("detections")
        summary.setdefault("catalog_heldout", {})[name] = m
        print(name, json.dumps(m), flush=True)
    (a.work / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
