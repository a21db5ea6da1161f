"""Procedural leopard coats: rosettes as broken rings of dark spots, solid spots, pale belly.

A flank coat is an RGB texture of ``COAT_H x COAT_W`` pixels in *body coordinates*: column ``u``
runs from the rump (0) to the shoulder (COAT_W-1), row ``v`` from the dorsal line (0) to the belly
(COAT_H-1). One texture pixel is ``M_PER_PX`` metres (the flank is about 0.85 m x 0.34 m), so
rosette sizes are real sizes. Both flanks of one individual are independent draws; individuals
share the colour and size distribution and differ by pattern alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from spotid.synth.rng import rng

COAT_H, COAT_W = 256, 640
M_PER_PX = 0.34 / COAT_H          # metres per coat pixel (flank depth 0.34 m)
LIMB_SIZE = 256                   # tileable texture of solid spots for legs, head, tail

# Colours in RGB, 0..255: the same for every individual (they differ by pattern only).
TAWNY_BACK = np.array([176, 128, 70], np.float32)
TAWNY = np.array([212, 166, 102], np.float32)
BELLY = np.array([236, 226, 206], np.float32)
CENTRE = np.array([172, 116, 58], np.float32)
SPOT = np.array([36, 29, 25], np.float32)


@dataclass(frozen=True)
class Coat:
    """The textures of one individual. ``left``/``right``: (COAT_H, COAT_W, 3) float32 RGB flank
    coats (rump at column 0); ``limb``: (LIMB_SIZE, LIMB_SIZE, 3) tileable solid-spot texture;
    ``pattern``: {flank: (COAT_H, COAT_W) float32 spot coverage 0..1} for tests and notebooks."""

    left: np.ndarray
    right: np.ndarray
    limb: np.ndarray
    pattern: dict

    def flank(self, side: str) -> np.ndarray:
        return self.left if side == "left" else self.right


def value_noise(r: np.random.Generator, h: int, w: int, cell: float, octaves: int = 1) -> np.ndarray:
    """Smooth zero-mean noise (h, w) float32 of feature size ``cell`` pixels (bicubic value noise)."""
    out = np.zeros((h, w), np.float32)
    amp = 1.0
    for _ in range(octaves):
        c = max(cell, 1.0)
        gh, gw = int(h / c) + 3, int(w / c) + 3
        g = r.standard_normal((gh, gw)).astype(np.float32)
        up = cv2.resize(g, (int(gw * c), int(gh * c)), interpolation=cv2.INTER_CUBIC)
        out += amp * up[:h, :w]
        cell /= 2.0
        amp *= 0.5
    return out


def _poisson(r: np.random.Generator, w: float, h: float, min_dist_fn, n_try: int) -> np.ndarray:
    """Dart-throwing Poisson-disc sampling with a position-dependent minimum distance."""
    cand = r.random((n_try, 2)) * np.array([w, h])
    pts: list[np.ndarray] = []
    rad: list[float] = []
    for p in cand:
        d = min_dist_fn(p)
        if pts:
            arr = np.asarray(pts)
            dist = np.hypot(arr[:, 0] - p[0], arr[:, 1] - p[1])
            if np.any(dist < 0.5 * (np.asarray(rad) + d)):
                continue
        pts.append(p)
        rad.append(d)
    return np.asarray(pts).reshape(-1, 2)


def _fur(r: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Multiplicative fur texture around 1.0: fine streaks along the body axis plus blotches."""
    fine = r.standard_normal((h, w)).astype(np.float32)
    fine = cv2.GaussianBlur(fine, (9, 3), sigmaX=3.0, sigmaY=0.7)
    return 1.0 + 0.10 * fine + 0.04 * value_noise(r, h, w, 40, 2)


