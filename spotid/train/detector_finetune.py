"""Fine-tuning YOLOX-tiny on the CPU (``spotid train detector --part detector``).

Data (never the evaluation splits: amur-leopard-voc/test-images, megadetector-test):
- amur-leopard-voc ``train-images`` with their VOC boxes (class animal);
- southwest real camera-trap frames with animl's MegaDetector v5a animal boxes (conf >= 0.3)
  as pseudo-labels; people/vehicles left unlabelled (the 1-class network must not call them animals);
- serengeti-bursts frames, pseudo-labelled by the initial network itself at conf >= 0.4 (keeps its
  camera-trap behaviour while it learns leopards);
- synthetic cards (COCO Camera Traps ``truth.json``; every animal box, people excluded), when given.

Recipe: 416 px letterbox with random scale (0.6-1), random placement and flips, colour jitter and
grey-scale; backbone frozen (BN statistics too), neck + head trained with SGD (momentum 0.9, nesterov,
weight decay 5e-4), cosine LR from ``lr`` after one warm-up epoch, batch 8. Checkpoint each epoch in
``out/checkpoint.pt`` (resumable). The resolved config is saved as ``out/train_config.yaml``.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorTrainConfig:
    yaml_name = "detect_train"

    shared: str = "../shared/data"
    synth: tuple[str, ...] = ()
    init: str | None = None          # initial weights (default: the shipped zamba weights)
    input_size: int = 416
    epochs: int = 6
    batch_size: int = 8
    lr: float = 0.004
    weight_decay: float = 5e-4
    freeze_backbone: bool = True
    unfreeze: tuple[str, ...] = ()   # backbone stages trained despite freeze_backbone, e.g. ("dark5",); their BN
    #                                  statistics stay frozen (batches of 8 are too small to re-estimate them)
    voc_repeat: int = 1              # oversample amur-leopard-voc train (keeps real leopards weighted against synth)
    wise_alpha: float = 1.0          # WiSE-FT: ship alpha * fine-tuned + (1 - alpha) * initial weights; < 1 trades
    #                                  some of the fine-tune's gain for the initial model's behaviour on other data
    seed: int = 0
    camera_trap_repeat: int = 3      # oversample the few real camera-trap frames
    max_synth_frames: int = 160
    sprite_frames: int = 0           # real camera-trap frames with a rendered animal pasted in (small, far);
    #                                  120 was tried: +0.22 recall on held-out sprites, but AP50 0.898 (vs 0.925)
    #                                  on amur-leopard-voc and 20/31 (vs 22/31) MDv5a agreement, so off by default


def collect(cfg: DetectorTrainConfig, model=None) -> tuple[list[tuple[Path, list]], dict]:
    """[(frame path, [normalised xywh boxes])] and per-source counts."""
    from spotid.detect.truth import read_coco_ct, read_voc

    data = Path(cfg.shared)
    items: list[tuple[Path, list]] = []
    counts: dict[str, int] = {}

    def add(p, boxes, source, repeat=1):
        for _ in range(repeat):
            items.append((p, boxes))
        counts[source] = counts.get(source, 0) + 1

    voc = data / "detection/amur-leopard-voc"
    if voc.is_dir():
        for f, boxes in read_voc(voc / "annotations", voc / "train-images").items():
            add(voc / "train-images" / f, [b.bbox for b in boxes if b.category == 1], "amur-leopard-voc train",
                cfg.voc_repeat)
    sw = data / "camera-traps/southwest"
    if sw.is_dir():
        rows: dict[str, list] = {}
        with open(sw / "animl-ground-truth/main/Detections.csv") as f:
            for r in csv.DictReader(f):
                if r["conf"] and float(r["conf"]) >= 0.3 and r["category"] == "1":
                    rows.setdefault(r["FileName"], []).append([float(r[f"bbox{i}"]) for i in range(1, 5)])
        for p in sorted(sw.iterdir()):
            if p.suffix.lower() in {".jpg", ".jpeg"} and p.stat().st_size > 0:
                add(p, rows.get(p.name, []), "southwest (MDv5a pseudo-labels)", cfg.camera_trap_repeat)
    sb = data / "camera-traps/serengeti-bursts"
    if sb.is_dir() and model is not None:
        from spotid.detect.builtin import BuiltinDetector  # noqa: F401 -- pseudo-labels via the same path

        for p in sorted(sb.glob("*.JPG")):
            boxes = _pseudo_label(model, p, cfg.input_size, 0.4)
            add(p, boxes, "serengeti-bursts (self pseudo-labels)", cfg.camera_trap_repeat)
    if cfg.sprite_frames > 0:
        cam = [(p, b) for p, b in items if "camera-traps" in str(p)]
        for p, boxes in sprite_frames(cam, cfg.sprite_frames, cfg.seed):
            add(p, boxes, "synthetic animals pasted on real camera-trap frames")
    for folder in cfg.synth:
        truth = Path(folder) / "truth.json"
        if not truth.exists():
            log.warning("no %s: synthetic card skipped", truth)
            continue
        frames = sorted(read_coco_ct(truth).items())
        busy = [(f, b) for f, b in frames if any(x.category == 1 for x in b)]
        empty = [(f, b) for f, b in frames if not b]
        random.Random(cfg.seed).shuffle(busy)
        random.Random(cfg.seed).shuffle(empty)
        n_busy = min(len(busy), cfg.max_synth_frames)
        chosen = busy[:n_busy] + empty[:max(0, min(len(empty), cfg.max_synth_frames - n_busy, n_busy // 3))]
        for f, boxes in chosen:  # animals first, plus some false-trigger empties
            add(Path(folder) / f, [b.bbox for b in boxes if b.category == 1], "synthetic cards")
    return items, counts


def sprite_frames(frames: list[tuple[Path, list]], n: int, seed: int) -> list[tuple[Path, list]]:
    """Paste one spotid.synth animal (leopard, cougar-like cat, tiger, deer, boar, badger) into real
    camera-trap frames at camera-trap sizes (long side 4-30% of the frame), keeping the frame's own
    boxes; written as JPEGs to a temp cache. Teaches small, distant animals in the real domain."""
    import tempfile

    import cv2

    from spotid.detect.builtin import decode_reduced

    try:
        from spotid.synth.animals import Pose, render_animal
        from spotid.synth.coat import leopard_coat, plain_coat, tiger_coat
    except Exception as e:  # noqa: BLE001
        log.warning("spotid.synth unavailable (%s): no sprite frames", e)
        return []
    uniq = list({str(p): (p, b) for p, b in frames}.values())
    if not uniq:
        return []
    cache = Path(tempfile.gettempdir()) / f"spotid-detector-sprites-{seed}"
    cache.mkdir(parents=True, exist_ok=True)
    r = np.random.default_rng(seed + 11)
    coats = [("leopard", leopard_coat(seed, 700 + i)) for i in range(6)]
    coats += [("leopard", plain_coat(seed, "cougar", [170, 130, 85], [225, 215, 200])), ("tiger", tiger_coat(seed, 760)),
              ("deer", plain_coat(seed, "deer", [150, 105, 65], [220, 205, 185])),
              ("boar", plain_coat(seed, "boar", [70, 60, 50], [90, 80, 70]))]
    out = []
    for k in range(n):
        path, boxes = uniq[int(r.integers(len(uniq)))]
        dest = cache / f"{k:04d}.jpg"
        meta = cache / f"{k:04d}.json"
        if dest.exists() and meta.exists():
            m = json.loads(meta.read_text())
            out.append((dest, m["boxes"] if isinstance(m, dict) else m))
            continue
        img = decode_reduced(path, 1024).image
        if img is None:
            continue
        H, W = img.shape[:2]
        species, coat = coats[int(r.integers(len(coats)))]
        pose = Pose(view="side" if r.random() < 0.8 else str(r.choice(["front", "back"])), facing=int(r.choice([-1, 1])),
                    gait=str(r.choice(["walk", "stand"])), phase=float(r.uniform(0, 6.28)), yaw=float(r.uniform(-0.5, 0.5)))
        try:
            sp = render_animal(species, coat, str(r.choice(["left", "right"])), pose, 200.0)
        except Exception:  # noqa: BLE001
            continue
        sh, sw = sp.alpha.shape
        f = r.uniform(0.04, 0.30) * W / max(sh, sw)
        rgb = cv2.resize(sp.rgb, (max(2, int(sw * f)), max(2, int(sh * f))), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(sp.alpha, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_AREA)
        sh, sw = alpha.shape
        if sh >= H or sw >= W:
            continue
        px, py = int(r.integers(0, W - sw)), int(r.integers(int(H * 0.3), H - sh))
        region = img[py:py + sh, px:px + sw].astype(np.float32)
        a = alpha[..., None]
        gray = np.abs(img[::8, ::8, 0].astype(int) - img[::8, ::8, 1]).mean() < 2  # IR frame stays grey
        col = rgb * r.uniform(0.5, 1.0)
        if gray:
            col = np.repeat(col.mean(axis=2, keepdims=True), 3, axis=2)
        img = img.copy()
        img[py:py + sh, px:px + sw] = np.clip(region * (1 - a) + col * a, 0, 255).astype(np.uint8)
        new = list(boxes) + [[px / W, py / H, sw / W, sh / H]]
        cv2.imwrite(str(dest), img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        is_leopard = species == "leopard" and coat is not coats[6][1]  # coats[6] is the plain cougar-like cat
        meta.write_text(json.dumps({"boxes": new, "species": species if not (species == "leopard" and not is_leopard)
                                    else "cougar-like", "label": "leopard" if is_leopard else "other"}))
        out.append((dest, new))
    return out


def sprite_meta(path: Path) -> dict:
    """The boxes/species/label stored next to a sprite frame (the pasted animal is the LAST box)."""
    m = json.loads(Path(path).with_suffix(".json").read_text())
    return m if isinstance(m, dict) else {"boxes": m, "species": None, "label": None}


def _pseudo_label(model, path: Path, size: int, conf: float) -> list:
    import torch

    from spotid.detect.builtin import decode_reduced
    from spotid.detect.model import letterbox_array, postprocess, xyxy_px_to_norm_xywh

    d = decode_reduced(path, size)
    if d.image is None:
        return []
    canvas, lb = letterbox_array(d.image, size, d.orig_size)
    model.eval()
    with torch.inference_mode():
        pred = model(torch.from_numpy(canvas[None]).permute(0, 3, 1, 2).float())
    b, s, _ = postprocess(pred, conf_thresh=conf, nms_thresh=0.45)[0]
    return [list(map(float, x)) for x in xyxy_px_to_norm_xywh(b.numpy(), lb)]


def wise_interpolate(init: dict, tuned: dict, alpha: float) -> dict:
    """WiSE-FT weight-space ensemble (Wortsman et al., CVPR 2022): ``alpha * tuned + (1 - alpha) * init``
    for floating tensors, both first rounded to fp16 (the shipped storage) and the result stored fp16;
    integer buffers (BN ``num_batches_tracked``) come from ``tuned``. Same architecture required."""

    if set(init) != set(tuned):
        raise ValueError("wise_interpolate: the two state dicts have different keys (different architectures?)")
    out = {}
    for k, v in tuned.items():
        if v.is_floating_point():
            a, b = init[k].half().float(), v.half().float()
            out[k] = (alpha * b + (1 - alpha) * a).half()
        else:
            out[k] = v.clone()
    return out


def load_sample(path: Path, boxes: list, size: int, rnd: random.Random):
    """(canvas (size, size, 3) uint8, targets (K, 5) [class 0, cx, cy, w, h] canvas px)."""
    import cv2

    from spotid.detect.builtin import decode_reduced
    from spotid.detect.model import PAD_VALUE

    d = decode_reduced(path, size)
    img = d.image
    h, w = img.shape[:2]
    scale = size / max(w, h) * rnd.uniform(0.6, 1.0)
    nw, nh = max(1, int(w * scale)), max(1, int(h * scale))
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
    flip = rnd.random() < 0.5
    if flip:
        img = img[:, ::-1]
    img = img.astype(np.float32) * rnd.uniform(0.7, 1.3) + rnd.uniform(-25, 25)
    if rnd.random() < 0.25:
        img = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2)
    img = np.clip(img, 0, 255).astype(np.uint8)
    ox, oy = rnd.randint(0, size - nw), rnd.randint(0, size - nh)
    canvas = np.full((size, size, 3), PAD_VALUE, np.uint8)
    canvas[oy:oy + nh, ox:ox + nw] = img
    t = []
    for x, y, bw, bh in boxes:
        if flip:
            x = 1 - x - bw
        px, py, pw, ph = ox + x * nw, oy + y * nh, bw * nw, bh * nh
        if pw >= 2 and ph >= 2:
            t.append([0.0, px + pw / 2, py + ph / 2, pw, ph])
    return canvas, np.array(t, np.float32).reshape(-1, 5)


def _trainable(name: str, cfg: DetectorTrainConfig) -> bool:
    """Whether parameter ``name`` is trained: everything outside the backbone (CSPDarknet), plus the
    backbone stages named in ``cfg.unfreeze``."""
    if not (cfg.freeze_backbone and name.startswith("backbone.backbone.")):
        return True
    return any(name.startswith(f"backbone.backbone.{stage}.") for stage in cfg.unfreeze)


def finetune(out: str | Path, *, shared, synth=(), epochs: int | None = None, seed: int = 0, init=None,
             resume: bool = True, sprite_frames: int | None = None, **overrides) -> dict:
    """Fine-tune into ``out``; ``overrides`` are further :class:`DetectorTrainConfig` fields
    (``unfreeze``, ``voc_repeat``, ``max_synth_frames``, ``lr``, ...); None values keep the default."""
    import torch

    from spotid.config import save_config
    from spotid.detect.model import build_yolox_tiny
    from spotid.modelstore import resolve
    from spotid.train.common import fp16_state, resume_epoch, save_torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kw = {"shared": str(shared), "synth": tuple(str(s) for s in synth), "seed": seed}
    if epochs:
        kw["epochs"] = epochs
    if init is not None:
        kw["init"] = str(init)
    if sprite_frames is not None:
        kw["sprite_frames"] = sprite_frames
    kw.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items() if v is not None})
    cfg = DetectorTrainConfig(**kw)
    save_config(cfg, out / "train_config.yaml")
    random.seed(seed)
    torch.manual_seed(seed)
    rnd = random.Random(seed)
    init_path = Path(cfg.init) if cfg.init else resolve("detector").weights_path
    if init_path.is_dir():
        init_path = resolve("detector", init_path).weights_path
    if init_path.suffix == ".whl":
        from spotid.train.zamba import import_zamba

        import tempfile

        init_path = import_zamba(init_path, Path(tempfile.mkdtemp(prefix="spotid-zamba-")))  # never into models/
    model = build_yolox_tiny(weights=init_path)
    init_state = {k: v.detach().clone() for k, v in model.state_dict().items()} if cfg.wise_alpha < 1 else None
    items, counts = collect(cfg, model)
    log.info("detector fine-tune data: %s (%d samples/epoch)", counts, len(items))
    for n, p in model.named_parameters():
        p.requires_grad = _trainable(n, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    steps = max(1, len(items) // cfg.batch_size)
    total = steps * cfg.epochs

    def lr_at(i):
        if i < steps:  # warm-up epoch
            return cfg.lr * (i + 1) / steps
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * (i - steps) / max(1, total - steps)))

    ck = out / "checkpoint.pt"
    start = resume_epoch(ck, model, opt) if resume else 0
    if start:
        rnd = random.Random(seed + start)
    history = []
    model.head.use_l1 = False
    for epoch in range(start, cfg.epochs):
        model.train()
        if cfg.freeze_backbone:
            model.backbone.backbone.eval()  # frozen BN statistics (unfrozen stages too)
        order = list(range(len(items)))
        rnd.shuffle(order)
        tot = 0.0
        for s in range(steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch * steps + s)
            batch = [load_sample(*items[i], cfg.input_size, rnd) for i in order[s * cfg.batch_size:(s + 1) * cfg.batch_size]]
            x = torch.from_numpy(np.stack([b[0] for b in batch])).permute(0, 3, 1, 2).float()
            maxk = max(1, max(len(b[1]) for b in batch))
            t = torch.zeros((len(batch), maxk, 5))
            for j, (_, tb) in enumerate(batch):
                if len(tb):
                    t[j, :len(tb)] = torch.from_numpy(tb)
            loss = model(x, t)["total_loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item()
            if s % 5 == 0:
                log.info("detector epoch %d step %d/%d loss %.3f", epoch + 1, s + 1, steps, loss.item())
        history.append(tot / steps)
        log.info("detector epoch %d/%d mean loss %.4f", epoch + 1, cfg.epochs, history[-1])
        save_torch({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch}, ck)
    model.eval()
    if init_state is not None:
        sd = wise_interpolate(init_state, model.state_dict(), cfg.wise_alpha)
        log.info("WiSE-FT: shipped %.2f * fine-tuned + %.2f * initial weights", cfg.wise_alpha, 1 - cfg.wise_alpha)
    else:
        sd = fp16_state(model.state_dict())
    save_torch(sd, out / "yolox_tiny.pt")
    (out / "train_summary.json").write_text(json.dumps({"counts": counts, "loss_history": history}, indent=1))
    if ck.exists():
        ck.unlink()  # finished: the checkpoint (with optimizer state) must not ship with the weights
    return {"folder": str(out), "counts": counts, "loss_history": history, "config": cfg}
