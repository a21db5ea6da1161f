"""Detector speed and recall: spotid's fast path against zamba's way, same weights, same frames, same run.

Baseline (zamba 2.7.2 ``MegadetectorLiteYoloX.detect_image``): PIL full decode, ``ImageOps.pad``
bicubic to 640x640 (top-left, black), one image at a time, conf 0.25, NMS 0.45, yolox ``postprocess``.
Ours: :class:`spotid.detect.builtin.BuiltinDetector` (reduced JPEG decoding, smaller letterbox,
batches, decode threads overlapping inference).

Frames: the real camera-trap frames in ../shared/data/camera-traps (megadetector-test, serengeti-bursts,
southwest) plus the amur-leopard-voc test images. Recall is against MegaDetector v5a boxes with
conf >= 0.2 (megadetector-test: mdv5a-results.json; southwest: animl's MDv5a Detections.csv) and the
hand-drawn VOC leopard boxes, a truth box counting as found when a detection with conf >= 0.25
overlaps it with IoU >= 0.5 (box recall) and, per image, when any detection >= 0.25 exists
(image recall). A 1080p set (the same frames resized to 1920x1080 in a temp dir) gives frames/s on
1080p input. Besides wall-clock frames/s, CPU seconds per frame (process time, all threads) are
printed: on a shared machine they are the contention-free cost, and cores / cpu_s_per_frame
bounds the frames/s of a dedicated machine.

    python benchmarks/detect.py [--threads 1] [--sizes 416,480,640] [--batch-size 8] [--json]
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def iou_xywh(a, b) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def load_frames() -> tuple[list[Path], dict[Path, list]]:
    """Frames and truth boxes (normalised xywh) where known."""
    ct = SHARED / "camera-traps"
    truth: dict[Path, list] = {}
    frames: list[Path] = []
    md = json.loads((ct / "megadetector-test/mdv5a-results.json").read_text())
    for im in md["images"]:
        p = ct / "megadetector-test" / im["file"]
        frames.append(p)
        truth[p] = [d["bbox"] for d in im.get("detections") or [] if d["conf"] >= 0.2]
    frames += sorted((ct / "serengeti-bursts").glob("*.JPG"))
    sw = ct / "southwest"
    sw_truth: dict[str, list] = {}
    with open(sw / "animl-ground-truth/main/Detections.csv") as f:
        for r in csv.DictReader(f):
            if r["conf"] and float(r["conf"]) >= 0.2 and r["category"] in {"1", "2", "3"}:
                sw_truth.setdefault(r["FileName"], []).append([float(r[f"bbox{i}"]) for i in range(1, 5)])
    for p in sorted(sw.iterdir()):
        if p.suffix.lower() in {".jpg", ".jpeg"} and p.stat().st_size > 0:
            frames.append(p)
            truth[p] = sw_truth.get(p.name, [])
    voc = SHARED / "detection/amur-leopard-voc"
    for p in sorted((voc / "test-images").iterdir()):
        ann = voc / "annotations" / (p.stem + ".xml")
        if not ann.exists():
            continue
        root = ET.parse(ann).getroot()
        from PIL import Image

        w, h = Image.open(p).size  # some annotations carry size 0x0
        boxes = []
        for o in root.iter("object"):
            bb = o.find("bndbox")
            x1, y1, x2, y2 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append([x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h])
        frames.append(p)
        truth[p] = boxes
    return frames, truth


class ZambaBaseline:
    """zamba 2.7.2 MegadetectorLiteYoloX.detect_image, reproduced without zamba's dependencies."""

    def __init__(self, model):
        self.model = model

    def __call__(self, path: Path) -> list:
        import torch
        from PIL import Image, ImageOps
        from yolox.utils.boxes import postprocess

        img = np.array(Image.open(path).convert("RGB"))
        arr = np.ascontiguousarray(np.array(ImageOps.pad(Image.fromarray(img), (640, 640), method=Image.BICUBIC,
                                                         color=None, centering=(0, 0))), dtype=np.float32)
        x = torch.from_numpy(np.moveaxis(arr, 2, 0)).unsqueeze(0)
        with torch.no_grad():
            out = postprocess(self.model(x), 1, 0.25, 0.45)[0]
        if out is None:
            return []
        o = out.numpy()
        h, w = img.shape[:2]
        ratio = min(640 / w, 640 / h)
        res = []
        for x1, y1, x2, y2, s1, s2, _ in o:
            x1, y1, x2, y2 = x1 / ratio / w, y1 / ratio / h, x2 / ratio / w, y2 / ratio / h
            res.append((float(s1 * s2), [x1, y1, x2 - x1, y2 - y1]))
        return res


