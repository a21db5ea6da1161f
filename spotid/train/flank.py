"""Train the flank/viewpoint classifier (left / right / front / back) on the CPU.

Labels come from flank sub-folders (synthetic crops: ``<id>/<left|right|front|back>/``) and from
file names (``*_leftphoto`` in nyala-train). Mirror symmetry is used twice: a horizontally flipped
training image gets left and right swapped (doubling the flank data), and the stage averages the
prediction with the mirrored one. Individuals are held out for the reported accuracy.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from spotid.identify.embedder import IMAGENET_MEAN, IMAGENET_STD
from spotid.identify.flank import CLASSES, MIRROR, build_flank_classifier, flip_averaged_probs
from spotid.train.common import (Augment, AugmentConfig, load_images, normalise, recalibrate_bn, resize_batch,
                                 save_torch, save_weights_fp16, scan_identity_dirs, set_bn_momentum,
                                 split_individuals)
from spotid.train.embedder import Interrupted, _cache_dir, _lr_at

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainFlankConfig:
    """Defaults mirrored in ``configs/train_flank.yaml``."""

    yaml_name = "train_flank"

    arch: str = "mobilenet_v3_small"
    input_size: tuple[int, int] = (128, 176)
    cache_size: tuple[int, int] = (184, 256)      # shares the embedder's decoded-image cache
    epochs: int = 8
    batch_size: int = 48
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 30
    label_smoothing: float = 0.05
    val_fraction: float = 0.3
    split_seed: int = 0
    seed: int = 0
    max_steps_per_epoch: int = 0
    threads: int = 1
    unknown_below: float = 0.0                    # 'unknown' below this top probability; 0 = calibrate:
    target_precision: float = 0.97                # lowest threshold whose held-out answers are this accurate
    max_wrong_flank: float = 0.01                 # ... and whose left/right images are called the opposite
                                                  # flank at most this often, in every data source
    flank_regex: str = "(?i)(left|right)"
    encounter_regex: str = "^(.+)_[^_]+$"
    cache_dir: str = ""
    keep_checkpoints: bool = False
    init_weights: str = ""                        # flank model folder (or weights file) to fine-tune from


def mirror_label(label: int) -> int:
    """Class index of the mirrored image (left <-> right)."""
    return MIRROR[label]


@torch.inference_mode()
def predict_cached(model, imgs: torch.Tensor, input_hw, mean, std, batch_size: int = 128,
                   mask: torch.Tensor | None = None) -> np.ndarray:
    model.eval()
    outs = []
    for s in range(0, len(imgs), batch_size):
        x = normalise(resize_batch(imgs[s:s + batch_size], input_hw), mean, std)
        outs.append(flip_averaged_probs(model, x, mask).numpy())
    return np.concatenate(outs) if outs else np.zeros((0, len(CLASSES)), np.float32)


def flank_metrics(probs: np.ndarray, labels: Sequence[int], threshold: float) -> dict:
    """Accuracy (argmax), per-class recall, coverage/accuracy of the non-'unknown' answers, and the
    wrong-flank rate: share of left/right images answered with the opposite flank (they would be
    matched against the wrong gallery; 'unknown' and front/back answers only lose the sighting)."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return {"images": 0}
    pred = probs.argmax(1)
    conf = probs.max(1)
    acc = float((pred == labels).mean())
    kept = conf >= threshold
    lr = labels <= 1
    per_class = {c: (float((pred[labels == k] == k).mean()) if np.any(labels == k) else None)
                 for k, c in enumerate(CLASSES)}
    return {"images": int(len(labels)), "accuracy": round(acc, 4), "per_class_recall": per_class,
            "threshold": threshold, "coverage": round(float(kept.mean()), 4),
            "accuracy_when_answered": round(float((pred[kept] == labels[kept]).mean()), 4) if kept.any() else None,
            "unknown_rate": round(float(1.0 - kept.mean()), 4),
            "wrong_flank_rate": round(float((kept & lr & (pred <= 1) & (pred != labels)).sum() / lr.sum()), 4)
            if lr.any() else None}


