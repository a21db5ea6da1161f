"""Ground-truth boxes for evaluation and training, from the field's formats.

All readers return ``{file key: [TruthBox, ...]}`` with normalised ``[x_min, y_min, w, h]`` boxes; an
image listed with no boxes is a labelled empty frame. File keys are paths relative to the image
folder (VOC: the file name; COCO CT: ``file_name``; MD JSON: ``file``).

- Pascal VOC folder of ``*.xml`` (``<filename>``, ``<object><name>``, ``<bndbox>`` in pixels);
- COCO Camera Traps JSON (``images``/``annotations``/``categories``; ``bbox`` absolute ``[x, y, w, h]``
  pixels as COCO, or already normalised when every value is <= 1);
- MegaDetector batch JSON (boxes with conf >= ``md_threshold`` count as truth).

Class names map to MD categories: person/human -> 2, vehicle -> 3, empty/blank -> no box, anything
else -> 1 (animal); ``label`` is "leopard" when the name contains "leopard" (but not "leopard cat" /
"leopard_cat", a different species), else "other".
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

EMPTY_NAMES = {"empty", "blank", "none", "nothing"}
PERSON_NAMES = {"person", "human", "people"}
VEHICLE_NAMES = {"vehicle", "car", "truck"}


@dataclass(frozen=True)
class TruthBox:
    category: int
    bbox: tuple[float, float, float, float]
    label: str | None  # "leopard" | "other" | None (person/vehicle)


def name_to_category(name: str) -> tuple[int | None, str | None]:
    n = name.strip().lower().replace("-", " ").replace("_", " ")
    if n in EMPTY_NAMES:
        return None, None
    if n in PERSON_NAMES:
        return 2, None
    if n in VEHICLE_NAMES:
        return 3, None
    is_leopard = "leopard" in n and "leopard cat" not in n
    return 1, ("leopard" if is_leopard else "other")


def read_voc(folder: str | Path, image_dir: str | Path | None = None) -> dict[str, list[TruthBox]]:
    """VOC annotations; with ``image_dir`` only images present there are kept (and image sizes read
    from the files when the XML says 0)."""
    from PIL import Image

    folder = Path(folder)
    present = {p.name for p in Path(image_dir).iterdir()} if image_dir is not None else None
    out: dict[str, list[TruthBox]] = {}
    for xml in sorted(folder.glob("*.xml")):
        root = ET.parse(xml).getroot()
        fname = root.findtext("filename") or (xml.stem + ".jpg")
        if present is not None and fname not in present:
            alt = [n for n in present if Path(n).stem == Path(fname).stem]
            if not alt:
                continue
            fname = alt[0]
        w = float(root.findtext("size/width") or 0)
        h = float(root.findtext("size/height") or 0)
        if (w <= 0 or h <= 0) and image_dir is not None:
            w, h = Image.open(Path(image_dir) / fname).size
        if w <= 0 or h <= 0:
            raise ValueError(f"{xml} has no image size: pass the image folder so sizes can be read")
        boxes = []
        for o in root.iter("object"):
            cat, label = name_to_category(o.findtext("name") or "")
            bb = o.find("bndbox")
            if cat is None or bb is None:
                continue
            x1, y1, x2, y2 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
            boxes.append(TruthBox(cat, (x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h), label))
        out[fname] = boxes
    return out


def read_coco_ct(path: str | Path) -> dict[str, list[TruthBox]]:
    d = json.loads(Path(path).read_text(encoding="utf-8"))
    cats = {c["id"]: c["name"] for c in d.get("categories", [])}
    images = {im["id"]: im for im in d["images"]}
    out: dict[str, list[TruthBox]] = {im["file_name"]: [] for im in d["images"]}
    for a in d.get("annotations", []):
        im = images[a["image_id"]]
        cat, label = name_to_category(cats.get(a.get("category_id"), "animal"))
        if cat is None or "bbox" not in a or a["bbox"] is None:
            continue
        x, y, w, h = (float(v) for v in a["bbox"])
        if max(x, y, w, h) > 1.0 or im.get("width") is None:
            if not im.get("width") or not im.get("height"):
                raise ValueError(f"{path}: image {im['file_name']} needs width/height for absolute boxes")
            W, H = float(im["width"]), float(im["height"])
            x, y, w, h = x / W, y / H, w / W, h / H
        out[im["file_name"]].append(TruthBox(cat, (x, y, w, h), label))
    return out


def read_md_truth(path: str | Path, md_threshold: float = 0.2) -> dict[str, list[TruthBox]]:
    from spotid.detect.mdjson import read_batch

    out: dict[str, list[TruthBox]] = {}
    for im in read_batch(path).images:
        if im.failure:
            continue
        boxes = []
        for d in im.detections:
            if d.conf < md_threshold:
                continue
            label = None
            if d.category == 1:
                label = "leopard" if d.label == "leopard" else "other"
            boxes.append(TruthBox(d.category, d.bbox, label))
        out[im.file] = boxes
    return out


def read_animl_csv(path: str | Path, min_conf: float = 0.2) -> dict[str, list[TruthBox]]:
    """animl's ``Detections.csv`` (MegaDetector boxes per ``FileName``: ``category`` 1 animal, 2 person,
    3 vehicle, ``conf``, normalised ``bbox1..bbox4`` = x, y, w, h) -> ``{file name: [TruthBox]}``;
    animals are labelled 'other' (animl's sets hold no leopards). Boxes under ``min_conf`` are dropped."""
    import csv

    out: dict[str, list[TruthBox]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["conf"] and float(r["conf"]) >= min_conf and r["category"] in {"1", "2", "3"}:
                out.setdefault(r["FileName"], []).append(
                    TruthBox(int(r["category"]), tuple(float(r[f"bbox{i}"]) for i in range(1, 5)),
                             "other" if r["category"] == "1" else None))
    return out


def read_truth(truth: str | Path, image_dir: str | Path | None = None, md_threshold: float = 0.2
               ) -> tuple[str, dict[str, list[TruthBox]]]:
    """Detect the format of ``truth`` and read it; returns ``(format, boxes)``."""
    p = Path(truth)
    if p.is_dir():
        if not any(p.glob("*.xml")):
            raise ValueError(f"{p} holds no VOC *.xml annotations")
        return "voc", read_voc(p, image_dir)
    if not p.exists():
        raise ValueError(f"no truth file {p}: pass a VOC folder, a COCO Camera Traps JSON or an MD JSON")
    d = json.loads(p.read_text(encoding="utf-8"))
    if "annotations" in d and "categories" in d:
        return "coco", read_coco_ct(p)
    if "images" in d and isinstance(d["images"], list) and (not d["images"] or "file" in d["images"][0]):
        return "mdjson", read_md_truth(p, md_threshold)
    raise ValueError(f"{p} is neither COCO Camera Traps (annotations, categories) nor MD batch JSON")
