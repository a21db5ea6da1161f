"""Camera-trap scenes: a fixed procedural background per station, depth-aware occluders,
time-of-day light, infrared night frames, the info bar.

Camera model: pinhole, horizontal field of view ``HFOV``, lens ``cam_h`` metres above flat
ground, horizon at row ``horizon``. A point on the ground at distance d metres appears at row
``horizon + f * cam_h / d``; an object of height z metres at distance d is ``f * z / d`` pixels tall.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from spotid.synth.coat import value_noise
from spotid.synth.rng import rng

HFOV = np.deg2rad(48.0)
HABITATS = ("forest", "undergrowth", "snow")
# infrared flash: relative brightness (FLASH_M / d) ** FLASH_EXP of an object d metres away
# (ambient-free inverse-square light, flattened by auto-exposure; reaches ~20 m like a no-glow flash)
FLASH_M, FLASH_EXP = 7.0, 1.1


@dataclass
class Scene:
    """The static part of one camera's view (cached per deployment).

    ``base``: (H, W, 3) uint8 RGB, everything behind the occluders; ``occ_rgb`` (H, W, 3) uint8 and
    ``occ_alpha`` (H, W) float32: trunks, branches and grass that can hide an animal;
    ``occ_depth`` (H, W) float32 metres (inf where no occluder); ``full``: base with occluders;
    ``ir_full`` (H, W) uint8, ``ir_base``/``ir_occ`` (H, W) float32: the infrared versions.
    """

    habitat: str
    width: int
    height: int
    horizon: float
    focal: float
    cam_h: float
    base: np.ndarray
    occ_rgb: np.ndarray
    occ_alpha: np.ndarray
    occ_depth: np.ndarray
    full: np.ndarray
    ir_base: np.ndarray
    ir_occ: np.ndarray
    ir_full: np.ndarray
    falloff: np.ndarray

    def ground_row(self, d: float) -> float:
        return self.horizon + self.focal * self.cam_h / d

    def flash(self, d: float) -> float:
        """Relative IR flash brightness on an object at ``d`` metres."""
        return float(np.clip((FLASH_M / max(d, 0.5)) ** FLASH_EXP, 0.08, 1.25))


def _aniso(r, h, w, cx, cy) -> np.ndarray:
    g = r.standard_normal((int(h / cy) + 3, int(w / cx) + 3)).astype(np.float32)
    return cv2.resize(g, (int(g.shape[1] * cx), int(g.shape[0] * cy)), interpolation=cv2.INTER_CUBIC)[:h, :w]


def _lerp(a, b, t):
    t = np.asarray(t, np.float32)[..., None]
    return np.asarray(a, np.float32) * (1 - t) + np.asarray(b, np.float32) * t


PALETTES = {
    "forest": dict(far=((52, 58, 40), (96, 92, 70)), ground=((92, 70, 48), (150, 116, 78)), grass=(110, 112, 60),
                   sky=(200, 205, 200), bark=((88, 80, 70), (128, 118, 102))),
    "undergrowth": dict(far=((45, 62, 35), (92, 110, 60)), ground=((80, 74, 46), (132, 120, 70)), grass=(96, 122, 52),
                        sky=(205, 212, 205), bark=((80, 74, 64), (120, 110, 94))),
    "snow": dict(far=((70, 70, 72), (140, 138, 136)), ground=((196, 202, 212), (240, 242, 248)), grass=(150, 130, 95),
                 sky=(225, 228, 232), bark=((70, 64, 58), (118, 110, 100))),
}


def _trunk(img, alpha, depth, r, x, d, scene_h, horizon, focal, cam_h, bark, birch):
    """Draw one tree trunk standing at column x, distance d metres, into the layer arrays."""
    H, W = img.shape[:2]
    width_m = r.uniform(0.12, 0.45)
    wpx = max(2.0, focal * width_m / d)
    y_ground = horizon + focal * cam_h / d
    x0, x1 = int(np.floor(x - wpx / 2)), int(np.ceil(x + wpx / 2))
    y1 = int(min(H, y_ground + 0.02 * focal / d))
    if x1 <= 0 or x0 >= W or y1 <= 0:
        return
    lean = r.normal(0, 0.03)
    rows = np.arange(0, y1)
    cols = np.arange(max(0, x0 - 40), min(W, x1 + 40))
    cx = x + lean * (y_ground - rows)[:, None]
    rel = (cols[None, :] - cx) / (wpx / 2)
    a = np.clip((1 - np.abs(rel)) * wpx / 2 + 0.5, 0, 1).astype(np.float32)
    shade = (0.65 + 0.45 * np.sqrt(np.clip(1 - rel ** 2, 0, 1)) + 0.12 * rel).astype(np.float32)
    tex = _aniso(r, len(rows), len(cols), max(2, wpx / 6), max(8, wpx * 1.5))
    t = np.clip(0.5 + 0.35 * tex, 0, 1)
    col = _lerp(bark[0], bark[1], t)
    if birch:
        col = _lerp((215, 215, 205), (240, 238, 230), t)
        marks = _aniso(r, len(rows), len(cols), max(3, wpx / 3), max(2, wpx / 14)) > 1.5
        col[marks] = (40, 38, 36)
    col = col * shade[..., None]
    sl = (slice(0, y1), slice(cols[0], cols[-1] + 1))
    closer = (d < depth[sl]) & (a > 0)
    a = a * closer
    img[sl] = img[sl] * (1 - a[..., None]) + col * a[..., None]
    alpha[sl] = alpha[sl] + a * (1 - alpha[sl])
    depth[sl] = np.where(a > 0.5, d, depth[sl])


def _grass(img, alpha, depth, r, n, horizon, focal, cam_h, colour, dmin, dmax, height_m):
    """Grass blades / dry stems standing on the ground between dmin and dmax metres."""
    H, W = img.shape[:2]
    layer = np.zeros((H, W), np.uint8)
    dlay = np.full((H, W), np.inf, np.float32)
    for _ in range(n):
        d = r.uniform(dmin, dmax)
        x = r.uniform(-0.05, 1.05) * W
        yb = horizon + focal * cam_h / d
        hpx = focal * height_m * r.uniform(0.3, 1.0) / d
        bend = r.normal(0, 0.35) * hpx
        pts = np.array([[x, yb], [x + bend * 0.3, yb - hpx * 0.5], [x + bend, yb - hpx]])
        th = max(1, int(round(focal * 0.006 / d)))
        cv2.polylines(layer, [np.round(pts * 16).astype(np.int32)], False, 255, th, cv2.LINE_AA, 4)
        y0, y1 = int(max(0, yb - hpx - 2)), int(min(H, yb + 2))
        xa, xb = int(max(0, min(pts[:, 0]) - th - 2)), int(min(W, max(pts[:, 0]) + th + 2))
        if y1 > y0 and xb > xa:
            dlay[y0:y1, xa:xb] = np.minimum(dlay[y0:y1, xa:xb], d)
    bx, by, bw, bh = cv2.boundingRect(layer)
    if bw == 0:
        return
    sl = (slice(by, by + bh), slice(bx, bx + bw))
    a = layer[sl].astype(np.float32) / 255.0
    tint = 0.75 + 0.15 * value_noise(r, bh, bw, 60)[..., None]
    col = np.asarray(colour, np.float32) * tint
    a = a * (dlay[sl] < depth[sl])
    img[sl] = img[sl] * (1 - a[..., None]) + col * a[..., None]
    alpha[sl] = alpha[sl] + a * (1 - alpha[sl])
    depth[sl] = np.where(a > 0.3, np.minimum(depth[sl], dlay[sl]), depth[sl])


def _blobs(img, alpha, depth, r, n, d, cx, cy, spread_px, size_px, colours, horizon_row=None):
    """A bush / leaf cluster: ``n`` small ellipses (leaves) around (cx, cy) at distance d."""
    H, W = img.shape[:2]
    x0, x1 = int(max(0, cx - spread_px * 1.3 - size_px)), int(min(W, cx + spread_px * 1.3 + size_px))
    y0, y1 = int(max(0, cy - spread_px - size_px)), int(min(H, cy + spread_px * 0.4 + size_px))
    if x1 <= x0 or y1 <= y0:
        return
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    col = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
    for _ in range(n):
        px = cx + r.normal(0, spread_px * 0.6) - x0
        py = cy - abs(r.normal(0, spread_px * 0.5)) - y0
        a = max(1.0, size_px * r.uniform(0.5, 1.2))
        c = np.asarray(colours[int(r.integers(len(colours)))], np.float32) * r.uniform(0.7, 1.15)
        ang = r.uniform(0, 180)
        cv2.ellipse(m, (int(px * 16), int(py * 16)), (int(a * 16), int(a * 0.45 * 16)), ang, 0, 360, 255, -1, cv2.LINE_AA, 4)
        cv2.ellipse(col, (int(px * 16), int(py * 16)), (int(a * 16), int(a * 0.45 * 16)), ang, 0, 360, tuple(float(v) for v in c), -1, cv2.LINE_AA, 4)
    a = m.astype(np.float32) / 255.0
    sl = (slice(y0, y1), slice(x0, x1))
    a = a * (d < depth[sl])
    img[sl] = img[sl] * (1 - a[..., None]) + col * a[..., None]
    alpha[sl] = alpha[sl] + a * (1 - alpha[sl])
    depth[sl] = np.where(a > 0.3, d, depth[sl])


def _procedural(r, seed, deployment, H, W, hab, focal, cam_h, horizon, depth_row):
    """Procedural view: returns (base RGB float32, occluder RGB, occluder alpha, occluder depth)."""
    pal = PALETTES[hab]
    h2, w2 = H // 2, W // 2
    hz2 = horizon / 2
    y2 = np.arange(h2, dtype=np.float32)
    # far forest at half resolution: canopy texture, distant trunks, sky gaps near the top
    canopy = value_noise(r, h2, w2, max(2.0, h2 / 90), 4) * 0.55 + _aniso(r, h2, w2, max(2.0, w2 / 240), h2 / 3) * 0.45
    far = _lerp(pal["far"][0], pal["far"][1], np.clip(0.5 + 0.35 * canopy, 0, 1).astype(np.float32))
    for _ in range(int(w2 / 9)):
        x = r.uniform(0, w2)
        wd = max(1, int(r.uniform(0.5, 3.5) * w2 / 960))
        c = np.asarray(pal["bark"][int(r.integers(2))], np.float32) * r.uniform(0.7, 1.1)
        c = 0.55 * c + 0.45 * np.asarray(pal["far"][1], np.float32)
        cv2.line(far, (int(x), 0), (int(x + r.normal(0, 4)), int(hz2 + 2)), tuple(float(v) for v in c), wd, cv2.LINE_AA)
    gap = value_noise(r, h2, w2, max(3.0, h2 / 16), 3) + 2.2 * (0.55 - y2 / max(hz2, 1))[:, None] - 0.9
    # light through the canopy: soft, brighter towards the top, broken by the distant trunks
    gap = cv2.GaussianBlur(np.clip(gap * 1.2, 0, 1).astype(np.float32), (0, 0), max(1.0, h2 / 120))
    lift = np.clip(1.0 - y2 / max(hz2, 1), 0, 1)[:, None] ** 1.5
    far = _lerp(far, pal["sky"], np.clip(gap * 0.4 + lift * 0.25, 0, 1))
    # ground, projected with perspective from a texture in ground coordinates (metres)
    dr2 = cv2.resize(depth_row.reshape(-1, 1).astype(np.float32), (1, h2), interpolation=cv2.INTER_LINEAR)[:, 0]
    gx = ((np.arange(w2, dtype=np.float32) - w2 / 2)[None, :] * dr2[:, None] / (focal / 2)).astype(np.float32)
    gz = np.broadcast_to(dr2[:, None], (h2, w2)).astype(np.float32)
    gt = value_noise(rng(seed, "ground", deployment), 512, 512, 20, 5)
    gnoise = cv2.remap(gt, gx * 30 + 2048, gz * 30, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    ground = _lerp(pal["ground"][0], pal["ground"][1], np.clip(0.5 + 0.35 * gnoise, 0, 1))
    trail_x = r.normal(0, 0.8) + 0.12 * r.normal() * gz
    on_trail = np.clip(1.3 - np.abs(gx - trail_x) / 0.45, 0, 1).astype(np.float32)
    if hab == "snow":
        shade = np.clip(value_noise(r, 512, 512, 40, 2), -1, 1)
        sh = cv2.remap(shade, gx * 12 + 2048, gz * 12, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        ground = ground * (1 - 0.12 * np.clip(sh, 0, 1))[..., None] * np.array([1.0, 1.0, 1.04], np.float32)
        litter = np.clip((gnoise - 0.9) * 3, 0, 1).astype(np.float32)
        ground = _lerp(ground, (112, 92, 70), litter)
        ground = _lerp(ground, (198, 202, 212), on_trail * 0.7)
    else:
        ground = _lerp(ground, (122, 100, 76), on_trail * 0.75)
    gmask = np.clip((y2 - hz2) / 1.5, 0, 1)[:, None, None]
    base2 = far * (1 - gmask) + ground * gmask
    haze = (np.clip(1 - (y2 - hz2) / (0.1 * h2), 0, 1) * (y2 > hz2 - 2))[:, None]
    base2 = _lerp(base2, np.clip(np.asarray(pal["far"][1], np.float32) + 35, 0, 255), np.broadcast_to(haze * 0.45, (h2, w2)).astype(np.float32))
    base = cv2.resize(base2, (W, H), interpolation=cv2.INTER_LINEAR)
    # full-resolution leaf-litter / snow grain on the ground, stronger near the camera
    ys = np.arange(H, dtype=np.float32)
    near = np.clip((ys - horizon) / (H - horizon), 0, 1)[:, None]
    grain = r.standard_normal((H // 2, W // 2)).astype(np.float32)
    grain = cv2.resize(grain, (W, H), interpolation=cv2.INTER_LINEAR)
    base += (grain * near * (10 if hab != "snow" else 5))[..., None]
    occ = np.zeros((H, W, 3), np.float32)
    occ_a = np.zeros((H, W), np.float32)
    occ_d = np.full((H, W), np.inf, np.float32)
    dummy_a = np.zeros((H, W), np.float32)
    dummy_d = np.full((H, W), np.inf, np.float32)
    # logs and rocks lying on the ground
    for _ in range(int(r.integers(1, 5))):
        d = float(r.uniform(4, 30))
        x = r.uniform(0, W)
        yb = horizon + focal * cam_h / d
        ln = focal * r.uniform(1.0, 3.0) / d
        th = focal * r.uniform(0.12, 0.25) / d
        rock = r.random() < 0.4
        col = np.array((128, 124, 116) if rock else (134, 122, 104), np.float32) * r.uniform(0.85, 1.1)
        tgt, ta, td = (occ, occ_a, occ_d) if d < 12 else (base, dummy_a, dummy_d)
        m = np.zeros((H, W), np.uint8)
        ax = (int(ln / 2 * (0.4 if rock else 1)), int(th / 2 * (1.4 if rock else 1)))
        cv2.ellipse(m, (int(x), int(yb - th / 2)), (max(1, ax[0]), max(1, ax[1])), r.normal(0, 4), 0, 360, 255, -1, cv2.LINE_AA)
        bx, by, bw, bh = cv2.boundingRect(m)
        if bw == 0:
            continue
        sl = (slice(by, by + bh), slice(bx, bx + bw))
        a = m[sl].astype(np.float32) / 255.0 * (d < td[sl])
        grad = np.linspace(1.25, 0.7, bh, dtype=np.float32)[:, None, None] ** 1.5
        if hab == "snow":
            top = np.clip((np.arange(bh) < bh * 0.3), 0, 1).astype(np.float32)[:, None, None]
            colr = col * grad * (1 - top) + np.array([235, 238, 244], np.float32) * top
        else:
            colr = col * grad
        tgt[sl] = tgt[sl] * (1 - a[..., None]) + colr * a[..., None]
        ta[sl] = ta[sl] + a * (1 - ta[sl])
        td[sl] = np.where(a > 0.3, d, td[sl])
    # trees: far ones into the base, near ones into the occluder layer with their depth
    n_trees = int(r.integers(7, 18)) if hab != "undergrowth" else int(r.integers(4, 10))
    trees = sorted(((float(r.uniform(2.5, 45.0)), float(r.uniform(-0.1, 1.1) * W), bool(r.random() < 0.25))
                    for _ in range(n_trees)), reverse=True)
    for d, x, birch in trees:
        if abs(x / W - 0.5) < 0.12 and d < 8:      # keep the trail in front of the camera open
            x += 0.3 * W * np.sign(x / W - 0.5 + 1e-6)
        if d > 12:
            _trunk(base, dummy_a, dummy_d, r, x, d, H, horizon, focal, cam_h, pal["bark"], birch)
        else:
            _trunk(occ, occ_a, occ_d, r, x, d, H, horizon, focal, cam_h, pal["bark"], birch)
    # bushes with autumn leaves (few in snow)
    leaves = {"forest": [(120, 90, 50), (150, 112, 60), (96, 84, 50)], "undergrowth": [(80, 104, 46), (110, 128, 60), (130, 110, 52)],
              "snow": [(120, 100, 70), (140, 120, 90)]}[hab]
    n_bush = {"forest": 5, "undergrowth": 14, "snow": 2}[hab]
    for _ in range(n_bush):
        d = float(r.uniform(2.0, 25.0))
        x = r.uniform(-0.05, 1.05) * W
        if abs(x / W - 0.5) < 0.15 and d < 6:
            x += 0.35 * W * np.sign(x / W - 0.5 + 1e-6)
        yb = horizon + focal * cam_h / d
        spread = focal * r.uniform(0.25, 0.7) / d
        tgt, ta, td = (occ, occ_a, occ_d) if d < 12 else (base, dummy_a, dummy_d)
        size = max(1.5, focal * 0.035 / d)
        n_leaves = int(np.clip(1.2 * (spread / size) ** 2, 40, 700))
        _blobs(tgt, ta, td, r, n_leaves, d, x, yb, spread, size, leaves)
    n_grass = {"forest": 260, "undergrowth": 800, "snow": 120}[hab]
    _grass(base, dummy_a, dummy_d, r, n_grass, horizon, focal, cam_h, pal["grass"], 12, 40, 0.5)
    _grass(occ, occ_a, occ_d, r, n_grass, horizon, focal, cam_h, pal["grass"], 1.2, 12, 0.45 if hab != "undergrowth" else 0.7)
    return base, occ, occ_a, occ_d


def _ir_gray(rgb: np.ndarray) -> np.ndarray:
    """Near-infrared look: foliage reflects NIR strongly, so green things come out bright."""
    f = rgb.astype(np.float32)
    lum = 0.30 * f[..., 0] + 0.55 * f[..., 1] + 0.15 * f[..., 2]
    return lum + 0.9 * np.clip(f[..., 1] - f[..., 0], 0, None) + 25


def station_habitat(seed: int, station: str) -> str:
    """Habitat of a station (both cameras of a pair stand in the same habitat)."""
    return HABITATS[int(rng(seed, "habitat", station).integers(len(HABITATS)))]


@lru_cache(maxsize=32)
def station_scene(seed: int, deployment: str, width: int, height: int, background: str | None = None,
                  habitat: str | None = None) -> Scene:
    """Build (and cache) the scene of one camera. ``background``: a real empty frame to use
    instead of the procedural one (no occluders then)."""
    r = rng(seed, "scene", deployment)
    H, W = height, width
    hab = habitat or station_habitat(seed, deployment)
    focal = (W / 2) / np.tan(HFOV / 2)
    cam_h = float(r.uniform(0.5, 0.9))
    horizon = float(H * r.uniform(0.36, 0.48))
    ys = np.arange(H, dtype=np.float32)
    depth_row = np.where(ys > horizon + 1, focal * cam_h / np.maximum(ys - horizon, 1e-3), 200.0)
    if background is not None:
        img = cv2.imread(str(background), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"cannot read background {background}: pass --backgrounds DIR with empty JPEG frames")
        img = cv2.cvtColor(cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        base = img.astype(np.float32)
        if base.std(axis=2).mean() < 3:     # a real IR frame: use it as the infrared base as well
            hab = "real-ir"
        occ = np.zeros((H, W, 3), np.float32)
        occ_a = np.zeros((H, W), np.float32)
        occ_d = np.full((H, W), np.inf, np.float32)
    else:
        base, occ, occ_a, occ_d = _procedural(r, seed, deployment, H, W, hab, focal, cam_h, horizon, depth_row)
    falloff = np.where(ys[:, None] > horizon, np.clip((FLASH_M / depth_row[:, None]) ** FLASH_EXP, 0.06, 1.25), 0.05).astype(np.float32)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    vign = (1 - 0.55 * (((xx - W / 2) / (W / 2)) ** 2 + ((yy - H * 0.6) / H) ** 2)).clip(0.2, 1)
    falloff = falloff * vign
    base_u8 = np.clip(base, 0, 255).astype(np.uint8)
    occ_u8 = np.clip(occ, 0, 255).astype(np.uint8)
    full = np.clip(base * (1 - occ_a[..., None]) + occ * occ_a[..., None], 0, 255).astype(np.uint8)
    if hab == "real-ir":
        ir_base = base[..., 0] * 1.0
        falloff = np.ones((H, W), np.float32)
    else:
        ir_base = _ir_gray(base_u8) * np.maximum(falloff, 0.15 * vign)
    occ_fall = np.clip((FLASH_M / np.where(np.isfinite(occ_d), occ_d, 50)) ** FLASH_EXP, 0.06, 1.6) * vign
    ir_occ = _ir_gray(occ_u8) * occ_fall
    ir_full = np.clip(ir_base * (1 - occ_a) + ir_occ * occ_a, 0, 255).astype(np.uint8)
    return Scene(habitat=hab, width=W, height=H, horizon=horizon, focal=float(focal), cam_h=cam_h, base=base_u8,
                 occ_rgb=occ_u8, occ_alpha=occ_a, occ_depth=occ_d, full=full, ir_base=ir_base.astype(np.float32),
                 ir_occ=ir_occ.astype(np.float32), ir_full=ir_full, falloff=falloff)


def list_backgrounds(folder: str | Path | None) -> list[Path]:
    if folder is None:
        return []
    p = Path(folder)
    if not p.is_dir():
        raise ValueError(f"--backgrounds {folder} is not a folder: pass a folder of empty camera-trap JPEGs")
    files = sorted(f for f in p.rglob("*") if f.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not files:
        raise ValueError(f"no JPEG/PNG frames under {folder}: pass a folder of empty camera-trap frames")
    return files


def day_gain(hour: float, cloud: float) -> np.ndarray:
    """Per-channel RGB gain for daylight at local ``hour`` (warm and dim near dawn and dusk)."""
    e = float(np.clip(np.sin(np.pi * (hour - 6.3) / 11.4), 0.05, 1.0))
    level = (0.5 + 0.55 * e) * (1 - 0.25 * cloud)
    warm = (1 - e) * 0.25
    return np.array([level * (1 + warm), level, level * (1 - warm * 1.2)], np.float32)


def bar_height(height: int) -> int:
    return max(12, int(round(height * 0.038)))


def info_bar(img: np.ndarray, text_left: str, text_mid: str, text_right: str) -> int:
    """Stamp the camera's black info bar at the bottom (in place); returns its top row."""
    H, W = img.shape[:2]
    bh = bar_height(H)
    img[H - bh:] = 0
    scale = bh / 34.0
    th = max(1, int(round(scale * 1.6)))
    y = H - int(bh * 0.28)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, text_left, (int(W * 0.01), y), font, scale, (255, 255, 255), th, cv2.LINE_AA)
    (tw, _), _ = cv2.getTextSize(text_mid, font, scale, th)
    cv2.putText(img, text_mid, ((W - tw) // 2, y), font, scale, (255, 255, 255), th, cv2.LINE_AA)
    (tw, _), _ = cv2.getTextSize(text_right, font, scale, th)
    cv2.putText(img, text_right, (W - tw - int(W * 0.01), y), font, scale, (255, 255, 255), th, cv2.LINE_AA)
    return H - bh
