"""Does fine-tuning the LAST backbone stage help the flank classifier? (experiment, nothing shipped)

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/flank_finetune.py --work /tmp/flank-ft \\
        [--lrs 1e-4 3e-4] [--epochs 4] [--eval-epochs 2 4] [--final LR:EPOCHS] [--json OUT]

``--work`` holds the data folders of ``models/flank/reproduce.sh`` (voc_train, voc_test, box_train, box_test,
nyala_train, nyala_heldout; build them as that script does) and the feature cache (``WORK/cache``).

What it measures. The shipped recipe (``spotid.train.flank``) keeps the ImageNet EfficientNet-Lite0 frozen and fits
a linear head on its last feature map pooled in 4 vertical strips (``quarters``, L2 1e-2). Here the backbone
is frozen only up to the input of its last block stage (timm ``blocks[6]``: one inverted-residual block
192 -> 320 channels at stride 32); that stage, ``conv_head`` and ``bn2`` (BatchNorm kept in eval mode) and the
quarters head are trained together:

1. the feature maps at the input of ``blocks[6]`` (``(192, 6, 8)`` for a 192 x 256 crop) are computed once and
   cached for exactly the views the recipe uses (same Augment settings and seeds as
   ``spotid.train.flank.view_features`` / ``_cached_features``: per real leopard crop its plain view + 4
   random crops/colour changes, per synthetic or nyala image its plain view; each with its mirror image);
2. the head is initialised by ``spotid.train.flank.fit_head`` on the frozen features (quarters, L2 1e-2):
   its out-of-fold figures are the recipe's own (the *baseline* row);
3. the stage + head are then trained with AdamW (stage LR ``--lrs``, head LR 1e-3, constant), weighted
   cross-entropy with the recipe's sample weights (``sample_weights``, real_weight 0.5; an image's weight
   shared by its views and mirrors), mirror rows labelled with left/right swapped, batch 64,
   ``--epochs`` epochs; snapshots at ``--eval-epochs`` are the variants.

Every figure is out-of-fold over the recipe's 5 folds (``group_folds``, split seed 0: photos / individuals
never straddle folds; synthetic and nyala in every training fold): on the real leopard crops (voc_train) the
log-loss of the flip-averaged plain-view probabilities, left/right crops on their own flank (of 48), front
crops called a flank (of 129) and how many of those with P(flank) > 0.9, swapped flanks; nyala and synthetic
accuracy and swapped flanks. Predictions are argmax of the flip-averaged probabilities, as the stage does
(threshold 0.5).

``--final LR:EPOCHS`` (only when a variant is clearly better out-of-fold) trains that variant on all the
train data and evaluates it once on the held-out sets exactly as ``spotid.train.evaluate.evaluate_flank``
does (the stage's own preprocessing and mirror averaging, the shipped card's threshold 0.5, only the
model swapped): the test split's cut boxes (voc_test), the synthetic seed-202 crops and the 54 held-out nyala
individuals. ``--lrs 0 --lr-head 0`` reproduces the baseline row exactly (a check of the fine-tuning path).

Result (2026-12-05, one shared core; features 92 s, each fine-tune variant 1-4 min over the 5 folds): the
baseline row reproduces the shipped card (leopard log-loss 0.138, left/right 41 of 48, fronts on a flank 2 of
129, 1 above P 0.9). Every fine-tuned variant had a HIGHER leopard out-of-fold log-loss (0.159-0.188); stage
LR 1e-4 for 2 epochs placed 47 of 48 flanks but called 6 fronts a flank (4 above P 0.9), and with another
shuffling seed 43 of 48 with 4 fronts (1): gains within the run-to-run noise, paid for with front views.
Not clearly better, so ``--final`` was not run and the test split was not looked at.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spotid.identify.flank import CLASSES, MIRROR, build_flank_classifier  # noqa: E402
from spotid.train.flank import (TrainFlankConfig, expand, fit_head, group_folds, sample_weights,  # noqa: E402
                                shifted_probs, view_features)

STAGE = 6                    # timm efficientnet_lite0: blocks[0..6]; the last stage is blocks[6]
SOURCES = ("box_train", "nyala_train", "voc_train")
REAL = "voc_train"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- stage-input features ------------------------------------------------------------------------------
def stem(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The frozen part: ``(B, 3, H, W)`` -> input of ``blocks[STAGE]``."""
    x = backbone.bn1(backbone.conv_stem(x))
    for i in range(STAGE):
        x = backbone.blocks[i](x)
    return x


