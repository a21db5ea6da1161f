"""The pretrained-backbone embedder recipe: cache the frozen trunk once, train what sits on top.

On a shared 2-core CPU a full fine-tune of EfficientNet-Lite0 costs ~70 ms per image and pass; the
ImageNet trunk's early stages are generic filters anyway. So each image is run through the frozen
trunk once per cached *view* (view 0: the clean image; view 1: it mirrored; views 2+: mildly augmented
copies, mirrored when the view number is odd), and training only runs the trainable top on the cache:

- ``unfreeze_from = 7``: only GeM/avg pooling -> linear neck -> BatchNorm1d (the "projection head");
  its input is cached pooled 1280-d vectors, an epoch takes about a second;
- ``unfreeze_from = 6``: also the last block (``blocks[6]``) and ``conv_head`` from the cached
  ``(192, H/32, W/32)`` output of ``blocks[5]``;
- ``unfreeze_from = 5``: also stage 5 from the cached ``(112, H/16, W/16)`` output of ``blocks[4]``.

Images keep their aspect: the long side is ``long_side`` px, both sides rounded to multiples of 32
(:func:`spotid.identify.embedder.long_side_hw`), as the shipped ``Embedder`` does with a
``long_side`` card.

Mirroring respects flanks: a mirrored left flank looks like a right flank of an animal that does not
exist, so a mirrored view of identity ``i`` is trained as identity ``2 i + 1`` (the original is
``2 i``), never as ``i``.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from spotid.train.common import Sample, reid_metrics

log = logging.getLogger(__name__)

FEATURE_STAGES = (5, 6)   # cached trunk outputs: blocks[:5] (112 ch, /16) and blocks[:6] (192 ch, /32)


# -- decoding and views ----------------------------------------------------------------------------
def decode_rgb(path: str, min_long_side: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB with reduced JPEG decoding (the smallest 1/2^k size whose long side is
    still >= ``min_long_side``)."""
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    for flag in (cv2.IMREAD_REDUCED_COLOR_4, cv2.IMREAD_REDUCED_COLOR_2, cv2.IMREAD_COLOR):
        img = cv2.imdecode(data, flag)
        if img is not None and (max(img.shape[:2]) >= min_long_side or flag == cv2.IMREAD_COLOR):
            return np.ascontiguousarray(img[:, :, ::-1])
    raise ValueError(f"cannot decode {path}")


def make_view(arr: np.ndarray, long_side: int, view: int, rng: np.random.Generator) -> torch.Tensor:
    """View ``view`` of an RGB image as float ``(3, H, W)`` in [0, 1], aspect kept, long side
    ``long_side``. 0: clean; 1: clean mirrored; >= 2: a random crop of 70-100 % of the area (aspect
    within 10 % of the image's), small rotation, colour jitter, grey 20 % of the time (infrared
    nights), mirrored when ``view`` is odd. Mild: the identity is in marks a few pixels wide."""
    import cv2

    from spotid.identify.embedder import long_side_hw

    h0, w0 = arr.shape[:2]
    if view >= 2:
        area = rng.uniform(0.7, 1.0)
        aspect = rng.uniform(0.9, 1.1)
        ch = int(round(h0 * math.sqrt(area / aspect)))
        cw = int(round(w0 * math.sqrt(area * aspect)))
        ch, cw = min(ch, h0), min(cw, w0)
        y, x = int(rng.integers(0, h0 - ch + 1)), int(rng.integers(0, w0 - cw + 1))
        arr = arr[y:y + ch, x:x + cw]
        if rng.random() < 0.5:
            angle = rng.uniform(-5, 5)
            m = cv2.getRotationMatrix2D((arr.shape[1] / 2, arr.shape[0] / 2), angle, 1.0)
            arr = cv2.warpAffine(arr, m, (arr.shape[1], arr.shape[0]), borderMode=cv2.BORDER_REFLECT)
    h, w = long_side_hw(arr.shape[0], arr.shape[1], long_side)
    interp = cv2.INTER_AREA if arr.shape[0] > h and arr.shape[1] > w else cv2.INTER_LINEAR
    x = torch.from_numpy(np.ascontiguousarray(cv2.resize(arr, (w, h), interpolation=interp))).permute(2, 0, 1)
    x = x.float().div_(255.0)
    if view >= 2:
        b, c, s = (float(rng.uniform(0.7, 1.3)) for _ in range(3))
        x = x * b
        mean = x.mean()
        x = (x - mean) * c + mean
        grey = x.mean(0, keepdim=True)
        x = grey + (x - grey) * (0.0 if rng.random() < 0.2 else s)
        x = x.clamp_(0, 1)
    if view % 2 == 1:
        x = torch.flip(x, dims=[2])
    return x


