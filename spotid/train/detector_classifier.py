"""Training recipe of the leopard-vs-other crop classifier (``spotid train detector --part classifier``).

Data (never the evaluation splits):
- leopard: the boxes of ``amur-leopard-voc`` whose images are in ``train-images/`` (web + a few IR),
  plus leopard boxes of synthetic cards (COCO Camera Traps ``truth.json``) when given;
- other: MegaDetector v5a boxes (conf >= 0.5, animal and person) of ``megadetector-test``, the
  camtrapR species thumbnails (leopard cat, civets, ...: spotted non-leopards, whole frame), every
  non-leopard box of the synthetic cards, and random background patches of the camera-trap frames
  (detector false positives must come out "other"); ``southwest`` (cougar, bobcat, ...) only when not
  held out (``--holdout southwest`` keeps it for an honest check of spotted-ish cats); up to
  ``max_nyala`` photos of the nyala re-ID set (striped antelope, DSLR: the same photo domain as the
  web leopards, so the network must learn the coat, not the camera).

Crops are cut once with generous context at ``cache_size`` pixels, then augmented every epoch
(random square sub-crop = box jitter, flips, colour jitter, grey-scale like IR night frames, blur).
"""
from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spotid.types import iou as _iou

log = logging.getLogger(__name__)

CACHE_SIZE = 160
CACHE_CONTEXT = 0.5


@dataclass(frozen=True)
class ClassifierTrainConfig:
    yaml_name = "detect_classifier"

    shared: str = "../shared/data"
    synth: tuple[str, ...] = ()          # synthetic card folders holding truth.json (COCO CT)
    holdout: tuple[str, ...] = ("southwest",)
    input_size: int = 112
    context: float = 0.15
    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    background_per_frame: int = 3
    max_per_source: int = 4000
    max_nyala: int = 300
    sprites: int = 600               # synthetic animals pasted on real camera-trap backgrounds (half leopards)


def _load_rgb(path: Path, max_side: int = 1280) -> np.ndarray | None:
    from spotid.detect.builtin import decode_reduced

    d = decode_reduced(path, max_side)
    return d.image


def _cache_crop(img: np.ndarray, box_norm) -> np.ndarray:
    from spotid.detect.classifier import square_crop

    h, w = img.shape[:2]
    x, y, bw, bh = box_norm
    return square_crop(img, (x * w, y * h, bw * w, bh * h), CACHE_SIZE, CACHE_CONTEXT)


