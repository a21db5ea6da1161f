"""MegaDetector batch JSON (format 1.6) of the catalog's detections, via the detect stage's writer.

One ``images`` entry per frame the detector processed (``detection_status``), ``file`` =
``<deployment>/<media.rel_path>`` (spotid.export.paths: unique across cameras, relative to a folder
holding one sub-folder per deployment, as Timelapse's root folder does), failures kept,
classifications (leopard/other) kept, and repeat-detection false positives moved to the documented
``static_fp_detections`` extension list.
"""
from __future__ import annotations

import json
from pathlib import Path

from spotid.catalog import Catalog
from spotid.catalog.tables import detections
from spotid.export.paths import export_path
from spotid.types import Detection, ImageResult


def catalog_images(cat: Catalog, deployment: str | None = None) -> tuple[list[ImageResult], str]:
    """(images, detector name) for every processed frame, in media id order."""
    status = detections.status_with_media(cat, deployment)
    dets: dict[int, list] = {}
    for r in detections.for_mdjson(cat):
        cls = tuple((str(n), float(c)) for n, c in json.loads(r.classifications_json or "[]"))
        dets.setdefault(r.media_id, []).append(
            (Detection(int(r.category), float(r.conf), (r.x, r.y, r.w, r.h), cls), bool(r.static_fp)))
    images, detectors = [], set()
    for r in status:
        detectors.add(r["detector"])
        file = export_path(r["deployment_id"], r["rel_path"], r["id"])
        if r["failure"]:
            images.append(ImageResult(file, (), r["failure"]))
            continue
        ds = dets.get(r["id"], [])
        keep = tuple(d for d, fp in ds if not fp)
        extra = {}
        fps = [d for d, fp in ds if fp]
        if fps:
            from spotid.detect.mdjson import STATIC_FP_KEY
            extra[STATIC_FP_KEY] = fps
        images.append(ImageResult(file, keep, None, max((d.conf for d in keep), default=0.0), extra))
    return images, ", ".join(sorted(detectors)) or "unknown"


def detector_thresholds(cat: Catalog) -> tuple[float, float]:
    """(typical, conservative) from the active detector's model card; MegaDetector's 0.2/0.1 otherwise."""
    try:
        from spotid.modelstore import resolve

        th = resolve("detector", catalog=cat).get("thresholds") or {}
        return float(th.get("typical", 0.2)), float(th.get("conservative", 0.1))
    except Exception:  # no model card here (e.g. a catalog from another machine): use MD's defaults
        return 0.2, 0.1


def export_mdjson(cat: Catalog, out: str | Path, *, deployment: str | None = None,
                  typical_threshold: float | None = None, conservative_threshold: float | None = None) -> int:
    """Write the batch file; returns the number of images written."""
    from spotid.detect.mdjson import write_batch

    typ, cons = detector_thresholds(cat)
    typical_threshold = typ if typical_threshold is None else typical_threshold
    conservative_threshold = cons if conservative_threshold is None else conservative_threshold

    images, detector = catalog_images(cat, deployment)
    write_batch(out, images, detector=detector, typical_threshold=typical_threshold,
                conservative_threshold=conservative_threshold,
                info_extra={"spotid_export": "spotid export mdjson" + (f" --deployment {deployment}" if deployment else "")})
    return len(images)