def calibrate_threshold(probs: np.ndarray, labels: Sequence[int], target: float, floor: float = 0.5,
                        max_wrong_flank: float = 1.0) -> float:
    """Lowest threshold (>= ``floor``) at which the held-out answers reach ``target`` accuracy and at
    most ``max_wrong_flank`` of the left/right images are answered with the opposite flank (a wrong
    flank sends the sighting to the wrong gallery); the highest seen confidence when none does (then
    almost everything is 'unknown', which is honest)."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return max(floor, 0.6)
    conf, pred = probs.max(1), probs.argmax(1)
    right = pred == labels
    lr = labels <= 1
    swapped = lr & (pred <= 1) & ~right
    for t in np.round(np.arange(floor, 1.0, 0.01), 2):
        kept = conf >= t
        if kept.sum() >= 5 and right[kept].mean() >= target and \
                (swapped & kept).sum() <= max_wrong_flank * max(1, lr.sum()):
            return float(t)
    return float(min(0.99, round(float(conf.max()), 2)))


def calibrate_threshold_per_source(probs: np.ndarray, labels: Sequence[int], sources: Sequence[str], target: float,
                                   max_wrong_flank: float = 1.0) -> tuple[float, dict[str, float]]:
    """The strictest of the per-source thresholds (``calibrate_threshold`` on each source's held-out
    images), so a large synthetic source cannot hide the errors of a small real one."""
    labels, sources = np.asarray(labels), np.asarray(sources)
    per = {str(src): calibrate_threshold(probs[sources == src], labels[sources == src], target,
                                         max_wrong_flank=max_wrong_flank) for src in sorted(set(sources.tolist()))}
    return (max(per.values()) if per else 0.6), per


def train_flank(cfg: TrainFlankConfig, *, data: Sequence[str | Path], out: str | Path, resume: bool = False,
                show_progress: bool = True, command: str = "") -> dict:
    from spotid.config import save_config
    from spotid.util import progress

    torch.set_num_threads(max(1, int(cfg.threads)))
    torch.manual_seed(cfg.seed)
    out = Path(out)
    ckpt_dir = out / "checkpoints"
    ckpt_path = ckpt_dir / "last.pt"
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    samples = [s for s in scan_identity_dirs(data, flank_regex=cfg.flank_regex or None,
                                             encounter_regex=cfg.encounter_regex or None)
               if s.flank in CLASSES]
    if not samples:
        raise ValueError("no flank-labelled images: use left/right/front/back sub-folders or left/right in names")
    train_ind, val_ind = set(), set()
    for src in sorted({s.source for s in samples}):
        tr, va = split_individuals([s.individual for s in samples if s.source == src], cfg.val_fraction,
                                   cfg.split_seed)
        if not tr:
            tr, va = va, set()
        train_ind |= tr
        val_ind |= va
    images, ok = load_images([s.path for s in samples], tuple(cfg.cache_size), cache_dir=_cache_dir(cfg),
                             show_progress=show_progress)
    keep = [i for i, s in enumerate(samples) if ok[i]]
    tr_idx = [i for i in keep if samples[i].individual in train_ind]
    va_idx = [i for i in keep if samples[i].individual in val_ind]
    labels = torch.tensor([CLASSES.index(s.flank) for s in samples])
    counts = {c: int((labels[tr_idx] == k).sum()) for k, c in enumerate(CLASSES)}
    log.info("flank training images per class %s; %d held-out images", counts, len(va_idx))
    # inverse-frequency class weights over classes that have data (left/right pooled: flips swap them)
    lr_pool = counts["left"] + counts["right"]
    eff = np.array([lr_pool / 2, lr_pool / 2, counts["front"], counts["back"]], dtype=np.float64)
    weights = np.where(eff > 0, eff.sum() / np.maximum(eff, 1) / (eff > 0).sum(), 0.0)
    class_w = torch.tensor(np.minimum(weights, 5.0), dtype=torch.float32)
    mask = torch.tensor(eff > 0)
    trained_classes = [c for c, m in zip(CLASSES, mask.tolist()) if m]

    model = build_flank_classifier(arch=cfg.arch)
    parent = None
    if cfg.init_weights:
        parent = _load_parent(model, cfg)
    set_bn_momentum(model, 0.1)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(tr_idx) // cfg.batch_size)
    if cfg.max_steps_per_epoch > 0:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    total = steps_per_epoch * cfg.epochs
    start_epoch, history = 0, []
    if resume:
        if not ckpt_path.exists():
            raise FileNotFoundError(f"no checkpoint at {ckpt_path}: run without --resume to start")
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start_epoch, history = ck["epoch"], ck["history"]

    def checkpoint(epoch: int) -> None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, ckpt_dir / "config.yaml")
        save_torch({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                    "history": history}, ckpt_path)

    input_hw = tuple(cfg.input_size)
    aug = Augment(input_hw, AugmentConfig(crop_scale=(0.6, 1.0), perspective_p=0.2), seed=cfg.seed + start_epoch)
    t0 = time.time()
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, cfg.epochs):
            model.train()
            rng = np.random.default_rng(cfg.seed * 7919 + epoch)
            perm = rng.permutation(tr_idx)
            flips = rng.random(len(perm)) < 0.5
            steps = range(steps_per_epoch)
            bar = progress(steps, total=steps_per_epoch, description=f"flank epoch {epoch + 1}/{cfg.epochs}") \
                if show_progress else steps
            losses = []
            for step in bar:
                sl = slice((step * cfg.batch_size) % len(perm), (step * cfg.batch_size) % len(perm) + cfg.batch_size)
                xs, ys = [], []
                for i, f in zip(perm[sl], flips[sl]):
                    x = aug(images[i])
                    y = int(labels[i])
                    if f:  # a mirrored left flank is a right flank
                        x, y = torch.flip(x, dims=[2]), mirror_label(y)
                    xs.append(x)
                    ys.append(y)
                for g in opt.param_groups:
                    g["lr"] = _lr_at(epoch * steps_per_epoch + step, total, cfg.lr, cfg.warmup_steps)
                logits = model(normalise(torch.stack(xs), mean, std))
                loss = F.cross_entropy(logits, torch.tensor(ys), weight=class_w, label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            recalibrate_bn(model, images[tr_idx], input_hw, mean, std, seed=epoch)
            val = flank_metrics(predict_cached(model, images[va_idx], input_hw, mean, std, mask=mask),
                                labels[va_idx].tolist(), cfg.unknown_below or 0.6) if va_idx else {"images": 0}
            history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "val": val,
                            "seconds": round(time.time() - t0, 1)})
            log.info("flank epoch %d/%d loss %.3f held-out accuracy %s", epoch + 1, cfg.epochs, np.mean(losses),
                     val.get("accuracy"))
            checkpoint(epoch + 1)
    except KeyboardInterrupt:
        checkpoint(epoch)
        raise Interrupted(f"interrupted: checkpoint at {ckpt_path}; continue with --resume --out {out}")

    threshold = cfg.unknown_below
    val: dict = {"images": 0}
    if va_idx:
        probs = predict_cached(model, images[va_idx], input_hw, mean, std, mask=mask)
        if not threshold:  # calibrated on held-out individuals (optimistic: chosen on the same images)
            threshold, per_source = calibrate_threshold_per_source(
                probs, labels[va_idx].tolist(), [samples[i].source for i in va_idx], cfg.target_precision,
                max_wrong_flank=cfg.max_wrong_flank)
            log.info("flank threshold %.2f (per source %s)", threshold, per_source)
        val = flank_metrics(probs, labels[va_idx].tolist(), threshold)
    threshold = threshold or 0.6
    summary = _export(model, cfg, out, samples=samples, tr_idx=tr_idx, va_idx=va_idx, counts=counts, val=val,
                      history=history, command=command, seconds=time.time() - t0, threshold=threshold,
                      trained_classes=trained_classes, parent=parent)
    if not cfg.keep_checkpoints:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return summary


def _load_parent(model, cfg: TrainFlankConfig) -> dict:
    """Load ``cfg.init_weights`` (a flank model folder with a card, or a weights file) into ``model``;
    returns the parent's identity for the new card."""
    from spotid.identify.embedder import load_state
    from spotid.modelstore import resolve

    src = Path(cfg.init_weights)
    if src.is_dir():
        card = resolve("flank", src)
        if card.get("arch", cfg.arch) != cfg.arch:
            raise ValueError(f"{src}: arch {card.get('arch')} differs from the configured {cfg.arch}")
        model.load_state_dict(load_state(card.weights_path))
        return {"version": card.version, "sha256": card.get("sha256"), "path": str(src)}
    if not src.exists():
        raise FileNotFoundError(f"no flank weights at {src}: pass a model folder (card.json) or a weights file")
    model.load_state_dict(load_state(src))
    return {"version": None, "sha256": None, "path": str(src)}