def stage_in_views(backbone, images, *, input_size, cache_size, n_aug: int, seed: int, batch_size: int = 16):
    """``spotid.train.flank.view_features`` with the feature map taken at the input of the last stage:
    ``(N, 1 + n_aug, 2, C, h, w)`` float16 (same views, same random draws)."""
    return view_features(None, images, input_size=input_size, cache_size=cache_size, n_aug=n_aug, seed=seed,
                         batch_size=batch_size, encode=lambda x: stem(backbone, x))


def source_features(backbone, paths: list[str], cfg: TrainFlankConfig, n_aug: int, cache_dir: Path) -> np.ndarray:
    """Per path ``(1 + n_aug, 2, C, h, w)``, chunked and seeded as ``spotid.train.flank._cached_features``."""
    from PIL import Image

    key_src = "|".join(f"{p}:{os.path.getmtime(p)}" for p in paths)
    what = f"stagein{STAGE}|{cfg.arch}|{cfg.input_size}|{cfg.cache_size}|{n_aug}|{cfg.seed}|{key_src}"
    cache = cache_dir / f"stagein-{hashlib.sha1(what.encode()).hexdigest()[:16]}.npy"
    if cache.exists():
        return np.load(cache)
    images = []
    for p in paths:
        with Image.open(p) as im:
            images.append(np.asarray(im.convert("RGB")))
    parts = []
    for s in range(0, len(images), 64):
        parts.append(stage_in_views(backbone, images[s:s + 64], input_size=cfg.input_size,
                                    cache_size=cfg.cache_size, n_aug=n_aug, seed=cfg.seed + s))
    f = np.concatenate(parts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, f)
    os.replace(tmp, cache)
    return f


def load_data(work: Path, cfg: TrainFlankConfig):
    """Samples as ``train_flank`` scans them, their stage-input features (list per sample), labels, sources."""
    from spotid.train.common import scan_identity_dirs

    samples = [s for s in scan_identity_dirs([work / s for s in SOURCES], flank_regex=cfg.flank_regex)
               if s.flank in CLASSES]
    backbone = build_flank_classifier(arch=cfg.arch, pool="quarters").backbone.eval()
    feats: list = [None] * len(samples)
    for src in sorted({s.source for s in samples}):
        idx = [i for i, s in enumerate(samples) if s.source == src]
        n_aug = cfg.aug_views if src == REAL else cfg.aug_views_synthetic
        t = time.time()
        f = source_features(backbone, [samples[i].path for i in idx], cfg, n_aug, work / "cache")
        log(f"stage-input features {src}: {f.shape} in {time.time() - t:.0f} s")
        for j, i in enumerate(idx):
            feats[i] = f[j]
    labels = np.array([CLASSES.index(s.flank) for s in samples])
    sources = np.array([s.source for s in samples])
    return samples, feats, labels, sources