# -- the feature cache -----------------------------------------------------------------------------
@dataclass
class FeatureCache:
    """Per sample and view: the frozen trunk's outputs.

    ``maps[stage][i][v]``: fp16 ``(C, h, w)`` output of ``blocks[:stage]`` of sample i, view v;
    ``pooled[kind]``: float32 ``(N, V, 1280)`` of the full trunk's map pooled by ``avg`` or ``gem3``
    (GeM with p = 3); ``ok``: ``(N,)`` bool, False for undecodable files.
    """

    paths: list[str]
    long_side: int
    views: int
    maps: dict[int, list[list[torch.Tensor]]]
    pooled: dict[str, torch.Tensor]
    ok: np.ndarray


def gem(x: torch.Tensor, p: float = 3.0, eps: float = 1e-6) -> torch.Tensor:
    """``(B, C, H, W) -> (B, C)`` generalised mean with fixed ``p``."""
    return x.clamp(min=eps).pow(p).mean(dim=(-2, -1)).pow(1.0 / p)


def cache_key(paths: Sequence[str], long_side: int, views: int, seed: int = 0) -> str:
    """Key of a feature cache: the file list, the long side, the number of views and the seed."""
    return hashlib.sha1(f"{long_side}|{views}|{seed}|{'|'.join(paths)}".encode()).hexdigest()[:12]


@torch.no_grad()  # not inference_mode: the cached tensors feed autograd later
def build_cache(paths: Sequence[str], *, long_side: int, views: int, trunk=None, seed: int = 0,
                cache_file: str | Path | None = None, log_every: int = 100) -> FeatureCache:
    """Run every image (``views`` views each) through the frozen ImageNet trunk once.

    ``trunk``: a ``_Lite0Trunk`` with ImageNet weights (built when None). With ``cache_file`` the
    result is stored there and reused when the file list, long side and views match.
    """
    from spotid.identify.embedder import build_embedder

    key = cache_key(paths, long_side, views, seed)
    if cache_file is not None and Path(cache_file).exists():
        obj = torch.load(cache_file, weights_only=False)
        if obj.get("key") == key:
            return obj["cache"]
        log.info("%s holds another cache (key %s): rebuilding", cache_file, obj.get("key"))
    if trunk is None:
        trunk = build_embedder(arch="efficientnet_lite0", backbone_weights="imagenet").backbone
    trunk.eval()
    from spotid.backbone import normalise

    maps = {s: [] for s in FEATURE_STAGES}
    pooled = {"avg": torch.zeros(len(paths), views, 1280), "gem3": torch.zeros(len(paths), views, 1280)}
    ok = np.ones(len(paths), dtype=bool)
    t0 = time.time()
    for i, p in enumerate(paths):
        rng = np.random.default_rng([seed, i])
        try:
            arr = decode_rgb(p, int(long_side * 1.2))
        except Exception as e:  # a broken file is data, not a crash
            log.warning("skipping unreadable image %s: %s", p, e)
            ok[i] = False
            for s in FEATURE_STAGES:
                maps[s].append([])
            continue
        per = {s: [] for s in FEATURE_STAGES}
        for v in range(views):
            x = normalise(make_view(arr, long_side, v, rng)[None])
            x5 = trunk.forward_to(x, 5)
            x6 = trunk.blocks[5](x5)
            f = trunk.forward_from(x6, 6)
            per[5].append(x5[0].half())
            per[6].append(x6[0].half())
            pooled["avg"][i, v] = f.mean(dim=(-2, -1))[0]
            pooled["gem3"][i, v] = gem(f)[0]
        for s in FEATURE_STAGES:
            maps[s].append(per[s])
        if log_every and (i + 1) % log_every == 0:
            log.info("cached %d/%d images x %d views (%.0f s)", i + 1, len(paths), views, time.time() - t0)
    cache = FeatureCache(list(paths), int(long_side), int(views), maps, pooled, ok)
    if cache_file is not None:
        Path(cache_file).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(str(cache_file) + ".tmp")
        torch.save({"key": key, "cache": cache}, tmp)
        os.replace(tmp, cache_file)
    return cache


