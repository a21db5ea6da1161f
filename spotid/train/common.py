"""Shared training pieces: labelled-image discovery, an image cache, augmentation, re-ID metrics.

Data layout understood by :func:`scan_identity_dirs` (identity = folder):

    DIR/<individual>/<image>.jpg                  flank from the file name (``flank_regex``)
                                                  or from the flank classifier
    DIR/<individual>/<left|right|front|back>/<image>.jpg   flank from the sub-folder (synthetic crops)

Each (individual, flank) pair is one identity: a leopard's left and right flanks carry different
rosettes and are matched separately.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from spotid.identify.metrics import retrieval_metrics
from spotid.util import IMAGE_EXTS

log = logging.getLogger(__name__)

FLANK_DIRS = ("left", "right", "front", "back")


def fp16_state(state: dict) -> dict:
    """A state dict with floating tensors as float16 (how shipped weights are stored; loaded as float32)."""
    return {k: (v.half() if torch.is_floating_point(v) else v) for k, v in state.items()}


def save_torch(obj, path: str | Path) -> Path:
    """``torch.save`` atomically (temp file in the same folder, then ``os.replace``): a run killed
    mid-write never leaves a truncated checkpoint or weights file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def resume_epoch(path: str | Path, model: torch.nn.Module, opt, sched=None) -> int:
    """Restore a checkpoint written as ``{"model", "opt", ["sched"], "epoch"}`` by :func:`save_torch`
    into ``model``/``opt``/``sched``; returns the epoch to start from (0 without a checkpoint)."""
    path = Path(path)
    if not path.exists():
        return 0
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    if sched is not None:
        sched.load_state_dict(state["sched"])
    log.info("resumed from %s: continuing with epoch %d (1-based)", path, state["epoch"] + 2)
    return int(state["epoch"]) + 1


def save_weights_fp16(model: torch.nn.Module, path: str | Path) -> Path:
    """The model's weights as float16, atomically."""
    return save_torch(fp16_state(model.state_dict()), path)


@dataclass(frozen=True)
class Sample:
    path: str
    individual: str          # "<source>/<folder name>" so two data sets never share a name by accident
    flank: str               # left | right | front | back | unknown
    encounter: str           # images of one encounter share background/light: never query vs gallery
    source: str = ""

    @property
    def identity(self) -> str:
        return f"{self.individual}|{self.flank}"


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


UNKNOWN_ENCOUNTER = "ENCUNK"   # ATRW's file names say "encounter unknown": then each file is its own


def encounter_key(name: str, regex: str | None, fallback: str) -> str:
    """Encounter key of a file: the first group of ``regex`` on the file name (stem), else ``fallback``
    (also when the key is ``ENCUNK``, "encounter unknown", as in ``atrw-train``)."""
    if regex:
        m = re.search(regex, name)
        if m:
            key = m.group(1) if m.groups() else m.group(0)
            return fallback if key == UNKNOWN_ENCOUNTER else key
    return fallback


def scan_identity_dirs(dirs: Sequence[str | Path], *, flank_regex: str | None = r"(?i)(left|right)",
                       encounter_regex: str | None = r"^(.+)_[^_]+$",
                       flank_fn: Callable[[list[str]], list[str]] | None = None) -> list[Sample]:
    """Find labelled images in folder-per-individual directories (see module docstring).

    ``flank_fn(paths) -> flanks`` is called for images whose flank neither a sub-folder nor the
    file name gives (e.g. the flank classifier); without it they get 'unknown'.
    """
    samples: list[Sample] = []
    pending: list[tuple[str, str, str, str]] = []
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a folder: pass folder-per-individual directories")
        source = root.name
        for ind_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            individual = f"{source}/{ind_dir.name}"
            for sub in sorted(p for p in ind_dir.iterdir() if p.is_dir()):
                flank = sub.name.lower() if sub.name.lower() in FLANK_DIRS else None
                for img in _images(sub):
                    enc = encounter_key(img.stem, encounter_regex, f"{sub.name}/{img.stem}")
                    if flank is None:
                        pending.append((str(img), individual, f"{individual}/{sub.name}/{enc}", source))
                    else:
                        samples.append(Sample(str(img), individual, flank, f"{individual}/{enc}", source))
            for img in _images(ind_dir):
                enc = f"{individual}/{encounter_key(img.stem, encounter_regex, img.stem)}"
                m = re.search(flank_regex, img.name) if flank_regex else None
                if m:
                    samples.append(Sample(str(img), individual, m.group(1).lower(), enc, source))
                else:
                    pending.append((str(img), individual, enc, source))
    if pending:
        flanks = flank_fn([p[0] for p in pending]) if flank_fn else ["unknown"] * len(pending)
        samples += [Sample(p, ind, fl, enc, src) for (p, ind, enc, src), fl in zip(pending, flanks)]
    return samples


