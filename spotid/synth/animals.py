"""Rendering animals as sprites: a leopard (and distractor species) warped from coat textures.

Model space is metres, x towards the head, y up, ground at y = 0. A sprite is rendered head-right
and mirrored for head-left, so the right flank is always seen head-right and the left flank
head-left, as a camera sees them. The flank coat is mapped onto a curved, tapering torso with a
cylindrical projection (texture compresses towards the silhouette), a bending spine, perspective
foreshortening for body yaw and shading, so the coat deforms with the body.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from spotid.synth.canvas import _S, SHIFT, Pose, Sprite, _Canvas, _Mask, _rot, _seg_poly, _tile
from spotid.synth.coat import COAT_H, COAT_W, M_PER_PX, Coat
from spotid.synth.people import render_person

__all__ = ["Pose", "Sprite", "render_animal", "render_side", "render_front_back", "BUILDS"]



@dataclass(frozen=True)
class Build:
    """Body plan of a species (metres). Profiles are sampled at ``KNOTS`` along the torso."""

    torso_len: float
    top: tuple
    bottom: tuple
    hip_u: float
    shoulder_u: float
    hind: tuple           # ((length, width_start, width_end, angle_deg), ...) from the hip down
    fore: tuple
    neck: tuple           # (head origin dx, dy from the shoulder top, neck width)
    head: str             # head shape name in HEADS
    head_scale: float
    tail: tuple           # (length, width, droop, default curl)
    spots_scale: float = 1.0   # limb texture frequency
    height: float = 0.75  # overall standing height (for sizing sprites)


KNOTS = np.array([0.0, 0.1, 0.3, 0.55, 0.8, 0.93, 1.0])

LEOPARD = Build(
    torso_len=0.86, top=(0.60, 0.63, 0.62, 0.60, 0.64, 0.66, 0.62), bottom=(0.40, 0.33, 0.31, 0.30, 0.31, 0.33, 0.40),
    hip_u=0.12, shoulder_u=0.84,
    hind=((0.21, 0.15, 0.10, 22), (0.21, 0.085, 0.06, -38), (0.15, 0.055, 0.05, 10)),
    fore=((0.18, 0.13, 0.09, -18), (0.23, 0.08, 0.065, 4)),
    neck=(0.13, 0.02, 0.17), head="cat", head_scale=1.0, tail=(0.85, 0.075, 0.45, 0.15), height=0.75,
)
TIGER = Build(
    torso_len=1.25, top=(0.86, 0.90, 0.89, 0.86, 0.92, 0.94, 0.89), bottom=(0.58, 0.48, 0.45, 0.44, 0.45, 0.48, 0.58),
    hip_u=0.12, shoulder_u=0.84,
    hind=((0.30, 0.22, 0.15, 22), (0.30, 0.12, 0.09, -38), (0.21, 0.08, 0.075, 10)),
    fore=((0.26, 0.19, 0.13, -18), (0.33, 0.12, 0.10, 4)),
    neck=(0.18, 0.03, 0.25), head="cat", head_scale=1.45, tail=(0.95, 0.10, 0.6, 0.1), height=1.05,
)
DEER = Build(
    torso_len=0.80, top=(0.80, 0.84, 0.83, 0.82, 0.85, 0.88, 0.86), bottom=(0.66, 0.58, 0.55, 0.54, 0.56, 0.60, 0.68),
    hip_u=0.12, shoulder_u=0.85,
    hind=((0.24, 0.11, 0.06, 20), (0.30, 0.05, 0.035, -30), (0.24, 0.035, 0.03, 5)),
    fore=((0.24, 0.09, 0.05, -10), (0.38, 0.04, 0.03, 2)),
    neck=(0.18, 0.32, 0.12), head="deer", head_scale=1.0, tail=(0.06, 0.05, 0.1, 0.0), height=1.15,
)
BOAR = Build(
    torso_len=0.95, top=(0.66, 0.70, 0.74, 0.78, 0.84, 0.86, 0.80), bottom=(0.42, 0.34, 0.30, 0.30, 0.32, 0.36, 0.46),
    hip_u=0.12, shoulder_u=0.82,
    hind=((0.22, 0.16, 0.09, 15), (0.22, 0.07, 0.05, -25), (0.14, 0.05, 0.045, 5)),
    fore=((0.24, 0.15, 0.08, -8), (0.30, 0.065, 0.05, 2)),
    neck=(0.08, -0.10, 0.30), head="boar", head_scale=1.0, tail=(0.25, 0.025, 0.9, -0.05), height=0.9,
)
BADGER = Build(
    torso_len=0.55, top=(0.22, 0.27, 0.29, 0.29, 0.27, 0.26, 0.22), bottom=(0.12, 0.08, 0.07, 0.07, 0.08, 0.09, 0.12),
    hip_u=0.15, shoulder_u=0.82,
    hind=((0.09, 0.08, 0.06, 5), (0.08, 0.05, 0.05, -5)),
    fore=((0.09, 0.08, 0.06, -3), (0.08, 0.05, 0.05, 3)),
    neck=(0.06, -0.03, 0.14), head="badger", head_scale=0.75, tail=(0.12, 0.05, 0.4, 0.0), height=0.32,
)
BUILDS = {"leopard": LEOPARD, "tiger": TIGER, "deer": DEER, "boar": BOAR, "badger": BADGER}

# Head outlines in head coordinates (metres, nape at the origin, muzzle towards +x).
HEADS = {
    "cat": dict(
        outline=[(0.0, 0.03), (0.03, 0.075), (0.08, 0.09), (0.13, 0.075), (0.17, 0.05), (0.205, 0.03), (0.218, 0.012),
                 (0.215, -0.008), (0.195, -0.028), (0.16, -0.048), (0.10, -0.07), (0.04, -0.075), (0.0, -0.06)],
        ear=[(0.035, 0.07), (0.045, 0.125), (0.065, 0.13), (0.085, 0.085)],
        eye=(0.145, 0.035), nose=(0.212, 0.01), muzzle=(0.185, -0.015, 0.035, 0.025)),
    "deer": dict(
        outline=[(0.0, 0.03), (0.05, 0.06), (0.10, 0.05), (0.17, 0.03), (0.21, 0.01), (0.215, -0.02), (0.18, -0.04),
                 (0.10, -0.05), (0.03, -0.05), (0.0, -0.03)],
        ear=[(0.02, 0.05), (-0.03, 0.15), (0.02, 0.16), (0.06, 0.06)],
        eye=(0.08, 0.025), nose=(0.21, -0.005), muzzle=(0.19, -0.02, 0.02, 0.02)),
    "boar": dict(
        outline=[(0.0, 0.10), (0.10, 0.07), (0.22, 0.02), (0.34, -0.06), (0.36, -0.12), (0.33, -0.14), (0.20, -0.12),
                 (0.08, -0.12), (0.0, -0.08)],
        ear=[(0.03, 0.08), (0.0, 0.17), (0.05, 0.15), (0.09, 0.07)],
        eye=(0.12, 0.02), nose=(0.355, -0.12), muzzle=(0.33, -0.12, 0.03, 0.02)),
    "badger": dict(
        outline=[(0.0, 0.05), (0.06, 0.05), (0.14, 0.02), (0.19, -0.01), (0.17, -0.03), (0.08, -0.045), (0.0, -0.04)],
        ear=[(0.02, 0.04), (0.02, 0.065), (0.045, 0.06), (0.05, 0.04)],
        eye=(0.09, 0.012), nose=(0.19, -0.012), muzzle=(0.17, -0.02, 0.02, 0.015)),
}




def _leg(root, segs, angles, xscale) -> list:
    """Forward kinematics: list of (p0, p1, w0, w1) for a chain of segments; angles from vertical."""
    out = []
    p = np.asarray(root, float)
    for (length, w0, w1, _), a in zip(segs, angles):
        q = p + np.array([np.sin(np.deg2rad(a)) * length * xscale, -np.cos(np.deg2rad(a)) * length])
        out.append((p, q, w0, w1))
        p = q
    return out


def _leg_angles(segs, psi: float, walking: bool, hind: bool) -> list:
    base = [s[3] for s in segs]
    if not walking:
        return base
    swing = max(0.0, np.cos(psi))
    out = [base[0] + 22 * np.sin(psi)]
    if len(base) > 1:
        out.append(base[1] + (-22 if hind else -40) * swing + (0 if hind else 10 * np.sin(psi)))
    if len(base) > 2:
        out.append(base[2] + 25 * swing)
    return out


def render_side(build: Build, coat: Coat, flank: str, pose: Pose, px_per_m: float) -> Sprite:
    """Side view of a quadruped, head right; mirrored when ``pose.facing`` is -1."""
    b = build
    yaw = float(np.clip(pose.yaw, -0.7, 0.7))
    xs = np.cos(yaw)
    k = -0.35 * np.sin(yaw)
    ug = np.linspace(0, 1, 161)
    xg = b.torso_len * xs * (ug + k * ug * (1 - ug))
    near = 1 + 0.18 * np.sin(yaw) * (ug - 0.5) * 2
    top = np.interp(ug, KNOTS, b.top)
    bot = np.interp(ug, KNOTS, b.bottom)
    cen = (top + bot) / 2 + pose.bend * np.sin(np.pi * ug)
    half = (top - bot) / 2 * near
    end = np.clip((np.abs(ug - 0.5) - 0.38) / 0.12, 0, 1)
    half = half * np.sqrt(1 - end ** 2)

    walking = pose.gait == "walk"
    phases = {"hind_near": 0.0, "fore_near": np.pi / 2, "hind_far": np.pi, "fore_far": 3 * np.pi / 2}
    hip = np.array([np.interp(b.hip_u, ug, xg), np.interp(b.hip_u, ug, cen + half) - 0.1 * (top[0] - bot[0] + 0.1)])
    sho = np.array([np.interp(b.shoulder_u, ug, xg), np.interp(b.shoulder_u, ug, cen + half) - 0.12])
    far_dx = -0.05 * np.sin(yaw) + 0.02
    legs = {}
    for name, ph in phases.items():
        hind = name.startswith("hind")
        segs = b.hind if hind else b.fore
        root = (hip if hind else sho) + (np.array([far_dx, 0.015]) if name.endswith("far") else 0)
        chain = _leg(root, segs, _leg_angles(segs, pose.phase + ph, walking, hind), xs)
        legs[name] = chain
    feet_y = [c[-1][1][1] - c[-1][3] / 2 for c in legs.values()]
    lift = -min(feet_y)                                  # stance feet on the ground
    foot_x = float(np.mean([c[-1][1][0] for c in legs.values()]))

    hs = b.head_scale
    hd = HEADS[b.head]
    shoulder_top = np.array([np.interp(0.9, ug, xg), np.interp(0.9, ug, cen + half)])
    head_org = shoulder_top + np.array([b.neck[0] * xs, b.neck[1]])
    hp = pose.head_pitch
    camera_face = pose.head == "camera" and b.head == "cat"

    def head_pts(pts):
        return _rot(np.asarray(pts, float) * hs, hp) + head_org

    tl, tw, droop, _ = b.tail
    t = np.linspace(0, 1, 24)[:, None]
    base = np.array([xg[0] + 0.02, cen[2] + half[2] * 0.6])
    p1 = base + np.array([-0.25 * tl, -droop * 0.5])
    p2 = base + np.array([-0.6 * tl, -droop * 1.05])
    p3 = base + np.array([-0.95 * tl * xs, -droop + pose.tail_curl])
    tail = (1 - t) ** 3 * base + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3
    tail[:, 1] = np.maximum(tail[:, 1], 0.03 - lift)

    # bounding box in model metres (after lifting onto the ground)
    allp = [np.stack([xg, cen + half], 1), np.stack([xg, cen - half], 1), tail, head_pts(hd["outline"]),
            head_pts(hd["ear"]), head_pts([(0, 0.12), (0.1, 0.15)])]
    for c in legs.values():
        for p0, p1_, _, _ in c:
            allp += [p0[None], p1_[None]]
    allp = np.concatenate(allp) + np.array([0, lift])
    m = 0.08
    xmin, xmax = allp[:, 0].min() - m, allp[:, 0].max() + m
    ymin, ymax = -0.02, allp[:, 1].max() + m
    s = px_per_m
    w, h = max(4, int(np.ceil((xmax - xmin) * s))), max(4, int(np.ceil((ymax - ymin) * s)))
    cv = _Canvas(xmin, ymax - lift, w, h, s)   # model y (unlifted) -> pixels

    limb = _tile(coat.limb, w, h, s, 1.6 / M_PER_PX * build.spots_scale)
    head_tex = _tile(coat.limb, w, h, s, 2.0 / M_PER_PX * build.spots_scale)

    def draw_leg(chain, shade):
        polys = [_seg_poly(p0, p1_, w0, w1) for p0, p1_, w0, w1 in chain]
        circles = [(p1_, w1 / 2) for _, p1_, _, w1 in chain]
        p_last = chain[-1][1]
        paw = [p_last + np.array([-0.02, -chain[-1][3] / 2]), p_last + np.array([0.07 * xs, -chain[-1][3] / 2]),
               p_last + np.array([0.06 * xs, chain[-1][3] / 3]), p_last + np.array([-0.02, chain[-1][3] / 2])]
        cv.paint(limb * shade, cv.poly_mask(polys + [paw], circles))

    draw_leg(legs["hind_far"], 0.62)
    draw_leg(legs["fore_far"], 0.62)
    # tail
    tm = np.zeros((h, w), np.uint8)
    tp = np.round(cv.to_px(tail) * _S).astype(np.int32)
    for i in range(len(tp) - 1):
        wd = tw * (1 - 0.3 * i / len(tp)) * s
        cv2.line(tm, tuple(tp[i]), tuple(tp[i + 1]), 255, max(1, int(round(wd))), cv2.LINE_AA, SHIFT)
    tail_col = _tile(coat.limb, w, h, s, 1.1 / M_PER_PX * build.spots_scale)
    bx, by, bw, bh = cv2.boundingRect(tm)
    if bw > 0 and bh > 0:
        sl = (slice(by, by + bh), slice(bx, bx + bw))
        cv.paint(tail_col * 0.9, _Mask(tm[sl].astype(np.float32) / 255.0, sl))

    # torso: inverse map pixel -> (u, v) -> coat texture
    tx0 = max(0, int(np.floor((xg[0] - xmin) * s)) - 1)
    tx1 = min(w, int(np.ceil((xg[-1] - xmin) * s)) + 2)
    ty0 = max(0, int(np.floor((ymax - lift - (cen + half).max()) * s)) - 1)
    ty1 = min(h, int(np.ceil((ymax - lift - (cen - half).min()) * s)) + 2)
    X = (np.arange(tx0, tx1, dtype=np.float32) / s + xmin)
    Y = (ymax - lift - np.arange(ty0, ty1, dtype=np.float32) / s)
    u = np.interp(X, xg, ug).astype(np.float32)
    c_u = np.interp(u, ug, cen).astype(np.float32)
    h_u = np.interp(u, ug, half).astype(np.float32)
    inside_x = (X >= xg[0]) & (X <= xg[-1])
    vlin = ((c_u + h_u)[None, :] - Y[:, None]) / np.maximum(2 * h_u[None, :], 1e-4)
    # distance (pixels) to the nearer of the back and belly lines: antialiased silhouette
    edge_px = np.minimum((c_u + h_u)[None, :] - Y[:, None], Y[:, None] - (c_u - h_u)[None, :]) * s
    a_t = np.clip(edge_px + 0.5, 0, 1) * inside_x[None, :]
    vt = np.arccos(np.clip(1 - 2 * vlin, -1, 1)) / np.pi
    mapx = np.broadcast_to(u[None, :] * (COAT_W - 1), vlin.shape).astype(np.float32)
    mapy = (vt * (COAT_H - 1)).astype(np.float32)
    tex = coat.flank(flank)
    if s * M_PER_PX < 0.5:     # strong minification: use a pre-blurred texture (poor man's mipmap)
        kf = 0.5 / (s * M_PER_PX)
        tex = cv2.GaussianBlur(tex, (0, 0), 0.5 * kf)
    torso = cv2.remap(tex, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    sv = np.clip(vlin, 0, 1)
    shade = (0.70 + 0.36 * np.sin(np.pi * sv) ** 0.7) * (1.08 - 0.2 * sv)
    cv.paint(torso * shade[..., None], _Mask(a_t.astype(np.float32), (slice(ty0, ty1), slice(tx0, tx1))))

    # neck
    n0 = np.array([np.interp(0.90, ug, xg), np.interp(0.90, ug, cen + half)])
    n1 = np.array([np.interp(0.99, ug, xg), np.interp(0.99, ug, cen - half) + 0.02])
    neck_poly = [n0, head_pts([(0.03, 0.06)])[0], head_pts([(0.03, -0.06)])[0], n1,
                 np.array([np.interp(0.96, ug, xg), np.interp(0.96, ug, cen)])]
    neck_col = limb * 1.0
    cv.paint(neck_col, cv.poly_mask([neck_poly]))
    eyes = []
    if camera_face:
        eyes += _draw_face(cv, head_org + np.array([0.06 * hs, 0.0]), hs, head_tex)
    else:
        ear_m = cv.poly_mask([head_pts(hd["ear"])])
        cv.paint(head_tex * 0.55, ear_m)
        cv.paint(head_tex, cv.poly_mask([head_pts(hd["outline"])]))
        mx, my, mw, mh = hd["muzzle"]
        mu = cv.poly_mask([], [(head_pts([(mx, my)])[0], mw * hs)])
        cv.paint(np.float32(215), mu * 0.45)
        ex, ey = head_pts([hd["eye"]])[0]
        er = 0.013 * hs
        cv.paint(np.float32(30), cv.poly_mask([], [((ex, ey), er)]))
        cv.paint(np.float32(20), cv.poly_mask([], [(head_pts([hd["nose"]])[0], 0.012 * hs)]))
        eyes.append(tuple(cv.to_px([(ex, ey)])[0]))
    draw_leg(legs["hind_near"], 0.97)
    draw_leg(legs["fore_near"], 0.97)

    foot = tuple(cv.to_px([(foot_x, -lift)])[0])
    rgb, alpha = cv.rgb, cv.alpha
    if pose.facing < 0:
        rgb, alpha = rgb[:, ::-1].copy(), alpha[:, ::-1].copy()
        foot = (w - 1 - foot[0], foot[1])
        eyes = [(w - 1 - x, y) for x, y in eyes]
    return Sprite(rgb=rgb, alpha=alpha, foot=foot, eyes=eyes)


def _draw_face(cv: _Canvas, c: np.ndarray, hs: float, tex: np.ndarray) -> list:
    """A cat face turned to the camera, centred at ``c`` (metres); returns the eye pixels."""
    r = 0.095 * hs
    ears = [(c + np.array([sx * 0.068, 0.07]) * hs, 0.034 * hs) for sx in (-1, 1)]
    cv.paint(tex * 0.5, cv.poly_mask([], ears))
    cv.paint(np.float32(200), cv.poly_mask([], [(e, r_ * 0.5) for e, r_ in ears]) * 0.6)
    ang = np.linspace(0, 2 * np.pi, 40)
    face = c + np.stack([np.cos(ang) * r * 1.0, np.sin(ang) * r * 0.9 - 0.01 * hs * (np.sin(ang) < 0)], 1)
    cv.paint(tex, cv.poly_mask([face]))
    cv.paint(np.float32(228), cv.poly_mask([], [(c + np.array([-0.02, -0.045]) * hs, 0.03 * hs),
                                                                  (c + np.array([0.02, -0.045]) * hs, 0.03 * hs)]) * 0.85)
    cv.paint(np.float32(40), cv.poly_mask([[c + np.array([-0.015, -0.02]) * hs, c + np.array([0.015, -0.02]) * hs,
                                                                   c + np.array([0, -0.038]) * hs]]))
    eyes = [c + np.array([sx * 0.038, 0.018]) * hs for sx in (-1, 1)]
    cv.paint(np.float32(35), cv.poly_mask([], [(e, 0.014 * hs) for e in eyes]))
    return [tuple(cv.to_px([e])[0]) for e in eyes]


def render_front_back(build: Build, coat: Coat, view: str, pose: Pose, px_per_m: float) -> Sprite:
    """A cat walking towards ('front') or away from ('back') the camera: no usable flank."""
    hs = build.head_scale
    sc = build.height / 0.75
    s = px_per_m
    W, H = 0.5 * sc, build.height + 0.12 * sc
    w, h = int(np.ceil(W * s)), int(np.ceil(H * s))
    cv = _Canvas(-W / 2, H - 0.02, w, h, s)
    limb = _tile(coat.limb, w, h, s, 1.6 / M_PER_PX)
    head_tex = _tile(coat.limb, w, h, s, 2.0 / M_PER_PX)
    ang = np.linspace(0, 2 * np.pi, 48)

    def ell(cx, cy, rx, ry):
        return np.stack([cx + np.cos(ang) * rx, cy + np.sin(ang) * ry], 1)

    step = 0.03 * sc * np.sin(pose.phase) if pose.gait == "walk" else 0.0
    eyes = []
    if view == "front":
        cv.paint(limb * 0.8, cv.poly_mask([ell(0, 0.54 * sc, 0.15 * sc, 0.09 * sc)]))     # back behind the head
        for sx, st in ((-1, step), (1, -step)):
            x0 = sx * 0.075 * sc
            x0 = sx * 0.085 * sc
            leg = _seg_poly(np.array([x0, 0.36 * sc]), np.array([x0 * 1.1, 0.035 * sc + max(st, 0)]), 0.105 * sc, 0.08 * sc)
            cv.paint(limb * 0.95, cv.poly_mask([leg], [(np.array([x0 * 1.1, 0.035 * sc + max(st, 0)]), 0.05 * sc)]))
        chest = ell(0, 0.40 * sc, 0.155 * sc, 0.14 * sc)
        cv.paint(limb, cv.poly_mask([chest]))
        belly = np.float32(232) * head_tex / np.maximum(head_tex.mean(), 1) * 0.0 + 228
        cv.paint(belly, cv.poly_mask([ell(0, 0.38 * sc, 0.06 * sc, 0.1 * sc)]) * 0.6)
        eyes += _draw_face(cv, np.array([0.0, 0.53 * sc]), hs * 1.15, head_tex)
    else:
        cv.paint(head_tex * 0.9, cv.poly_mask([ell(0, 0.66 * sc, 0.07 * sc, 0.05 * sc)]))
        cv.paint(head_tex * 0.5, cv.poly_mask([], [(np.array([sx * 0.055, 0.70]) * sc, 0.028 * sc) for sx in (-1, 1)]))
        for sx, st in ((-1, step), (1, -step)):
            x0 = sx * 0.085 * sc
            leg = _seg_poly(np.array([x0, 0.38 * sc]), np.array([x0 * 0.95, 0.03 * sc + max(st, 0)]), 0.13 * sc, 0.07 * sc)
            cv.paint(limb * 0.95, cv.poly_mask([leg], [(np.array([x0 * 0.9, 0.03 * sc + max(st, 0)]), 0.035 * sc)]))
        cv.paint(limb, cv.poly_mask([ell(0, 0.46 * sc, 0.16 * sc, 0.15 * sc)]))
        cv.paint(np.float32(225), cv.poly_mask([ell(0, 0.33 * sc, 0.035 * sc, 0.06 * sc)]) * 0.7)
        tx = 0.03 * sc * np.sin(pose.phase)
        tail = [np.array([-0.03 * sc, 0.55 * sc]), np.array([0.03 * sc, 0.55 * sc]),
                np.array([0.03 * sc + tx, 0.08 * sc]), np.array([-0.03 * sc + tx, 0.08 * sc])]
        cv.paint(limb * 0.85, cv.poly_mask([tail]))
    foot = tuple(cv.to_px([(0.0, 0.0)])[0])
    return Sprite(rgb=cv.rgb, alpha=cv.alpha, foot=foot, eyes=eyes)


def render_animal(species: str, coat: Coat, flank: str, pose: Pose, px_per_m: float) -> Sprite:
    """Render ``species`` at ``px_per_m`` pixels per metre. ``flank`` selects the coat side shown."""
    if species == "person":
        return render_person(coat, pose, px_per_m)
    build = BUILDS[species]
    if pose.view in ("front", "back") and species in ("leopard", "tiger"):
        return render_front_back(build, coat, pose.view, pose, px_per_m)
    return render_side(build, coat, flank, pose, px_per_m)
