"""MegaDetector batch output ("MD JSON"): a typed reader (format 1.x) and a writer (format 1.6).

Spec: https://lila.science/megadetector-output-format . In short::

    {"info": {"format_version": "1.6", "detector": "...", "detection_completion_time": "...",
              "detector_metadata": {"typical_detection_threshold": 0.2,
                                    "conservative_detection_threshold": 0.1}},
     "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
     "classification_categories": {"1": "leopard", "2": "other"},
     "images": [{"file": "DCIM/100RECNX/IMG_0001.JPG",
                 "detections": [{"category": "1", "conf": 0.93, "bbox": [x_min, y_min, w, h],
                                 "classifications": [["1", 0.97], ["2", 0.03]]}]},
                {"file": "broken.jpg", "failure": "...", "detections": null}]}

Boxes are normalised ``[x_min, y_min, width, height]``. Category ids are strings in the file and
ints in :class:`spotid.types.Detection`; classification ids are strings in the file and NAMES in
``Detection.classifications`` (the reader maps them through ``classification_categories``).
Older files (1.0-1.5) are read too: numeric ``format_version``, int category ids, missing
``detector_metadata`` or ``failure`` keys.

spotid extensions (documented here, ignored by other tools): detections flagged as repeated static
false positives are moved out of ``detections`` into the image's ``"static_fp_detections"`` list, and
boxes the cascade classifier calls "not_animal" into ``"not_animal_detections"``, so Timelapse and
MegaDetector postprocessing never see them, yet nothing is lost. The cascade's classification
categories are ``{"1": "leopard", "2": "other", "3": "not_animal"}`` ("other" = any other animal).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from spotid.types import CATEGORY_NAMES, Detection, ImageResult
from spotid.util import VIDEO_EXTS, atomic_write_text

FORMAT_VERSION = "1.6"
DETECTION_CATEGORIES = {str(k): v for k, v in CATEGORY_NAMES.items()}
CLASSIFICATION_NAMES = ("leopard", "other")
STATIC_FP_KEY = "static_fp_detections"
NOT_ANIMAL_KEY = "not_animal_detections"
MOVED_KEYS = (STATIC_FP_KEY, NOT_ANIMAL_KEY)   # per-image lists of detections set aside, kept

_IMAGE_KEYS = {"file", "detections", "failure", "max_detection_conf"}


class MDJsonError(ValueError):
    """A file that is not MegaDetector batch output (the message says what is wrong)."""


@dataclass(frozen=True)
class BatchResults:
    """A whole MD batch file. ``images`` keep the file's order."""

    images: tuple[ImageResult, ...]
    info: dict[str, Any] = field(default_factory=dict)
    detection_categories: dict[str, str] = field(default_factory=lambda: dict(DETECTION_CATEGORIES))
    classification_categories: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # other top-level keys, kept for round trips

    @property
    def format_version(self) -> str:
        return str(self.info.get("format_version", "1.0"))

    @property
    def detector(self) -> str | None:
        return self.info.get("detector")

    def thresholds(self) -> tuple[float | None, float | None]:
        """(typical, conservative) detection thresholds from ``detector_metadata``, when present."""
        meta = self.info.get("detector_metadata") or {}
        return meta.get("typical_detection_threshold"), meta.get("conservative_detection_threshold")

    def by_file(self) -> dict[str, ImageResult]:
        return {im.file: im for im in self.images}


# -- reading ---------------------------------------------------------------------------------------
def _detection_from_json(d: Mapping[str, Any], cls_names: Mapping[str, str], where: str) -> Detection:
    try:
        cat = int(d["category"])
        conf = float(d["conf"])
        bbox = tuple(float(v) for v in d["bbox"])
    except (KeyError, TypeError, ValueError) as e:
        raise MDJsonError(f"{where}: a detection needs category, conf and a 4-number bbox ({e})") from None
    if len(bbox) != 4:
        raise MDJsonError(f"{where}: bbox must be [x_min, y_min, w, h], got {len(bbox)} numbers")
    classes = []
    for c in d.get("classifications") or ():
        cid = str(c[0])
        classes.append((cls_names.get(cid, cid), float(c[1])))
    classes.sort(key=lambda t: -t[1])
    return Detection(cat, conf, bbox, tuple(classes))  # type: ignore[arg-type]


def parse_batch(data: Mapping[str, Any], *, source: str = "<dict>") -> BatchResults:
    """Parse an already-loaded MD batch dict (any 1.x format version)."""
    if not isinstance(data, Mapping) or "images" not in data:
        raise MDJsonError(f"{source} is not MegaDetector batch output: it has no 'images' list")
    info = dict(data.get("info") or {})
    det_cats = {str(k): str(v) for k, v in (data.get("detection_categories") or DETECTION_CATEGORIES).items()}
    cls_cats = {str(k): str(v) for k, v in (data.get("classification_categories") or {}).items()}
    images = []
    for i, im in enumerate(data["images"]):
        if not isinstance(im, Mapping) or "file" not in im:
            raise MDJsonError(f"{source}: images[{i}] has no 'file'")
        where = f"{source}: {im['file']}"
        dets = tuple(_detection_from_json(d, cls_cats, where) for d in (im.get("detections") or ()))
        extra = {k: v for k, v in im.items() if k not in _IMAGE_KEYS}
        for key in MOVED_KEYS:
            if key in extra:
                extra[key] = [_detection_from_json(d, cls_cats, where) for d in extra[key]]
        failure = im.get("failure")
        mdc = im.get("max_detection_conf")
        mdc = float(mdc) if mdc is not None else max((d.conf for d in dets), default=0.0)
        images.append(ImageResult(str(im["file"]), dets, str(failure) if failure else None, mdc, extra))
    extra_top = {k: v for k, v in data.items()
                 if k not in {"info", "images", "detection_categories", "classification_categories"}}
    return BatchResults(tuple(images), info, det_cats, cls_cats, extra_top)