def _warp(masks, r: np.random.Generator, amp: float, cell: float):
    """Organic spot outlines: remap by one smooth random displacement field (shared by all masks)."""
    single = isinstance(masks, np.ndarray)
    masks = [masks] if single else list(masks)
    h, w = masks[0].shape
    dx = value_noise(r, h, w, cell, 2) * amp
    dy = value_noise(r, h, w, cell, 2) * amp
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = [cv2.remap(m, gx + dx, gy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT) for m in masks]
    return out[0] if single else out


def _soft(mask: np.ndarray, lo: float = 0.35, hi: float = 0.65) -> np.ndarray:
    return np.clip((mask.astype(np.float32) / 255.0 - lo) / (hi - lo), 0.0, 1.0)


SHIFT = 4
_S = 1 << SHIFT


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x * _S)), int(round(y * _S))


def _ax(a: float, b: float) -> tuple[int, int]:
    return max(1, int(round(a * _S))), max(1, int(round(b * _S)))


def flank_coat(seed: int, individual: int, side: str) -> tuple[np.ndarray, np.ndarray]:
    """One flank: returns (rgb (COAT_H, COAT_W, 3) float32, spot coverage (COAT_H, COAT_W) float32)."""
    r = rng(seed, "coat", individual, side)
    h, w = COAT_H, COAT_W
    spots = np.zeros((h, w), np.uint8)
    centres = np.zeros((h, w), np.uint8)

    def size_at(p: np.ndarray) -> float:
        u, v = p[0] / w, p[1] / h
        s = 1.0
        s *= 0.7 + 0.3 * np.clip(min(u, 1 - u) / 0.2, 0, 1)      # smaller on haunch and shoulder
        s *= 0.55 + 0.45 * np.clip((0.85 - v) / 0.35, 0, 1)      # smaller towards the belly
        return float(s)

    base_r = 21.0 * (1.0 + 0.08 * r.standard_normal())   # same distribution for everyone
    pts = _poisson(r, w + 40, h * 0.80, lambda p: 2.9 * base_r * size_at(p), 1500)
    pts[:, 0] -= 20
    pts[:, 1] += h * 0.02
    ros = []
    for p in pts:
        s = size_at(p)
        rr = base_r * s * r.uniform(0.8, 1.2)
        if s < 0.62 or r.random() < 0.06:
            # small solid spot or a tiny cluster instead of a rosette
            for _ in range(r.integers(1, 3)):
                c = p + r.normal(0, rr * 0.4, 2)
                a = rr * r.uniform(0.25, 0.5)
                cv2.ellipse(spots, _pt(*c), _ax(a, a * r.uniform(0.6, 1.0)), r.uniform(0, 180), 0, 360,
                            255, -1, cv2.LINE_AA, SHIFT)
            continue
        ros.append((p, rr))
        ecc = r.uniform(1.0, 1.35)
        rot = r.uniform(0, 180)
        cv2.ellipse(centres, _pt(*p), _ax(rr * ecc * 0.95, rr * 0.95), rot, 0, 360, 255, -1, cv2.LINE_AA, SHIFT)
        k = int(r.choice([3, 4, 4, 5, 5, 6], p=[0.15, 0.25, 0.2, 0.2, 0.12, 0.08]))
        th0 = r.uniform(0, 360)
        for j in range(k):
            mid = th0 + j * 360.0 / k + r.normal(0, 8)
            span = 360.0 / k * r.uniform(0.45, 0.85)
            rad = rr * r.uniform(0.88, 1.12)
            thick = max(2, int(round(rr * r.uniform(0.32, 0.55))))
            if r.random() < 0.25:   # a blob instead of an arc segment
                a, ro = np.deg2rad(mid), np.deg2rad(rot)
                q = rad * np.array([np.cos(a) * ecc, np.sin(a)])
                c = p + np.array([q[0] * np.cos(ro) - q[1] * np.sin(ro), q[0] * np.sin(ro) + q[1] * np.cos(ro)])
                cv2.ellipse(spots, _pt(*c), _ax(thick * 0.8, thick * 0.55), mid, 0, 360, 255, -1,
                            cv2.LINE_AA, SHIFT)
            else:
                cv2.ellipse(spots, _pt(*p), _ax(rad * ecc, rad), rot, mid - span / 2, mid + span / 2,
                            255, thick, cv2.LINE_AA, SHIFT)
        if r.random() < 0.35:    # Amur leopards often carry dots inside the rosettes
            for _ in range(r.integers(1, 3)):
                c = p + r.normal(0, rr * 0.22, 2)
                a = rr * r.uniform(0.12, 0.2)
                cv2.ellipse(spots, _pt(*c), _ax(a, a), 0, 0, 360, 255, -1, cv2.LINE_AA, SHIFT)
    # solid spots: belly, dorsal line and gaps between rosettes
    sol = _poisson(r, w, h, lambda p: 22.0 if p[1] > 0.72 * h or p[1] < 0.09 * h else 30.0, 1500)
    rp = np.asarray([p for p, _ in ros]).reshape(-1, 2)
    rr_arr = np.asarray([q for _, q in ros])
    for p in sol:
        if len(rp):
            d = np.hypot(rp[:, 0] - p[0], rp[:, 1] - p[1]) - rr_arr * 1.45
            if d.min() < 6:
                continue
        v = p[1] / h
        a = r.uniform(3.0, 7.5) * (1.15 if v > 0.72 else 1.0)
        cv2.ellipse(spots, _pt(*p), _ax(a * r.uniform(1.0, 1.6), a), r.uniform(-25, 25), 0, 360, 255, -1,
                    cv2.LINE_AA, SHIFT)
    spots, centres = _warp([spots, centres], r, 3.2, 24)
    spots = _soft(cv2.GaussianBlur(spots, (0, 0), 1.1))
    cen = cv2.GaussianBlur(centres, (0, 0), 2.0).astype(np.float32) / 255.0

    vv = (np.arange(h, dtype=np.float32) / (h - 1))[:, None, None]
    t_top = np.clip(vv / 0.35, 0, 1)
    t_belly = np.clip((vv - 0.62) / 0.3, 0, 1) ** 1.5
    base = TAWNY_BACK * (1 - t_top) + TAWNY * t_top
    base = base * (1 - t_belly) + BELLY * t_belly
    base = np.broadcast_to(base, (h, w, 3)).astype(np.float32)
    col = base * (1 - 0.85 * cen[..., None]) + (base * CENTRE / TAWNY) * (0.85 * cen[..., None])
    col = col * _fur(r, h, w)[..., None]
    col = col * (1 - spots[..., None]) + SPOT * spots[..., None]
    return np.clip(col, 0, 255).astype(np.float32), spots