# -- training on the cache -------------------------------------------------------------------------
@dataclass(frozen=True)
class TopRecipe:
    """What is trained on top of the cached trunk (mirrored in ``TrainEmbedderConfig``)."""

    unfreeze_from: int = 7          # 7: head only; 6: + blocks[6] and conv_head; 5: + stage 5
    pool: str = "gem"               # gem (p = 3 when the head only is trained, learnt otherwise) | avg
    embedding_dim: int = 256
    loss: str = "subcenter_arcface"  # arcface | subcenter_arcface | triplet | ms | supcon
    epochs: int = 30
    steps_per_epoch: int = 40
    batch_size: int = 64
    samples_per_identity: int = 4
    lr: float = 1e-3
    backbone_lr_mult: float = 0.1   # unfrozen trunk blocks learn slower than the new head
    head_lr_mult: float = 10.0      # ArcFace class centres learn faster
    weight_decay: float = 1e-4
    margin_deg: float = 28.6
    scale: float = 30.0
    sub_centers: int = 3
    temperature: float = 0.1        # supcon
    seed: int = 0


def views_and_labels(batch: Sequence[tuple[int, bool]], identities: Sequence[int], n_views: int,
                     rng: np.random.Generator) -> tuple[list[int], torch.Tensor]:
    """Cached view and class label of each ``(sample, mirrored)`` of a P x K batch.

    A mirrored pick takes an odd (mirrored) view and the label ``2 i + 1`` of its identity ``i``; an
    unmirrored one an even view and ``2 i``. A mirrored left flank is thus never its own identity.
    """
    even = [v for v in range(n_views) if v % 2 == 0]
    odd = [v for v in range(n_views) if v % 2 == 1]
    views, labels = [], []
    for (_, mirrored), ident in zip(batch, identities):
        if mirrored and not odd:
            raise ValueError("a mirrored pick needs a cache with mirrored views (cache_views >= 2)")
        views.append(int(rng.choice(odd if mirrored else even)))
        labels.append(2 * int(ident) + int(mirrored))
    return views, torch.tensor(labels, dtype=torch.long)


def _loss_and_miner(recipe: TopRecipe, n_classes: int):
    from pytorch_metric_learning import losses, miners

    d = recipe.embedding_dim
    if recipe.loss == "arcface":
        return losses.ArcFaceLoss(num_classes=n_classes, embedding_size=d, margin=recipe.margin_deg,
                                  scale=recipe.scale), None
    if recipe.loss == "subcenter_arcface":
        return losses.SubCenterArcFaceLoss(num_classes=n_classes, embedding_size=d, margin=recipe.margin_deg,
                                           scale=recipe.scale, sub_centers=recipe.sub_centers), None
    if recipe.loss == "triplet":
        return (losses.TripletMarginLoss(margin=0.1),
                miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard"))
    if recipe.loss == "ms":
        return losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5), miners.MultiSimilarityMiner(epsilon=0.1)
    if recipe.loss == "supcon":
        return losses.SupConLoss(temperature=recipe.temperature), None
    raise ValueError(f"unknown loss {recipe.loss!r}: use arcface, subcenter_arcface, triplet, ms or supcon")


