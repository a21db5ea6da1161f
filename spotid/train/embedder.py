"""Train or fine-tune the rosette embedder with metric learning on the CPU.

``arch: efficientnet_lite0`` (the default) goes to ``spotid/train/embedder_pretrained.py``: the ImageNet
trunk is cached once and a head is trained on top (losses supcon | subcenter_arcface | arcface | triplet |
ms). Everything below describes the other archs, trained whole from scratch or from a parent model.

Loss: supervised contrastive (SupCon) on P identities x K images batches by default; sub-center
ArcFace (``loss: subcenter_arcface``) is kept as an option. With the few hundred steps a shared
2-core CPU allows, in-batch pairs give a signal at every step, whereas ArcFace's class centres see
two or three images per class per epoch. Measured here from scratch: at lr 2e-3 both ArcFace
(3 epochs) and SupCon (5 epochs) stayed at chance (SupCon collapsed to a constant embedding); at
lr 3e-4 SupCon fits 16 identities within 35 steps. ArcFace at 3e-4 was not measured.

Identities are (individual, flank) pairs from folder-per-individual directories and, with a
catalog, the biologists' confirmed sightings. Individuals (not images) are held out for
validation, so the reported numbers are for animals the model never saw. Images are decoded once
into a uint8 cache; each epoch draws strongly augmented crops from it.

With ``flip_new_identity`` a mirrored image becomes a new identity: a mirrored left flank is a
plausible right flank of an animal that does not exist, which doubles the identities to separate.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from spotid.identify.embedder import build_embedder, default_normalisation
from spotid.train.common import (Augment, AugmentConfig, Sample, catalog_samples, embed_cached, load_images,
                                 format_metrics, normalise, pk_batches, recalibrate_bn, reid_metrics, require_heldout,
                                 save_torch, save_weights_fp16, scan_identity_dirs, set_bn_momentum,
                                 split_individuals)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainEmbedderConfig:
    """Defaults mirrored in ``configs/train_embedder.yaml``."""

    yaml_name = "train_embedder"  # class attribute, not a setting

    arch: str = "efficientnet_lite0"             # the pretrained-trunk recipe (embedder_pretrained.py); others train whole nets
    embedding_dim: int = 256
    input_size: tuple[int, int] = (160, 224)      # (H, W) the network sees
    cache_size: tuple[int, int] = (184, 256)      # (H, W) decoded once; random crops are taken from it
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3                              # lite0 head; from scratch 5e-4 (2e-3 collapsed the embedding); fine-tuning: * finetune_lr_scale
    finetune_lr_scale: float = 0.3
    head_lr_mult: float = 10.0                    # ArcFace class centres learn faster than the backbone
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    loss: str = "supcon"                          # supcon | subcenter_arcface
    temperature: float = 0.1                      # supervised-contrastive temperature
    samples_per_identity: int = 4                 # K of the P x K batches (P = batch_size // K)
    margin_deg: float = 20.0                      # sub-center ArcFace additive angular margin
    margin_warmup_steps: int = 300                # margin ramps up from 0: ArcFace from scratch converges
    scale: float = 32.0
    sub_centers: int = 3
    val_fraction: float = 0.2                     # of individuals, per data set (lite0: of those left after test_fraction)
    split_seed: int = 0                           # fixed: the same animals stay held out across runs
    seed: int = 0
    flip_new_identity: bool = False               # mirrored coats as extra identities: off, the step budget goes to real pairs
    max_steps_per_epoch: int = 40                 # lite0: steps per epoch; others: cap (0 = a full pass over the images)
    threads: int = 1
    flank_regex: str = "(?i)(left|right)"         # flank from file names when no flank sub-folder
    encounter_regex: str = "^(.+)_[^_]+$"         # '306_leftphoto' -> '306'; '12_3.jpg' -> '12'
    flank_model: str = ""                         # flank classifier folder for unlabelled images ("" = shipped)
    cache_dir: str = ""                           # "" = ~/.cache/spotid
    keep_checkpoints: bool = False
    # augmentation: the identity is in spots a few pixels wide, so geometry and blur stay mild
    # (the first recipe's 0.55 crops, perspective and sigma-1.6 blur erased the pattern it had to learn)
    aug_crop_scale: tuple[float, float] = (0.85, 1.0)
    aug_crop_ratio: tuple[float, float] = (1.25, 1.55)  # W/H of the random crop (input is 224/160 = 1.4)
    aug_rotate_deg: float = 3.0
    aug_perspective_p: float = 0.0
    aug_blur_p: float = 0.05
    aug_grayscale_p: float = 0.0                       # (grey input makes this moot)
    aug_jpeg_p: float = 0.1
    aug_noise_p: float = 0.1
    source_pure_batches: bool = True                   # one data set per batch: hard, same-domain negatives
    grayscale: bool = True                             # grey input (card 'grayscale'): colour is day/IR/light, not identity
    backbone_weights: str = ""                         # from scratch: pretrained backbone (yolox_tiny_*: models/detector/yolox_tiny.pt)
    freeze: tuple[str, ...] = ()                       # backbone stages kept frozen (e.g. stem, dark2 of yolox_tiny_*)
    # arch efficientnet_lite0 (spotid/train/embedder_pretrained.py): ImageNet trunk cached once, head on top
    long_side: int = 224                               # aspect kept, long side in px (multiples of 32); 288 measured too
    cache_views: int = 2                               # 0 clean, 1 mirrored (= another identity), 2+ augmented
    unfreeze_from: int = 7                             # 7 head only; 6 + last block and conv_head; 5 + stage 5
    pool: str = "gem"                                  # gem | avg
    backbone_lr_mult: float = 0.1                      # unfrozen trunk blocks (unfreeze_from < 7)
    test_fraction: float = 0.25                        # of individuals per data set: never trained on, reported
    refit: bool = True                                 # after choosing the epoch on validation, train on train + val


def augment_config(cfg) -> AugmentConfig:
    """The trainer's :class:`AugmentConfig` from the ``aug_*`` settings."""
    return AugmentConfig(crop_scale=tuple(cfg.aug_crop_scale), crop_ratio=tuple(cfg.aug_crop_ratio),
                         rotate_deg=cfg.aug_rotate_deg, perspective_p=cfg.aug_perspective_p, blur_p=cfg.aug_blur_p,
                         grayscale_p=cfg.aug_grayscale_p, jpeg_p=cfg.aug_jpeg_p, noise_p=cfg.aug_noise_p)