def limb_texture(seed: int, individual: int, size: int = LIMB_SIZE, base=TAWNY, spot=SPOT) -> np.ndarray:
    """Tileable solid-spot texture (size, size, 3) float32 for legs, head, neck and tail."""
    r = rng(seed, "limb", individual)
    m = np.zeros((size * 3, size * 3), np.uint8)
    pts = _poisson(r, size, size, lambda p: 26.0, 600)
    for p in pts:
        a = r.uniform(4.0, 9.0)
        ax = _ax(a * r.uniform(1.0, 1.5), a)
        ang = r.uniform(0, 180)
        for ox in (0, size, 2 * size):      # draw into a 3x3 tiling so the centre tile wraps
            for oy in (0, size, 2 * size):
                cv2.ellipse(m, _pt(p[0] + ox, p[1] + oy), ax, ang, 0, 360, 255, -1, cv2.LINE_AA, SHIFT)
    m = m[size:2 * size, size:2 * size]
    sp = _soft(cv2.GaussianBlur(m, (0, 0), 1.0))
    col = np.broadcast_to(base, (size, size, 3)).astype(np.float32) * _fur(r, size, size)[..., None]
    return np.clip(col * (1 - sp[..., None]) + spot * sp[..., None], 0, 255).astype(np.float32)


