"""Repeat-detection suppression: boxes that fire at the same place across a deployment's frames.

A stump, rock or fence post that looks like an animal is detected in frame after frame at the same
pixel position, while a real animal moves between bursts. MegaDetector's "repeat detection
elimination" finds these clusters and a person removes them by hand; here they are flagged
automatically (``detections.static_fp = 1``; in MD JSON moved to ``static_fp_detections``).

Rule (per deployment / camera): detections with conf >= ``min_conf`` are clustered greedily, most
confident first, a detection joining the first cluster whose seed box it overlaps with IoU >
``iou``. A cluster is static when it holds at least ``min_frames`` distinct frames AND those frames
span at least ``min_sequences`` distinct sequences or at least ``min_hours`` hours. An animal that
sits still within one burst (one sequence, minutes) is never flagged; a leopard resting at exactly
the same spot across hours of bursts could be, which is why the flag hides nothing from the catalog:
``spotid`` downstream stages skip flagged boxes, the review page can show them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Hashable, Sequence

from spotid.types import iou  # noqa: F401  (re-exported: the IoU the rule uses)


@dataclass(frozen=True)
class Box:
    key: Hashable                        # detection id (catalog) or (file, index) (folder mode)
    frame: Hashable                      # media id or file name
    bbox: tuple[float, float, float, float]
    conf: float
    sequence: Hashable | None = None     # burst id; None = unknown (then only the time span counts)
    time: datetime | None = None


def find_static(boxes: Sequence[Box], *, iou_thresh: float = 0.85, min_frames: int = 5,
                min_sequences: int = 3, min_hours: float = 2.0, min_conf: float = 0.1) -> set[Hashable]:
    """Keys of the boxes in static clusters (one deployment's boxes in, flagged keys out)."""
    cands = sorted((b for b in boxes if b.conf >= min_conf), key=lambda b: -b.conf)
    seeds: list[tuple[float, float, float, float]] = []
    members: list[list[Box]] = []
    for b in cands:
        for i, s in enumerate(seeds):
            if iou(b.bbox, s) > iou_thresh:
                members[i].append(b)
                break
        else:
            seeds.append(b.bbox)
            members.append([b])
    flagged: set[Hashable] = set()
    for group in members:
        frames = {b.frame for b in group}
        if len(frames) < min_frames:
            continue
        seqs = {b.sequence for b in group if b.sequence is not None}  # unknown bursts never count
        times = [b.time for b in group if b.time is not None]
        span_h = (max(times) - min(times)).total_seconds() / 3600 if len(times) >= 2 else 0.0
        if len(seqs) >= min_sequences or span_h >= min_hours:
            flagged.update(b.key for b in group)
    return flagged
