"""Rendering one burst frame: scene + subject + light/IR + info bar, with exact truth boxes.

Boxes are absolute pixel ``[x, y, w, h]`` (COCO) of the *visible* animal: the rendered alpha
after occlusion by trunks and grass in front of it, clipped to the frame above the info bar.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from spotid.synth.animals import Pose, Sprite, render_animal
from spotid.synth.coat import Coat, leopard_coat, plain_coat, tiger_coat
from spotid.synth.rng import rng
from spotid.synth.scene import Scene, _ir_gray, bar_height, day_gain, info_bar

HEIGHT_M = {"leopard": 0.75, "tiger": 1.05, "deer": 1.15, "boar": 0.9, "badger": 0.32, "person": 1.78}
SPEED = {"leopard": (0.6, 1.4), "tiger": (0.7, 1.5), "deer": (0.6, 2.5), "boar": (0.6, 1.6), "badger": (0.4, 0.9),
         "person": (0.9, 1.5)}


@dataclass
class Box:
    """One labelled object in a frame: COCO ``bbox`` absolute [x, y, w, h] pixels of the pixels whose
    visible alpha exceeds 0.3; ``mask`` the visible alpha (H, W) float32 0..1 after occlusion, when
    requested (``masks=True``)."""

    species: str
    bbox: list
    individual: str | None
    flank: str | None
    visible_fraction: float
    distance: float
    mask: np.ndarray | None = None


@dataclass
class Frame:
    image: np.ndarray            # (H, W, 3) uint8 RGB
    boxes: list = field(default_factory=list)
    night: bool = False
    temperature_c: int = 0


def individual_num(individual: str) -> int:
    return int("".join(ch for ch in individual if ch.isdigit()) or 0)


@lru_cache(maxsize=64)
def _species_coat(seed: int, species: str, key: int) -> Coat:
    r = rng(seed, "species-coat", species, key)
    if species == "deer":
        return plain_coat(seed, f"deer{key}", (128 + r.normal(0, 8), 100, 76), (200, 190, 170))
    if species == "boar":
        return plain_coat(seed, f"boar{key}", (62, 52, 44), (70, 60, 50))
    if species == "badger":
        return plain_coat(seed, f"badger{key}", (128, 122, 112), (50, 46, 42))
    if species == "tiger":
        return tiger_coat(seed, key)
    if species == "person":
        jackets = [(60, 80, 50), (40, 50, 70), (150, 60, 40), (90, 90, 85), (30, 30, 32)]
        c = plain_coat(seed, f"person{key}", jackets[key % len(jackets)], jackets[key % len(jackets)])
        legs = np.broadcast_to(np.array([(50, 50, 55), (70, 75, 60), (40, 45, 70)][key % 3], np.float32), c.left.shape)
        return Coat(left=np.ascontiguousarray(legs), right=np.ascontiguousarray(legs), limb=c.limb, pattern={})
    raise ValueError(species)


def sample_pose(r: np.random.Generator, view: str, species: str, night: bool) -> Pose:
    side = view in ("left", "right")
    facing = 1 if view == "right" else -1
    walk = r.random() < 0.75
    return Pose(view="side" if side else view, facing=facing, gait="walk" if walk else "stand",
                phase=float(r.uniform(0, 2 * math.pi)), yaw=float(r.normal(0, 0.25)),
                head="camera" if (species == "leopard" and r.random() < (0.35 if night else 0.2)) else "profile",
                head_pitch=float(r.normal(-0.05, 0.15)), bend=float(r.normal(0, 0.015)),
                tail_curl=float(r.uniform(0.0, 0.3)))


def _motion_blur(sp: Sprite, px: float, vertical: bool = False) -> Sprite:
    k = int(round(px))
    if k < 2:
        return sp
    ks = (1, k) if vertical else (k, 1)
    pad = k
    a = cv2.copyMakeBorder(sp.alpha, 0, 0, pad, pad, cv2.BORDER_CONSTANT, value=0)
    pm = cv2.copyMakeBorder(sp.rgb * sp.alpha[..., None], 0, 0, pad, pad, cv2.BORDER_CONSTANT, value=0)
    a = cv2.blur(a, ks, borderType=cv2.BORDER_CONSTANT)
    pm = cv2.blur(pm, ks, borderType=cv2.BORDER_CONSTANT)
    rgb = pm / np.maximum(a[..., None], 1e-4)
    return Sprite(rgb=rgb, alpha=a, foot=(sp.foot[0] + pad, sp.foot[1]), eyes=[(x + pad, y) for x, y in sp.eyes])


def _noise_bank(h: int, w: int) -> np.ndarray:
    return _noise_bank_cached(h, w)


@lru_cache(maxsize=4)
def _noise_bank_cached(h: int, w: int) -> np.ndarray:
    r = rng(12345, "ir-noise", h, w)
    return (r.standard_normal((h + 64, w + 64)) * 9).astype(np.float32)


class FrameRenderer:
    """Renders the frames of triggers for one world (``seed``) on given scenes."""

    def __init__(self, seed: int, camera_model: str = "HyperFire 2"):
        self.seed = seed
        self.camera_model = camera_model

    def coat(self, species: str, individual: str | None, event: int) -> Coat:
        if species == "leopard":
            return leopard_coat(self.seed, individual_num(individual or "0"))
        return _species_coat(self.seed, species, abs(event) % 7)

    def __call__(self, scene: Scene, *, species: str, individual: str | None, view: str | None, distance: float,
                 event: int, deployment: str, frame_num: int, hour: float, night: bool, stamp: tuple[str, str, str] | None,
                 temperature_c: int, masks: bool = False, cloud: float | None = None) -> Frame:
        """Render frame ``frame_num`` of the burst of ``event`` on ``deployment``'s scene."""
        H, W = scene.height, scene.width
        r_ev = rng(self.seed, "burst", event, deployment)      # fixed over the burst
        r_fr = rng(self.seed, "frame", event, deployment, frame_num)
        cloud = float(r_ev.random()) if cloud is None else cloud
        boxes: list[Box] = []
        if night:
            img = scene.ir_full.astype(np.float32)
        else:
            gain = day_gain(hour, cloud)
            img = cv2.transform(scene.full, np.diag(gain).astype(np.float32))
        if species != "empty" and view is not None:
            pose0 = sample_pose(r_ev, view, species, night)
            v = float(r_ev.uniform(*SPEED[species])) * (0.15 if pose0.gait == "stand" else 1.0)
            x_mid = float(r_ev.uniform(0.08, 0.92)) * W
            side = view in ("left", "right")
            if side:
                d = distance
                x = x_mid + (frame_num - 1) * pose0.facing * v * scene.focal / d
            else:
                d = max(4.0, distance + (frame_num - 1) * v * (-1 if view == "front" else 1))
                x = x_mid
            head = pose0.head
            if species == "leopard" and side and r_fr.random() < 0.25:
                head = "camera" if head == "profile" else "profile"
            pose = Pose(**{**pose0.__dict__, "phase": pose0.phase + frame_num * 2.3, "head": head})
            s = scene.focal / d
            flank = view if side else None
            sp = render_animal(species, self.coat(species, individual, event), flank or "right", pose, s)
            exposure = 1 / 30 if night else 1 / 400
            blur = v * s * exposure + (r_fr.uniform(0, 3) if night else 0)
            sp = _motion_blur(sp, blur if side else blur * 0.3, vertical=False)
            yb = scene.ground_row(d)
            ox, oy = int(round(x - sp.foot[0])), int(round(yb - sp.foot[1]))
            bar_top = H - bar_height(H) if stamp is not None else H
            box = self._composite(img, scene, sp, ox, oy, d, night, hour, cloud, r_fr, masks, bar_top)
            if box is not None:
                vis_frac, bbox, mask = box
                boxes.append(Box(species, bbox, individual if species == "leopard" else None,
                                 view if species == "leopard" else None, vis_frac, round(d, 2), mask))
        if night:
            nb = _noise_bank(H, W)
            oy_, ox_ = int(r_fr.integers(64)), int(r_fr.integers(64))
            img = img + nb[oy_:oy_ + H, ox_:ox_ + W]
            img = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2RGB)
        if stamp is not None:
            info_bar(img, *stamp)
        return Frame(image=img, boxes=boxes, night=night, temperature_c=temperature_c)

    def _composite(self, img, scene: Scene, sp: Sprite, ox: int, oy: int, d: float, night: bool, hour: float,
                   cloud: float, r: np.random.Generator, masks: bool, bar_top: int):
        H, W = scene.height, scene.width
        h, w = sp.alpha.shape
        x0, y0, x1, y1 = max(0, ox), max(0, oy), min(W, ox + w), min(H, oy + h)
        if x1 <= x0 or y1 <= y0:
            return None
        sl = (slice(y0, y1), slice(x0, x1))
        ssl = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
        a = sp.alpha[ssl]
        front = scene.occ_alpha[sl] * (scene.occ_depth[sl] < d)
        total = float(sp.alpha.sum())
        if night:
            spr = _ir_gray(sp.rgb[ssl]) * scene.flash(d) * 0.9
            bg = scene.ir_base[sl]
            comp = bg * (1 - a) + spr * a
            comp = comp * (1 - front) + scene.ir_occ[sl] * front
            for ex, ey in sp.eyes:   # eyeshine: the tapetum reflects the IR flash
                if r.random() < 0.85:
                    cx, cy = ex - (x0 - ox), ey - (y0 - oy)
                    rad = max(1.2, 0.012 * scene.focal / d)
                    yy, xx = np.ogrid[:comp.shape[0], :comp.shape[1]]
                    glow = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * rad ** 2))
                    vis = 1 - front
                    comp = np.maximum(comp, 255 * glow * vis)
            img[sl] = comp
        else:
            gain = day_gain(hour, cloud)
            bg = scene.base[sl].astype(np.float32)
            # a soft contact shadow under the animal
            sh = np.zeros(a.shape, np.float32)
            fx, fy = sp.foot[0] - (x0 - ox), sp.foot[1] - (y0 - oy)
            cv2.ellipse(sh, (int(fx), int(fy)), (max(1, int(w * 0.38)), max(1, int(0.05 * scene.focal / d))), 0, 0, 360,
                        1.0, -1)
            sh = cv2.GaussianBlur(sh, (0, 0), max(1.0, 0.03 * scene.focal / d))
            bg = bg * (1 - 0.35 * sh[..., None])
            comp = bg * (1 - a[..., None]) + sp.rgb[ssl] * a[..., None]
            comp = comp * (1 - front[..., None]) + scene.occ_rgb[sl].astype(np.float32) * front[..., None]
            img[sl] = np.clip(comp * gain, 0, 255).astype(np.uint8)
        vis = a * (1 - front)
        if y1 > bar_top:     # the info bar hides whatever is behind it
            vis[bar_top - y0:] = 0
        visible = vis > 0.3
        if not visible.any():
            return None
        ys, xs = np.nonzero(visible)
        bbox = [int(xs.min() + x0), int(ys.min() + y0), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        mask = None
        if masks:
            mask = np.zeros((H, W), np.float32)
            mask[sl] = vis
        return round(float(vis.sum()) / max(total, 1e-6), 3), bbox, mask