@lru_cache(maxsize=64)
def leopard_coat(seed: int, individual: int) -> Coat:
    """Both flank coats and the limb texture of individual ``individual`` (an integer id)."""
    left, pl = flank_coat(seed, individual, "left")
    right, pr = flank_coat(seed, individual, "right")
    return Coat(left=left, right=right, limb=limb_texture(seed, individual), pattern={"left": pl, "right": pr})


@lru_cache(maxsize=8)
def tiger_coat(seed: int, individual: int) -> Coat:
    """A striped Amur tiger coat (distractor): orange with dark vertical stripes, white belly."""
    out = []
    for side in ("left", "right"):
        r = rng(seed, "tiger", individual, side)
        h, w = COAT_H, COAT_W
        m = np.zeros((h, w), np.uint8)
        x = 0.0
        while x < w:
            x += r.uniform(22, 40)
            top = (x + r.normal(0, 6), -5)
            bot = (x + r.normal(0, 25), h * r.uniform(0.55, 0.9))
            cv2.line(m, _pt(*top), _pt(*bot), 255, int(r.uniform(5, 11)), cv2.LINE_AA, SHIFT)
        st = _soft(cv2.GaussianBlur(_warp(m, r, 5, 30), (0, 0), 1.2))
        vv = (np.arange(h, dtype=np.float32) / (h - 1))[:, None, None]
        tb = np.clip((vv - 0.6) / 0.3, 0, 1)
        base = np.array([214, 120, 40], np.float32) * (1 - tb) + np.array([235, 230, 220], np.float32) * tb
        col = np.broadcast_to(base, (h, w, 3)) * _fur(r, h, w)[..., None]
        col = col * (1 - st[..., None]) + np.array([25, 20, 18], np.float32) * st[..., None]
        out.append(np.clip(col, 0, 255).astype(np.float32))
    # limbs, head and tail: tileable dark bands across the limb (no spots: a tiger is never spotted)
    r = rng(seed, "tiger-limb", individual)
    n = LIMB_SIZE
    m = np.zeros((n * 3, n), np.uint8)
    y = 0.0
    while y < n:
        y += r.uniform(18, 34)
        for oy in (0, n, 2 * n):
            cv2.line(m, _pt(-5, y + oy + r.normal(0, 4)), _pt(n + 5, y + oy + r.normal(0, 4)), 255,
                     int(r.uniform(4, 9)), cv2.LINE_AA, SHIFT)
    m = np.ascontiguousarray(m[n:2 * n])
    st = _soft(cv2.GaussianBlur(_warp(m, r, 4, 30), (0, 0), 1.0))
    lb = np.broadcast_to(np.array([214, 120, 40], np.float32), (n, n, 3)) * _fur(r, n, n)[..., None]
    limb = np.clip(lb * (1 - st[..., None]) + np.array([25, 20, 18], np.float32) * st[..., None], 0, 255).astype(np.float32)
    return Coat(left=out[0], right=out[1], limb=limb, pattern={})


def plain_coat(seed: int, key: str, base, belly, spot=None, size: int = 128) -> Coat:
    """Nearly uniform fur for deer/boar/badger: base colour, belly gradient, fur noise."""
    r = rng(seed, "plain", key)
    h, w = size, int(size * 2.5)
    vv = (np.arange(h, dtype=np.float32) / (h - 1))[:, None, None]
    tb = np.clip((vv - 0.65) / 0.3, 0, 1)
    base = np.asarray(base, np.float32)
    col = np.broadcast_to(base * (1 - tb) + np.asarray(belly, np.float32) * tb, (h, w, 3)) * _fur(r, h, w)[..., None]
    limb = np.broadcast_to(base * 0.9, (size, size, 3)) * _fur(r, size, size)[..., None]
    col = np.clip(col, 0, 255).astype(np.float32)
    return Coat(left=col, right=col, limb=np.clip(limb, 0, 255).astype(np.float32), pattern={})
