"""Does ALIKED run faster on the CPU with channels-last tensors, and does it give the same features?

ALIKED is identify's slowest step (models/aliked: ~2.5 s of CPU per crop at the card's 640 px, its
features computed once per crop). Its convolutions run through oneDNN, which prefers NHWC
("channels-last") memory; PyTorch's default is NCHW, so each convolution reorders its input. This
runs the shipped extractor (``AlikedExtractor`` with the card's settings, the foreground model off so
only the network is timed) on real crops, once with the network and input in the default layout and
once channels-last, in the same process, and prints per layout the best-of-``--repeats`` seconds per
crop, the ratio against the default, and how far the outputs differ (keypoints in pixels, descriptors,
and how many of the kept keypoints are the same).

    OMP_NUM_THREADS=1 python benchmarks/aliked_layout.py [--threads 1] [--crops 8] [--repeats 3]

Crops: the hand boxes of models/flank/amur_leopard_voc_flanks.csv's test split (amur-leopard-voc under
``../shared``), cut with identify's padding.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VOC = ROOT.parent / "shared" / "data" / "detection" / "amur-leopard-voc" / "test-images"


def crops(n: int) -> list[np.ndarray]:
    from PIL import Image

    rows = [r for r in csv.DictReader(open(ROOT / "models/flank/amur_leopard_voc_flanks.csv")) if r["split"] == "test"]
    out = []
    for r in rows[:n]:
        im = np.asarray(Image.open(VOC / r["file"]).convert("RGB"))
        x0, y0, x1, y1 = (int(r[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
        px, py = int(0.1 * (x1 - x0)), int(0.1 * (y1 - y0))
        out.append(im[max(0, y0 - py):y1 + py, max(0, x0 - px):x1 + px])
    return out


def run(extractor, images, repeats: int):
    feats, best = [], []
    for im in images:
        ts = []
        for _ in range(repeats):
            t = time.process_time()
            f = extractor(im)
            ts.append(time.process_time() - t)
        feats.append(f)
        best.append(min(ts))
    return feats, float(np.mean(best))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--crops", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if not VOC.is_dir():
        raise SystemExit(f"needs {VOC} (../shared)")
    import torch

    from spotid.identify.aliked import AlikedExtractor, card_settings

    torch.set_num_threads(args.threads)
    s = card_settings()
    images = crops(args.crops)
    runs = {}
    for layout in ("default", "channels_last"):
        ex = AlikedExtractor(model=s["model"], max_keypoints=s["max_keypoints"], resize=s["resize"],
                             candidates=s.get("candidates"), channels_last=layout == "channels_last")
        ex(images[0])  # warm-up: weights, oneDNN primitives
        runs[layout] = run(ex, images, args.repeats)
    base_f, base_t = runs["default"]
    print(f"{len(images)} real crops, {args.threads} torch thread(s), best of {args.repeats}, CPU seconds per crop")
    print(f"{'layout':<14} {'s/crop':>7} {'x default':>9} {'max |dkp| px':>12} {'max |ddesc|':>11} {'same kept kps':>13}")
    for layout, (f, t) in runs.items():
        dk = dd = 0.0
        same = total = 0
        for a, b in zip(base_f, f):
            ka, kb = {tuple(np.round(k, 1)) for k in a.keypoints}, {tuple(np.round(k, 1)) for k in b.keypoints}
            same, total = same + len(ka & kb), total + len(ka)
            if a.keypoints.shape == b.keypoints.shape:
                ia, ib = np.lexsort(a.keypoints.T), np.lexsort(b.keypoints.T)
                dk = max(dk, float(np.abs(a.keypoints[ia] - b.keypoints[ib]).max(initial=0)))
                dd = max(dd, float(np.abs(a.descriptors[ia] - b.descriptors[ib]).max(initial=0)))
            else:
                dk = dd = float("inf")
        print(f"{layout:<14} {t:7.3f} {base_t / t:9.2f} {dk:12.2g} {dd:11.2g} {same:>6}/{total:<6}")


if __name__ == "__main__":
    main()