def new_model(recipe: TopRecipe, trunk_weights="imagenet"):
    """The ``EmbeddingNet`` being trained: ImageNet trunk, GeM (p = 3, or 1 = average pooling), neck, BN."""
    from spotid.identify.embedder import build_embedder

    model = build_embedder(arch="efficientnet_lite0", embedding_dim=recipe.embedding_dim,
                           backbone_weights=trunk_weights)
    with torch.no_grad():
        model.pool.p.fill_(1.0 if recipe.pool == "avg" else 3.0)
    if recipe.pool not in ("gem", "avg"):
        raise ValueError(f"unknown pool {recipe.pool!r}: gem or avg")
    return model


def trainable_parameters(model, recipe: TopRecipe) -> tuple[list, list]:
    """(trunk parameters, head parameters) that train; everything else is frozen."""
    model.requires_grad_(False)
    trunk = []
    if recipe.unfreeze_from < 7:
        for m in (*model.backbone.blocks[recipe.unfreeze_from:], model.backbone.conv_head, model.backbone.bn2):
            m.requires_grad_(True)
            trunk += list(m.parameters())
    head = list(model.neck.parameters()) + list(model.bn.parameters())
    model.neck.requires_grad_(True)
    model.bn.requires_grad_(True)
    if recipe.unfreeze_from < 7 and recipe.pool == "gem":  # p is learnt only when the map is recomputed
        model.pool.p.requires_grad_(True)
        head.append(model.pool.p)
    return trunk, head


def top_features(model, cache: FeatureCache, idx: Sequence[int], views: Sequence[int], stage: int,
                 pool: str) -> torch.Tensor:
    """Un-normalised embeddings ``(B, D)`` of cached (sample, view) pairs; batches maps of equal shape."""
    if stage >= 7:
        kind = "avg" if pool == "avg" else "gem3"
        x = cache.pooled[kind][torch.as_tensor(list(idx)), torch.as_tensor(list(views))]
        return model.bn(model.neck(x))
    maps = [cache.maps[stage][i][v] for i, v in zip(idx, views)]
    out: list[torch.Tensor | None] = [None] * len(maps)
    groups: dict[tuple, list[int]] = {}
    for j, m in enumerate(maps):
        groups.setdefault(tuple(m.shape), []).append(j)
    for js in groups.values():
        f = model.pool(model.backbone.forward_from(torch.stack([maps[j] for j in js]).float(), stage))
        for j, row in zip(js, f):
            out[j] = row
    return model.bn(model.neck(torch.stack(out)))


@torch.no_grad()
def embed_from_cache(model, cache: FeatureCache, idx: Sequence[int], stage: int, pool: str,
                     view: int = 0, batch: int = 256) -> np.ndarray:
    """L2-normalised ``(len(idx), D)`` embeddings of the clean view of cached samples (eval mode)."""
    model.eval()
    idx = list(idx)
    outs = [F.normalize(top_features(model, cache, idx[s:s + batch], [view] * len(idx[s:s + batch]), stage, pool),
                        dim=1) for s in range(0, len(idx), batch)]
    return torch.cat(outs).numpy() if outs else np.zeros((0, model.embedding_dim), np.float32)


def cached_metrics(model, cache: FeatureCache, samples: Sequence[Sample], idx: Sequence[int], stage: int,
                   pool: str) -> dict:
    """Leave-one-out, same flank, other encounters only (``reid_metrics``) on the clean views."""
    emb = embed_from_cache(model, cache, idx, stage, pool)
    return reid_metrics(emb, [samples[i].individual for i in idx], [samples[i].flank for i in idx],
                        [samples[i].encounter for i in idx])


