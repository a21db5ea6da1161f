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


# -- catalog rows ---------------------------------------------------------------------------------
# One frozen dataclass per main catalog table, with the table's columns (docs/catalog.md) as fields.
# The SQL that fills them lives in spotid/catalog/tables/; a query that selects only some columns leaves the
# others None. Boxes are the catalog's normalised (x, y, w, h), see the module docstring.
class _Row:
    @classmethod
    def from_row(cls, row) -> "_Row":
        """Build from a ``sqlite3.Row`` (or mapping): the columns it has that are fields of this row type."""
        keys = row.keys() if hasattr(row, "keys") else row
        names = cls.__dataclass_fields__  # type: ignore[attr-defined]
        return cls(**{k: row[k] for k in keys if k in names})


@dataclass(frozen=True)
class MediaRow(_Row):
    """One ``media`` row: a photo, a video, or a frame sampled from a video (``parent_id`` set)."""

    id: int | None = None
    deployment_id: str | None = None
    sha: str | None = None
    path: str | None = None
    rel_path: str | None = None
    kind: str | None = None
    timestamp: str | None = None
    time_source: str | None = None
    width: int | None = None
    height: int | None = None
    size_bytes: int | None = None
    make: str | None = None
    model: str | None = None
    serial: str | None = None
    sequence_id: int | None = None
    frame_num: int | None = None
    warning: str | None = None
    run_id: int | None = None
    parent_id: int | None = None
    frame_offset_s: float | None = None


@dataclass(frozen=True)
class DetectionRow(_Row):
    """One ``detections`` row: a box (normalised x, y, w, h) the detector found in one media row."""

    id: int | None = None
    media_id: int | None = None
    run_id: int | None = None
    detector: str | None = None
    category: int | None = None
    conf: float | None = None
    x: float | None = None
    y: float | None = None
    w: float | None = None
    h: float | None = None
    label: str | None = None
    label_conf: float | None = None
    classifications_json: str | None = None
    static_fp: int | None = None

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.w, self.h)


@dataclass(frozen=True)
class CropRow(_Row):
    """One ``crops`` row: identify's cached crop of a detection, its quality, flank and features
    (``embedding``: float32 bytes, ``keypoints``/``descriptors``: float32 bytes, see docs/catalog.md)."""

    detection_id: int | None = None
    quality: float | None = None
    blur: float | None = None
    size_px: int | None = None
    touches_edge: int | None = None
    flank: str | None = None
    flank_conf: float | None = None
    embedding: bytes | None = None
    embedder: str | None = None
    keypoints: bytes | None = None
    descriptors: bytes | None = None
    features_version: str | None = None
    crop_path: str | None = None
    flank_model: str | None = None
    infrared: int | None = None
    motion_keypoints: bytes | None = None
    motion_descriptors: bytes | None = None


@dataclass(frozen=True)
class SightingRow(_Row):
    """One ``sightings`` row: one leopard box assigned (or proposed, or set aside) to an individual."""

    id: int | None = None
    detection_id: int | None = None
    individual_id: int | None = None
    flank: str | None = None
    status: str | None = None
    probability: float | None = None
    run_id: int | None = None
    model_version: str | None = None
    version: int | None = None
    updated_at: str | None = None
    set_aside_reason: str | None = None


@dataclass(frozen=True)
class IndividualRow(_Row):
    """One ``individuals`` row: a leopard (one flank of it), proposed by identify or named by a person."""

    id: int | None = None
    name: str | None = None
    flank: str | None = None
    status: str | None = None
    merged_into: int | None = None
    created_at: str | None = None
    created_by: str | None = None
    truth_id: str | None = None
    notes: str | None = None
