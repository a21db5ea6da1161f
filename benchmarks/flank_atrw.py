"""The flank classifier on real big cats it never trained on: a random sample of ATRW Amur tiger photos.

    python benchmarks/flank_atrw.py [--model models/flank] [--atrw ../shared/data/reid/atrw-train]

``models/flank/atrw_flank_sample.csv`` holds 64 photos of ``atrw-train`` drawn at random (seed 7) and
labelled by eye on 2026-12-07 by a spotid engineer, not a biologist: the flank the camera sees (the head on
the image's left = the left flank), ``view`` side or 3/4, and 2 rear views left ``unsure``. ATRW's
"entities" cannot label flanks: one entity's photos show both sides in about one folder in five.
No flank model has trained on ATRW (models/flank/README.md lists its data), so this is held out.

Prints the confusion of the labelled left/right photos (the stage's answer at the card's threshold:
left, right, front, back, unknown), the share on the right flank, the swapped ones, and each miss.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="flank model folder (default: the shipped models/flank)")
    ap.add_argument("--atrw", type=Path, default=ROOT.parent / "shared" / "data" / "reid" / "atrw-train")
    ap.add_argument("--labels", type=Path, default=ROOT / "models" / "flank" / "atrw_flank_sample.csv")
    args = ap.parse_args()
    if not args.atrw.is_dir():
        raise SystemExit(f"no {args.atrw}: pass --atrw (../shared/data/reid/atrw-train)")
    import numpy as np
    from PIL import Image

    from spotid.identify.flank import FlankClassifier

    with open(args.labels, encoding="utf-8", newline="") as f:
        labelled = list(csv.DictReader(f))
    rows, images = [], []
    for r in labelled:
        if r["flank"] not in ("left", "right"):
            continue
        try:
            images.append(np.asarray(Image.open(args.atrw / r["file"]).convert("RGB")))
        except OSError as e:   # a photo missing or broken in this copy of ATRW: said, not fatal
            print(f"not evaluated: {r['file']} ({e}); the figure below leaves it out")
            continue
        rows.append(r)
    if not rows:
        raise SystemExit(f"none of the labelled photos of {args.labels} could be read under {args.atrw}")
    clf = FlankClassifier(args.model)
    preds = clf(images)
    table: dict[str, Counter] = {"left": Counter(), "right": Counter()}
    misses = []
    for r, p in zip(rows, preds):
        table[r["flank"]][p.flank] += 1
        if p.flank != r["flank"]:
            misses.append((r["file"], r["flank"], r["view"], p.flank, p.conf, r["note"]))
    cols = ("left", "right", "front", "back", "unknown")
    print(f"flank model {clf.version}; {len(rows)} labelled ATRW tiger photos (never trained on)")
    print(f"{'true / answered':<16}" + "".join(f"{c:>9}" for c in cols))
    for t, c in table.items():
        print(f"{t:<16}" + "".join(f"{c[k]:>9}" for k in cols))
    right = sum(table[t][t] for t in table)
    swapped = table["left"]["right"] + table["right"]["left"]
    by_view = Counter(r["view"] for r in rows)
    right_34 = sum(1 for r, p in zip(rows, preds) if r["view"] == "3/4" and p.flank == r["flank"])
    print(f"right flank {right}/{len(rows)} ({right / len(rows):.0%}), swapped {swapped}, "
          f"3/4 views right {right_34}/{by_view['3/4']}")
    for f, t, v, a, pm, note in misses:
        print(f"  {f}: {t} ({v}) -> {a} (top P {pm:.2f}){'; ' + note if note else ''}")


if __name__ == "__main__":
    main()