def catalog_samples(db: str | Path) -> list[Sample]:
    """Confirmed sightings of a spotid catalog with a cached crop: identity = (individual, flank),
    encounter = the media's sequence (a burst)."""
    from spotid.catalog import Catalog
    from spotid.catalog.tables import sightings

    with Catalog(db, create=False) as cat:
        rows = sightings.confirmed_with_crops(cat)
    out = []
    for r in rows:
        if r["flank"] not in ("left", "right") or not os.path.exists(r["crop_path"]):
            continue
        enc = f"seq{r['sequence_id']}" if r["sequence_id"] is not None else f"media{r['media_id']}"
        out.append(Sample(r["crop_path"], f"catalog/{r['name']}", r["flank"], enc, "catalog"))
    return out


def split_individuals(individuals: Sequence[str], val_fraction: float, seed: int) -> tuple[set[str], set[str]]:
    """Deterministic split by individual: the ``round(val_fraction * n)`` individuals with the
    smallest hash of (seed, name) are held out. Returns (train, val)."""
    names = sorted(set(individuals))
    ranked = sorted(names, key=lambda n: hashlib.sha1(f"{seed}:{n}".encode()).hexdigest())
    n_val = int(round(val_fraction * len(names)))
    return set(ranked[n_val:]), set(ranked[:n_val])


MIN_HELDOUT_QUERIES = 4


def heldout_queries(samples: Sequence[Sample]) -> int:
    """Queries :func:`reid_metrics` can score among ``samples``: images whose identity (individual, flank)
    has another image from a different encounter."""
    enc: dict[str, set[str]] = {}
    for s in samples:
        enc.setdefault(s.identity, set()).add(s.encounter)
    return sum(1 for s in samples if len(enc[s.identity] - {s.encounter}) > 0 and s.flank in ("left", "right"))


def require_heldout(heldout: Sequence[Sample], fraction: float, what: str = "--db/--data") -> None:
    """Refuse (ValueError naming the fix) a training run whose held-out individuals give fewer than
    :data:`MIN_HELDOUT_QUERIES` scorable queries: its metrics would be NaN or noise, and a model without
    a measurement must not be written."""
    n = heldout_queries(heldout)
    if n >= MIN_HELDOUT_QUERIES:
        return
    need_ind = max(2, int(np.ceil(1.5 / max(fraction, 1e-3))))   # round(fraction * n) >= 2 held out
    raise ValueError(
        f"too little data to measure the model: the {len({s.individual for s in heldout})} held-out individuals "
        f"give {n} re-ID queries (at least {MIN_HELDOUT_QUERIES} needed: images whose individual has another "
        f"image of the same flank from another burst). Confirm at least {2 * need_ind} sightings of {need_ind} "
        f"individuals, each in 2 or more bursts, in review (spotid review --db ...), or add {what} folders; "
        "nothing was written")


# -- image cache -----------------------------------------------------------------------------------
def _decode(path: str, size_hw: tuple[int, int]) -> np.ndarray:
    import cv2

    h, w = size_hw
    data = np.fromfile(path, dtype=np.uint8)
    img = None
    for flag, f in ((cv2.IMREAD_REDUCED_COLOR_4, 4), (cv2.IMREAD_REDUCED_COLOR_2, 2)):
        img = cv2.imdecode(data, flag)
        if img is not None and img.shape[0] >= h and img.shape[1] >= w:
            break
        img = None
    if img is None:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot decode {path}")
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return img[:, :, ::-1]


