"""Which ALIKED extraction settings (input size, keypoint budget, model) re-identify real nyala best?

Protocol as ``models/aliked/README.md`` chose the descriptor cosine: the embedder's nyala individuals of one
split (``models/embedder/split.json``), every query across encounters, ALIKED alone (mutual NN +
affine MAGSAC++) scoring

- ``short``: the Matcher's shortlist (cosine top-30 + descriptor-vote top-30, ``verify_all: 0``), as
  identify and ``eval reid --no-full-verifier`` use it. On the validation individuals the shipped
  embedder's cosines are memorised, so this shortlist is easier than on new animals; and
- ``brute``: every gallery photo (no shortlist, nothing memorised), the honest comparison.

Criterion (as for the descriptor cosine and the fusion): (top-1 + mAP) / 2 of the brute list.
Images are decoded as ``eval reid`` decodes them (long side ``crop_max_side``, 512 px: what identify
keeps of a crop), so a ``resize`` above it upscales. Features are cached per setting (``--out``).

    OMP_NUM_THREADS=1 python benchmarks/aliked_settings.py --split validation \
        --settings n16:640:1024,n16:640:1024:2048:fg --min-sims 0.65,0.7 --out /tmp/spotid-aliked-settings

A fifth field ``fg`` keeps keypoints only where the foreground model sees the animal (the fourth, the
candidates, is how many the network proposes before the best-scored on the animal are kept).

Prints one row per (setting, min_sim): top-1 / top-5 / mAP of both lists, CPU seconds per photo for
the features and per pair for the matching, both measured in this process, and the cost ratio against
the first setting (``n16:640:1024``, shipped until 2026-12-06).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from lightglue_rerank import first_stage, individuals, link_folder  # noqa: E402


def parse_setting(text: str) -> dict:
    """``n16:512:1024`` -> model aliked-n16, resize 512, max_keypoints 1024, no mask;
    ``n16:640:1024:2048:fg`` -> the same with 2,048 keypoints proposed and the 1,024 best-scored of those on
    the animal (the foreground model's mask, identify's settings) kept."""
    parts = text.split(":")
    try:
        model, resize, k = parts[:3]
        out = {"model": f"aliked-{model}", "resize": int(resize), "max_keypoints": int(k),
               "candidates": int(parts[3]) if len(parts) > 3 else 0, "foreground": False}
        if len(parts) > 4:
            if parts[4] != "fg" or len(parts) > 5:
                raise ValueError(parts[4])
            out["foreground"] = True
        return out
    except ValueError:
        raise SystemExit(f"--settings {text!r}: write MODEL:RESIZE:KEYPOINTS[:CANDIDATES[:fg]], e.g. n16:512:1024 "
                         "or n16:640:1024:2048:fg") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=("validation", "test"), default="validation")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/reid/nyala-train")
    ap.add_argument("--out", type=Path, default=Path("/tmp/spotid-aliked-settings"))
    ap.add_argument("--settings", default="n16:640:1024,n16:640:2048,n16:640:1024:1024:fg,n16:640:1024:2048:fg")
    ap.add_argument("--min-sims", default="0.65")
    ap.add_argument("--no-brute", action="store_true", help="score the shortlist only (faster)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch
    torch.set_num_threads(1)

    from spotid.identify.local import build_local
    from spotid.identify.metrics import retrieval_metrics
    from spotid.identify.multiscore import brute_force, load_image, local_features, shortlist_mask

    if not args.data.is_dir():
        raise SystemExit(f"{args.data} not found: pass --data (the nyala-train folder of ../shared)")
    names = individuals(args.split)
    args.out.mkdir(parents=True, exist_ok=True)
    folder = link_folder(args.data, names, args.out, args.split)
    data, s, short, _, _, _, cfg = first_stage(folder, args.out / "cache")
    ind = np.array([it.individual for it in data.items], dtype=object)
    ql = ind[s.queries]
    masks = {"short": shortlist_mask(s)}
    if not args.no_brute:
        masks["brute"] = s.valid.copy()
    print(f"{args.split}: {len(s.queries)} queries, {len(data.items)} photos, {len(names)} individuals; "
          f"shortlist {masks['short'].sum(1).mean():.0f}, gallery {s.valid.sum(1).mean():.0f} photos per query",
          flush=True)
    rows, base_cost = [], None
    for text in args.settings.split(","):
        st = parse_setting(text)
        # the features do not depend on the verifier's cosine: extract (and cache) them once per setting
        fm = build_local("aliked", cfg, min_sim=0.65, **st)
        c0 = time.process_time()
        feats, _ = local_features([it.path for it in data.items], fm, max_side=cfg.crop_max_side,
                                  cache=args.out / "cache")
        c_feat = (time.process_time() - c0) / len(data.items)
        if c_feat < 0.05:  # read from the cache, which measures nothing: time ten fresh extractions
            ims = [load_image(it.path, cfg.crop_max_side) for it in data.items[:10]]
            c0 = time.process_time()
            for im in ims:
                fm.features(im)
            c_feat = (time.process_time() - c0) / len(ims)
        for sim in (float(x) for x in args.min_sims.split(",")):
            m = build_local("aliked", cfg, min_sim=sim, **st)
            res = {"setting": text, "min_sim": sim, "cpu_s_per_photo": c_feat,
                   "keypoints_mean": float(np.mean([len(f) for f in feats]))}
            for lst, mask in masks.items():
                c0 = time.process_time()  # CPU, not brute_force's wall time: the machine is shared
                sc, _ = brute_force(s.queries, mask, feats, m)
                c_pair = (time.process_time() - c0) / max(int(mask.sum()), 1)
                sc = np.where(s.valid, np.nan_to_num(sc, nan=0.0), np.nan)  # unscored gallery photos: 0
                met = retrieval_metrics(sc, ql, ind)
                res[lst] = {k: float(met[k]) for k in ("top1", "top5", "mAP")}
                res[f"cpu_ms_per_pair_{lst}"] = 1000 * c_pair
            cost = res["cpu_s_per_photo"]
            base_cost = base_cost or cost
            res["feature_cost_ratio"] = cost / base_cost
            rows.append(res)
            b = res.get("brute", {})
            print(f"{text:<14} sim {sim:<5g} kp {res['keypoints_mean']:6.0f}  short "
                  f"{res['short']['top1']:.3f}/{res['short']['top5']:.3f}/{res['short']['mAP']:.3f}  brute "
                  f"{b.get('top1', float('nan')):.3f}/{b.get('top5', float('nan')):.3f}/{b.get('mAP', float('nan')):.3f}  "
                  f"criterion {(b.get('top1', 0) + b.get('mAP', 0)) / 2:.3f}  "
                  f"{cost:.2f} s CPU/photo ({res['feature_cost_ratio']:.2f}x), "
                  f"{res['cpu_ms_per_pair_short']:.1f} ms/pair", flush=True)
            (args.out / f"results-{args.split}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
