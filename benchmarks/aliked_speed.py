"""How much CPU does ALIKED's extraction take, and do the faster ways give the same features?

ALIKED is identify's slowest step (models/aliked: its features are computed once per crop, at the card's
640 px with 8,192 candidate keypoints of which the best 1,024 on the animal are kept). Three ways, run in
this process on the same real crops:

- ``forward``: the wheel's whole forward (default NCHW memory), then the kept keypoints picked, as
  spotid did until 2026-12-07: every one of the 8,192 candidates gets a descriptor;
- ``forward-cl``: the same, network and image channels-last (NHWC, which oneDNN's convolutions want);
- ``shipped``: :class:`~spotid.identify.aliked.AlikedExtractor` as identify runs it: channels-last, and
  the descriptor head run on the kept keypoints only.

Prints the best-of-``--repeats`` CPU seconds per crop, the ratio against ``forward``, and how far each
one's kept keypoints and descriptors are from ``forward``'s (pixels; descriptor units) and how many
of the kept keypoints are the same. The foreground model is off, so only ALIKED is timed.

    OMP_NUM_THREADS=1 python benchmarks/aliked_speed.py [--threads 1] [--crops 8] [--repeats 3]

Crops: the hand boxes of models/flank/amur_leopard_voc_flanks.csv's test split (amur-leopard-voc under
``../shared``), cut by identify's Cropper (10% padding, long side at most 512 px).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VOC = ROOT.parent / "shared" / "data" / "detection" / "amur-leopard-voc" / "test-images"


def crops(n: int) -> list[np.ndarray]:
    """The first ``n`` test-split boxes, cut as identify cuts a detection (its Cropper: 10% padding, long
    side at most 512 px)."""
    from spotid.identify.crops import Cropper, image_size
    from spotid.train.boxes import normalised_box, read_box_labels

    cropper = Cropper(pad=0.1, max_side=512)
    rows = [r for r in read_box_labels(ROOT / "models/flank/amur_leopard_voc_flanks.csv") if r["split"] == "test"]
    return [np.asarray(cropper(VOC / r["file"], normalised_box(r, *image_size(VOC / r["file"]))).image)
            for r in rows[:n]]


def forward_features(ex, image):
    """The kept keypoints as spotid picked them until 2026-12-07: the wheel's whole forward (every
    candidate described), then the best-scored (no roi or mask, as in this benchmark's shipped run)."""
    import torch

    from spotid.identify.verify import Features

    x, sx, sy = ex.input_tensor(image)
    with torch.inference_mode():
        out = ex.net({"image": x})
    kp = ((out["keypoints"][0].numpy() + 0.5) / [sx, sy] - 0.5).astype(np.float32)
    idx = np.argsort(-out["keypoint_scores"][0].numpy(), kind="stable")[: ex.max_keypoints]
    return Features(kp[idx], out["descriptors"][0].numpy().astype(np.float32)[idx], False)


def run(fn, images, repeats: int):
    feats, best = [], []
    for im in images:
        ts = []
        for _ in range(repeats):
            t = time.process_time()
            f = fn(im)
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
    def extractor(channels_last: bool):
        ex = AlikedExtractor(model=s["model"], max_keypoints=s["max_keypoints"], resize=s["resize"],
                             candidates=s.get("candidates"), channels_last=channels_last)
        ex(images[0])  # warm-up: weights, oneDNN primitives
        return ex

    plain, cl = extractor(False), extractor(True)
    runs = {"forward": run(lambda im: forward_features(plain, im), images, args.repeats),
            "forward-cl": run(lambda im: forward_features(cl, im), images, args.repeats),
            "shipped": run(cl, images, args.repeats)}
    base_f, base_t = runs["forward"]
    print(f"{len(images)} real crops, {args.threads} torch thread(s), best of {args.repeats}, CPU seconds per crop")
    print(f"{'way':<14} {'s/crop':>7} {'x forward':>9} {'max |dkp| px':>12} {'max |ddesc|':>11} {'same kept kps':>13}")
    for way, (f, t) in runs.items():
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
        print(f"{way:<14} {t:7.3f} {base_t / t:9.2f} {dk:12.2g} {dd:11.2g} {same:>6}/{total:<6}")


if __name__ == "__main__":
    main()
