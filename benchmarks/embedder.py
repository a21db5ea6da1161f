"""Embedder and flank model figures: per-crop latency and embedding-only re-ID accuracy.

Latency: batch of 1, full stage call (preprocessing included) on a 300x420 RGB crop, with 1 and 2
torch threads, against a baseline in the same run: torchvision resnet18 at 224x224 (the usual
re-ID backbone) run the same way. Wall time on this shared machine depends on what else runs, so
CPU time per crop (process time; equals wall time on an idle core for 1 thread) is printed too, and
the ratio ours/baseline is the stable figure.

Accuracy (``--data DIR``): leave-one-out, same flank, the query's own encounter excluded from the
gallery, embedding only; on individuals the model never trained on (its card lists them) and on
the full set (partly trained on, optimistic). ``--flank`` also reports flank accuracy.

    python benchmarks/embedder.py [--model models/embedder] [--data ../shared/data/reid/nyala-train]
                                  [--flank models/flank] [--json] [--test-individuals]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def time_call(fn, n: int = 30, warmup: int = 5) -> tuple[float, float]:
    """(median wall ms, mean CPU ms) per call."""
    for _ in range(warmup):
        fn()
    walls = []
    c0 = time.process_time()
    for _ in range(n):
        t = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
    cpu = (time.process_time() - c0) / n
    return float(np.median(walls) * 1000), cpu * 1000


def latency(model_path, flank_path, threads: int) -> dict:
    import torchvision

    from spotid.identify.embedder import Embedder, preprocess
    from spotid.identify.flank import FlankClassifier

    torch.set_num_threads(threads)
    crop = [np.random.default_rng(0).integers(0, 255, (300, 420, 3), dtype=np.uint8)]
    emb = Embedder(model_path, batch_size=1)
    base = torchvision.models.resnet18(weights=None).eval()

    def baseline():
        with torch.inference_mode():
            base(preprocess(crop, (224, 224), (0.5,) * 3, (0.25,) * 3))

    out = {"threads": threads}
    out["embedder_wall_ms"], out["embedder_cpu_ms"] = time_call(lambda: emb(crop))
    out["baseline_resnet18_224_wall_ms"], out["baseline_cpu_ms"] = time_call(baseline)
    out["ratio_wall"] = out["embedder_wall_ms"] / out["baseline_resnet18_224_wall_ms"]
    if flank_path is not None:
        clf = FlankClassifier(flank_path, batch_size=1)
        out["flank_wall_ms"], out["flank_cpu_ms"] = time_call(lambda: clf(crop))
    return out


def test_individuals_reid(model, data) -> dict:
    """Embedding-only re-ID on the card's held-out (test) individuals of each data set, each image
    decoded whole and given to the ``Embedder`` as identify would (aspect-kept cards need this:
    ``evaluate_embedder`` squashes images to ``input_size`` first). ATRW-style folders without flank
    names count as one flank ('unknown'), files named ENCUNK_* as their own encounters."""
    from spotid.identify.embedder import Embedder
    from spotid.train.common import reid_metrics, scan_identity_dirs
    from spotid.train.embedder_head import decode_rgb

    emb = Embedder(model)
    held = set()
    for d in (emb.card.get("training_data") or {}).values():
        held |= set(d.get("heldout_individuals", []))
    out = {}
    for folder in data:
        ss = [s for s in scan_identity_dirs([folder], flank_regex="(?i)(left|right)", encounter_regex=r"^(.+)_[^_]+$")
              if s.individual in held and s.flank in ("left", "right", "unknown")]
        if not ss:
            continue
        t = time.perf_counter()
        vec = emb([decode_rgb(s.path, 2 * max(1, emb.long_side or max(emb.input_size))) for s in ss])
        ms = (time.perf_counter() - t) / len(ss) * 1000
        m = reid_metrics(vec, [s.individual for s in ss], [s.flank for s in ss], [s.encounter for s in ss])
        m.update(individuals=len({s.individual for s in ss}), ms_per_image_decode_and_embed=ms)
        out[ss[0].source] = m
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="embedder folder (default: the active/shipped one)")
    ap.add_argument("--flank", default=None, help="flank folder (default: the shipped one)")
    ap.add_argument("--data", action="append", default=[], help="folder-per-individual set (repeatable)")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--test-individuals", action="store_true",
                    help="re-ID on the card's held-out test individuals only, whole images through the Embedder")
    args = ap.parse_args()
    from spotid.modelstore import resolve

    flank_path = args.flank or resolve("flank").folder
    report: dict = {"model": resolve("embedder", args.model).version, "latency": []}
    if not args.skip_latency:
        for th in (1, 2):
            report["latency"].append(latency(args.model, flank_path, th))
    if args.data and args.test_individuals:
        torch.set_num_threads(1)
        report["reid_test_individuals"] = test_individuals_reid(args.model, args.data)
    elif args.data:
        from spotid.train.evaluate import evaluate_embedder, evaluate_flank

        torch.set_num_threads(1)
        report["reid_embedding_only"] = evaluate_embedder(args.model, args.data)
        report["flank_heldout"] = evaluate_flank(flank_path, args.data)
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"embedder {report['model']}")
    for lat in report["latency"]:
        print(f"  {lat['threads']} thread(s): embed {lat['embedder_wall_ms']:.1f} ms wall / "
              f"{lat['embedder_cpu_ms']:.1f} ms CPU per crop; baseline resnet18@224 "
              f"{lat['baseline_resnet18_224_wall_ms']:.1f} ms wall -> ratio {lat['ratio_wall']:.2f}; "
              f"flank {lat.get('flank_wall_ms', float('nan')):.1f} ms wall")
    for src, m in report.get("reid_test_individuals", {}).items():
        print(f"  re-ID test individuals of {src} ({m['individuals']}): top-1 {m['top1']:.3f} top-5 {m['top5']:.3f} "
              f"mAP {m['mAP']:.3f} ({m['queries']} queries; {m['ms_per_image_decode_and_embed']:.0f} ms/image "
              "decode+embed)")
    if "reid_embedding_only" in report:
        r = report["reid_embedding_only"]
        for k in ("heldout", "full"):
            m = r[k]
            print(f"  re-ID {k:8s}: top-1 {m['top1']:.3f} top-5 {m['top5']:.3f} mAP {m['mAP']:.3f} "
                  f"({m['queries']} queries)")
        f = report["flank_heldout"]
        print(f"  flank held-out: accuracy {f.get('accuracy')} on {f.get('images')} images, coverage "
              f"{f.get('coverage')} at {f.get('threshold')}, accuracy when answered {f.get('accuracy_when_answered')}")


if __name__ == "__main__":
    main()