def recall(preds: dict[Path, list], truth: dict[Path, list], conf: float = 0.25) -> dict:
    found = total = img_found = img_total = 0
    for p, boxes in truth.items():
        dets = [b for c, b in preds[p] if c >= conf]
        if boxes:
            img_total += 1
            img_found += bool(dets)
        for t in boxes:
            total += 1
            found += any(iou_xywh(t, d) >= 0.5 for d in dets)
    return {"box_recall": found / max(total, 1), "boxes_found": found, "boxes": total,
            "image_recall": img_found / max(img_total, 1), "images_found": img_found, "images": img_total}


def make_1080p(frames: list[Path], out: Path) -> list[Path]:
    from PIL import Image

    paths = []
    for i, p in enumerate(frames):
        im = Image.open(p).convert("RGB")
        if max(im.size) < 1000:
            continue
        q = out / f"f{i:03d}.jpg"
        im.resize((1920, 1080), Image.BILINEAR).save(q, quality=90)
        paths.append(q)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 on the shared dev machine; cores for the real figure)")
    ap.add_argument("--sizes", default="416", help="comma-separated letterbox sizes for our path")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--model", default=None, help="detector model folder (default: the shipped one)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not SHARED.is_dir():
        sys.exit("benchmarks/detect.py needs ../shared/data (real frames); it is absent")

    import torch

    torch.set_num_threads(args.threads)
    from spotid.detect.builtin import BuiltinDetector

    frames, truth = load_frames()
    report: dict = {"frames": len(frames), "threads": args.threads, "runs": {}}

    det = BuiltinDetector(model_dir=args.model, threshold=0.25, batch_size=args.batch_size,
                          decode_workers=max(1, args.threads))
    base = ZambaBaseline(det.model)
    base(frames[0])  # warm-up
    t, c = time.perf_counter(), time.process_time()
    base_preds = {p: base(p) for p in frames}
    dt, dc = time.perf_counter() - t, time.process_time() - c
    report["runs"]["zamba_baseline_640"] = {"fps": len(frames) / dt, "s_per_frame": dt / len(frames),
                                            "cpu_s_per_frame": dc / len(frames), **recall(base_preds, truth)}
    base_fps = len(frames) / dt

    for size in [int(s) for s in args.sizes.split(",")]:
        det.input_size = size
        list(det(frames[:2]))  # warm-up
        t, c = time.perf_counter(), time.process_time()
        res = list(det(frames))
        dt, dc = time.perf_counter() - t, time.process_time() - c
        preds = {p: [(d.conf, list(d.bbox)) for d in r.detections] for p, r in zip(frames, res)}
        report["runs"][f"spotid_{size}"] = {"fps": len(frames) / dt, "s_per_frame": dt / len(frames),
                                            "cpu_s_per_frame": dc / len(frames),
                                            "speedup": (len(frames) / dt) / base_fps, **recall(preds, truth)}

    with tempfile.TemporaryDirectory() as tmp:
        hd = make_1080p(frames, Path(tmp))
        det.input_size = int(args.sizes.split(",")[0])
        list(det(hd[:2]))
        t, c = time.perf_counter(), time.process_time()
        list(det(hd))
        dt, dc = time.perf_counter() - t, time.process_time() - c
        report["runs"][f"spotid_{det.input_size}_1080p"] = {"frames": len(hd), "fps": len(hd) / dt,
                                                            "cpu_s_per_frame": dc / len(hd)}

    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"{report['frames']} real frames, torch threads = {args.threads}")
    for name, r in report["runs"].items():
        extra = ""
        if "box_recall" in r:
            extra = (f"  box recall {r['boxes_found']}/{r['boxes']} = {r['box_recall']:.3f}"
                     f"  image recall {r['images_found']}/{r['images']}")
        sp = f"  x{r['speedup']:.2f} vs baseline" if "speedup" in r else ""
        cpu = r["cpu_s_per_frame"]
        print(f"{name:28s} {r['fps']:7.2f} frames/s{sp}  cpu {cpu * 1000:6.0f} ms/frame"
              f" (= {1 / cpu:5.2f} frames/s per busy core){extra}")


if __name__ == "__main__":
    main()