def to_gray(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` RGB -> uint8 ``(N, 3, H, W)`` luma in every channel (``gray3``)."""
    from spotid.identify.embedder import gray3

    out = images.clone()
    for i in range(len(images)):
        out[i] = torch.from_numpy(gray3(np.ascontiguousarray(images[i].permute(1, 2, 0).numpy()))).permute(2, 0, 1)
    return out


def _cache_dir(cfg) -> Path:
    return Path(cfg.cache_dir) if cfg.cache_dir else Path.home() / ".cache" / "spotid"


def gather_samples(data: Sequence[str | Path], db: str | Path | None, cfg, *, flank_model=None) -> list[Sample]:
    """Labelled left/right samples from the data folders and the catalog's confirmed sightings."""
    def flank_fn(paths: list[str]) -> list[str]:
        from PIL import Image

        from spotid.identify.flank import FlankClassifier

        try:
            clf = FlankClassifier(flank_model or cfg.flank_model or None)
        except Exception as e:  # no flank model: unlabelled images are left out, loudly
            log.warning("no flank classifier (%s): %d images without flank labels skipped", e, len(paths))
            return ["unknown"] * len(paths)
        return [p.flank for p in clf([Image.open(x).convert("RGB") for x in paths])]

    samples = scan_identity_dirs(data, flank_regex=cfg.flank_regex or None,
                                 encounter_regex=cfg.encounter_regex or None, flank_fn=flank_fn)
    if db is not None:
        samples += catalog_samples(db)
    kept = [s for s in samples if s.flank in ("left", "right")]
    if len(kept) < len(samples):
        log.info("%d images without a left/right flank left out (front/back/unknown carry no flank pattern)",
                 len(samples) - len(kept))
    return kept


def _lr_at(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def evaluate(model, imgs: torch.Tensor, samples: Sequence[Sample], input_hw, mean, std) -> dict:
    """Encounter-rule, same-flank leave-one-out metrics of ``model`` on cached images."""
    if len(samples) == 0:
        return {"top1": float("nan"), "top5": float("nan"), "mAP": float("nan"), "queries": 0}
    emb = embed_cached(model, imgs, input_hw, mean, std)
    return reid_metrics(emb, [s.individual for s in samples], [s.flank for s in samples],
                        [s.encounter for s in samples])


class Interrupted(RuntimeError):
    """Training stopped by Ctrl-C after writing a checkpoint."""


def train_embedder(cfg: TrainEmbedderConfig, *, data: Sequence[str | Path], out: str | Path,
                   db: str | Path | None = None, parent: str | Path | None = None, from_scratch: bool = False,
                   resume: bool = False, show_progress: bool = True, command: str = "") -> dict:
    """Train, evaluate before/after on held-out individuals, and write the model folder ``out``.

    Returns a summary dict (metrics, counts, paths). Raises :class:`Interrupted` on Ctrl-C after
    saving ``out/checkpoints/last.pt``; call again with ``resume=True`` to continue.
    """
    from pytorch_metric_learning import losses

    from spotid.config import save_config
    from spotid.modelstore import ModelError, resolve
    from spotid.util import progress

    torch.set_num_threads(max(1, int(cfg.threads)))
    torch.manual_seed(cfg.seed)
    out = Path(out)
    ckpt_dir = out / "checkpoints"
    ckpt_path = ckpt_dir / "last.pt"

    # parent model: fine-tune unless told to start from scratch
    parent_card = None
    if not from_scratch:
        try:
            if parent is None and db is not None:  # the catalog's active model (`spotid models use`)
                from spotid.catalog import Catalog

                with Catalog(db) as cat:
                    parent_card = resolve("embedder", None, cat)
            else:
                parent_card = resolve("embedder", parent)
        except ModelError as e:
            if parent is not None:
                raise
            log.warning("no shipped embedder to fine-tune (%s): training from scratch", e)
    if parent_card is not None:
        cfg = dataclasses.replace(cfg, arch=parent_card.get("arch", cfg.arch),
                                  embedding_dim=int(parent_card.get("embedding_dim", cfg.embedding_dim)),
                                  input_size=tuple(parent_card.get("input_size", cfg.input_size)))
    if cfg.arch == "efficientnet_lite0":  # the pretrained-trunk recipe: its own split, cache and card
        from spotid.train.embedder_pretrained import train_lite0

        if db is not None:
            raise ValueError(f"the efficientnet_lite0 recipe trains on --data folders only: run `spotid export "
                             f"training-crops --db {db} --out DIR` and pass --data DIR/identity")
        return train_lite0(cfg, data=data, out=out, parent_card=parent_card, command=command)
    mean, std = default_normalisation(cfg.arch)
    if parent_card is not None:
        mean, std = tuple(parent_card.get("mean", mean)), tuple(parent_card.get("std", std))
        cfg = dataclasses.replace(cfg, grayscale=bool(parent_card.get("grayscale", False)))
    base_lr = cfg.lr * (cfg.finetune_lr_scale if parent_card is not None else 1.0)

    samples = gather_samples(data, db, cfg)
    if not samples:
        raise ValueError("no labelled left/right images found: pass --data folders (one sub-folder per "
                         "individual) or a --db with confirmed sightings")
    by_source: dict[str, list[str]] = {}
    for s in samples:
        by_source.setdefault(s.source, []).append(s.individual)
    train_ind, val_ind = set(), set()
    for src, inds in by_source.items():
        tr, va = split_individuals(inds, cfg.val_fraction, cfg.split_seed)
        if not tr:  # tiny data sets: keep at least one individual to train on
            tr, va = set(sorted(va)[:1]), set(sorted(va)[1:])
        train_ind |= tr
        val_ind |= va
    train_s = [s for s in samples if s.individual in train_ind]
    val_s = [s for s in samples if s.individual in val_ind]

    images, ok = load_images([s.path for s in samples], tuple(cfg.cache_size), cache_dir=_cache_dir(cfg),
                             show_progress=show_progress)
    if cfg.grayscale:  # as Embedder.preprocess does for a 'grayscale' card
        images = to_gray(images)
    index = {s.path: i for i, s in enumerate(samples)}
    train_s = [s for s in train_s if ok[index[s.path]]]
    val_s = [s for s in val_s if ok[index[s.path]]]
    require_heldout(val_s, cfg.val_fraction)
    train_imgs = images[[index[s.path] for s in train_s]]
    val_imgs = images[[index[s.path] for s in val_s]]
    identities = sorted({s.identity for s in train_s})
    ident_idx = {k: i for i, k in enumerate(identities)}
    labels = torch.tensor([ident_idx[s.identity] for s in train_s], dtype=torch.long)
    n_cls = len(identities) * (2 if cfg.flip_new_identity else 1)
    log.info("%d training images of %d identities (%d individuals); %d validation images of %d held-out "
             "individuals", len(train_s), len(identities), len(train_ind), len(val_s), len(val_ind))

    model = build_embedder(arch=cfg.arch, embedding_dim=cfg.embedding_dim,
                           weights=parent_card.weights_path if parent_card else None,
                           backbone_weights=(cfg.backbone_weights or None) if parent_card is None else None)
    frozen = [getattr(model.backbone, name) for name in cfg.freeze]
    for mod in frozen:  # pretrained early stages: generic filters, and half the backward pass saved
        mod.requires_grad_(False)
    input_hw = tuple(cfg.input_size)
    before = evaluate(model, val_imgs, val_s, input_hw, mean, std) if parent_card else None
    if before:
        log.info("before (parent %s) on held-out individuals: top1 %.3f top5 %.3f mAP %.3f (%d queries)",
                 parent_card.version, before["top1"], before["top5"], before["mAP"], before["queries"])

    set_bn_momentum(model, 0.1)
    if cfg.loss == "subcenter_arcface":
        loss_fn = losses.SubCenterArcFaceLoss(num_classes=n_cls, embedding_size=cfg.embedding_dim,
                                              margin=cfg.margin_deg, scale=cfg.scale, sub_centers=cfg.sub_centers)
    elif cfg.loss == "supcon":
        loss_fn = losses.SupConLoss(temperature=cfg.temperature)
    else:
        raise ValueError(f"unknown loss {cfg.loss!r}: use supcon or subcenter_arcface")
    groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": base_lr, "lr_mult": 1.0}]
    if list(loss_fn.parameters()):
        groups.append({"params": list(loss_fn.parameters()), "lr": base_lr * cfg.head_lr_mult,
                       "lr_mult": cfg.head_lr_mult})
    opt = torch.optim.AdamW(groups, lr=base_lr, weight_decay=cfg.weight_decay)
    by_identity: dict[int, list[int]] = {}
    for i, lab in enumerate(labels.tolist()):
        by_identity.setdefault(lab, []).append(i)
    pools = None
    if cfg.source_pure_batches:
        src_ids: dict[str, set[int]] = {}
        for s_, lab in zip(train_s, labels.tolist()):
            src_ids.setdefault(s_.source, set()).add(lab)
        pools = [sorted(v) for _, v in sorted(src_ids.items())]
    steps_per_epoch = max(1, len(train_s) // cfg.batch_size)
    if cfg.max_steps_per_epoch > 0:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    total_steps = steps_per_epoch * cfg.epochs
    start_epoch, start_step, history = 0, 0, []
    if resume:
        if not ckpt_path.exists():
            raise FileNotFoundError(f"no checkpoint at {ckpt_path}: run without --resume to start")
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ck["identities"] != identities:
            raise ValueError(f"{ckpt_path} was trained on other identities: same --data/--db as before, or "
                             "start again without --resume")
        model.load_state_dict(ck["model"])
        loss_fn.load_state_dict(ck["loss"])
        opt.load_state_dict(ck["optimizer"])
        start_epoch, start_step, history = ck["epoch"], ck["step"], ck["history"]
        log.info("resumed from %s at epoch %d step %d", ckpt_path, start_epoch + 1, start_step)

    def checkpoint(epoch: int, step: int) -> None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, ckpt_dir / "config.yaml")
        save_torch({"model": model.state_dict(), "loss": loss_fn.state_dict(), "optimizer": opt.state_dict(),
                    "epoch": epoch, "step": step, "history": history, "identities": identities,
                    "config": dataclasses.asdict(cfg)}, ckpt_path)

    aug = Augment(input_hw, augment_config(cfg), seed=cfg.seed + 1000 * start_epoch + start_step)
    t0 = time.time()
    epoch, step = start_epoch, start_step
    try:
        for epoch in range(start_epoch, cfg.epochs):
            model.train()
            for mod in frozen:  # frozen stages keep their BatchNorm statistics fixed while training
                mod.eval()
            batches = pk_batches(by_identity, steps_per_epoch, cfg.batch_size, cfg.samples_per_identity,
                                 np.random.default_rng(cfg.seed * 7919 + epoch), flip=cfg.flip_new_identity,
                                 pools=pools)
            first = step if epoch == start_epoch else 0
            losses_ep = []
            steps = range(first, steps_per_epoch)
            bar = progress(steps, total=steps_per_epoch - first,
                           description=f"epoch {epoch + 1}/{cfg.epochs}") if show_progress else steps
            for step in bar:
                batch, y = [], []
                for i, flipped in batches[step]:
                    x = aug(train_imgs[i])
                    lab = int(labels[i])
                    if flipped:  # the mirrored coat is another (fictitious) identity
                        x = torch.flip(x, dims=[2])
                        lab += len(identities)
                    batch.append(x)
                    y.append(lab)
                xb = normalise(torch.stack(batch), mean, std)
                gstep = epoch * steps_per_epoch + step
                for g in opt.param_groups:
                    g["lr"] = _lr_at(gstep, total_steps, base_lr, cfg.warmup_steps) * g["lr_mult"]
                if cfg.loss == "subcenter_arcface":
                    loss_fn.margin = math.radians(cfg.margin_deg) * min(1.0, gstep / max(1, cfg.margin_warmup_steps))
                    loss = loss_fn(model.features(xb), torch.tensor(y))
                else:
                    loss = loss_fn(model(xb), torch.tensor(y))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                losses_ep.append(float(loss.detach()))
            step = 0
            recalibrate_bn(model, train_imgs, input_hw, mean, std, seed=epoch)
            metrics = evaluate(model, val_imgs, val_s, input_hw, mean, std)
            history.append({"epoch": epoch + 1, "loss": float(np.mean(losses_ep)) if losses_ep else None,
                            "val": metrics, "seconds": round(time.time() - t0, 1)})
            log.info("epoch %d/%d loss %.3f | held-out top1 %.3f top5 %.3f mAP %.3f | %.0f s", epoch + 1,
                     cfg.epochs, history[-1]["loss"] or float("nan"), metrics["top1"], metrics["top5"],
                     metrics["mAP"], time.time() - t0)
            checkpoint(epoch + 1, 0)
    except KeyboardInterrupt:
        checkpoint(epoch, step)
        raise Interrupted(f"interrupted: checkpoint at {ckpt_path}; continue with --resume --out {out}")

    after = evaluate(model, val_imgs, val_s, input_hw, mean, std)
    if not all(math.isfinite(after[k]) for k in ("top1", "top5", "mAP")):
        raise ValueError(f"the held-out metrics are not finite ({after}): nothing written; check the data "
                         f"(a checkpoint stays in {ckpt_dir} for --resume)")
    all_imgs = torch.cat([train_imgs, val_imgs]) if len(val_s) else train_imgs
    full = evaluate(model, all_imgs, train_s + val_s, input_hw, mean, std)
    summary = _export(model, cfg, out, samples=samples, train_s=train_s, val_s=val_s, before=before,
                      after=after, full=full, history=history, parent_card=parent_card, mean=mean, std=std,
                      command=command, seconds=time.time() - t0)
    if not cfg.keep_checkpoints:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return summary


