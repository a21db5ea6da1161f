"""Train the foreground (animal vs background) U-Net on the CPU from ``spotid synth crops --masks``.

Each data folder holds ``crops.csv`` with a ``mask`` column (the renderer's visible alpha, cut like
the crop). Individuals are held out for the reported IoU. Batches are resized to one of a few aspect
buckets (square crops, wide flank boxes, tall front views), as :func:`input_hw` sizes crops at run
time. Checkpoints after every epoch; Ctrl-C raises ``Interrupted`` (the CLI exits 130) and ``resume``
continues from the last complete epoch.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from spotid.identify.embedder import IMAGENET_MEAN, IMAGENET_STD
from spotid.identify.foreground import STRIDE, build_foreground
from spotid.train.common import (
    normalise,
    resume_epoch,
    save_torch,
    save_weights_fp16,
    split_individuals,
)
from spotid.train.embedder import Interrupted
from spotid.util import progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainForegroundConfig:
    """Defaults mirrored in ``configs/train_foreground.yaml``."""

    yaml_name = "train_foreground"

    width: int = 16
    input_long_side: int = 160
    epochs: int = 12
    steps_per_epoch: int = 200
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.15
    split_seed: int = 0
    seed: int = 0
    threads: int = 2
    threshold: float = 0.5           # recommended cut, recorded in the card
    min_fraction: float = 0.05       # below this much foreground the stage falls back to the whole crop
    dilate: float = 0.05             # recommended mask growth (fraction of the long side), written to the card
    grey_prob: float = 0.2           # extra grey conversions (real infrared frames are grey)


def aspect_buckets(long_side: int) -> list[tuple[int, int]]:
    """(H, W) network inputs of the aspect ratios crops come in: 1:1, 3:5, 2:5 (flanks) and 5:3."""
    L = long_side - long_side % STRIDE
    def r(v):
        return max(2 * STRIDE, round(v / STRIDE) * STRIDE)
    return [(L, L), (r(L * 0.6), L), (r(L * 0.4), L), (L, r(L * 0.6))]


def load_masked(dirs: Sequence[str | Path]) -> list[dict]:
    """Rows of every ``crops.csv`` with a mask: ``{"image", "mask", "individual", "source"}`` (arrays)."""
    rows = []
    for d in dirs:
        d = Path(d)
        csv_path = d / "crops.csv"
        if not csv_path.exists():
            raise FileNotFoundError(f"no crops.csv in {d}: --data takes a folder written by `spotid synth crops OUT "
                                    "--masks` (the renderer knows which pixels are animal; photos carry no masks)")
        with open(csv_path, newline="", encoding="utf-8") as f:
            table = list(csv.DictReader(f))
        if not table or "mask" not in table[0]:
            raise ValueError(f"{csv_path} has no mask column: render it with `spotid synth crops --masks`")
        for t in table:
            img = cv2.imread(str(d / t["path"]), cv2.IMREAD_COLOR)
            m = cv2.imread(str(d / t["mask"]), cv2.IMREAD_GRAYSCALE)
            if img is None or m is None:
                log.warning("skipping unreadable %s", d / t["path"])
                continue
            rows.append({"image": cv2.cvtColor(img, cv2.COLOR_BGR2RGB), "mask": m,
                         "individual": f"{d.name}/{t['individual_id']}", "source": d.name})
    return rows


def _batch(rows: list[dict], idx: np.ndarray, hw: tuple[int, int], r: np.random.Generator | None,
           cfg: TrainForegroundConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, 3, H, W)`` normalised images and ``(B, 1, H/2, W/2)`` float targets; augmented when ``r``."""
    xs, ys = [], []
    for i in idx:
        img, m = rows[i]["image"], rows[i]["mask"]
        if r is not None:
            h0, w0 = img.shape[:2]   # random sub-window: crops at run time are cut more or less tightly
            s = r.uniform(0.8, 1.0)
            ch, cw = max(8, int(h0 * s)), max(8, int(w0 * r.uniform(0.8, 1.0)))
            y0, x0 = int(r.integers(0, h0 - ch + 1)), int(r.integers(0, w0 - cw + 1))
            img, m = img[y0:y0 + ch, x0:x0 + cw], m[y0:y0 + ch, x0:x0 + cw]
            if r.random() < 0.5:
                img, m = img[:, ::-1], m[:, ::-1]
        x = cv2.resize(np.ascontiguousarray(img), (hw[1], hw[0]), interpolation=cv2.INTER_AREA).astype(np.float32)
        y = cv2.resize(np.ascontiguousarray(m), (hw[1] // 2, hw[0] // 2), interpolation=cv2.INTER_AREA)
        if r is not None:
            x = x * r.uniform(0.6, 1.4) + r.uniform(-30, 30)           # exposure
            if r.random() < cfg.grey_prob:
                x = np.repeat(x.mean(axis=2, keepdims=True), 3, axis=2)
            if r.random() < 0.3:
                x = cv2.GaussianBlur(x, (0, 0), r.uniform(0.5, 1.5))
            x = x + r.normal(0, r.uniform(0, 6), x.shape)               # sensor noise
        xs.append(np.clip(x, 0, 255) / 255.0)
        ys.append(y.astype(np.float32) / 255.0)
    x = normalise(torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float(), IMAGENET_MEAN, IMAGENET_STD)
    return x, torch.from_numpy(np.stack(ys))[:, None]


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + soft Dice (the animal is often a small part of a padded crop)."""
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)
    return F.binary_cross_entropy_with_logits(logits, target) + dice.mean()


def evaluate(model, rows: list[dict], idx: Sequence[int], cfg: TrainForegroundConfig) -> dict:
    """Pixel IoU and accuracy at ``cfg.threshold``, and the share of crops the stage would fall back on
    (foreground below ``min_fraction``), on ``idx`` at each crop's own aspect (batch of one)."""
    from spotid.identify.foreground import input_hw

    inter = union = correct = total = 0.0
    fallback = 0
    model.eval()
    with torch.inference_mode():
        for i in idx:
            img = rows[i]["image"]
            hw = input_hw(img.shape[0], img.shape[1], cfg.input_long_side)
            x, y = _batch(rows, np.array([i]), hw, None, cfg)
            p = torch.sigmoid(model(x)) >= cfg.threshold
            t = y >= 0.5
            inter += float((p & t).sum())
            union += float((p | t).sum())
            correct += float((p == t).sum())
            total += t.numel()
            fallback += int(float(p.float().mean()) < cfg.min_fraction)
    n = max(len(idx), 1)
    return {"crops": len(idx), "iou": round(inter / max(union, 1), 4), "pixel_accuracy": round(correct / max(total, 1), 4),
            "fallback_rate": round(fallback / n, 4)}


def train_foreground(cfg: TrainForegroundConfig, *, data: Sequence[str | Path], out: str | Path, resume: bool = False,
                     command: str = "") -> dict:
    """Train, evaluate on held-out individuals, export ``out/{weights.pt, card.json, README.md, config.yaml}``."""
    from spotid.config import save_config

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(1, cfg.threads))
    t_start = time.time()
    rows = load_masked(data)
    if len(rows) < 20:
        raise ValueError(f"only {len(rows)} masked crops in {list(map(str, data))}: render more with "
                         "`spotid synth crops DIR --masks --individuals 60`")
    inds = sorted({x["individual"] for x in rows})
    if len(inds) < 2:
        raise ValueError(f"masked crops of {len(inds)} individual in {list(map(str, data))}: render at least two "
                         "(`spotid synth crops DIR --masks --individuals 60`) so one can be held out")
    _, va_inds = split_individuals(inds, cfg.val_fraction, cfg.split_seed)
    if not va_inds:  # a few individuals: still hold one out, or the card's IoU would measure nothing
        _, va_inds = split_individuals(inds, 1.0 / len(inds), cfg.split_seed)
    va = np.array([i for i, x in enumerate(rows) if x["individual"] in va_inds])
    tr = np.array([i for i, x in enumerate(rows) if x["individual"] not in va_inds])
    model = build_foreground(width=cfg.width)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * cfg.steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=0.1)
    save_config(cfg, out / "config.yaml")
    ckpt = out / "checkpoint.pt"
    start = resume_epoch(ckpt, model, opt, sched) if resume else 0
    history = torch.load(ckpt, map_location="cpu", weights_only=False).get("history", []) if start else []
    buckets = aspect_buckets(cfg.input_long_side)
    try:
        for epoch in range(start, cfg.epochs):
            model.train()
            er = np.random.default_rng([cfg.seed, epoch])
            losses = []
            for _ in progress(range(cfg.steps_per_epoch), total=cfg.steps_per_epoch, description=f"epoch {epoch + 1}"):
                idx = er.choice(tr, cfg.batch_size, replace=False)
                x, y = _batch(rows, idx, buckets[int(er.integers(len(buckets)))], er, cfg)
                loss = loss_fn(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
            history.append({"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4)})
            log.info("epoch %d loss %.4f", epoch + 1, history[-1]["loss"])
            save_torch({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "epoch": epoch, "history": history}, ckpt)
    except KeyboardInterrupt:
        # the epoch in progress is dropped: resuming repeats it from the last complete one
        where = f"checkpoint at {ckpt}; continue with --resume --out {out}" if ckpt.exists() else "no epoch finished"
        raise Interrupted(f"interrupted: {where}") from None
    val = evaluate(model, rows, va, cfg)
    seconds = time.time() - t_start
    return _export(model, cfg, out, rows=rows, tr=tr, va=va, val=val, history=history, command=command, seconds=seconds)


def _export(model, cfg: TrainForegroundConfig, out: Path, *, rows, tr, va, val, history, command, seconds) -> dict:
    from spotid.modelstore import write_card

    save_weights_fp16(model, out / "weights.pt")
    sources = sorted({x["source"] for x in rows})
    data = {s: {"train_crops": int(sum(rows[i]["source"] == s for i in tr)),
                "heldout_crops": int(sum(rows[i]["source"] == s for i in va))} for s in sources}
    card = write_card(out, name=out.name or "foreground", kind="foreground", weights="weights.pt", arch="ForegroundNet",
                      width=cfg.width, input_long_side=cfg.input_long_side, mean=list(IMAGENET_MEAN),
                      std=list(IMAGENET_STD), classes=["background", "animal"],
                      thresholds={"foreground": cfg.threshold, "min_fraction": cfg.min_fraction, "dilate": cfg.dilate},
                      preprocessing="RGB crop resized (aspect kept to multiples of 16) so the long side is "
                                    f"{cfg.input_long_side}, /255, ImageNet mean/std; output: sigmoid probability "
                                    "at half that resolution",
                      metrics={"heldout_synthetic": val}, history=history, training_data=data,
                      config=json.loads(json.dumps(dataclasses.asdict(cfg))), storage="fp16 state dict",
                      licence="MIT (weights trained by the spotid authors)", command=command,
                      train_seconds=round(seconds, 1))
    (out / "checkpoint.pt").unlink(missing_ok=True)
    return {"model": str(out), "version": card.version, "heldout": val, "train_seconds": round(seconds, 1)}
