"""Does identify join the new bursts of one real animal? Nyala encounters as new bursts (issue 20).

    OMP_NUM_THREADS=1 python benchmarks/new_bursts_real.py [--split validation] [--out /tmp/spotid-fusion]

On an empty catalog every burst is new, and identify joins new bursts of one flank by
:func:`spotid.identify.match.cluster_decide`: the decision model on the best evidence between two bursts
against each one's best evidence for any other burst, threshold ``new_cluster_threshold``, never on fewer
than ``new_cluster_min_inliers`` inliers unless (``new_cluster_min_pair_prob``) their fused pair P reaches
it. Here each nyala encounter of the embedder's ``--split``
individuals (one flank: the flank classifier's) stands for a new burst; the evidence between two of them
is the best over their photos of the shipped fusion's P, RootSIFT's and ALIKED's inliers, scored on the
Matcher's shortlist (``verify_all: 0``, as in ``reproduce.sh``; the shipped embedder, so on validation
individuals its cosines are memorised, which only helps it). Prints, per flank and floor (inliers, or a pair P),
identities proposed against individuals, split identities, and identities holding more than one animal.
The synthetic demo surveys measure the same rule on rendered bursts (``benchmarks/census_truth.py``).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
NYALA = ROOT.parent / "shared" / "data" / "reid" / "nyala-train"


def encounter_evidence(data, s, short, fusion, flank: str):
    """(encounter names, individual of each, RootSIFT inliers, ALIKED inliers, fused P, cosine) between the
    encounters of ``flank``, ``(n, n)`` each, the best over their photos' shortlist pairs."""
    enc = [f"{it.individual}/{it.encounter}" for it in data.items]
    groups = sorted({e for e, f in zip(enc, data.flanks) if f == flank})
    at = {g: k for k, g in enumerate(groups)}
    n = len(groups)
    sift, ali, prob, cos = (np.zeros((n, n)) for _ in range(4))
    p = fusion.fuse({k: short[k] for k in ("embedding", "sift", "aliked")})
    raw = {k: np.nan_to_num(short[k]) for k in ("embedding", "sift", "aliked")}
    for row, qi in enumerate(np.asarray(s.queries)):
        if data.flanks[qi] != flank:
            continue
        g = at[enc[qi]]
        for j in np.flatnonzero(s.valid[row] & ~np.isnan(p[row])):
            h = at.get(enc[j]) if data.flanks[j] == flank else None
            if h is None or h == g:
                continue
            sift[g, h] = max(sift[g, h], raw["sift"][row, j])
            ali[g, h] = max(ali[g, h], raw["aliked"][row, j])
            if p[row, j] > prob[g, h]:
                prob[g, h], cos[g, h] = p[row, j], raw["embedding"][row, j]
    return groups, np.array([g.split("/")[0] for g in groups]), sift, ali, prob, cos


def audit(labels, truth) -> dict:
    clusters: dict = {}
    for lab, t in zip(labels, truth):
        clusters.setdefault(int(lab), []).append(t)
    major = {k: max(set(v), key=v.count) for k, v in clusters.items()}
    per: dict = {}
    for t in major.values():
        per[t] = per.get(t, 0) + 1
    return {"identities": len(clusters), "splits": sum(c - 1 for c in per.values()),
            "holding_two": sum(len(set(v)) > 1 for v in clusters.values())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="validation", choices=["validation", "test"])
    ap.add_argument("--data", type=Path, default=NYALA)
    ap.add_argument("--out", type=Path, default=Path("/tmp/spotid-fusion"), help="work folder (its cache/ is reused)")
    ap.add_argument("--pair-prob", type=float, nargs="*", default=[0.25, 0.3, 0.35, 0.4],
                    help="values of new_cluster_min_pair_prob to try beside the shipped floor")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not args.data.exists():
        raise SystemExit(f"{args.data} not found: pass --data ../shared/data/reid/nyala-train")
    from lightglue_rerank import first_stage, individuals, link_folder

    from spotid.config import resolve_config
    from spotid.identify.config import IdentifyConfig
    from spotid.identify.fusion import load_fusion
    from spotid.identify.match import FusionDecider, cluster_decide

    cfg = resolve_config(IdentifyConfig)
    folder = link_folder(args.data, individuals(args.split), args.out, args.split)
    data, s, short, *_ = first_stage(folder, args.out / "cache")
    fusion = load_fusion(cfg.fusion)
    print(f"nyala {args.split} individuals, each encounter a new burst; {fusion.version}, "
          f"threshold {cfg.new_cluster_threshold}")
    for flank in ("left", "right"):
        groups, truth, sift, ali, prob, cos = encounter_evidence(data, s, short, fusion, flank)
        print(f"{flank}: {len(groups)} encounters of {len(set(truth))} individuals")
        shipped = cfg.new_cluster_min_inliers
        rows = [(f"RootSIFT >= {shipped} (shipped)", sift, shipped, cfg.new_cluster_min_pair_prob),
                ("max(RootSIFT, ALIKED) >= 12", np.maximum(sift, ali), 12, None),
                ("max(RootSIFT, ALIKED) >= 20", np.maximum(sift, ali), 20, None)]
        rows += [(f"RootSIFT >= {shipped} or pair P >= {p:g}", sift, shipped, p) for p in args.pair_prob]
        rows += [("no floor", sift, 0, None)]
        for name, inl, min_inliers, min_prob in rows:
            a = audit(cluster_decide(inl, cos, FusionDecider(fusion), cfg.new_cluster_threshold,
                                     min_inliers=min_inliers, prob=prob, min_prob=min_prob), truth)
            print(f"  {name:32s} identities {a['identities']:3d}, split {a['splits']:3d}, holding two animals "
                  f"{a['holding_two']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