def read_batch(path: str | Path) -> BatchResults:
    """Read an MD batch JSON file (format 1.0 to 1.6)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MDJsonError(f"no such MegaDetector results file: {path}") from None
    except json.JSONDecodeError as e:
        raise MDJsonError(f"{path} is not valid JSON ({e}): is it a MegaDetector batch output file?") from None
    return parse_batch(data, source=str(path))


# -- writing ---------------------------------------------------------------------------------------
def _r(v: float, nd: int) -> float:
    return float(round(float(v), nd))


def _detection_to_json(d: Detection, cls_ids: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"category": str(int(d.category)), "conf": _r(d.conf, 6),
                           "bbox": [_r(v, 6) for v in d.bbox]}
    if d.classifications:
        out["classifications"] = [[cls_ids[name], _r(conf, 6)]
                                  for name, conf in sorted(d.classifications, key=lambda t: -t[1])]
    return out


def to_dict(images: Iterable[ImageResult], *, detector: str,
            typical_threshold: float, conservative_threshold: float,
            classification_categories: Mapping[str, str] | None = None,
            info_extra: Mapping[str, Any] | None = None,
            detection_categories: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build a format-1.6 MD batch dict.

    ``classification_categories`` maps string ids to names (default ``{"1": "leopard", "2": "other"}``);
    any classification name met in the images that is not listed gets the next free id.
    """
    images = list(images)
    cls_cats = dict(classification_categories) if classification_categories is not None else \
        {str(i + 1): n for i, n in enumerate(CLASSIFICATION_NAMES)}
    cls_ids = {v: k for k, v in cls_cats.items()}
    for im in images:
        for d in list(im.detections) + [d for k in MOVED_KEYS for d in im.extra.get(k, ())]:
            for name, _ in d.classifications:
                if name not in cls_ids:
                    new_id = str(max([int(k) for k in cls_cats] or [0]) + 1)
                    cls_cats[new_id], cls_ids[name] = name, new_id
    info: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "detector": detector,
        "detection_completion_time": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "detector_metadata": {"typical_detection_threshold": float(typical_threshold),
                              "conservative_detection_threshold": float(conservative_threshold)},
    }
    info.update(info_extra or {})
    out_images = []
    for im in images:
        entry: dict[str, Any] = {"file": im.file}
        if im.failure:
            entry["failure"] = im.failure
            entry["detections"] = None
        else:
            entry["max_detection_conf"] = _r(max((d.conf for d in im.detections), default=0.0), 6)
            entry["detections"] = [_detection_to_json(d, cls_ids) for d in im.detections]
        if Path(im.file).suffix.lower() in VIDEO_EXTS:
            # format >= 1.4/1.5: videos carry frame_rate and frames_processed (-1 / [] when not decoded)
            entry.setdefault("frame_rate", float(im.extra.get("frame_rate", -1.0)))
            entry.setdefault("frames_processed", list(im.extra.get("frames_processed", [])))
        for k, v in im.extra.items():
            if k in MOVED_KEYS:
                v = [_detection_to_json(d, cls_ids) if isinstance(d, Detection) else d for d in v]
            entry[k] = v
        out_images.append(entry)
    return {
        "info": info,
        "detection_categories": dict(detection_categories or DETECTION_CATEGORIES),
        "classification_categories": cls_cats,
        "images": out_images,
    }


def write_batch(path: str | Path, images: Iterable[ImageResult], **kwargs: Any) -> Path:
    """Write a format-1.6 MD batch file atomically (see :func:`to_dict` for the arguments)."""
    return atomic_write_text(path, json.dumps(to_dict(images, **kwargs), indent=1) + "\n")


def batch_to_dict(batch: BatchResults) -> dict[str, Any]:
    """Re-serialise a read batch as format 1.6, keeping its detector, metadata and categories."""
    typical, conservative = batch.thresholds()
    info_extra = {k: v for k, v in batch.info.items() if k not in {"format_version", "detector_metadata"}}
    meta = dict(batch.info.get("detector_metadata") or {})
    d = to_dict(batch.images, detector=str(batch.detector or "unknown"),
                typical_threshold=typical if typical is not None else 0.2,
                conservative_threshold=conservative if conservative is not None else 0.1,
                classification_categories=batch.classification_categories,
                detection_categories=batch.detection_categories, info_extra=info_extra)
    d["info"]["detector_metadata"].update({k: v for k, v in meta.items()
                                           if k not in d["info"]["detector_metadata"]})
    d.update(batch.extra)
    return d
