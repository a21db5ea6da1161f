"""Shared fakes for the identify tests: textured 'coats', warped views, a tiny deterministic
embedder and a flank stub. (No tests here; imported by test_identify*.py / test_verify*.py.)"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def coat(seed: int, h: int = 150, w: int = 220) -> np.ndarray:
    """A rosette-like random blob texture, uint8 RGB ``(h, w, 3)``, unique per seed."""
    import cv2

    r = np.random.default_rng(seed)
    base = cv2.GaussianBlur(r.random((h, w)).astype(np.float32), (0, 0), 3)
    base = (base - base.min()) / (np.ptp(base) + 1e-9)
    spots = (base > 0.62).astype(np.float32) * 0.8 + (base < 0.3).astype(np.float32) * 0.4
    g = 200 - 150 * spots + r.normal(0, 6, (h, w))
    rgb = np.stack([g * 1.0, g * 0.8, g * 0.5], axis=2)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def warp(img: np.ndarray, seed: int, strength: float = 1.0) -> np.ndarray:
    """A mildly rotated, scaled, sheared, re-lit copy of ``img`` (a new photo of the same coat)."""
    import cv2

    r = np.random.default_rng(seed)
    h, w = img.shape[:2]
    ang = r.uniform(-8, 8) * strength
    sc = 1 + r.uniform(-0.1, 0.1) * strength
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, sc)
    m[0, 1] += r.uniform(-0.05, 0.05) * strength
    out = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    out = out.astype(np.float32) * r.uniform(0.85, 1.15) + r.normal(0, 3, out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


class FakeEmbedder:
    """Embedding = mean-removed 6x8 gray thumbnail, L2-normalised (same coat -> high cosine)."""

    version = "fake-embedder@000000000000"

    def __call__(self, images) -> np.ndarray:
        import cv2

        out = []
        for im in images:
            a = np.asarray(im.convert("L") if hasattr(im, "convert") else im).astype(np.float32)
            if a.ndim == 3:
                a = a.mean(2)
            t = cv2.resize(a, (8, 6), interpolation=cv2.INTER_AREA).ravel()
            t -= t.mean()
            out.append(t / (np.linalg.norm(t) + 1e-9))
        return np.stack(out).astype(np.float32) if out else np.zeros((0, 48), np.float32)


@dataclass(frozen=True)
class FakeFlankPrediction:
    flank: str
    conf: float
    probs: dict


class FakeFlank:
    """Right flank when the crop is redder than usual (right-flank coats get a red tint in these
    tests), else left; never reads a file name."""

    version = "fake-flank@000000000000"

    def __call__(self, images):
        out = []
        for im in images:
            a = np.asarray(im).astype(np.float32)
            ratio = a[..., 0].mean() / (a[..., 2].mean() + 1e-6)
            fl = "right" if ratio > 2.2 else "left"
            out.append(FakeFlankPrediction(fl, 0.9, {fl: 0.9}))
        return out


def tint_right(img: np.ndarray) -> np.ndarray:
    out = img.astype(np.float32)
    out[..., 2] *= 0.6
    return np.clip(out, 0, 255).astype(np.uint8)
