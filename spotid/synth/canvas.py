"""Drawing primitives shared by the sprite renderers (animals, people): the pose of a body, a rendered
sprite, and an antialiased canvas in model metres.

Model space is metres, x towards the head, y up, ground at y = 0; the canvas maps it to sprite pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

SHIFT = 4
_S = 1 << SHIFT


@dataclass(frozen=True)
class Pose:
    """How an animal stands in one frame.

    view: 'side' | 'front' | 'back'; facing: +1 head towards image right, -1 left (side view);
    gait: 'walk' | 'stand'; phase: gait phase (radians); yaw: body turned towards (+) or away
    from (-) the camera (radians, foreshortens the flank); head: 'profile' | 'camera';
    head_pitch: radians (+ up); bend: spine arch (metres); tail_curl: tip lift (metres).
    """

    view: str = "side"
    facing: int = 1
    gait: str = "walk"
    phase: float = 0.0
    yaw: float = 0.0
    head: str = "profile"
    head_pitch: float = 0.0
    bend: float = 0.0
    tail_curl: float = 0.15


@dataclass
class Sprite:
    """A rendered animal: ``rgb`` (h, w, 3) float32 0..255, ``alpha`` (h, w) float32 0..1,
    ``foot`` (x, y) sprite pixel where it touches the ground (centre of the stance feet),
    ``eyes`` [(x, y)] sprite pixels of the visible eyes."""

    rgb: np.ndarray
    alpha: np.ndarray
    foot: tuple[float, float]
    eyes: list = field(default_factory=list)


def _rot(p: np.ndarray, ang: float) -> np.ndarray:
    c, s = np.cos(ang), np.sin(ang)
    return p @ np.array([[c, s], [-s, c]])


class _Canvas:
    """Accumulates layers (colour, alpha) in sprite pixels; model metres -> pixels by ``to_px``."""

    def __init__(self, xmin: float, ymax: float, w: int, h: int, scale: float):
        self.xmin, self.ymax, self.s = xmin, ymax, scale
        self.w, self.h = w, h
        self.rgb = np.zeros((h, w, 3), np.float32)
        self.alpha = np.zeros((h, w), np.float32)

    def to_px(self, pts) -> np.ndarray:
        p = np.asarray(pts, np.float64).reshape(-1, 2)
        return np.stack([(p[:, 0] - self.xmin) * self.s, (self.ymax - p[:, 1]) * self.s], 1)

    def poly_mask(self, polys, circles=()) -> "_Mask | None":
        """Antialiased coverage of polygons and circles (model metres), cropped to their bounding box."""
        pts = [self.to_px(poly) for poly in polys]
        circ = [(self.to_px(c)[0], rad * self.s) for c, rad in circles]
        xs = [p[:, 0] for p in pts] + [np.array([c[0] - r, c[0] + r]) for c, r in circ]
        ys = [p[:, 1] for p in pts] + [np.array([c[1] - r, c[1] + r]) for c, r in circ]
        if not xs:
            return None
        xs, ys = np.concatenate(xs), np.concatenate(ys)
        x0, y0 = max(0, int(np.floor(xs.min())) - 2), max(0, int(np.floor(ys.min())) - 2)
        x1, y1 = min(self.w, int(np.ceil(xs.max())) + 3), min(self.h, int(np.ceil(ys.max())) + 3)
        if x1 <= x0 or y1 <= y0:
            return None
        m = np.zeros((y1 - y0, x1 - x0), np.uint8)
        off = np.array([x0, y0])
        for p in pts:
            cv2.fillPoly(m, [np.round((p - off) * _S).astype(np.int32)], 255, cv2.LINE_AA, SHIFT)
        for c, rad in circ:
            q = np.round((c - off) * _S).astype(np.int32)
            cv2.circle(m, (int(q[0]), int(q[1])), max(1, int(rad * _S)), 255, -1, cv2.LINE_AA, SHIFT)
        return _Mask(m.astype(np.float32) / 255.0, (slice(y0, y1), slice(x0, x1)))

    def paint(self, colour, m) -> None:
        """Alpha-blend ``colour`` (scalar, RGB vector or a full (h, w, 3) canvas array) through ``m``."""
        if m is None:
            return
        if isinstance(m, np.ndarray):
            m = _Mask(m, (slice(0, self.h), slice(0, self.w)))
        sl, a = m.sl, m.a
        full = isinstance(colour, np.ndarray) and colour.ndim == 3 and colour.shape[:2] == (self.h, self.w)
        col = colour[sl] if full else colour
        a3 = a[..., None]
        self.rgb[sl] = self.rgb[sl] * (1 - a3) + col * a3
        self.alpha[sl] = self.alpha[sl] + a * (1 - self.alpha[sl])


class _Mask:
    """Coverage ``a`` (float32 0..1) of a canvas block ``sl``."""

    def __init__(self, a: np.ndarray, sl: tuple):
        self.a, self.sl = a, sl

    def __mul__(self, k: float) -> "_Mask":
        return _Mask(self.a * k, self.sl)


def _tile(tex: np.ndarray, w: int, h: int, px_per_m: float, tex_px_per_m: float) -> np.ndarray:
    """Sample a tileable texture over a (h, w) sprite at its physical scale."""
    f = tex_px_per_m / px_per_m
    n = max(4, int(round(tex.shape[0] / f)))
    small = cv2.resize(tex, (n, n), interpolation=cv2.INTER_AREA if n < tex.shape[0] else cv2.INTER_LINEAR)
    return np.tile(small, (h // n + 1, w // n + 1, 1))[:h, :w]


def _seg_poly(p0, p1, w0, w1) -> np.ndarray:
    d = np.asarray(p1, float) - np.asarray(p0, float)
    n = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9)
    return np.array([p0 + n * w0 / 2, p1 + n * w1 / 2, p1 - n * w1 / 2, p0 - n * w0 / 2])