def load_images(paths: Sequence[str], size_hw: tuple[int, int], *, cache_dir: str | Path | None = None,
                show_progress: bool = True) -> tuple[torch.Tensor, list[bool]]:
    """Decode every image once to uint8 ``(N, 3, H, W)`` RGB (resized, aspect not kept).

    Unreadable files become zero images flagged False in the returned ``ok`` list. With
    ``cache_dir`` the tensor is stored keyed by the file list, their mtimes and the size.
    """
    from spotid.util import progress

    key_src = "|".join(f"{p}:{os.path.getmtime(p) if os.path.exists(p) else 0}" for p in paths)
    key = hashlib.sha1(f"{size_hw}|{key_src}".encode()).hexdigest()[:16]
    cache_file = Path(cache_dir) / f"images-{key}.pt" if cache_dir else None
    if cache_file is not None and cache_file.exists():
        obj = torch.load(cache_file, weights_only=True)
        return obj["images"], [bool(x) for x in obj["ok"].tolist()]
    h, w = size_hw
    out = torch.zeros((len(paths), 3, h, w), dtype=torch.uint8)
    ok = [True] * len(paths)
    it = progress(enumerate(paths), total=len(paths), description="decoding") if show_progress else enumerate(paths)
    for i, p in it:
        try:
            out[i] = torch.from_numpy(np.ascontiguousarray(_decode(p, size_hw))).permute(2, 0, 1)
        except Exception as e:  # a broken file is data, not a crash
            log.warning("skipping unreadable image %s: %s", p, e)
            ok[i] = False
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        torch.save({"images": out, "ok": torch.tensor(ok)}, tmp)
        os.replace(tmp, cache_file)
    return out, ok


# -- augmentation ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AugmentConfig:
    crop_scale: tuple[float, float] = (0.55, 1.0)
    crop_ratio: tuple[float, float] = (1.1, 1.8)   # W/H of the random crop
    rotate_deg: float = 8.0
    perspective_p: float = 0.3
    jitter: float = 0.35                           # brightness/contrast/saturation strength
    hue: float = 0.05
    grayscale_p: float = 0.2                       # infrared night frames are grey
    blur_p: float = 0.3
    noise_p: float = 0.3
    jpeg_p: float = 0.3


class Augment:
    """Per-sample photometric + geometric augmentation of uint8 ``(3, h, w)`` tensors to a float
    ``(3, H, W)`` in [0, 1]. Flips are decided by the caller (they change labels)."""

    def __init__(self, out_hw: tuple[int, int], cfg: AugmentConfig = AugmentConfig(), seed: int = 0):
        from torchvision.transforms import v2

        self.out_hw = tuple(out_hw)
        self.cfg = cfg
        self.gen = np.random.default_rng(seed)
        self.rrc = v2.RandomResizedCrop(self.out_hw, scale=cfg.crop_scale, ratio=cfg.crop_ratio, antialias=True)
        self.geo = v2.Compose([
            v2.RandomApply([v2.RandomRotation(cfg.rotate_deg)], p=0.5),
            v2.RandomPerspective(distortion_scale=0.25, p=cfg.perspective_p),
        ])
        self.color = v2.ColorJitter(cfg.jitter, cfg.jitter, cfg.jitter, cfg.hue)
        self.gray = v2.RandomGrayscale(p=cfg.grayscale_p)
        self.blur = v2.RandomApply([v2.GaussianBlur(5, sigma=(0.3, 1.6))], p=cfg.blur_p)
        self.jpeg = v2.RandomApply([v2.JPEG((30, 90))], p=cfg.jpeg_p)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms import v2

        x = self.rrc(img)
        x = self.geo(x)
        x = self.jpeg(x)
        x = self.color(x)
        x = self.gray(x)
        x = self.blur(x)
        x = v2.functional.to_dtype(x, torch.float32, scale=True)
        if self.gen.random() < self.cfg.noise_p:
            x = (x + torch.randn_like(x) * float(self.gen.uniform(0.01, 0.06))).clamp_(0, 1)
        return x