def train_top(model, cache: FeatureCache, samples: Sequence[Sample], train_idx: Sequence[int],
              recipe: TopRecipe, *, val_idx: Sequence[int] = (), select_on: str = "top1",
              sources: Sequence[str] | None = None) -> dict:
    """Train the top of ``model`` on cached views of ``train_idx`` (P x K batches, one data set per
    batch); after each epoch score ``val_idx`` and keep the best epoch by ``select_on`` (the mean over
    the data sets in ``val_idx``). Returns ``{"history", "best_epoch", "best"}``; ``model`` holds the
    best epoch's weights (the last epoch's without ``val_idx``)."""
    import copy

    from spotid.train.common import pk_batches

    torch.manual_seed(recipe.seed)
    stage = recipe.unfreeze_from
    train_idx = [i for i in train_idx if cache.ok[i]]
    val_idx = [i for i in val_idx if cache.ok[i]]
    identities = sorted({samples[i].identity for i in train_idx})
    ident = {k: n for n, k in enumerate(identities)}
    by_identity: dict[int, list[int]] = {}
    for i in train_idx:
        by_identity.setdefault(ident[samples[i].identity], []).append(i)
    src_pools: dict[str, list[int]] = {}
    for i in train_idx:
        src_pools.setdefault(samples[i].source, []).append(ident[samples[i].identity])
    pools = [sorted(set(v)) for _, v in sorted(src_pools.items())]
    loss_fn, miner = _loss_and_miner(recipe, 2 * len(identities))
    trunk_p, head_p = trainable_parameters(model, recipe)
    groups = [{"params": head_p, "lr_mult": 1.0}]
    if trunk_p:
        groups.append({"params": trunk_p, "lr_mult": recipe.backbone_lr_mult})
    if list(loss_fn.parameters()):
        groups.append({"params": list(loss_fn.parameters()), "lr_mult": recipe.head_lr_mult})
    opt = torch.optim.AdamW(groups, lr=recipe.lr, weight_decay=recipe.weight_decay)
    rng = np.random.default_rng(recipe.seed)
    total = recipe.epochs * recipe.steps_per_epoch
    history, best, best_state, best_epoch = [], None, None, 0
    val_sources = sorted({samples[i].source for i in val_idx})
    t0 = time.time()
    for epoch in range(recipe.epochs):
        model.train()
        model.backbone.eval()   # trunk BatchNorm keeps ImageNet statistics (batches of mixed shapes, few images)
        batches = pk_batches(by_identity, recipe.steps_per_epoch, recipe.batch_size, recipe.samples_per_identity,
                             rng, flip=cache.views >= 2, pools=pools)
        ep_loss = []
        for b, batch in enumerate(batches):
            step = epoch * recipe.steps_per_epoch + b
            lr = recipe.lr * 0.5 * (1 + math.cos(math.pi * step / max(1, total)))
            for g in opt.param_groups:
                g["lr"] = lr * g["lr_mult"]
            idx = [i for i, _ in batch]
            views, y = views_and_labels(batch, [ident[samples[i].identity] for i in idx], cache.views, rng)
            emb = top_features(model, cache, idx, views, stage, recipe.pool)
            if miner is not None:
                loss = loss_fn(F.normalize(emb, dim=1), y, miner(F.normalize(emb, dim=1), y))
            elif recipe.loss == "supcon":
                loss = loss_fn(F.normalize(emb, dim=1), y)
            else:
                loss = loss_fn(emb, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ep_loss.append(float(loss.detach()))
        rec = {"epoch": epoch + 1, "loss": float(np.mean(ep_loss)), "seconds": round(time.time() - t0, 1)}
        if val_idx:
            per = {src: cached_metrics(model, cache, samples, [i for i in val_idx if samples[i].source == src],
                                       stage, recipe.pool) for src in val_sources}
            rec["val"] = per
            score = float(np.nanmean([m[select_on] for m in per.values()]))
            rec["score"] = score
            if best is None or score > best:
                best, best_epoch = score, epoch + 1
                best_state = copy.deepcopy(model.state_dict())
        history.append(rec)
        log.info("epoch %d loss %.3f %s (%.0f s)", epoch + 1, rec["loss"],
                 " ".join(f"{s}: top1 {m['top1']:.3f} top5 {m['top5']:.3f} mAP {m['mAP']:.3f}"
                          for s, m in rec.get("val", {}).items()), time.time() - t0)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return {"history": history, "best_epoch": best_epoch or recipe.epochs, "best": best}
