"""The builtin detector: YOLOX-tiny on the CPU with reduced JPEG decoding and overlapped decoding.

Speed recipe (see ``benchmarks/detect.py`` for the measured effect of each):
- decode JPEGs at 1/2, 1/4 or 1/8 scale in libjpeg (OpenCV ``IMREAD_REDUCED_COLOR_k``), choosing the
  largest reduction that still gives at least ``input_size`` pixels on the long side: a 12 MP frame is
  never decoded in full;
- letterbox to a small square canvas (``input_size``, 416 by default; the weights were trained at 640);
- batch frames through the network; decode the next batch in worker threads while the network runs
  (OpenCV releases the GIL);
- torch threads = CPU cores at run time (set by the CLI).
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from spotid.detect.mdjson import NOT_ANIMAL_KEY
from spotid.types import Detection, ImageResult

log = logging.getLogger(__name__)

_REDUCED = {1: None, 2: "IMREAD_REDUCED_COLOR_2", 4: "IMREAD_REDUCED_COLOR_4", 8: "IMREAD_REDUCED_COLOR_8"}


@dataclass
class Decoded:
    """One decoded frame: ``image`` (H, W, 3) uint8 RGB at reduced scale, ``orig_size`` (w, h) of the file."""

    path: Path
    image: np.ndarray | None
    orig_size: tuple[int, int]
    failure: str | None = None


def reduction_for(orig_w: int, orig_h: int, min_side: int) -> int:
    """Largest libjpeg scale denominator (1, 2, 4, 8) keeping the long side >= ``min_side``."""
    long_side = max(orig_w, orig_h)
    for k in (8, 4, 2):
        if long_side / k >= min_side:
            return k
    return 1


def decode_reduced(path: str | Path, min_side: int) -> Decoded:
    """Decode ``path`` so its long side is at least ``min_side`` (when the file is that large), as RGB.

    Never raises for bad files: returns a :class:`Decoded` with ``failure`` set instead. EXIF
    orientation is ignored so boxes refer to the stored pixel grid, like the header size.
    """
    import cv2
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return Decoded(path, None, (0, 0), "image file is empty (0 bytes)")
        with Image.open(path) as im:  # header only: exact original size and format
            orig = im.size
            fmt = im.format
    except (UnidentifiedImageError, OSError, ValueError) as e:
        return Decoded(path, None, (0, 0), f"image could not be opened: {e.__class__.__name__}: {e}")
    k = reduction_for(*orig, min_side) if fmt == "JPEG" else 1
    flag = cv2.IMREAD_COLOR if k == 1 else getattr(cv2, _REDUCED[k])
    flag |= cv2.IMREAD_IGNORE_ORIENTATION
    buf = np.fromfile(str(path), dtype=np.uint8)  # np.fromfile + imdecode: non-ASCII paths work
    img = cv2.imdecode(buf, flag)
    if img is None:
        return Decoded(path, None, orig, "image could not be decoded (corrupt or truncated file)")
    return Decoded(path, cv2.cvtColor(img, cv2.COLOR_BGR2RGB), orig)


def prefetch(fn, items: Iterable, *, workers: int = 2, ahead: int = 16) -> Iterator:
    """``map(fn, items)`` computed in ``workers`` threads, at most ``ahead`` items in flight, in order."""
    items = iter(items)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
        pending = []
        for it in items:
            pending.append(ex.submit(fn, it))
            if len(pending) >= ahead:
                yield pending.pop(0).result()
        for f in pending:
            yield f.result()


class BuiltinDetector:
    """YOLOX-tiny detector stage (category 1 = animal; the zamba weights have only that class).

    ``__call__(paths, root)`` yields one :class:`ImageResult` per path, in order, with ``file``
    relative to ``root`` ('/' separators) and boxes with conf >= ``threshold``.
    Animal boxes with conf >= the card's conservative threshold get leopard/other classifications.
    With a cascade classifier (card ``cascade.detector_threshold``) the detector keeps and classifies
    boxes down to that lower threshold, and boxes the classifier calls "not_animal" move from
    ``detections`` to ``extra["not_animal_detections"]``.
    """

    def __init__(self, *, model_dir: str | Path | None = None, input_size: int | None = None,
                 batch_size: int = 8, threshold: float | None = None, nms_threshold: float = 0.45,
                 decode_workers: int = 2, classifier=None, rect: bool = True):
        import torch

        from spotid.detect.model import build_yolox_tiny
        from spotid.modelstore import resolve

        self.card = resolve("detector", model_dir)
        self.input_size = int(input_size or self.card.get("input_size", 416))
        thr = self.card.get("thresholds", {})
        conservative = float(thr.get("conservative", 0.1))
        # a cascade classifier (one that says "not_animal") vets weak boxes, so the detector runs lower:
        # its card names the threshold down to which boxes are kept and classified
        cascade = getattr(classifier, "cascade_threshold", None)
        low = min(conservative, cascade) if cascade is not None else conservative
        self.threshold = float(threshold if threshold is not None else low)
        # boxes below that (kept only for PR curves, or when a user lowers --threshold) get no
        # classification: not worth a crop each
        self.classify_min_conf = low
        self.nms_threshold = nms_threshold
        self.batch_size = max(1, int(batch_size))
        self.decode_workers = decode_workers
        self.rect = rect
        self.classes = [int(c) for c in self.card.get("category_ids", [1])]
        self.model = build_yolox_tiny(num_classes=len(self.classes), weights=self.card.weights_path)
        self.classifier = classifier
        self._torch = torch

    @property
    def version(self) -> str:
        v = self.card.version
        if self.classifier is not None:
            v += "+" + self.classifier.version
        return v

    def _prepare(self, path: Path):
        from spotid.detect.model import letterbox_array

        d = decode_reduced(path, self.input_size)
        if d.failure:
            return d, None, None
        canvas, lb = letterbox_array(d.image, self.input_size, d.orig_size, rect=self.rect)
        return d, canvas, lb

    def detect_arrays(self, canvases: list[np.ndarray]) -> list:
        """Run the network on letterboxed canvases ``(H, W, 3)`` uint8 (padded to one size here);
        returns :func:`spotid.detect.model.postprocess` output, one tuple per canvas."""
        from spotid.detect.model import pad_batch, postprocess

        torch = self._torch
        x = torch.from_numpy(pad_batch(canvases)).permute(0, 3, 1, 2).float()
        with torch.inference_mode():
            pred = self.model(x)
        return postprocess(pred, conf_thresh=self.threshold, nms_thresh=self.nms_threshold)

    def __call__(self, paths: Iterable[str | Path], root: str | Path | None = None) -> Iterator[ImageResult]:
        from spotid.detect.model import xyxy_px_to_norm_xywh

        paths = [Path(p) for p in paths]
        root = Path(root) if root is not None else None
        stream = prefetch(self._prepare, paths, workers=self.decode_workers, ahead=2 * self.batch_size)
        batch: list = []

        def flush():
            ok = [(d, c, lb) for d, c, lb in batch if c is not None]
            outs = iter(self.detect_arrays([c for _, c, _ in ok])) if ok else iter(())
            for d, c, lb in batch:
                name = _rel(d.path, root)
                if c is None:
                    yield ImageResult(name, (), d.failure)
                    continue
                b, s, k = next(outs)
                nb = xyxy_px_to_norm_xywh(b.numpy(), lb)
                dets = [Detection(self.classes[int(ki)], float(si), tuple(float(v) for v in bb))
                        for bb, si, ki in zip(nb, s.tolist(), k.tolist()) if bb[2] > 0 and bb[3] > 0]
                extra = {}
                if self.classifier is not None and dets:
                    dets = self.classifier.classify(d, dets, self.classify_min_conf)
                    if hasattr(self.classifier, "split"):
                        dets, gone = self.classifier.split(dets)
                        if gone:   # kept beside the detections (MD JSON extension), never lost
                            extra[NOT_ANIMAL_KEY] = gone
                yield ImageResult(name, tuple(dets), None, max((x.conf for x in dets), default=0.0), extra)

        for item in stream:
            batch.append(item)
            if len(batch) >= self.batch_size:
                yield from flush()
                batch = []
        if batch:
            yield from flush()


def _rel(path: Path, root: Path | None) -> str:
    if root is None:
        return path.as_posix()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def default_threads() -> int:
    return os.cpu_count() or 1
