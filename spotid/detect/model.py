"""YOLOX-tiny: the builtin detector network, letterboxing and box post-processing.

The network is pixeltable-yolox's ``YoloxModule`` at depth 0.33 / width 0.375 (YOLOX-tiny), as in
zamba 2.7.2's MIT-licensed "MegadetectorLite" (``yolox_tiny_640_20220528.pth``).

Conventions (same as the zamba weights were trained with):
- input: float32 ``(B, 3, S, S)`` RGB in 0..255 (no mean/std normalisation), the frame resized
  with its aspect ratio kept and pasted at the TOP-LEFT corner of an ``S x S`` canvas (pad value 114
  here; zamba pads with 0, which the network tolerates equally);
- raw output: ``(B, N, 5 + C)`` rows of ``(cx, cy, w, h, objectness, class scores...)`` in canvas
  pixels, already decoded and sigmoided (``decode_in_inference``);
- final boxes: normalised ``[x_min, y_min, w, h]`` of the ORIGINAL frame (MegaDetector convention).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

PAD_VALUE = 114


def build_yolox_tiny(*, num_classes: int = 1, weights: str | Path | None = None) -> nn.Module:
    """YOLOX-tiny (depth 0.33, width 0.375, SiLU, standard convs) in eval mode.

    ``weights``: a ``.pt``/``.pth`` file holding a state dict, or a YOLOX checkpoint dict with a
    ``"model"`` key (zamba's file). fp16 tensors are cast back to fp32. ``None`` gives random weights.
    """
    from yolox.models import YoloPafpn, YoloxHead, YoloxModule

    in_channels = [256, 512, 1024]
    backbone = YoloPafpn(0.33, 0.375, in_channels=in_channels, depthwise=False, act="silu")
    head = YoloxHead(num_classes, 0.375, in_channels=in_channels, depthwise=False, act="silu")
    model = YoloxModule(backbone, head)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps, m.momentum = 1e-3, 0.03
    model.head.initialize_biases(1e-2)
    if weights is not None:
        state = torch.load(str(weights), map_location="cpu", weights_only=False)
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        state = {k: (v.float() if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in state.items()}
        model.load_state_dict(state)
    return model.eval()


# -- letterbox -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Letterbox:
    """How a frame of ``orig_size`` (w, h) was placed on the square canvas: scale ``ratio`` from
    ORIGINAL pixels to canvas pixels, image at the top-left corner."""

    orig_size: tuple[int, int]
    ratio: float


def letterbox_size(orig_w: int, orig_h: int, size: int) -> tuple[int, int, float]:
    """(new_w, new_h, ratio) of a frame fitted inside ``size x size`` with its aspect ratio kept."""
    ratio = min(size / orig_w, size / orig_h)
    return max(1, int(round(orig_w * ratio))), max(1, int(round(orig_h * ratio))), ratio


def letterbox_array(img: np.ndarray, size: int, orig_size: tuple[int, int] | None = None, *,
                    rect: bool = False, stride: int = 32) -> tuple[np.ndarray, Letterbox]:
    """Resize ``img`` (H, W, 3 uint8 RGB, possibly already decoded at reduced scale) into the
    top-left of a ``size x size`` canvas filled with 114. Returns ``(canvas, Letterbox)`` where
    ``Letterbox.ratio`` maps ORIGINAL-frame pixels (``orig_size``, default the array's size) to canvas pixels.

    ``rect=True`` trims the canvas to the resized image rounded up to a multiple of ``stride``
    (``(ceil(nh/32)*32, ceil(nw/32)*32, 3)``): a 16:9 frame at 416 runs on 416x256 instead of 416x416,
    40% less compute for the same boxes (the padding only ever held grey).
    """
    import cv2

    h, w = img.shape[:2]
    ow, oh = orig_size or (w, h)
    nw, nh, ratio = letterbox_size(ow, oh, size)
    ch, cw = (size, size) if not rect else (-(-nh // stride) * stride, -(-nw // stride) * stride)
    canvas = np.full((ch, cw, 3), PAD_VALUE, dtype=np.uint8)
    if (w, h) != (nw, nh):
        interp = cv2.INTER_AREA if w > nw else cv2.INTER_LINEAR
        img = cv2.resize(img, (nw, nh), interpolation=interp)
    canvas[:nh, :nw] = img
    return canvas, Letterbox((ow, oh), ratio)


def pad_batch(canvases: list[np.ndarray]) -> np.ndarray:
    """Stack canvases of different (stride-multiple) sizes into ``(B, Hmax, Wmax, 3)``, padding with 114
    at the bottom/right (images stay at the top-left, so boxes need no shift)."""
    hmax = max(c.shape[0] for c in canvases)
    wmax = max(c.shape[1] for c in canvases)
    out = np.full((len(canvases), hmax, wmax, 3), PAD_VALUE, dtype=np.uint8)
    for i, c in enumerate(canvases):
        out[i, :c.shape[0], :c.shape[1]] = c
    return out


# -- post-processing -------------------------------------------------------------------------------
def cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` centre/size boxes to corner boxes."""
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def xyxy_px_to_norm_xywh(b: np.ndarray, lb: Letterbox) -> np.ndarray:
    """Canvas-pixel ``(N, 4)`` x1,y1,x2,y2 boxes to normalised ``[x_min, y_min, w, h]`` of the original
    frame, clipped to the frame."""
    ow, oh = lb.orig_size
    b = np.asarray(b, dtype=np.float64) / lb.ratio
    x1 = np.clip(b[:, 0], 0, ow)
    y1 = np.clip(b[:, 1], 0, oh)
    x2 = np.clip(b[:, 2], 0, ow)
    y2 = np.clip(b[:, 3], 0, oh)
    return np.stack([x1 / ow, y1 / oh, (x2 - x1) / ow, (y2 - y1) / oh], axis=1)


def postprocess(pred: torch.Tensor, *, conf_thresh: float, nms_thresh: float,
                max_det: int = 100) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per image ``(boxes_xyxy (K, 4) canvas px, scores (K,), class_idx (K,))`` after confidence
    filtering (score = objectness x best class score, as YOLOX/zamba) and per-class NMS, highest first.

    ``pred``: ``(B, N, 5 + C)`` decoded network output.
    """
    from torchvision.ops import batched_nms

    out = []
    for p in pred:
        cls_conf, cls_idx = p[:, 5:].max(dim=1)
        scores = p[:, 4] * cls_conf
        keep = scores >= conf_thresh
        if not bool(keep.any()):
            out.append((p.new_zeros((0, 4)), p.new_zeros((0,)), cls_idx.new_zeros((0,))))
            continue
        boxes = cxcywh_to_xyxy(p[keep, :4])
        s, c = scores[keep], cls_idx[keep]
        k = batched_nms(boxes, s, c, nms_thresh)[:max_det]
        out.append((boxes[k], s[k], c[k]))
    return out
