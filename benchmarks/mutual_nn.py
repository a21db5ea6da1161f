"""Mutual nearest neighbours of ALIKED descriptors: ``spotid.identify.aliked.mutual_nn`` against the
definition it replaced (``argmax`` along both axes), in the same process, on one thread.

The matching of every ALIKED pair starts here: a (N, M) cosine matrix, each query's best column and each
column's best query. numpy's ``argmax(axis=0)`` walks the matrix column by column; the column *maximum*
is a row-wise reduction, and a row is mutual when its best value equals its column's maximum.

    OMP_NUM_THREADS=1 python benchmarks/mutual_nn.py --keypoints 1024,2048,4096

Real ALIKED features of nyala photos when ``../shared`` is there (``--photos`` of them, all pairs),
else random unit descriptors. Prints ms per pair for both and the ratio (new / old), and checks that
both give the same matches.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("mutual_nn")


def reference(qd: np.ndarray, rd: np.ndarray, min_sim: float) -> tuple[np.ndarray, np.ndarray]:
    sim = qd @ rd.T
    best, back = sim.argmax(axis=1), sim.argmax(axis=0)
    rows = np.arange(len(qd))
    keep = (back[best] == rows) & (sim[rows, best] >= min_sim)
    return rows[keep], best[keep]


def descriptors(k: int, photos: int, data: Path) -> list[np.ndarray]:
    """ALIKED descriptors of the first ``photos`` nyala photos, decoded and extracted as ``eval reid`` does
    (long side 512 px, the card's settings with ``k`` keypoints); random unit rows without the data."""
    files = sorted(data.glob("*/*.jpg"))[:photos]
    if not files:
        log.warning("no photos under %s (pass --data): timing random descriptors", data)
        rng = np.random.default_rng(0)
        out = [rng.standard_normal((k, 128)).astype(np.float32) for _ in range(photos)]
        return [d / np.linalg.norm(d, axis=1, keepdims=True) for d in out]
    from spotid.identify.local import build_local
    from spotid.identify.multiscore import load_image
    fm = build_local("aliked", max_keypoints=k)
    return [fm.features(load_image(f, 512)).descriptors for f in files]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keypoints", default="1024,2048")
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--min-sim", type=float, default=0.65)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/reid/nyala-train")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    import torch

    from spotid.identify.aliked import mutual_nn
    torch.set_num_threads(1)
    print(f"{'keypoints':>9} {'old ms/pair':>12} {'new ms/pair':>12} {'new/old':>8}  same matches")
    for k in (int(x) for x in args.keypoints.split(",")):
        ds = descriptors(k, args.photos, args.data)
        pairs = [(a, b) for i, a in enumerate(ds) for b in ds[i + 1:]]
        times, same = {}, True
        for name, fn in (("old", reference), ("new", mutual_nn)):
            t = time.process_time()
            got = [fn(a, b, args.min_sim) for a, b in pairs]
            times[name] = (time.process_time() - t) / len(pairs) * 1e3
            if name == "old":
                want = got
            else:
                same = all(np.array_equal(g[0], w[0]) and np.array_equal(g[1], w[1]) for g, w in zip(got, want))
        print(f"{k:>9} {times['old']:>12.1f} {times['new']:>12.1f} {times['new'] / times['old']:>8.2f}  {same}")


if __name__ == "__main__":
    main()
