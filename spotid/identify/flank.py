"""Flank / viewpoint classifier: which side of the animal does a crop show?

Classes are ``left``, ``right``, ``front``, ``back``; the stage answers ``unknown`` when the top
probability is below the card's threshold. Left flanks are only ever compared with left flanks, so
this decides which gallery a sighting is matched against.

Mirror symmetry is built in: a horizontally flipped left flank is a right flank. The stage
averages the prediction on the image with the left/right-swapped prediction on its mirror image,
so ``flank(mirror(x)) == swap(flank(x))`` holds exactly, whatever the weights.
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


@dataclass(frozen=True)
class FlankPrediction:
    flank: str                 # left | right | front | back | unknown
    conf: float                # probability of the top class
    probs: dict[str, float]    # per class (left, right, front, back), flip-averaged


def build_flank_classifier(*, arch: str = "mobilenet_v3_small", weights: str | Path | None = None,
                           num_classes: int = len(CLASSES)) -> nn.Module:
    """Classifier ``(B, 3, H, W)`` normalised float -> logits ``(B, num_classes)`` (no downloads)."""
    import torchvision

    if arch == "mobilenet_v3_small":
        net = torchvision.models.mobilenet_v3_small(weights=None, num_classes=num_classes)
    elif arch == "resnet18":
        net = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    else:
        raise ValueError(f"unknown flank arch {arch!r}; use mobilenet_v3_small or resnet18")
    if weights is not None:
        net.load_state_dict(load_state(weights))
    return net.eval()


def mirror_probs(probs: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``(B, 4)`` of the mirrored images: left and right swap."""
    return probs[:, list(MIRROR)]


def flip_averaged_probs(model: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, 3, H, W)`` normalised -> ``(B, 4)`` probabilities averaged with the mirrored image's
    left/right-swapped probabilities (exactly mirror-equivariant).

    ``mask`` (bool ``(4,)``): classes the model was trained on; the others get probability 0 (a
    model trained without front/back examples must not spread probability over them). The mask
    must be mirror-symmetric (left and right together).
    """
    def probs(logits: torch.Tensor) -> torch.Tensor:
        if mask is not None:
            logits = logits.masked_fill(~mask.view(1, -1), float("-inf"))
        return torch.softmax(logits, dim=1)

    p = probs(model(x))
    pm = mirror_probs(probs(model(torch.flip(x, dims=[3]))))
    return 0.5 * (p + pm)


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
        self.model = build_flank_classifier(arch=card.get("arch", "mobilenet_v3_small"),
                                            weights=card.weights_path).to(self.device).eval()
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
        probs = self.probabilities(images)
        preds = []
        for row in probs:
            k = int(row.argmax())
            conf = float(row[k])
            flank = CLASSES[k] if conf >= self.threshold else "unknown"
            preds.append(FlankPrediction(flank, conf, {c: float(v) for c, v in zip(CLASSES, row)}))
        return preds