# -- the trainable top ---------------------------------------------------------------------------------
class Top(nn.Module):
    """``blocks[STAGE]`` + ``conv_head`` + ``bn2`` + quarters pooling + linear head (what FlankNet computes
    from the stage's input)."""

    def __init__(self, backbone: nn.Module, W: np.ndarray, b: np.ndarray):
        super().__init__()
        self.stage = copy.deepcopy(backbone.blocks[STAGE])
        self.conv_head = copy.deepcopy(backbone.conv_head)
        self.bn2 = copy.deepcopy(backbone.bn2)
        self.head = nn.Linear(W.shape[1], W.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(np.asarray(W, np.float32)))
            self.head.bias.copy_(torch.from_numpy(np.asarray(b, np.float32)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.bn2(self.conv_head(self.stage(x)))
        cols = nn.functional.adaptive_avg_pool2d(fmap, (1, 4))
        return cols.flatten(2).transpose(1, 2).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def backbone_state(self) -> dict:
        """The trained tensors under FlankNet's names (``backbone.blocks.6.*``, ``backbone.conv_head.*``,
        ``backbone.bn2.*``, ``head.*``)."""
        out = {f"backbone.blocks.{STAGE}.{k}": v for k, v in self.stage.state_dict().items()}
        out |= {f"backbone.conv_head.{k}": v for k, v in self.conv_head.state_dict().items()}
        out |= {f"backbone.bn2.{k}": v for k, v in self.bn2.state_dict().items()}
        out |= {f"head.{k}": v for k, v in self.head.state_dict().items()}
        return out


def rows_of(feats, labels, weights, idx):
    """Training rows of samples ``idx``: every view and its mirror (label swapped), weight shared."""
    xs, ys, ws = [], [], []
    mirror = np.array(MIRROR)
    for i in idx:
        f = feats[i]
        v = f.shape[0]
        xs.append(f.reshape((2 * v,) + f.shape[2:]))
        ys += [labels[i], mirror[labels[i]]] * v
        ws += [weights[i] / (2 * v)] * (2 * v)
    return np.concatenate(xs), np.asarray(ys), np.asarray(ws, np.float64)


@torch.no_grad()
def frozen_pooled(top: Top, feats, batch: int = 256) -> list[np.ndarray]:
    """Per sample ``(V, 2, 5120)`` quarters features through the frozen (ImageNet) stage."""
    flat = np.concatenate([f.reshape((-1,) + f.shape[2:]) for f in feats])
    out = np.concatenate([top.features(torch.from_numpy(flat[s:s + batch]).float()).numpy()
                          for s in range(0, len(flat), batch)])
    res, k = [], 0
    for f in feats:
        n = f.shape[0] * 2
        res.append(out[k:k + n].reshape(f.shape[0], 2, -1))
        k += n
    return res


@torch.no_grad()
def plain_logits(top: Top, feats, idx, batch: int = 256) -> np.ndarray:
    """``(len(idx), 2, 4)`` logits of the plain view and its mirror."""
    top.eval()
    x = np.stack([feats[i][0] for i in idx])                    # (n, 2, C, h, w)
    flat = x.reshape((-1,) + x.shape[2:])
    out = np.concatenate([top(torch.from_numpy(flat[s:s + batch]).float()).numpy()
                          for s in range(0, len(flat), batch)])
    return out.reshape(len(idx), 2, -1)


def finetune(top: Top, x, y, w, *, lr_stage: float, lr_head: float, epochs: int, eval_epochs, seed: int,
             on_epoch=None, batch: int = 64) -> None:
    """AdamW on the stage (+ conv_head, bn2 affine) and head; BatchNorm in eval mode (running stats kept)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    body = list(top.stage.parameters()) + list(top.conv_head.parameters()) + list(top.bn2.parameters())
    opt = torch.optim.AdamW([{"params": body, "lr": lr_stage}, {"params": top.head.parameters(), "lr": lr_head}],
                            weight_decay=1e-2)
    wn = w / w.mean()
    yt = torch.from_numpy(y).long()
    wt = torch.from_numpy(wn.astype(np.float32))
    for ep in range(1, epochs + 1):
        top.eval()                      # BatchNorm in eval mode throughout
        order = rng.permutation(len(x))
        tot = 0.0
        for s in range(0, len(order), batch):
            j = order[s:s + batch]
            logits = top(torch.from_numpy(x[j]).float())
            loss = (nn.functional.cross_entropy(logits, yt[j], reduction="none") * wt[j]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(j)
        log(f"  epoch {ep}: train loss {tot / len(order):.4f}")
        if on_epoch is not None and ep in eval_epochs:
            on_epoch(ep)


# -- figures -------------------------------------------------------------------------------------------
def figures(P: np.ndarray, labels: np.ndarray, sources: np.ndarray) -> dict:
    out = {}
    for src in sorted(set(sources.tolist())):
        sel = sources == src
        p, y = P[sel], labels[sel]
        pred = p.argmax(1)
        lr, fb = y <= 1, y > 1
        row = {"images": int(sel.sum()), "accuracy": round(float((pred == y).mean()), 4),
               "log_loss": round(float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-6, 1)).mean()), 4),
               "left_right_right": int((pred[lr] == y[lr]).sum()), "left_right": int(lr.sum()),
               "swapped": int(((pred[lr] <= 1) & (pred[lr] != y[lr])).sum()),
               "front_back_as_flank": int((pred[fb] <= 1).sum()), "front_back": int(fb.sum()),
               "front_back_flank_p_over_0.9": int((p[fb][:, :2].max(1) > 0.9).sum()) if fb.any() else 0}
        out[src] = row
    return out


def cross_validate(feats, labels, sources, samples, cfg, args) -> dict:
    backbone = build_flank_classifier(arch=cfg.arch, pool="quarters").backbone.eval()
    weights = sample_weights(labels, sources, {REAL}, cfg.real_weight)
    folds = group_folds([s.individual for s in samples], sources.tolist(), cfg.folds, cfg.split_seed)
    n_views = np.array([f.shape[0] for f in feats])
    mask = np.ones(len(CLASSES), bool)
    t = time.time()
    base_top = Top(backbone, np.zeros((4, 5120)), np.zeros(4))
    pooled_feats = frozen_pooled(base_top, feats)
    V = n_views.max()
    X = np.zeros((len(feats), V, 2, 5120), np.float32)
    for i, f in enumerate(pooled_feats):
        X[i, :len(f)] = f
    log(f"frozen pooled features in {time.time() - t:.0f} s")
    variants = [(lr, ep) for lr in args.lrs for ep in args.eval_epochs]
    L = {"baseline": np.zeros((len(feats), 2, 4), np.float32)} | {f"lr{lr:g}_ep{ep}": np.zeros((len(feats), 2, 4),
                                                                                             np.float32)
                                                                 for lr, ep in variants}
    times = {k: 0.0 for k in L}
    for k in range(cfg.folds):
        tr, va = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        t = time.time()
        W, b = fit_head(*expand(X[tr], labels[tr], weights[tr], n_views[tr]), weight_decay=1e-2,
                        max_iter=cfg.max_iter, mask=mask)
        L["baseline"][va] = X[va, 0] @ W.T + b
        times["baseline"] += time.time() - t
        log(f"fold {k}: head fitted in {time.time() - t:.0f} s")
        x, y, w = rows_of(feats, labels, weights, tr)
        for lr in args.lrs:
            top = Top(backbone, W, b)
            t = time.time()

            def on_epoch(ep, top=top, lr=lr):
                L[f"lr{lr:g}_ep{ep}"][va] = plain_logits(top, feats, va)

            finetune(top, x, y, w, lr_stage=lr, lr_head=args.lr_head, epochs=args.epochs,
                     eval_epochs=set(args.eval_epochs), seed=args.train_seed + k, on_epoch=on_epoch)
            for ep in args.eval_epochs:
                times[f"lr{lr:g}_ep{ep}"] += (time.time() - t) * ep / args.epochs
            log(f"fold {k}: lr {lr:g} fine-tuned {args.epochs} epochs in {time.time() - t:.0f} s")
    table = {}
    for name, logits in L.items():
        P = shifted_probs(logits, 0.0, mask)
        table[name] = {"figures": figures(P, labels, sources), "seconds_5_folds": round(times[name], 1)}
        log(f"{name}: {json.dumps(table[name])}")
    return table


def final(feats, labels, sources, samples, cfg, args, work: Path) -> dict:
    """Train the chosen variant on all train data; evaluate once on the held-out sets (evaluate_flank's way)."""
    from spotid.identify.flank import FlankClassifier
    from spotid.train.common import load_images, scan_identity_dirs
    from spotid.train.flank import flank_metrics

    lr, epochs = args.final.split(":")
    lr, epochs = float(lr), int(epochs)
    backbone = build_flank_classifier(arch=cfg.arch, pool="quarters").backbone.eval()
    weights = sample_weights(labels, sources, {REAL}, cfg.real_weight)
    n_views = np.array([f.shape[0] for f in feats])
    base_top = Top(backbone, np.zeros((4, 5120)), np.zeros(4))
    pooled_feats = frozen_pooled(base_top, feats)
    X = np.zeros((len(feats), n_views.max(), 2, 5120), np.float32)
    for i, f in enumerate(pooled_feats):
        X[i, :len(f)] = f
    t = time.time()
    W, b = fit_head(*expand(X, labels, weights, n_views), weight_decay=1e-2, max_iter=cfg.max_iter,
                    mask=np.ones(4, bool))
    top = Top(backbone, W, b)
    x, y, w = rows_of(feats, labels, weights, np.arange(len(feats)))
    finetune(top, x, y, w, lr_stage=lr, lr_head=args.lr_head, epochs=epochs, eval_epochs=set(), seed=args.train_seed)
    log(f"final model trained in {time.time() - t:.0f} s")
    net = build_flank_classifier(arch=cfg.arch, pool="quarters")
    missing, unexpected = net.load_state_dict(top.backbone_state(), strict=False)
    assert not unexpected and all(k.startswith("backbone.") for k in missing), (missing[:3], unexpected[:3])
    net.eval()
    out_dir = work / "finetuned"
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(top.backbone_state(), out_dir / "weights.pt")
    clf = FlankClassifier(ROOT / "models" / "flank")       # the stage with the shipped card's settings ...
    clf.model = net                                         # ... and the fine-tuned model
    res = {}
    for name, folder in (("amur_leopard_voc_test_split", "voc_test"), ("box_test_seed202", "box_test"),
                         ("nyala_heldout", "nyala_heldout")):
        ss = [s for s in scan_identity_dirs([work / folder], flank_regex=cfg.flank_regex) if s.flank in CLASSES]
        imgs, ok = load_images([s.path for s in ss], tuple(clf.input_size), show_progress=False)
        keep = [i for i, g in enumerate(ok) if g]
        probs = clf.probabilities([imgs[i].permute(1, 2, 0).numpy() for i in keep])
        lab = np.array([CLASSES.index(ss[i].flank) for i in keep])
        m = flank_metrics(probs, lab, clf.threshold)
        fb = lab > 1
        m["left_right_right"] = int((probs.argmax(1)[lab <= 1] == lab[lab <= 1]).sum())
        m["left_right"] = int((lab <= 1).sum())
        m["max_p_flank_of_front_back"] = round(float(probs[fb][:, :2].max()), 4) if fb.any() else None
        m["per_image"] = {Path(ss[i].path).name: [CLASSES[int(lab[j])], {c: round(float(v), 3) for c, v in
                                                                        zip(CLASSES, probs[j])}]
                          for j, i in enumerate(keep)} if folder == "voc_test" else None
        res[name] = m
        log(f"{name}: {json.dumps({k: v for k, v in m.items() if k != 'per_image'})}")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="/tmp/flank-ft")
    ap.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 3e-4])
    ap.add_argument("--lr-head", type=float, default=1e-3)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--eval-epochs", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--train-seed", type=int, default=0, help="shuffling seed of the fine-tuning (+ fold index)")
    ap.add_argument("--final", default="", help="LR:EPOCHS: train on all train data, evaluate on the held-out sets")
    ap.add_argument("--features-only", action="store_true")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    work = Path(args.work)
    cfg = TrainFlankConfig()
    t0 = time.time()
    samples, feats, labels, sources = load_data(work, cfg)
    log(f"{len(samples)} images: { {s: int((sources == s).sum()) for s in SOURCES} } in {time.time() - t0:.0f} s")
    if args.features_only:
        return 0
    result = {"args": vars(args)}
    if args.final:
        result["heldout"] = final(feats, labels, sources, samples, cfg, args, work)
    else:
        result["cross_validation"] = cross_validate(feats, labels, sources, samples, cfg, args)
    result["seconds"] = round(time.time() - t0, 1)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