def _export(model, cfg, out: Path, *, samples, tr_idx, va_idx, counts, val, history, command, seconds, threshold,
            trained_classes, parent=None) -> dict:
    import json

    from spotid.config import save_config
    from spotid.modelstore import write_card
    from spotid.util import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    save_weights_fp16(model, out / "weights.pt")
    save_config(cfg, out / "config.yaml")
    sources = sorted({s.source for s in samples})
    data = {src: {"train_images": sum(samples[i].source == src for i in tr_idx),
                  "heldout_images": sum(samples[i].source == src for i in va_idx),
                  "heldout_individuals": sorted({samples[i].individual for i in va_idx if samples[i].source == src})}
            for src in sources}
    name = out.name if out.name not in ("", ".") else "flank"
    card = write_card(
        out, name=name, kind="flank", weights="weights.pt", arch=cfg.arch, classes=list(CLASSES),
        input_size=list(cfg.input_size), mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD),
        thresholds={"unknown_below": threshold}, trained_classes=trained_classes,
        preprocessing="RGB crop resized (aspect not kept) to input_size (H, W), /255, mean/std; prediction "
                      "averaged with the left/right-swapped prediction of the mirrored crop",
        metrics={"heldout": val}, train_class_counts=counts, history=history, training_data=data,
        config=json.loads(json.dumps(dataclasses.asdict(cfg))), storage="fp16 state dict",
        licence="MIT (weights trained by the spotid authors)", command=command, train_seconds=round(seconds, 1),
        parent=parent)
    m = val or {}
    lines = [
        f"# Flank classifier `{card.version}`", "",
        "Which side of the animal a crop shows: left / right / front / back; the stage answers "
        f"`unknown` when the top probability is below {threshold}.", "",
        f"- Architecture: torchvision `{cfg.arch}` (weights=None, trained here), {len(CLASSES)} classes {list(CLASSES)}",
        f"- Input: RGB crop resized to {cfg.input_size[0]}×{cfg.input_size[1]} (H×W), ImageNet mean/std",
        "- Mirror symmetry: flipped training images swap left/right; inference averages with the mirrored crop",
        f"- Threshold: unknown_below = {threshold}"
        + (" (strictest per-source threshold on the held-out individuals with accuracy when answered >= "
           f"{cfg.target_precision} and wrong-flank rate <= {cfg.max_wrong_flank})" if not cfg.unknown_below else ""),
        f"- Classes with training data: {trained_classes} (others are masked to probability 0)",
        f"- Storage: fp16; sha256 `{card.sha256}`",
        f"- Fine-tuned from: `{parent.get('version') or parent.get('path')}`" if parent else "- Trained from scratch",
        "- Licence: MIT (weights trained by the spotid authors)", "",
        "## Evaluation (held-out individuals)", "",
        f"- images {m.get('images')}, accuracy {m.get('accuracy')}, per-class recall {m.get('per_class_recall')}",
        f"- at the threshold: coverage {m.get('coverage')}, accuracy when answered {m.get('accuracy_when_answered')}", "",
        "## Training data", "",
        f"- class counts (before mirroring): {counts}",
    ]
    lines += [f"- `{src}`: {d['train_images']} images trained on, {d['heldout_images']} held out" for src, d in data.items()]
    lines += ["", "## Reproduce", "", "```", command or "(see card.json config)", "```", ""]
    atomic_write_text(out / "README.md", "\n".join(lines))
    return {"model": str(out), "version": card.version, "accuracy": val.get("accuracy"), "heldout": val}