def _export(model, cfg, out: Path, *, samples, train_s, val_s, before, after, full, history, parent_card,
            mean, std, command, seconds) -> dict:
    from spotid.config import save_config
    from spotid.modelstore import write_card
    from spotid.util import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    save_weights_fp16(model, out / "weights.pt")
    save_config(cfg, out / "config.yaml")
    sources = sorted({s.source for s in samples})
    data = {src: {"train_images": sum(s.source == src for s in train_s),
                  "train_individuals": sorted({s.individual for s in train_s if s.source == src}),
                  "heldout_images": sum(s.source == src for s in val_s),
                  "heldout_individuals": sorted({s.individual for s in val_s if s.source == src})}
            for src in sources}
    name = out.name if out.name not in ("", ".") else "embedder"
    card = write_card(
        out, name=name, kind="embedder", weights="weights.pt",
        arch=cfg.arch, embedding_dim=cfg.embedding_dim, input_size=list(cfg.input_size),
        mean=list(mean), std=list(std), grayscale=bool(cfg.grayscale),
        preprocessing=("RGB crop resized (aspect not kept) to input_size (H, W)"
                       + (", converted to grey (luma, ITU-R 601) in all 3 channels" if cfg.grayscale else "")
                       + ", /255, normalised with mean/std; output L2-normalised; compare with cosine similarity"),
        storage="fp16 state dict (loaded as float32)",
        metrics={"heldout_before": before, "heldout_after": after, "full_set_partly_trained": full,
                 "protocol": "leave-one-out, same flank, gallery excludes the query's own encounter; "
                             "held-out = individuals never trained on"},
        history=history, training_data=data, config=json.loads(json.dumps(dataclasses.asdict(cfg))),
        parent=parent_card.version if parent_card else None, loss=("sub-center ArcFace" if cfg.loss == "subcenter_arcface" else f"supervised contrastive (SupCon, "
              f"temperature {cfg.temperature})") + f" on P x K batches (K={cfg.samples_per_identity}), pytorch-metric-learning",
        licence="MIT (weights trained by the spotid authors)", command=command,
        train_seconds=round(seconds, 1), thresholds={},
    )
    atomic_write_text(out / "README.md", model_card_markdown(card.meta, card.version))
    return {"model": str(out), "version": card.version, "before": before, "after": after, "full": full,
            "train_images": len(train_s), "heldout_images": len(val_s)}


