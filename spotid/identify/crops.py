"""Leopard crops from detections: padded cut at reduced JPEG decode, quality score, on-disk cache.

Box convention: ``bbox`` = normalised ``(x_min, y_min, width, height)`` of the full frame.
A crop is stored as a JPEG (long side <= ``max_side``) next to the catalog, in
``<db folder>/<db stem>_crops/<detection_id>.jpg``; keypoints and evidence coordinates refer to the
pixels of that stored JPEG, so the review page can draw them without recomputing anything.
"""
from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spotid.util import atomic_write_bytes, open_image_reduced

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Crop:
    """A padded crop (RGB PIL image) and its quality.

    ``quality`` in [0, 1] combines sharpness, size and truncation; ``blur`` is the variance of the
    Laplacian of the crop resampled to a 256 px long side (scale-free); ``size_px`` is the short side
    of the detection box in ORIGINAL frame pixels; ``touches_edge`` is True when the box touches the
    frame border (part of the animal is probably outside the frame).
    """

    image: object
    quality: float
    blur: float
    size_px: int
    touches_edge: bool


def padded_box(bbox, pad: float) -> tuple[float, float, float, float]:
    """Normalised ``(x0, y0, x1, y1)`` of ``bbox`` grown by ``pad`` x its size on each side, clipped to
    the frame."""
    x, y, w, h = (float(v) for v in bbox)
    x0, y0 = max(0.0, x - pad * w), max(0.0, y - pad * h)
    x1, y1 = min(1.0, x + w + pad * w), min(1.0, y + h + pad * h)
    return x0, y0, x1, y1


def touches_edge(bbox, margin: float = 0.005) -> bool:
    x, y, w, h = (float(v) for v in bbox)
    return x <= margin or y <= margin or x + w >= 1 - margin or y + h >= 1 - margin


def blur_score(gray: np.ndarray) -> float:
    """Variance of the Laplacian of ``gray`` (uint8 (H, W)) after resampling to a 256 px long side,
    so that the score does not depend on the crop size."""
    import cv2

    h, w = gray.shape[:2]
    s = 256.0 / max(h, w)
    if abs(s - 1) > 1e-3:
        gray = cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))),
                          interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def quality_score(blur: float, size_px: int, edge: bool, *, blur_ref: float = 150.0, size_ref: int = 200,
                  edge_penalty: float = 0.6) -> float:
    """Quality in [0, 1] = sharpness x size x truncation factors.

    sharpness = sqrt(min(1, blur / blur_ref)); size = min(1, size_px / size_ref); a box touching the
    frame edge is multiplied by ``edge_penalty``. A sharp, large, whole crop scores 1.
    """
    sharp = math.sqrt(min(1.0, max(0.0, blur) / blur_ref))
    size = min(1.0, max(0, size_px) / size_ref)
    return float(sharp * size * (edge_penalty if edge else 1.0))


class Cropper:
    """Stage: (image path, normalised bbox) -> :class:`Crop`.

    Decodes the JPEG at the smallest libjpeg scale that still gives the crop a long side of
    ``max_side`` (PIL draft), so a 12 MP frame costs a fraction of a full decode.
    """

    def __init__(self, *, pad: float = 0.1, max_side: int = 512, blur_ref: float = 150.0, size_ref: int = 200,
                 edge_penalty: float = 0.6):
        self.pad = float(pad)
        self.max_side = int(max_side)
        self.blur_ref = float(blur_ref)
        self.size_ref = int(size_ref)
        self.edge_penalty = float(edge_penalty)

    def from_image(self, image, bbox, orig_size: tuple[int, int] | None = None) -> Crop:
        """Crop an already decoded RGB PIL ``image``; ``orig_size`` = (w, h) of the original frame
        (for ``size_px``), defaults to the image size."""
        from PIL import Image

        W, H = image.size
        ow, oh = orig_size or (W, H)
        x0, y0, x1, y1 = padded_box(bbox, self.pad)
        box = (int(math.floor(x0 * W)), int(math.floor(y0 * H)), int(math.ceil(x1 * W)), int(math.ceil(y1 * H)))
        box = (box[0], box[1], max(box[2], box[0] + 1), max(box[3], box[1] + 1))
        crop = image.crop(box)
        if max(crop.size) > self.max_side:
            s = self.max_side / max(crop.size)
            crop = crop.resize((max(1, round(crop.width * s)), max(1, round(crop.height * s))), Image.BILINEAR)
        gray = np.asarray(crop.convert("L"))
        blur = blur_score(gray)
        size_px = int(round(min(float(bbox[2]) * ow, float(bbox[3]) * oh)))
        edge = touches_edge(bbox)
        q = quality_score(blur, size_px, edge, blur_ref=self.blur_ref, size_ref=self.size_ref,
                          edge_penalty=self.edge_penalty)
        return Crop(crop, q, blur, size_px, edge)

    def __call__(self, path: str | Path, bbox) -> Crop:
        x0, y0, x1, y1 = padded_box(bbox, self.pad)
        frac = max(x1 - x0, y1 - y0, 1e-3)
        need = int(math.ceil(self.max_side / frac))  # frame long side at which the crop is max_side
        image, orig = open_image_reduced(path, need)
        return self.from_image(image, bbox, orig)


def crop_dir(db_path: str | Path) -> Path:
    """Folder of cached crop JPEGs for the catalog at ``db_path``: ``<folder>/<stem>_crops``."""
    p = Path(db_path).resolve()
    return p.parent / f"{p.stem}_crops"


def save_crop(image, path: str | Path, quality: int = 90) -> Path:
    """Write the crop JPEG atomically (a killed run never leaves half a file)."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    return atomic_write_bytes(path, buf.getvalue())


def crop_geometry(bbox, pad: float, crop_size: tuple[int, int]) -> tuple[tuple[float, float, float, float], tuple]:
    """For a detection ``bbox`` (normalised x, y, w, h) cut with ``pad`` into a crop of ``crop_size``
    (w, h) px: the box inside the crop in crop pixels ``(x0, y0, x1, y1)``, and the crop-pixel ->
    normalised-frame map ``(x0, y0, sx, sy)`` (see :class:`~spotid.identify.verify.Place`)."""
    px0, py0, px1, py1 = padded_box(bbox, pad)
    cw, ch = crop_size
    sx, sy = (px1 - px0) / max(cw, 1), (py1 - py0) / max(ch, 1)
    x, y, w, h = (float(v) for v in bbox)
    roi = ((x - px0) / sx, (y - py0) / sy, (x + w - px0) / sx, (y + h - py0) / sy)
    return roi, (px0, py0, sx, sy)


def image_size(path) -> tuple[int, int]:
    """(width, height) of an image file from its header."""
    from PIL import Image

    with Image.open(path) as im:  # header only
        return im.size


def stored_crop_size(path) -> tuple[int, int] | None:
    """(width, height) of a cached crop JPEG; None (logged, naming the fix) when the file cannot be
    read: a damaged cache file must not stop a run over a whole card."""
    try:
        return image_size(path)
    except OSError as e:  # PIL's UnidentifiedImageError and truncated reads are OSErrors
        log.warning("cached crop %s is unreadable (%s): matched without its frame position; delete the file "
                    "and run identify again to cut it anew", path, e)
        return None
