"""Does tiling find the small and distant animals the 416 px detector misses? (issue 20, not shipped)

The builtin detector runs on the whole frame (as ``spotid detect``) and, with ``--grid G``, also on a
G x G grid of overlapping tiles (``--overlap`` of a tile shared with its neighbour), each letterboxed to
the detector's input size; the frame is decoded so a tile keeps its pixels. Tile boxes go back to frame
coordinates and all boxes are merged by NMS (IoU 0.45) before the cascade classifier, exactly as the
detector's own boxes are classified. ``--tile-min-conf`` drops tile boxes below it (whole-frame boxes
keep the detector's own threshold).

Prints, per set of ``../shared`` (the frames ``benchmarks/classifier.py`` uses): animal/empty agreement
with the reference boxes at the typical threshold, box recall / precision, VOC leopards found and called
leopard, frames of other animals with a box labelled leopard, and CPU seconds per frame, with the ratio
to the whole-frame run measured in the same process.

    python benchmarks/detect_tiles.py --grid 2 --overlap 0.2 [--tile-min-conf 0.4]
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from classifier import OTHER_SETS, SHARED, truth_sets  # noqa: E402

log = logging.getLogger("detect_tiles")


def tiles(w: int, h: int, grid: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """``grid`` x ``grid`` windows ``(x0, y0, x1, y1)`` covering a ``w`` x ``h`` image, neighbours sharing
    ``overlap`` of a window's side."""
    tw, th = w / (grid - (grid - 1) * overlap), h / (grid - (grid - 1) * overlap)
    out = []
    for gy in range(grid):
        for gx in range(grid):
            x0, y0 = round(gx * tw * (1 - overlap)), round(gy * th * (1 - overlap))
            out.append((x0, y0, min(w, round(x0 + tw)), min(h, round(y0 + th))))
    return out


def detect_tiled(inner, path: Path, grid: int, overlap: float, tile_min_conf: float):
    """One frame through the whole-frame pass plus the tiles; returns an ImageResult after the cascade."""
    import torch
    from torchvision.ops import nms

    from spotid.detect.builtin import decode_reduced
    from spotid.detect.model import letterbox_array, xyxy_px_to_norm_xywh
    from spotid.types import Detection, ImageResult

    d = decode_reduced(path, inner.input_size * grid)
    if d.failure:
        return ImageResult(path.name, (), d.failure)
    img = d.image
    h, w = img.shape[:2]
    canvas, lb = letterbox_array(img, inner.input_size, d.orig_size, rect=True)
    windows = [(canvas, lb, (0.0, 0.0, 1.0, 1.0))]
    if grid > 1:
        for x0, y0, x1, y1 in tiles(w, h, grid, overlap):
            c, tlb = letterbox_array(np.ascontiguousarray(img[y0:y1, x0:x1]), inner.input_size, rect=True)
            windows.append((c, tlb, (x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h)))
    boxes, scores = [], []
    for (_, wlb, (fx, fy, fw, fh)), (b, s, _) in zip(windows, inner.detect_arrays([c for c, _, _ in windows])):
        if len(b) == 0:
            continue
        nb = xyxy_px_to_norm_xywh(b.numpy(), wlb)   # normalised [x_min, y_min, w, h] of the window
        nb[:, 0], nb[:, 1] = fx + nb[:, 0] * fw, fy + nb[:, 1] * fh
        nb[:, 2], nb[:, 3] = nb[:, 2] * fw, nb[:, 3] * fh
        for bb, sc in zip(nb, s.tolist()):
            if (fw < 1.0 and sc < tile_min_conf) or bb[2] <= 0 or bb[3] <= 0:
                continue
            boxes.append(bb)
            scores.append(sc)
    dets = []
    if boxes:
        xywh = torch.tensor(np.array(boxes), dtype=torch.float32)
        keep = nms(torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1), torch.tensor(scores), 0.45).tolist()
        dets = [Detection(1, float(scores[i]), tuple(float(v) for v in boxes[i])) for i in keep]
    if dets and inner.classifier is not None:
        dets = inner.classifier.classify(d, dets, inner.classify_min_conf)
        dets, _ = inner.classifier.split(dets)
    return ImageResult(path.name, tuple(dets), None, max((x.conf for x in dets), default=0.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", type=int, default=2)
    ap.add_argument("--overlap", type=float, default=0.2)
    ap.add_argument("--tile-min-conf", type=float, default=0.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} not found: this benchmark needs ../shared beside the repository")
    import torch

    from spotid.detect.config import DetectConfig
    from spotid.detect.detector import make_detector
    from spotid.detect.evaluate import evaluate

    torch.set_num_threads(2)
    det = make_detector(DetectConfig(static_fp=False, decode_workers=1))
    for name, (root, frames, truth) in truth_sets(SHARED, []).items():
        row = {}
        for grid in (1, args.grid):
            t0 = time.process_time()
            res = {}
            for p in frames:
                rel = p.relative_to(root).as_posix()
                res[rel if rel in truth else p.name] = detect_tiled(det.inner, p, grid, args.overlap, args.tile_min_conf)
            cpu = (time.process_time() - t0) / len(frames)
            ev = evaluate(res, truth, threshold=det.typical_threshold)
            leo = sum(any(x.label == "leopard" for x in r.detections) for r in res.values())
            row[grid] = cpu
            log.info("%-18s grid %d: agreement %d/%d, recall %.3f, precision %.3f, VOC leopards found %d, called "
                     "leopard %d, frames with a leopard box %d%s, %.2f s CPU/frame (%.2fx)", name, grid,
                     ev.image_agreement, ev.images, ev.recall, ev.precision, ev.leopard_boxes_found,
                     ev.leopard_classified_leopard, leo, " (other animals: must be 0)" if name in OTHER_SETS else "",
                     cpu, cpu / row[1])


if __name__ == "__main__":
    main()
