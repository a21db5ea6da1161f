"""Reading a synth card's truth (COCO Camera Traps ``truth.json``) against a catalog: which detection
found which true leopard. The catalog is only read. Used to score the pipeline on synthetic cards
(spotid demo, the matcher's calibration cards, benchmarks).
"""
from __future__ import annotations

from pathlib import Path

from spotid.catalog import Catalog
from spotid.catalog.tables import detections
from spotid.types import iou as _iou


def truth_boxes(cat: Catalog, truth: dict, card_root: Path, min_iou: float = 0.3) -> dict[int, dict]:
    """{detection id: the synth truth annotation it finds} for the catalog's detections of a synth card.

    A detection is matched to the truth leopard box in the same file with the highest IoU (>= ``min_iou``);
    detections matching none (false positives, other species) are absent.
    """
    images = {im["id"]: im for im in truth.get("images", [])}
    by_file: dict[str, list] = {}
    for a in truth.get("annotations", []):
        if a.get("individual_id"):
            im = images.get(a["image_id"])
            if im is not None:
                by_file.setdefault(str(Path(im["file_name"]).as_posix()), []).append((a, im))
    root = card_root.resolve()
    out: dict[int, dict] = {}
    for r in detections.boxes_with_frames(cat):
        try:
            rel = Path(r["path"]).resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        best, best_iou = None, min_iou
        for a, im in by_file.get(rel, []):
            W, H = im.get("width") or r["width"], im.get("height") or r["height"]
            if not W or not H:
                continue
            iou = _iou((r["x"] * W, r["y"] * H, r["w"] * W, r["h"] * H), tuple(a["bbox"]))
            if iou >= best_iou:
                best, best_iou = a, iou
        if best is not None:
            out[int(r["id"])] = best
    return out
