"""Re-identification benchmark (issue 5): accuracy and speed, with ratios against a baseline run here.

Prints:
- fused / embedding / verifier top-1 on held-out synthetic individuals (rendered now with
  ``spotid synth crops`` into a temp folder, first id far from any training ids);
- the same on ``../shared/data/reid/nyala-train`` with the encounter rule ``'^(\\d+)_'``;
- seconds per query against a ~1,000-image gallery (fused path as ``spotid identify`` runs it: cosine
  top-k + descriptor-vote top-k over one FLANN index of all gallery RootSIFT descriptors, verify the
  union; the index is built once per gallery and its build time is printed separately) vs the
  BASELINE = brute-force plain SIFT matching (OpenCV SIFT, BFMatcher 2-NN, Lowe ratio, RANSAC
  homography) of every gallery image, measured in this run on the same images;
- ms per crop embedding (batch 32) vs the same baseline's per-image SIFT extraction.

Usage: ``python benchmarks/reid.py [--quick] [--json OUT]``; 1 thread (shared CPU). Numbers vary with
machine load; the ratios are what to compare between runs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NYALA = ROOT.parent / "shared" / "data" / "reid" / "nyala-train"


def _stages(args):
    import cv2
    import torch

    from spotid.config import default_yaml, load_config, parse_setting
    from spotid.identify.calibrate import load_calibration
    from spotid.identify.cli import _extractor, _verifier
    from spotid.identify.embedder import Embedder
    from spotid.identify.flank import FlankClassifier
    from spotid.identify.pipeline import IdentifyConfig

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        changes = dict(parse_setting(t) for t in args.set)
        if args.no_foreground:
            changes["foreground"] = False
        cfg = load_config(IdentifyConfig, default_yaml(IdentifyConfig), **changes)
    except (TypeError, ValueError) as e:
        raise SystemExit(f"--set: {e}; see configs/identify.yaml for the names and values")
    args.verify_all = cfg.verify_all if args.verify_all is None else args.verify_all
    return (Embedder(args.model), FlankClassifier(args.flank_model),
            load_calibration(args.calibration, descriptor=cfg.descriptor),
            _extractor(cfg), _verifier(cfg))


def synth_crops(out: Path, individuals: int, per_flank: int, seed: int, first_id: int, chunk: int = 4) -> Path:
    """Render held-out individuals with ``spotid synth crops`` in chunks of ``chunk`` individuals
    (seed + i, first-id + i), so one renderer failure costs one chunk, not the benchmark."""
    for i in range(0, individuals, chunk):
        cmd = [sys.executable, "-m", "spotid", "synth", "crops", str(out), "--individuals", str(min(chunk, individuals - i)),
               "--per-flank", str(per_flank), "--seed", str(seed + i), "--first-id", str(first_id + i)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"warning: synth crops chunk {i} failed: {r.stderr.strip()[-200:]}", file=sys.stderr)
    return out


class PlainSift:
    """The baseline: OpenCV SIFT (no RootSIFT, no CLAHE, no cap), BFMatcher 2-NN + ratio 0.8,
    RANSAC homography; inliers against every gallery image."""

    def __init__(self):
        import cv2
        self.cv2 = cv2
        self.sift = cv2.SIFT_create()
        self.bf = cv2.BFMatcher(cv2.NORM_L2)

    def features(self, im):
        g = np.asarray(im.convert("L"))
        kp, de = self.sift.detectAndCompute(g, None)
        return (np.array([k.pt for k in kp], np.float32).reshape(-1, 2), de)

    def inliers(self, a, b) -> int:
        cv2 = self.cv2
        if a[1] is None or b[1] is None or len(a[1]) < 2 or len(b[1]) < 2:
            return 0
        good = [m for m, n in (p for p in self.bf.knnMatch(a[1], b[1], k=2) if len(p) == 2) if m.distance < 0.8 * n.distance]
        if len(good) < 4:
            return 0
        q = a[0][[m.queryIdx for m in good]]
        r = b[0][[m.trainIdx for m in good]]
        _, mask = cv2.findHomography(q, r, cv2.RANSAC, 5.0)
        return int(mask.sum()) if mask is not None else 0


def speed(args, data, ver, cal) -> dict:
    """s/query on the nyala gallery (all 1,213 images, both flanks: the ~1,000-image case) and
    ms/embedding, against the plain-SIFT baseline. The baseline's brute force is timed on
    ``--baseline-gallery`` images and scaled linearly to the full gallery (it is linear by design)."""
    from spotid.identify.match import Gallery, Matcher
    from spotid.util import open_image_reduced

    n = len(data.items)
    gal = Gallery(data.embeddings, data.features, [it.individual for it in data.items])
    m = Matcher(ver, cal, shortlist=args.shortlist, verify_all=args.verify_all)
    rng = np.random.default_rng(0)
    qs = rng.choice(n, size=min(args.speed_queries, n), replace=False)
    t0 = time.perf_counter()
    gal.index()
    s_index = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    for q in qs:
        mask = np.ones(n, bool)
        mask[q] = False
        m(data.embeddings[q], data.features[q], gal, mask)
    s_fused = (time.perf_counter() - t0) / len(qs)
    cpu_fused = (time.process_time() - c0) / len(qs)
    base = PlainSift()
    sub = rng.choice(n, size=min(args.baseline_gallery, n), replace=False)
    t0 = time.perf_counter()
    bfeat = [base.features(open_image_reduced(data.items[i].path, 512)[0]) for i in sub]
    ms_base_feat = 1000 * (time.perf_counter() - t0) / len(sub)
    t0 = time.perf_counter()
    nq = max(1, args.baseline_queries)
    for q in range(nq):
        for g in bfeat:
            base.inliers(bfeat[q], g)
    s_base = (time.perf_counter() - t0) / nq * (n / len(sub))
    ms_emb = 1000 * data.embed_seconds / n
    return {"gallery_images": n, "s_per_query_fused": s_fused, "s_per_query_baseline_plain_sift": s_base,
            "index_build_seconds": s_index, "cpu_s_per_query_fused": cpu_fused,
            "gallery_descriptors": int(sum(len(f) for f in data.features)),
            "baseline_timed_on": len(sub), "speedup_vs_baseline": s_base / s_fused if s_fused else None,
            "ms_per_embedding": ms_emb, "ms_per_rootsift_features": 1000 * data.feature_seconds / n,
            "ms_per_plain_sift_features": ms_base_feat,
            "embedding_vs_plain_sift_extraction": ms_emb / ms_base_feat if ms_base_feat else None,
            "targets": {"s_per_query": 0.5, "ms_per_embedding": 30}}


def accuracy(root: Path, encounter: str | None, args, emb, fl, cal, fx, ver, limit=None):
    """(report, EvalData) of ``spotid eval reid`` on ``root``."""
    from spotid.identify.evaluate import compute_scores, evaluate, list_items, prepare, query_flanks

    t0 = time.perf_counter()
    data = prepare(list_items(root, encounter), embedder=emb, flank=fl, extractor=fx, cache=args.cache)
    s = compute_scores(data, ver, cal, shortlist=args.shortlist, limit=limit, full_verifier=not args.no_full_verifier,
                       verify_all=args.verify_all, unknown_flank=args.unknown_flank)
    res = evaluate(data, s, cal)
    flanks = {f: data.flanks.count(f) for f in sorted(set(data.flanks))}
    rep = {"images": len(data.items), "individuals": len({it.individual for it in data.items}),
           "queries": int(len(s.queries)), "flanks": flanks, "unknown_flank": args.unknown_flank,
           "queries_by_flank": query_flanks(data, s),
           "seconds_per_query": s.seconds_per_query,
           "total_seconds": time.perf_counter() - t0, "scorers": res}
    return rep, data


def main() -> None:
    from spotid.identify.evaluate import UNKNOWN_FLANK

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer queries everywhere (smoke run)")
    ap.add_argument("--model"), ap.add_argument("--flank-model"), ap.add_argument("--calibration")
    ap.add_argument("--synth-dir", type=Path, help="existing `spotid synth crops` folder (default: render now)")
    ap.add_argument("--individuals", type=int, default=20)
    ap.add_argument("--per-flank", type=int, default=6)
    ap.add_argument("--first-id", type=int, default=90000, help="held-out ids, far from training ids")
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--nyala-limit", type=int, default=None, help="queries on nyala (default all)")
    ap.add_argument("--shortlist", type=int, default=30, help="cosine top-k and vote top-k (union verified)")
    ap.add_argument("--verify-all", type=int, default=None,
                    help="galleries up to this size are verified whole (default: configs/identify.yaml)")
    ap.add_argument("--baseline-gallery", type=int, default=150)
    ap.add_argument("--cache", type=Path, help="folder caching flank/embedding/features between runs")
    ap.add_argument("--speed-queries", type=int, default=50)
    ap.add_argument("--baseline-queries", type=int, default=3)
    ap.add_argument("--no-full-verifier", action="store_true", help="skip brute-force verifier-only scoring")
    ap.add_argument("--unknown-flank", choices=UNKNOWN_FLANK, default="both",
                    help="views the flank classifier cannot place: compared with either flank (as identify "
                         "does) or left out (the protocol before 2026-12-01)")
    ap.add_argument("--no-foreground", action="store_true",
                    help="keypoints from the whole crop, not only where models/foreground sees the animal")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="identify setting (configs/identify.yaml) for this run, e.g. descriptor=rootsift+vgg")
    ap.add_argument("--skip", default="", help="comma list of: synth,nyala,speed")
    ap.add_argument("--json", type=Path, help="also write the report here")
    args = ap.parse_args()
    if args.quick:
        args.individuals, args.per_flank, args.nyala_limit = 6, 4, 60
        args.speed_queries, args.baseline_queries, args.baseline_gallery = 10, 1, 60
    skip = set(filter(None, args.skip.split(",")))
    emb, fl, cal, fx, ver = _stages(args)
    report: dict = {"embedder": emb.version, "flank": fl.version, "verifier": ver.version, "calibration": cal.version,
                    "features": fx.version, "verify_all": args.verify_all, "shortlist": args.shortlist}
    if "synth" not in skip:
        with tempfile.TemporaryDirectory(prefix="reid-bench-") as tmp:
            d = args.synth_dir or synth_crops(Path(tmp) / "crops", args.individuals, args.per_flank, args.seed,
                                              args.first_id)
            report["synthetic_heldout"], _ = accuracy(d, r"^(e\d+)_", args, emb, fl, cal, fx, ver)
    if NYALA.is_dir() and not {"nyala", "speed"} <= skip:
        rep, data = accuracy(NYALA, r"^(\d+)_", args, emb, fl, cal, fx, ver,
                             args.nyala_limit if "nyala" not in skip else 1)
        if "nyala" not in skip:
            report["nyala_encounter_rule"] = rep
        if "speed" not in skip:
            report["speed"] = speed(args, data, ver, cal)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


def print_report(r: dict) -> None:
    print(f"embedder {r['embedder']}  flank {r.get('flank')}  verifier {r['verifier']}  calibration {r['calibration']}")
    for key, target in (("synthetic_heldout", 0.95), ("nyala_encounter_rule", 0.36)):
        if key in r:
            a = r[key]
            print(f"\n{key}: {a['queries']} queries ({a['queries_by_flank']}; unplaced views: "
                  f"{a['unknown_flank']}), {a['individuals']} individuals, flanks {a['flanks']} "
                  f"(target fused top-1 >= {target})")
            for k, m in a["scorers"].items():
                print(f"  {k:9s} top-1 {m['top1']:.3f}  top-5 {m['top5']:.3f}  mAP {m['mAP']:.3f}  "
                      f"BAKS {m['BAKS']:.3f}  BAUS {m['BAUS']:.3f}  top-1 by query flank "
                      + ", ".join(f"{g} {v:.3f}" for g, v in m["top1_by_query_flank"].items()))
    if "speed" in r:
        s = r["speed"]
        print(f"\nspeed (gallery {s['gallery_images']} images):")
        print(f"  descriptor index over {s['gallery_descriptors']} descriptors built once in {s['index_build_seconds']:.1f} s")
        print(f"  fused {s['s_per_query_fused']:.3f} s/query vs baseline plain SIFT brute force "
              f"{s['s_per_query_baseline_plain_sift']:.3f} s/query: {s['speedup_vs_baseline']:.1f}x faster (target <= 0.5 s); "
              f"{s['cpu_s_per_query_fused']:.3f} CPU s/query")
        print(f"  embedding {s['ms_per_embedding']:.1f} ms/crop (target <= 30) = {s['embedding_vs_plain_sift_extraction']:.2f}x "
              f"plain SIFT extraction ({s['ms_per_plain_sift_features']:.1f} ms); RootSIFT {s['ms_per_rootsift_features']:.1f} ms")


if __name__ == "__main__":
    main()
