"""Re-identification training crops: one folder per individual and flank, many encounters each.

``OUT/<individual_id>/<flank>/e<encounter>_<k>.jpg`` where an encounter is a separate render
(own scene, light, day/night, distance, pose, blur, occlusion) and ``k`` indexes the burst frames of
that encounter. ``OUT/crops.csv`` lists them. With ``shape='square'`` (default) crops are the visible
truth box padded by 10 %, squared with scene context, slightly rotated, resized to ``size``; with
``shape='box'`` they are cut as the identify stage cuts detections (``spotid.identify.crops``: the
box padded by 10 % per side, clipped to the frame, aspect kept) with the longer side ``size``.

With ``masks=True`` each crop also gets ``OUT/masks/<same path>.png``: the animal's visible alpha
(after occlusion) cut the same way, 0..255, for training the foreground model. ``backgrounds`` (a
folder of real empty frames) adds one scene per frame to the ``scenes`` procedural ones.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from spotid.synth.card import encode_jpeg
from spotid.synth.render import FrameRenderer
from spotid.synth.rng import rng
from spotid.synth.scene import HABITATS, list_backgrounds, station_scene
from spotid.synth.world import SUNRISE, SUNSET
from spotid.util import atomic_write_bytes, atomic_write_text, progress

FLANKS = ("left", "right")
SPECIES = ("leopard", "tiger", "deer", "boar", "badger")
ALL_VIEWS = ("left", "right", "front", "back")


@dataclass(frozen=True)
class CropConfig:
    seed: int = 0
    individuals: int = 20
    first_id: int = 1
    per_flank: int = 8          # encounters per individual and view
    frames: int = 1             # frames per encounter (k = 1..frames)
    size: int = 256
    views: str = "flanks"       # 'flanks' (left, right) or 'all' (+ front, back)
    night_fraction: float = 0.5
    width: int = 1280           # scene resolution the crops are cut from
    height: int = 720
    scenes: int = 12            # distinct backgrounds shared by all encounters
    jpeg_quality: int = 90
    shape: str = "square"       # 'square' (context, classifier training) | 'box' (as identify cuts them)
    masks: bool = False         # also write OUT/masks/<path>.png (visible alpha, same cut)
    backgrounds: str | None = None  # folder of real empty frames: extra scenes
    species: str = "leopard"    # other species (tiger, deer, boar, badger) for the foreground model


@dataclass(frozen=True)
class CropSummary:
    out_dir: str
    csv_path: str
    crops: int
    individuals: int
    encounters: int


def square_crop(img: np.ndarray, bbox, size: int, pad: float = 0.1, angle: float = 0.0) -> np.ndarray:
    """Crop the box ``bbox`` = [x, y, w, h] padded by ``pad`` and squared around its centre (scene
    context fills the square; reflected at the frame border), rotated by ``angle`` degrees."""
    x, y, w, h = bbox
    side = max(w, h) * (1 + 2 * pad)
    cx, cy = x + w / 2, y + h / 2
    m = cv2.getRotationMatrix2D((cx, cy), angle, size / side)
    m[0, 2] += size / 2 - cx
    m[1, 2] += size / 2 - cy
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def box_crop(img: np.ndarray, bbox, size: int, pad: float = 0.1) -> np.ndarray:
    """The box ``bbox`` = [x, y, w, h] (pixels) padded by ``pad`` x its size on each side and clipped
    to the frame, as :func:`spotid.identify.crops.padded_box` cuts detections; resized (aspect kept)
    so the longer side is ``size``."""
    x, y, w, h = bbox
    H, W = img.shape[:2]
    x0, y0 = max(0, int(round(x - pad * w))), max(0, int(round(y - pad * h)))
    x1, y1 = min(W, int(round(x + w + pad * w))), min(H, int(round(y + h + pad * h)))
    cut = img[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    k = size / max(cut.shape[:2])
    out_wh = (max(1, int(round(cut.shape[1] * k))), max(1, int(round(cut.shape[0] * k))))
    return cv2.resize(cut, out_wh, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)


class CropWriter:
    """``CropWriter(CropConfig(...))(out_dir) -> CropSummary``."""

    def __init__(self, cfg: CropConfig):
        if cfg.views not in ("flanks", "all"):
            raise ValueError(f"views={cfg.views!r}: use 'flanks' or 'all'")
        if cfg.shape not in ("square", "box"):
            raise ValueError(f"shape={cfg.shape!r}: use 'square' or 'box'")
        if cfg.species not in SPECIES:
            raise ValueError(f"species={cfg.species!r}: use one of {', '.join(SPECIES)}")
        self.cfg = cfg
        self.renderer = FrameRenderer(cfg.seed)
        self.backgrounds = list_backgrounds(cfg.backgrounds)

    def encounter(self, individual_num: int, view: str, e: int) -> list[tuple[np.ndarray, dict]]:
        """Render encounter ``e`` of one individual seen from ``view``: [(crop RGB, info)] per frame;
        with ``masks`` the info carries ``mask``, the (h, w) uint8 visible alpha cut like the crop."""
        cfg = self.cfg
        ind = f"ind{individual_num:03d}"
        for attempt in range(12):
            r = rng(cfg.seed, "crop-encounter", individual_num, view, e, attempt)
            sc_i = int(r.integers(cfg.scenes + len(self.backgrounds)))
            if sc_i < cfg.scenes:
                scene = station_scene(cfg.seed, f"cropscene{sc_i}", cfg.width, cfg.height, None,
                                      HABITATS[sc_i % len(HABITATS)])
            else:
                scene = station_scene(cfg.seed, f"cropbg{sc_i}", cfg.width, cfg.height,
                                      str(self.backgrounds[sc_i - cfg.scenes]))
            night = bool(r.random() < cfg.night_fraction)
            hour = float((SUNSET + r.uniform(0.3, 12)) % 24) if night else float(r.uniform(SUNRISE + 0.2, SUNSET - 0.2))
            d = float(np.exp(r.uniform(math.log(3.2), math.log(16.0))))
            event = int(r.integers(1 << 30))
            out = []
            for k in range(cfg.frames):
                fr = self.renderer(scene, species=cfg.species, individual=ind, view=view, distance=d, event=event,
                                   deployment=f"crop{sc_i}", frame_num=1 + k if cfg.frames > 1 else 1, hour=hour,
                                   night=night, stamp=None, temperature_c=0, masks=cfg.masks)
                boxes = [b for b in fr.boxes if b.visible_fraction > 0.55 and b.bbox[3] >= 16]
                if not boxes:
                    continue
                b = boxes[0]
                angle = float(r.normal(0, 4))  # drawn for both shapes: same renders either way
                crop = (box_crop(fr.image, b.bbox, cfg.size, 0.1) if cfg.shape == "box"
                        else square_crop(fr.image, b.bbox, cfg.size, 0.1, angle))
                info = {"day_night": "night" if night else "day", "distance_m": round(d, 2),
                        "visible_fraction": b.visible_fraction, "box_h": b.bbox[3]}
                if cfg.masks:
                    alpha = np.clip(b.mask * 255.0, 0, 255).astype(np.uint8)
                    info["mask"] = (box_crop(alpha, b.bbox, cfg.size, 0.1) if cfg.shape == "box"
                                    else square_crop(alpha, b.bbox, cfg.size, 0.1, angle))
                out.append((crop, info))
            if len(out) == cfg.frames:
                return out
        return out

    def __call__(self, out_dir: str | Path) -> CropSummary:
        cfg = self.cfg
        out_dir = Path(out_dir)
        views = FLANKS if cfg.views == "flanks" else ALL_VIEWS
        rows = []
        jobs = [(cfg.first_id + i, v, e) for i in range(cfg.individuals) for v in views for e in range(cfg.per_flank)]
        for num, view, e in progress(jobs, total=len(jobs), description="encounters"):
            for k, (crop, info) in enumerate(self.encounter(num, view, e), start=1):
                rel = f"ind{num:03d}/{view}/e{e:02d}_{k}.jpg"
                atomic_write_bytes(out_dir / rel, encode_jpeg(crop, cfg.jpeg_quality))
                mask = info.pop("mask", None)
                if mask is not None:
                    info["mask"] = f"masks/{rel[:-4]}.png"
                    atomic_write_bytes(out_dir / info["mask"], cv2.imencode(".png", mask)[1].tobytes())
                rows.append({"path": rel, "individual_id": f"ind{num:03d}", "flank": view, "encounter": f"e{e:02d}",
                             "frame": k, **info})
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["path", "individual_id", "flank", "encounter", "frame", "day_night",
                                            "distance_m", "visible_fraction", "box_h"] + (["mask"] if cfg.masks else []),
                           lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(out_dir / "crops.csv", buf.getvalue())
        from spotid.config import save_config

        save_config(cfg, out_dir / "crops_config.yaml")
        return CropSummary(str(out_dir), str(out_dir / "crops.csv"), len(rows), cfg.individuals, len(jobs))
