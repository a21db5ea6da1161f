"""Typed results shared between stages.

Box convention everywhere: normalised ``(x_min, y_min, width, height)`` in [0, 1] of the full frame,
as in MegaDetector batch output. Pixel boxes are named ``*_px`` and are absolute (x, y, w, h).
"""
from __future__ import annotations

from dataclasses import dataclass, field

CATEGORY_NAMES = {1: "animal", 2: "person", 3: "vehicle"}
CATEGORY_IDS = {v: k for k, v in CATEGORY_NAMES.items()}
FLANKS = ("left", "right", "front", "back", "unknown")


def iou(a, b) -> float:
    """IoU of two ``(x, y, w, h)`` boxes in the same units (normalised or pixels)."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Detection:
    """One box in one frame. ``classifications`` is [(name, conf), ...], highest first."""

    category: int
    conf: float
    bbox: tuple[float, float, float, float]
    classifications: tuple[tuple[str, float], ...] = ()

    @property
    def label(self) -> str | None:
        return self.classifications[0][0] if self.classifications else None

    @property
    def label_conf(self) -> float | None:
        return self.classifications[0][1] if self.classifications else None


@dataclass(frozen=True)
class ImageResult:
    """Detector output for one file, as one entry of a MegaDetector batch JSON ``images`` list.

    ``file`` is relative to the folder the detector ran on; ``failure`` is set (and ``detections``
    empty) when the file could not be read.
    """

    file: str
    detections: tuple[Detection, ...] = ()
    failure: str | None = None
    max_detection_conf: float = 0.0
    extra: dict = field(default_factory=dict, compare=False, hash=False)
