"""Leopard-vs-other crop classifier: a small CNN on square crops around animal detections.

Per animal detection it adds ``classifications = (("leopard", p), ("other", 1 - p))`` highest first.
Person and vehicle detections get no classification.

Crop convention (training and inference share :func:`square_crop`): the square of side
``max(w, h) * (1 + 2 * context)`` centred on the box, in pixels of the image it is cut from,
padded with grey where it leaves the frame, resized to ``crop_size`` (default 112). Network input:
float32 ``(B, 3, S, S)``, RGB scaled to 0..1 then normalised with mean/std 0.5.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from spotid.types import Detection

CLASSES = ("leopard", "other")


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


class CropClassifier:
    """Stage adding leopard/other classifications to animal detections.

    ``classify(decoded, dets)`` takes the frame as decoded for detection (:class:`builtin.Decoded`);
    when a box is smaller than ``crop_size`` pixels there and the file is larger, the frame is decoded
    again at the scale the crop needs (only frames with animals pay for it).
    """

    def __init__(self, *, model_dir: str | Path | None = None):
        from spotid.modelstore import resolve

        self.card = resolve("classifier", model_dir)
        self.crop_size = int(self.card.get("input_size", 112))
        self.context = float(self.card.get("context", 0.15))
        self.model = build_crop_classifier(weights=self.card.weights_path)
        self.classes = tuple(self.card.get("classes", CLASSES))

    @property
    def version(self) -> str:
        return self.card.version

    def probs(self, crops: list[np.ndarray]) -> np.ndarray:
        """``(N,)`` P(leopard) for crops ``(S, S, 3)`` uint8 RGB."""
        if not crops:
            return np.zeros((0,), np.float32)
        with torch.inference_mode():
            p = torch.softmax(self.model(to_tensor(crops)), dim=1)[:, self.classes.index("leopard")]
        return p.numpy()

    def _label(self, dets: list[Detection], crops: list[np.ndarray], idx: list[int]) -> list[Detection]:
        p = self.probs(crops)
        out = list(dets)
        for i, pi in zip(idx, p.tolist()):
            d = dets[i]
            cls = sorted((("leopard", pi), ("other", 1.0 - pi)), key=lambda t: -t[1])
            out[i] = Detection(d.category, d.conf, d.bbox, tuple((n, float(round(c, 6))) for n, c in cls))
        return out

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
        return self._label(dets, self._crops(img, (ow, oh), [dets[i] for i in idx]), idx)

    def classify_file(self, path: str | Path, dets: list[Detection], min_conf: float = 0.0) -> list[Detection]:
        from spotid.detect.builtin import decode_reduced

        idx = [i for i, d in enumerate(dets) if d.category == 1 and d.conf >= min_conf]
        if not idx:
            return dets
        d = decode_reduced(path, 1024)
        if d.image is None:
            return dets
        return self._label(dets, self._crops(d.image, d.orig_size, [dets[i] for i in idx]), idx)

    def _crops(self, img: np.ndarray, orig_size: tuple[int, int], dets: list[Detection]) -> list[np.ndarray]:
        h, w = img.shape[:2]
        return [square_crop(img, (d.bbox[0] * w, d.bbox[1] * h, d.bbox[2] * w, d.bbox[3] * h),
                            self.crop_size, self.context) for d in dets]