def model_card_markdown(meta: dict, version: str) -> str:
    """Human model card (README.md) from the machine card."""
    m = meta.get("metrics", {})
    lines = [
        f"# Embedder `{version}`", "",
        "Rosette/stripe pattern embedding for re-identification, flank by flank "
        "(each individual's left and right flanks are separate identities).", "",
        f"- Architecture: `{meta['arch']}` backbone (" + (
            f"initialised from {meta['config'].get('backbone_weights')}" if meta.get('config', {}).get('backbone_weights')
            else "random init, trained here") + f") + GeM + linear "
        f"{meta['embedding_dim']}-d + BatchNorm, L2-normalised pre-logits embedding",
        f"- Input: {'grey (luma in 3 channels)' if meta.get('grayscale') else 'RGB'} crop resized to "
        f"{meta['input_size'][0]}×{meta['input_size'][1]} (H×W), mean {meta['mean']}, std {meta['std']}",
        f"- Loss: {meta.get('loss')}; parent model: {meta.get('parent') or 'none (from scratch)'}",
        f"- Storage: {meta.get('storage')}; sha256 `{meta['sha256']}`",
        f"- Licence: {meta.get('licence')}", "",
        "## Evaluation", "",
        f"Protocol: {m.get('protocol', '')}.", "",
        f"- Held-out individuals, before: {format_metrics(m.get('heldout_before'))}",
        f"- Held-out individuals, after: {format_metrics(m.get('heldout_after'))}",
        f"- Full set (partly TRAINED ON, optimistic): {format_metrics(m.get('full_set_partly_trained'))}", "",
        "## Training data", "",
    ]
    for src, d in meta.get("training_data", {}).items():
        lines.append(f"- `{src}`: {d['train_images']} images of {len(d['train_individuals'])} individuals trained on; "
                     f"{d['heldout_images']} images of {len(d['heldout_individuals'])} individuals held out "
                     "(listed in card.json)")
    lines += ["", "## Reproduce", "", "```", meta.get("command") or "(see card.json config)", "```", "",
              f"Training took {meta.get('train_seconds')} s on 1 CPU thread.", ""]
    return "\n".join(lines)