def collect(cfg: ClassifierTrainConfig) -> tuple[list[np.ndarray], list[int], dict]:
    """Cached crops (CACHE_SIZE square uint8 RGB) and labels (0 leopard, 1 other), with source counts."""
    from spotid.detect.truth import read_coco_ct, read_voc

    rnd = random.Random(cfg.seed)
    data = Path(cfg.shared)
    crops: list[np.ndarray] = []
    labels: list[int] = []
    counts: dict[str, int] = {}

    def add(crop, label, source):
        crops.append(crop)
        labels.append(label)
        counts[source] = counts.get(source, 0) + 1

    backgrounds_pool: list[np.ndarray] = []

    def backgrounds(img, boxes, source, n):
        if len(backgrounds_pool) < 60:
            backgrounds_pool.append(img)
        for _ in range(n):
            s = rnd.uniform(0.08, 0.35)
            b = (rnd.uniform(0, 1 - s), rnd.uniform(0, 1 - s), s * rnd.uniform(0.7, 1.3), s)
            if all(_iou(b, t) < 0.1 for t in boxes):
                add(_cache_crop(img, b), 1, source)

    voc = data / "detection/amur-leopard-voc"
    if voc.is_dir():
        for fname, boxes in read_voc(voc / "annotations", voc / "train-images").items():
            img = _load_rgb(voc / "train-images" / fname)
            if img is None:
                continue
            for t in boxes:
                if t.label == "leopard":
                    add(_cache_crop(img, t.bbox), 0, "voc-train leopard")
    ct = data / "camera-traps"
    md_file = ct / "megadetector-test/mdv5a-results.json"
    if md_file.exists() and "megadetector-test" not in cfg.holdout:
        md = json.loads(md_file.read_text())
        for im in md["images"]:
            img = _load_rgb(ct / "megadetector-test" / im["file"])
            if img is None:
                continue
            boxes = [d["bbox"] for d in im.get("detections") or [] if d["conf"] >= 0.2]
            for d in im.get("detections") or []:
                if d["conf"] >= 0.5 and d["category"] in ("1", "2"):
                    add(_cache_crop(img, d["bbox"]), 1, "mdv5a boxes (megadetector-test)")
            backgrounds(img, boxes, "camera-trap background", cfg.background_per_frame)
    sw = ct / "southwest"
    if sw.is_dir() and "southwest" not in cfg.holdout:
        import csv

        rows: dict[str, list] = {}
        with open(sw / "animl-ground-truth/main/Detections.csv") as f:
            for r in csv.DictReader(f):
                if r["conf"] and float(r["conf"]) >= 0.5:
                    rows.setdefault(r["FileName"], []).append([float(r[f"bbox{i}"]) for i in range(1, 5)])
        for name, boxes in rows.items():
            img = _load_rgb(sw / name)
            if img is None:
                continue
            for b in boxes:
                add(_cache_crop(img, b), 1, "mdv5a boxes (southwest)")
            backgrounds(img, boxes, "camera-trap background", cfg.background_per_frame)
    sb = ct / "serengeti-bursts"
    if sb.is_dir() and "serengeti-bursts" not in cfg.holdout:
        for p in sorted(sb.glob("*.JPG")):
            img = _load_rgb(p)
            if img is not None:  # no truth boxes: background patches only (they may hold animals, also "other")
                backgrounds(img, [], "camera-trap background", cfg.background_per_frame)
    thumbs = ct / "camtrapR-samples/pictures/sample_images_species_dir"
    if thumbs.is_dir() and "camtrapR" not in cfg.holdout:
        for p in sorted(thumbs.rglob("*.[jJ][pP][gG]")):
            img = _load_rgb(p, 64)
            if img is not None:
                h, w = img.shape[:2]
                add(_cache_crop(img, (0.1, 0.1, 0.8, 0.8)), 1, "camtrapR thumbnails (leopard cat, civet, ...)")
    nyala = data / "reid/nyala-train"
    if nyala.is_dir() and "nyala" not in cfg.holdout and cfg.max_nyala > 0:
        files = sorted(nyala.rglob("*.[jJ][pP][gG]"))
        rnd.shuffle(files)
        for p in files[:cfg.max_nyala]:
            img = _load_rgb(p, 256)
            if img is not None:  # DSLR photos of a patterned non-leopard: the animal fills the frame
                add(_cache_crop(img, (0.05, 0.05, 0.9, 0.9)), 1, "nyala photos (patterned antelope)")
    if cfg.sprites > 0:
        bgs = [b for b in backgrounds_pool if b is not None]
        for crop, label in synthetic_sprites(cfg.sprites, cfg.seed, bgs):
            add(crop, label, "synthetic sprites leopard" if label == 0 else "synthetic sprites other (cougar-like, tiger, deer, boar, badger)")
    for folder in cfg.synth:
        folder = Path(folder)
        truth = folder / "truth.json"
        if not truth.exists():
            log.warning("no %s: synthetic card skipped", truth)
            continue
        n = 0
        for fname, boxes in read_coco_ct(truth).items():
            if n >= cfg.max_per_source:
                break
            img = _load_rgb(folder / fname)
            if img is None:
                continue
            for t in boxes:
                if t.category == 1:
                    add(_cache_crop(img, t.bbox), 0 if t.label == "leopard" else 1,
                        "synthetic leopard" if t.label == "leopard" else "synthetic other")
                    n += 1
    return crops, labels, counts