def normalise(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Float ``(B, 3, H, W)`` in [0, 1] -> normalised."""
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def resize_batch(imgs: torch.Tensor, out_hw: Sequence[int]) -> torch.Tensor:
    """uint8 ``(B, 3, h, w)`` -> float ``(B, 3, H, W)`` in [0, 1] (evaluation preprocessing)."""
    x = imgs.float().div_(255.0)
    if tuple(x.shape[-2:]) != tuple(out_hw):
        x = torch.nn.functional.interpolate(x, size=tuple(out_hw), mode="bilinear", antialias=True,
                                            align_corners=False)
    return x


def set_bn_momentum(model: torch.nn.Module, momentum: float = 0.1) -> None:
    """torchvision's MobileNetV3/EfficientNet use BN momentum 0.01, tuned for long ImageNet runs;
    with a few hundred CPU steps the running statistics would lag far behind the weights."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum


@torch.no_grad()
def recalibrate_bn(model: torch.nn.Module, imgs: torch.Tensor, input_hw: Sequence[int], mean, std,
                   max_images: int = 512, batch_size: int = 64, seed: int = 0) -> None:
    """Re-estimate every BatchNorm's running mean/var as an exact average over (up to
    ``max_images``) un-augmented training images, so eval-mode statistics match the weights."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns or len(imgs) < 2:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    idx = torch.randperm(len(imgs), generator=torch.Generator().manual_seed(seed))[:max_images]
    model.train()
    for s in range(0, len(idx), batch_size):
        chunk = idx[s:s + batch_size]
        if len(chunk) < 2:
            break
        model(normalise(resize_batch(imgs[chunk], input_hw), mean, std))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()


@torch.inference_mode()
def embed_cached(model: torch.nn.Module, imgs: torch.Tensor, input_hw: Sequence[int], mean, std,
                 batch_size: int = 64) -> np.ndarray:
    """Embeddings ``(N, D)`` of cached uint8 images with evaluation preprocessing."""
    model.eval()
    outs = []
    for s in range(0, len(imgs), batch_size):
        x = normalise(resize_batch(imgs[s:s + batch_size], input_hw), mean, std)
        outs.append(model(x).float().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 1), np.float32)


# -- metrics ---------------------------------------------------------------------------------------
def reid_metrics(emb: np.ndarray, individuals: Sequence[str], flanks: Sequence[str],
                 encounters: Sequence[str]) -> dict[str, float]:
    """Leave-one-out re-ID with the encounter rule, same flank only, embedding cosine.

    Every image is a query; its gallery is every other image of the same flank whose encounter
    differs. Queries without a same-individual image in their gallery are not counted. The metrics
    are :func:`spotid.identify.metrics.retrieval_metrics` (``top1``, ``top5``, ``mAP``, ``queries``),
    the ones ``spotid eval reid`` reports, so a model card and ``eval reid`` agree on one embedding.
    """
    emb = np.asarray(emb, dtype=np.float32)
    ind = np.asarray(individuals, dtype=object)
    fl = np.asarray(flanks)
    enc = np.asarray(encounters)
    valid = (fl[:, None] == fl[None, :]) & (enc[:, None] != enc[None, :])
    np.fill_diagonal(valid, False)
    sim = np.where(valid, (emb @ emb.T).astype(np.float64), np.nan)
    m = retrieval_metrics(sim, list(ind), list(ind))
    return {k: m[k] for k in ("top1", "top5", "mAP", "queries")}


def pk_batches(by_identity: dict[int, list[int]], n_steps: int, batch_size: int, k: int,
               rng: np.random.Generator, *, flip: bool,
               pools: Sequence[Sequence[int]] | None = None) -> list[list[tuple[int, bool]]]:
    """``n_steps`` batches of P = batch_size // k identities x k images: ``[(index, flipped), ...]``.

    Identities with a single image are drawn as well (they still act as negatives). With ``flip``
    an identity instance is mirrored as a whole, so the mirrored coat is a consistent new identity.
    With ``pools`` (identity lists, e.g. one per data set) each batch draws from one pool, chosen
    with probability proportional to its image count: negatives then come from the same domain
    (a synthetic coat is never a useful negative for a nyala stripe pattern).
    Seeded by ``rng`` so a resumed epoch sees the same batches.
    """
    pools = [sorted(int(i) for i in p) for p in pools if len(p)] if pools else [sorted(by_identity)]
    weight = np.array([sum(len(by_identity[i]) for i in p) for p in pools], dtype=np.float64)
    weight /= weight.sum()
    out = []
    for _ in range(n_steps):
        ids = pools[int(rng.choice(len(pools), p=weight))] if len(pools) > 1 else pools[0]
        p = max(1, min(len(ids), batch_size // max(1, k)))
        batch = []
        for ident in rng.choice(ids, size=p, replace=False):
            pool = by_identity[int(ident)]
            pick = rng.choice(pool, size=k, replace=len(pool) < k)
            f = bool(flip and rng.random() < 0.5)
            batch += [(int(i), f) for i in pick]
        out.append(batch)
    return out


def format_metrics(m: dict | None) -> str:
    """Re-ID metrics (top1, top5, mAP, queries) as one line of a model card; 'n/a' without them (also
    for a summary entry that holds no metrics, e.g. a set that was not measured)."""
    if not m or not all(k in m for k in ("top1", "top5", "mAP", "queries")):
        return "n/a"
    return f"top-1 {m['top1']:.3f}, top-5 {m['top5']:.3f}, mAP {m['mAP']:.3f} ({m['queries']} queries)"
