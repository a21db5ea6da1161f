"""Which combine rule and weights should the calibrated fusion use? K-fold cross-validation over the
embedder's nyala *validation* individuals, as models/matcher/fusion/README.md describes.

    OMP_NUM_THREADS=1 python benchmarks/fusion_cv.py --embedder WORK/embedder-trainonly \\
        [--folds 3] [--seeds 0,1,2,3,4] [--combines mean,noisy_or,max] [--out /tmp/spotid-fusion-cv] [--json OUT]
        [--synthetic SYN_FIT --synthetic-check SYN_CHECK]

The protocol of ``spotid train fusion`` (``models/matcher/fusion/reproduce.sh``): the 27 validation
individuals of ``models/embedder/split.json``, queries across encounters (``^(\\d+)_``), the Matcher's
shortlist with ``verify_all: 0``, RootSIFT and ALIKED (the ALIKED card's settings) on it, the cosines
of ``--embedder`` (the stand-in head that never trained on these individuals: the shipped one did, and
its cosines there are memorised). Individuals are split into ``--folds`` folds (once per ``--seeds`` seed; the table averages them); for each fold
the per-scorer calibrations are fitted on the shortlist pairs of the other folds' queries against the
other folds' photos, and every candidate (combine rule x weights: equal, and a simplex grid of
quarters where a scorer may get 0) ranks the held-out fold's queries against the held-out fold's
photos only. Criterion: the mean over folds of (top-1 + mAP) / 2, the one ``select_fusion`` uses.
The embedder's test individuals are never read. Prints the best candidates and the shipped one.

``--synthetic SYN_FIT --synthetic-check SYN_CHECK`` (two ``spotid synth crops`` folders of different seeds,
so different coats): the synthetic leopards of SYN_FIT join every fold's calibration fit (their shortlist
pairs, as ``spotid train fusion`` takes them), and each candidate, calibrated on all validation individuals
plus SYN_FIT, also ranks SYN_CHECK's crops against each other across encounters, galleries verified whole
as identify verifies a small catalog. The criterion is then the mean of the two: a fusion that identify
uses must rank real coats (nyala) and the synthetic leopards of the demo surveys.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = ROOT.parent / "shared" / "data" / "reid" / "nyala-train"
SCORERS = ("embedding", "sift", "aliked")


NYALA_ENCOUNTER = r"^(\d+)_"
SYNTH_ENCOUNTER = r"^(\w+/e\d+)_"   # spotid synth crops: <individual>/<flank>/e<k>_<frame>.jpg


def shortlist_scores(folder: Path, embedder: Path | None, cache: Path, *, encounter: str = NYALA_ENCOUNTER,
                     verify_all: int = 0):
    """(items' individuals (N,), query indices (Q,), valid (Q, N), shortlist mask (Q, N), {scorer: (Q, N)}) of
    ``folder``: nyala by default; a ``spotid synth crops`` folder with ``encounter=SYNTH_ENCOUNTER`` and the
    shipped embedder (``embedder=None``: it never saw those coats); ``verify_all`` as identify's."""
    from lightglue_rerank import first_stage

    from spotid.identify.multiscore import shortlist_mask

    data, s, short, *_ = first_stage(folder, cache, embedder=embedder, encounter=encounter, verify_all=verify_all)
    ind = np.array([it.individual for it in data.items], dtype=object)
    return ind, np.asarray(s.queries), s.valid, shortlist_mask(s), {k: short[k] for k in SCORERS}


def _pairs(ind, queries, mask, short, keep) -> tuple[dict, np.ndarray]:
    rows, cols = np.nonzero(mask & keep)
    return {k: v[rows, cols] for k, v in short.items()}, ind[queries[rows]] == ind[cols]


def _fit(parts) -> "Fusion":  # noqa: F821
    from spotid.identify.fusion import fit_fusion

    return fit_fusion({k: np.concatenate([raw[k] for raw, _ in parts]) for k in SCORERS},
                      np.concatenate([same for _, same in parts]))


def check_synthetic(fitted, ind, queries, valid, short, combines) -> dict:
    """{(combine, weights key): (top-1 + mAP) / 2} of every candidate ranking a synthetic check folder."""
    from spotid.identify.fusion import Fusion
    from spotid.identify.metrics import retrieval_metrics
    from spotid.identify.multiscore import fusion_candidates

    out = {}
    for how, w in fusion_candidates(list(SCORERS), combines=combines, step=0.25, drop=True):
        p = Fusion(fitted.calibrations, w, combine=how).fuse(short)
        m = retrieval_metrics(np.where(valid, p, np.nan), ind[queries], ind)
        out[(how, _key(w))] = (m["top1"] + m["mAP"]) / 2
    return out


def _key(w: dict) -> tuple:
    return tuple(round(w[k], 3) for k in SCORERS)


def cross_validate(ind, queries, valid, short_mask, short, *, folds: int, seed: int, combines,
                   extra=()) -> list[dict]:
    from spotid.identify.fusion import Fusion
    from spotid.identify.metrics import retrieval_metrics
    from spotid.identify.multiscore import fusion_candidates

    names = sorted(set(ind))
    rng = np.random.default_rng(seed)
    fold_of = {n: k % folds for k, n in enumerate(rng.permutation(names))}
    item_fold = np.array([fold_of[n] for n in ind])
    q_fold = item_fold[queries]
    per_fold = []
    for f in range(folds):
        train = (q_fold != f)[:, None] & (item_fold != f)[None, :] & short_mask
        fitted = _fit([_pairs(ind, queries, train, short, True), *extra])
        test_rows = np.flatnonzero(q_fold == f)
        gallery = (item_fold == f)[None, :] & valid[test_rows]
        per_fold.append((fitted, test_rows, gallery))
    table = []
    for how, w in fusion_candidates(list(SCORERS), combines=combines, step=0.25, drop=True):
        t1, mp = [], []
        for fitted, rows, gallery in per_fold:
            fu = Fusion(fitted.calibrations, w, fitted.decision, fitted.floor, fitted.meta, how)
            p = fu.fuse({k: v[rows] for k, v in short.items()})
            m = retrieval_metrics(np.where(gallery, p, np.nan), ind[queries[rows]], ind)
            t1.append(m["top1"])
            mp.append(m["mAP"])
        table.append({"combine": how, "weights": {k: round(v, 3) for k, v in w.items()},
                      "top1": float(np.mean(t1)), "mAP": float(np.mean(mp)),
                      "score": float((np.mean(t1) + np.mean(mp)) / 2)})
    return table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedder", type=Path, required=True, help="the stand-in embedder folder (reproduce.sh step 1)")
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--seeds", default="0,1,2,3,4", help="fold assignments to average over (repeated CV)")
    ap.add_argument("--combines", default="mean,noisy_or,max")
    ap.add_argument("--out", type=Path, default=Path("/tmp/spotid-fusion-cv"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--synthetic", type=Path, help="spotid synth crops folder whose leopards join every calibration fit")
    ap.add_argument("--synthetic-check", type=Path, help="spotid synth crops folder (another seed) each candidate ranks")
    args = ap.parse_args(argv)
    if bool(args.synthetic) != bool(args.synthetic_check):
        raise SystemExit("give --synthetic and --synthetic-check together (two `spotid synth crops` folders of different seeds)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from lightglue_rerank import individuals, link_folder

    if not args.data.exists():
        raise SystemExit(f"{args.data} not found: pass --data ../shared/data/reid/nyala-train")
    args.out.mkdir(parents=True, exist_ok=True)
    folder = link_folder(args.data, individuals("validation"), args.out, "validation")
    ind, queries, valid, mask, short = shortlist_scores(folder, args.embedder, args.out)
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    combines = [c.strip() for c in args.combines.split(",") if c.strip()]
    extra, syn = [], None
    if args.synthetic:
        si, sq, _, sm, ss = shortlist_scores(args.synthetic, None, args.out, encounter=SYNTH_ENCOUNTER)
        extra = [_pairs(si, sq, sm, ss, True)]
        fitted = _fit([_pairs(ind, queries, mask, short, True), *extra])
        # the check folder is ranked as identify ranks a small catalog: every gallery crop verified
        ci, cq, cv, _, cs = shortlist_scores(args.synthetic_check, None, args.out, encounter=SYNTH_ENCOUNTER,
                                             verify_all=300)
        syn = check_synthetic(fitted, ci, cq, cv, cs, combines)
    runs = [cross_validate(ind, queries, valid, mask, short, folds=args.folds, seed=sd, combines=combines, extra=extra)
            for sd in seeds]
    table = [dict(rows[0], **{k: float(np.mean([r[k] for r in rows])) for k in ("top1", "mAP", "score")},
                  score_by_seed=[round(r["score"], 4) for r in rows]) for rows in zip(*runs)]
    for r in table:
        r["nyala"] = r["score"]
        if syn is not None:
            r["synthetic"] = syn[(r["combine"], _key(r["weights"]))]
            r["score"] = (r["nyala"] + r["synthetic"]) / 2
    ranked = sorted(table, key=lambda r: -r["score"])
    print(f"{len(set(ind))} validation individuals, {len(queries)} queries, {args.folds} folds x seeds {seeds}; "
          f"criterion (top-1 + mAP) / 2, mean over folds and seeds"
          + (f"; with {args.synthetic.name} in every fit, score = mean of it and of ranking {args.synthetic_check.name}"
             if syn is not None else ""))
    print(f"{'combine':>9} {'emb:sift:aliked':>16} {'top-1':>6} {'mAP':>6} {'score':>6}  by seed"
          + ("  (nyala, synthetic)" if syn is not None else ""))
    from spotid.identify.fusion import load_fusion

    now = load_fusion(None)  # the shipped rule, found among the candidates by its normalised weights
    total = sum(now.weights.get(k, 0.0) for k in SCORERS)
    want = _key({k: now.weights.get(k, 0.0) / total for k in SCORERS})
    shipped = [dict(r, combine=r["combine"] + "*") for r in table if r["combine"] == now.combine and _key(r["weights"]) == want]
    for r in ranked[:8] + shipped[:1]:
        lo = min(v for v in r["weights"].values() if v > 0)
        w = ":".join(f"{r['weights'][k] / lo:.0f}" for k in SCORERS)
        print(f"{r['combine']:>9} {w:>16} {r['top1']:6.3f} {r['mAP']:6.3f} {r['score']:6.4f}  {r['score_by_seed']}"
              + (f"  ({r['nyala']:.4f}, {r['synthetic']:.4f})" if syn is not None else ""))
    print(f"* = the shipped rule ({now.combine}, {now.version})")
    if args.json:
        args.json.write_text(json.dumps({"folds": args.folds, "seeds": seeds, "table": ranked}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
