"""The catalog's per-crop cache: crop JPEG, quality, flank, embedding and local features of each
detection, computed once by :class:`CropStore` and kept in the ``crops`` table, and brought up to date
when the models or the feature version change (a newer spotid on an older catalog).

Keypoints refer to the stored crop JPEG (``<db folder>/<db stem>_crops/<detection id>.jpg``), so the
evidence the review page draws lines up with what it shows.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from spotid.catalog import Catalog
from spotid.catalog.tables import crops
from spotid.identify.crops import crop_dir, crop_geometry, save_crop
from spotid.identify.result import IdentifyResult
from spotid.identify.verify import Features
from spotid.types import CropRow
from spotid.util import batched, progress

log = logging.getLogger(__name__)


def stored_features(row: CropRow) -> Features:
    """The :class:`Features` of a ``crops`` row (its ``crops.FEATURE_COLUMNS``)."""
    return Features.from_bytes(row.keypoints, row.descriptors, bool(row.infrared),
                               row.motion_keypoints, row.motion_descriptors)


def feature_values(f: Features) -> tuple:
    """The values of :data:`spotid.catalog.tables.crops.FEATURE_COLUMNS` for ``f``, in that order."""
    return (*f.to_bytes(), int(f.infrared), *f.motion_bytes())


class CropStore:
    """``ensure(cat, rows, result)`` computes what is missing or stale for new detections;
    ``refresh(cat, rows)`` updates gallery crops made by another embedder or feature version.

    ``cfg``: :class:`~spotid.identify.config.CropSettings` (``pad``, ``box_only``, ``batch_size``); ``embedder(images)`` and
    ``flank(images)`` as for :class:`~spotid.identify.pipeline.Identifier`; ``cropper`` cuts a crop from
    a frame; ``extractor`` makes :class:`~spotid.identify.verify.Features`; the two version strings are
    what ``crops.features_version`` / ``crops.flank_model`` must hold to count as fresh.
    """

    def __init__(self, cfg, *, embedder, flank, cropper, extractor, features_version: str, flank_version: str,
                 local: dict | None = None):
        self.cfg = cfg
        self.local = dict(local or {})   # {name: LocalMatcher}: other matchers' features, in crop_local_features
        self.embedder = embedder
        self.flank = flank
        self.cropper = cropper
        self.extractor = extractor
        self.features_version = features_version
        self.flank_version = flank_version

    def current(self, c: CropRow) -> bool:
        """A ``crops`` row embedded and featured by the models this store runs (what both the new
        detections of :meth:`ensure` and the gallery crops of :meth:`refresh` are checked against)."""
        return (c.embedding is not None and c.embedder == self.embedder.version
                and c.features_version == self.features_version and c.infrared is not None)

    def features(self, stored, box: tuple[float, float, float, float]) -> Features:
        """Features of a stored crop image (PIL RGB) cut around ``box`` (normalised x, y, w, h): keypoints
        only inside the box when ``box_only``, in the stored JPEG's pixels, so evidence coordinates match
        what the review page shows."""
        roi = crop_geometry(box, self.cfg.pad, stored.size)[0] if self.cfg.box_only else None
        return self.extractor(stored, roi)

    def ensure(self, cat: Catalog, rows: Sequence, result: IdentifyResult) -> None:
        """Compute and cache crop, quality, flank, embedding and features where missing or stale."""
        from PIL import Image

        folder = crop_dir(cat.path)
        for batch in batched(progress(rows, total=len(rows), description="crops"), self.cfg.batch_size):
            ids = [r["id"] for r in batch]
            cached = crops.of_detections(cat, ids)
            work = []
            for r in batch:
                c = cached.get(r["id"])
                if (c is not None and self.current(c) and c.flank and c.flank_model == self.flank_version
                        and c.crop_path and Path(c.crop_path).exists()):
                    continue
                try:
                    if c is not None and c.crop_path and Path(c.crop_path).exists():
                        img = Image.open(c.crop_path).convert("RGB")
                        crop = None
                    else:
                        crop = self.cropper(r["path"], (r["x"], r["y"], r["w"], r["h"]))
                        img = crop.image
                except Exception as e:  # missing/broken frame: data, not a crash
                    log.warning("cannot crop detection %s from %s: %s", r["id"], r["path"], e)
                    result.crop_failures += 1
                    continue
                work.append((r, c, crop, img))
            if not work:
                continue
            images = [w[3] for w in work]
            emb = np.asarray(self.embedder(images), np.float32)
            flanks = self.flank(images)
            # Crop files and SIFT features (the slow part) are made before the write transaction, so
            # the catalog is locked only for the inserts (the review page may be writing meanwhile).
            rows_out = []
            for (r, c, crop, img), e, fp in zip(work, emb, flanks):
                path = folder / f"{r['id']}.jpg"
                if crop is not None:
                    save_crop(img, path)
                    q = (crop.quality, crop.blur, crop.size_px, int(crop.touches_edge))
                else:
                    q = (c.quality, c.blur, c.size_px, c.touches_edge)
                    path = Path(c.crop_path)
                # features of the stored JPEG (a fresh crop is read back after its JPEG encoding), so a
                # crop featured now and one featured later from the cache get the same features
                stored = img if crop is None else Image.open(path).convert("RGB")
                feats = self.features(stored, (r["x"], r["y"], r["w"], r["h"]))
                rows_out.append((r["id"], *q, fp.flank, float(fp.conf), np.asarray(e, "<f4").tobytes(),
                                 self.embedder.version, *feature_values(feats),
                                 self.features_version, str(path), self.flank_version))
            with cat.transaction() as conn:
                crops.upsert_cache(conn, rows_out)   # values in crops.CACHE_COLUMNS order
            result.crops_computed += len(rows_out)

    def refresh(self, cat: Catalog, rows: Sequence) -> int:
        """Re-embed and re-feature gallery crops made by another embedder or feature version, from the
        cached crop JPEG, and store the result. A crop whose JPEG is gone keeps what it has (logged).
        Returns how many were updated."""
        from PIL import Image

        stale = [r for r in rows if not self.current(CropRow.from_row(r))]
        if not stale:
            return 0
        log.info("updating %d gallery crops made by an older model or feature version", len(stale))
        done = 0
        for b in batched(progress(stale, total=len(stale), description="gallery update"), self.cfg.batch_size):
            ims, ok = [], []
            for r in b:
                try:
                    ims.append(Image.open(r["crop_path"]).convert("RGB"))
                    ok.append(r)
                except Exception as e:  # a lost cache file must not stop the run
                    log.warning("gallery crop %s cannot be updated (%s): it is matched as it was stored; "
                                "restore %s to refresh it", r["detection_id"], e, r["crop_path"])
            if not ok:
                continue
            emb = np.asarray(self.embedder(ims), np.float32)
            out = []
            for r, im, e in zip(ok, ims, emb):
                f = self.features(im, (r["x"], r["y"], r["w"], r["h"]))
                out.append((np.asarray(e, "<f4").tobytes(), self.embedder.version, *feature_values(f),
                            self.features_version, r["detection_id"]))
            with cat.transaction() as conn:
                crops.update_features(conn, out)   # crops.REFRESH_COLUMNS, then the detection id
            done += len(out)
        return done

    def local_features(self, cat: Catalog, rows: Sequence) -> dict[int, dict[str, Features]]:
        """{detection id: {matcher name: Features}} of every local matcher in ``self.local`` for ``rows``
        (mappings with ``detection_id``, ``crop_path`` and the box ``x, y, w, h``), read from
        ``crop_local_features`` and computed from the crop JPEG where missing or of another version.
        A crop whose JPEG cannot be read gets empty features (logged): that matcher then finds
        nothing for it, which the fusion reads as 0 inliers."""
        from PIL import Image

        if not self.local or not rows:
            return {}
        ids = [int(r["detection_id"]) for r in rows]
        have: dict[int, dict[str, Features]] = {i: {} for i in ids}
        for r in crops.local_features(cat, ids):
            m = self.local.get(r["matcher"])
            if m is not None and r["version"] == m.version:
                have[int(r["detection_id"])][r["matcher"]] = Features.from_bytes(
                    r["keypoints"], r["descriptors"], bool(r["infrared"]))
        todo = [(i, r) for i, r in zip(ids, rows) if len(have[i]) < len(self.local)]
        for batch in batched(progress(todo, total=len(todo), description="local features"), self.cfg.batch_size):
            out = []
            for i, r in batch:
                try:
                    img = Image.open(r["crop_path"]).convert("RGB")
                except Exception as e:  # a lost cache file must not stop the run
                    log.warning("crop %s cannot be read for local features (%s)", i, e)
                    img = None
                for name, m in self.local.items():
                    if name in have[i]:
                        continue
                    if img is None:
                        f = Features(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32), False)
                    else:
                        roi = crop_geometry((r["x"], r["y"], r["w"], r["h"]), self.cfg.pad, img.size)[0] \
                            if self.cfg.box_only else None
                        f = m.features(img, roi)
                    have[i][name] = f
                    if img is not None:
                        out.append((i, name, m.version, *f.to_bytes(), int(f.infrared)))
            with cat.transaction() as conn:
                crops.upsert_local_features(conn, out)
        return have
