"""A walking person (ranger, poacher, tourist) as a distractor sprite, side or front view."""
from __future__ import annotations

import numpy as np

from spotid.synth.canvas import Pose, Sprite, _Canvas, _seg_poly


def render_person(coat, pose: Pose, px_per_m: float) -> Sprite:
    """``coat.limb[0, 0]`` gives the jacket colour, ``coat.left[0, 0]`` the trousers colour."""
    jacket = coat.limb[0, 0].astype(np.float32)
    trousers = coat.left[0, 0].astype(np.float32)
    skin = np.array([196, 150, 120], np.float32)
    s = px_per_m
    W, H = 0.9, 1.9
    cv = _Canvas(-W / 2, H, int(np.ceil(W * s)), int(np.ceil((H + 0.02) * s)), s)
    w = cv.w
    walk = pose.gait == "walk"
    sw = 0.35 * np.sin(pose.phase) if walk else 0.05
    side = pose.view == "side"
    hip = np.array([0.0, 0.92])
    for sgn, shade in ((-1, 0.75), (1, 1.0)):
        if side:
            knee = hip + np.array([np.sin(sgn * sw) * 0.46, -np.cos(sgn * sw) * 0.46])
            foot = knee + np.array([np.sin(sgn * sw * 0.5) * 0.44, -np.cos(sgn * sw * 0.5) * 0.44])
        else:
            knee = hip + np.array([sgn * 0.09, -0.46])
            foot = knee + np.array([0.0, -0.44])
        cv.paint(trousers * shade,
                 cv.poly_mask([_seg_poly(hip + (0 if side else np.array([sgn * 0.08, 0])), knee, 0.17, 0.13),
                               _seg_poly(knee, foot + np.array([0, 0.04]), 0.13, 0.12)], [(knee, 0.065)]))
        boot = [foot + np.array([-0.06, 0.0]), foot + np.array([0.16 if side else 0.06, 0.0]),
                foot + np.array([0.12 if side else 0.06, 0.09]), foot + np.array([-0.06, 0.09])]
        cv.paint(np.float32(35), cv.poly_mask([boot]))
    torso_w = 0.26 if side else 0.44
    torso = [np.array([-torso_w / 2, 0.88]), np.array([torso_w / 2, 0.88]), np.array([torso_w / 2 + 0.02, 1.48]),
             np.array([-torso_w / 2 - 0.02, 1.48])]
    if side:
        pack = [np.array([-0.30, 1.0]), np.array([-0.1, 1.0]), np.array([-0.1, 1.5]), np.array([-0.30, 1.45])]
        cv.paint(np.float32(60) + jacket * 0.2, cv.poly_mask([pack]))
    cv.paint(jacket, cv.poly_mask([torso]))
    for sgn in ((1,) if side else (-1, 1)):
        sh = np.array([0.0 if side else sgn * 0.22, 1.42])
        hand = sh + (np.array([np.sin(-sw) * 0.6, -0.58]) if side else np.array([sgn * 0.05, -0.6]))
        cv.paint(jacket * 0.9, cv.poly_mask([_seg_poly(sh, hand, 0.11, 0.09)], [(hand, 0.05)]))
    cv.paint(skin, cv.poly_mask([], [(np.array([0.0, 1.62]), 0.11)]))
    cv.paint(jacket * 0.6, cv.poly_mask([[np.array([-0.12, 1.66]), np.array([0.12, 1.66]),
                                                                        np.array([0.08, 1.76]), np.array([-0.08, 1.76])]]))
    rgb, alpha = cv.rgb, cv.alpha
    foot = tuple(cv.to_px([(0.0, 0.0)])[0])
    if pose.facing < 0:
        rgb, alpha = rgb[:, ::-1].copy(), alpha[:, ::-1].copy()
        foot = (w - 1 - foot[0], foot[1])
    return Sprite(rgb=rgb, alpha=alpha, foot=foot, eyes=[])