def synthetic_sprites(n: int, seed: int, backgrounds: list[np.ndarray]) -> list[tuple[np.ndarray, int]]:
    """Animals rendered by spotid.synth (leopard coats vs plain cougar-like cats, tigers, deer, boar,
    badger) pasted on real camera-trap background patches, some as grey IR night frames: leopards and
    non-leopards in the SAME camera-trap domain, so the coat, not the camera, decides.
    Returns ``[(cached crop, label)]`` (0 leopard, 1 other); empty when spotid.synth is unavailable."""
    import cv2

    try:
        from spotid.synth.animals import Pose, render_animal
        from spotid.synth.coat import leopard_coat, plain_coat, tiger_coat
    except Exception as e:  # noqa: BLE001 -- the synthetic world is optional for this recipe
        log.warning("spotid.synth unavailable (%s): no synthetic sprites", e)
        return []
    if not backgrounds:
        return []
    r = np.random.default_rng(seed + 7)
    leo_coats = [leopard_coat(seed, 900 + i) for i in range(12)]
    others = [("leopard", plain_coat(seed, f"cougar{i}", c, [225, 215, 200])) for i, c in
              enumerate([[170, 130, 85], [150, 120, 90], [185, 150, 105], [120, 110, 100]])]
    others += [("tiger", tiger_coat(seed, 950))]
    others += [(sp, plain_coat(seed, f"{sp}{i}", c, b)) for i, (sp, c, b) in enumerate(
        [("deer", [150, 105, 65], [220, 205, 185]), ("deer", [120, 95, 70], [200, 190, 170]),
         ("boar", [70, 60, 50], [90, 80, 70]), ("badger", [110, 105, 100], [60, 60, 60])])]
    out = []
    for k in range(n):
        leopard = k % 2 == 0
        species, coat = ("leopard", leo_coats[r.integers(len(leo_coats))]) if leopard else \
            others[r.integers(len(others))]
        view = "side" if r.random() < 0.85 else str(r.choice(["front", "back"]))
        pose = Pose(view=view, facing=int(r.choice([-1, 1])), gait=str(r.choice(["walk", "stand"])),
                    phase=float(r.uniform(0, 6.28)), yaw=float(r.uniform(-0.5, 0.5)), head=str(r.choice(["profile", "camera"])))
        try:
            sp = render_animal(species, coat, str(r.choice(["left", "right"])), pose, float(r.uniform(60, 220)))
        except Exception as e:  # noqa: BLE001
            log.debug("sprite render failed: %s", e)
            continue
        bg = backgrounds[r.integers(len(backgrounds))]
        H, W = bg.shape[:2]
        rgb, alpha = sp.rgb, sp.alpha
        sh, sw = alpha.shape
        f = min(1.0, 0.6 * min(H, W) / max(sh, sw))
        if f < 1.0:
            rgb = cv2.resize(rgb, (max(1, int(sw * f)), max(1, int(sh * f))))
            alpha = cv2.resize(alpha, (max(1, int(sw * f)), max(1, int(sh * f))))
            sh, sw = alpha.shape
        px, py = int(r.integers(0, W - sw + 1)), int(r.integers(0, H - sh + 1))
        # work on the neighbourhood only (a crop never needs more than 2x the box)
        m = int(max(sh, sw) * 1.2)
        x0, y0, x1, y1 = max(0, px - m), max(0, py - m), min(W, px + sw + m), min(H, py + sh + m)
        patch = bg[y0:y1, x0:x1].astype(np.float32).copy()
        a = alpha[..., None] * r.uniform(0.85, 1.0)
        lx, ly = px - x0, py - y0
        region = patch[ly:ly + sh, lx:lx + sw]
        patch[ly:ly + sh, lx:lx + sw] = region * (1 - a) + rgb * r.uniform(0.6, 1.1) * a
        if r.random() < 0.35:
            patch = np.repeat(patch.mean(axis=2, keepdims=True), 3, axis=2)
        patch = np.clip(patch + r.normal(0, 4, patch.shape), 0, 255).astype(np.uint8)
        ph, pw = patch.shape[:2]
        box = (lx / pw, ly / ph, sw / pw, sh / ph)
        out.append((_cache_crop(patch, box), 0 if leopard else 1))
    return out


def augment(crop: np.ndarray, size: int, context: float, rnd: np.random.Generator) -> np.ndarray:
    """A random view of a cached crop, as the classifier sees a detection (box jitter, colour, IR)."""
    import cv2

    c = CACHE_SIZE
    box_side = c / (1 + 2 * CACHE_CONTEXT)          # the box's long side inside the cached crop
    side = box_side * (1 + 2 * context) * rnd.uniform(0.8, 1.25)
    cx = c / 2 + rnd.uniform(-0.12, 0.12) * box_side
    cy = c / 2 + rnd.uniform(-0.12, 0.12) * box_side
    x0, y0 = cx - side / 2, cy - side / 2
    s = size / side
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]])
    out = cv2.warpAffine(crop, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(114, 114, 114))
    if rnd.random() < 0.5:
        out = out[:, ::-1]
    out = out.astype(np.float32)
    out = out * rnd.uniform(0.6, 1.4) + rnd.uniform(-30, 30)      # brightness / contrast
    out = out * rnd.uniform(0.85, 1.15, size=3)                    # white balance
    if rnd.random() < 0.35:                                         # IR night frame
        g = out.mean(axis=2, keepdims=True)
        out = np.repeat(g, 3, axis=2)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rnd.random() < 0.3:
        k = int(rnd.choice([3, 5]))
        out = cv2.GaussianBlur(out, (k, k), 0)
    if rnd.random() < 0.3:                                          # low resolution (small, far animals)
        f = rnd.uniform(0.25, 0.6)
        small = cv2.resize(out, (max(8, int(size * f)),) * 2, interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(out)


def train_classifier(cfg: ClassifierTrainConfig, out: Path, *, resume: bool = True) -> dict:
    """Train and write ``out/`` (weights fp16 + card.json + config); returns the training summary.

    Checkpoints every epoch to ``out/checkpoint.pt`` and resumes from it."""
    import torch

    from spotid.train.common import resume_epoch, save_torch, save_weights_fp16
    from torch import nn

    from spotid.config import save_config
    from spotid.detect.classifier import build_crop_classifier, to_tensor

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "train_config.yaml")
    torch.manual_seed(cfg.seed)
    rnd = np.random.default_rng(cfg.seed)
    crops, labels, counts = collect(cfg)
    y = np.array(labels)
    log.info("classifier data: %s", counts)
    if (y == 0).sum() == 0 or (y == 1).sum() == 0:
        raise RuntimeError(f"need both leopard and other crops, got {counts}: check --shared / --synth")
    model = build_crop_classifier().train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(crops) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    w = np.where(y == 0, 0.5 / (y == 0).sum(), 0.5 / (y == 1).sum())  # balanced sampling
    ck = out / "checkpoint.pt"
    start = resume_epoch(ck, model, opt, sched) if resume else 0
    if start:
        rnd = np.random.default_rng(cfg.seed + start)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    history = []
    for epoch in range(start, cfg.epochs):
        model.train()
        idx = rnd.choice(len(crops), size=steps_per_epoch * cfg.batch_size, p=w / w.sum())
        tot = 0.0
        for s in range(steps_per_epoch):
            b = idx[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            x = to_tensor([augment(crops[i], cfg.input_size, cfg.context, rnd) for i in b])
            t = torch.from_numpy(y[b]).long()
            loss = loss_fn(model(x), t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item()
        history.append(tot / steps_per_epoch)
        log.info("classifier epoch %d/%d loss %.4f", epoch + 1, cfg.epochs, history[-1])
        save_torch({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "epoch": epoch}, ck)
    model.eval()
    save_weights_fp16(model, out / "crop_classifier.pt")
    if ck.exists():
        ck.unlink()  # finished: only the fp16 weights ship
    return {"counts": counts, "loss_history": history, "n_crops": len(crops)}
