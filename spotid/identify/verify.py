"""Local-feature verification of two crops: RootSIFT keypoints, ratio test, geometric consensus.

No training, so it works on real coat patterns from day one (the HotSpotter idea). The inlier count is
the evidence score; the inlier keypoint pairs are kept so the review page can draw them.

Conventions:
- Keypoints are float32 ``(N, 2)`` ``(x, y)`` pixel coordinates in the image the features were computed
  on (for catalog crops: the stored crop JPEG, see :mod:`spotid.identify.crops`).
- Descriptors are float32 ``(N, D)``, unit L2 norm. ``D = 128`` for RootSIFT (L1-normalised SIFT,
  square-rooted, so the L2 distance between them is the Hellinger distance between the SIFT
  histograms); ``D = 248`` for ``descriptor="rootsift+vgg"``, RootSIFT and the learned VGG-120
  descriptor of the same keypoint, each unit norm, concatenated and scaled by 1/sqrt(2).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Recorded in ``crops.features_version`` and in ``model_version`` of match results. Bump it when
#: anything that changes the features or the inlier counts changes.
FEATURES_VERSION = "rootsift-clahe-v2"
VERIFIER_VERSION = "rootsift-affine-magsac-v2"
#: ``FeatureExtractor(descriptor=...)``: RootSIFT alone, or RootSIFT and VGG-120 at the same keypoints.
DESCRIPTORS = ("rootsift", "rootsift+vgg")


def _vgg_descriptor():
    """OpenCV's VGG-120 descriptor for SIFT keypoints (``xfeatures2d``, in the opencv-contrib build)."""
    import cv2

    xf = getattr(cv2, "xfeatures2d", None)
    if xf is None or not hasattr(xf, "VGG_create"):
        raise ImportError(
            f"descriptor 'rootsift+vgg' needs OpenCV's contrib modules, and this cv2 {cv2.__version__} has none "
            "(spotid installs plain opencv-python; the VGG descriptor is optional): run "
            f"'pip install --force-reinstall --no-deps opencv-contrib-python-headless=={_cv2_dist_version()}', "
            "or set descriptor: rootsift in configs/identify.yaml (then the matcher calibration no longer fits)")
    return xf.VGG_create(desc=100, scale_factor=6.75)  # desc 100 = VGG_120; 6.75 = OpenCV's SIFT window


def vgg_available() -> bool:
    """True when this cv2 has the contrib build's VGG descriptor (optional: ``descriptor: rootsift+vgg``)."""
    import cv2

    return hasattr(getattr(cv2, "xfeatures2d", None), "VGG_create")


def _cv2_dist_version() -> str:
    from importlib import metadata

    for dist in ("opencv-contrib-python-headless", "opencv-python", "opencv-contrib-python"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "<your cv2 version>"


@dataclass(frozen=True)
class Features:
    """Keypoints ``(N, 2)`` float32 (x, y) and unit-norm descriptors ``(N, D)`` float32 (see the module
    docstring), and whether they come from an infrared (grey) frame, which the extractor smooths and
    the verifier discounts.

    ``motion``: the features of the same crop blurred horizontally the way a night exposure blurs a
    walking animal (:class:`FeatureExtractor`). For a colour crop the verifier uses them when the other
    crop is infrared; for an infrared crop, as a second try against another infrared crop smeared more.
    Keypoints are in the same crop pixels as the main set, and ``infrared`` is the crop's. None when
    switched off."""

    keypoints: np.ndarray
    descriptors: np.ndarray
    infrared: bool = False
    motion: Features | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def to_bytes(self) -> tuple[bytes, bytes]:
        return (np.ascontiguousarray(self.keypoints, dtype="<f4").tobytes(),
                np.ascontiguousarray(self.descriptors, dtype="<f4").tobytes())

    def motion_bytes(self) -> tuple[bytes | None, bytes | None]:
        """``to_bytes`` of the motion-blurred set, (None, None) without one."""
        return self.motion.to_bytes() if self.motion is not None else (None, None)

    @staticmethod
    def _arrays(keypoints: bytes | None, descriptors: bytes | None) -> tuple[np.ndarray, np.ndarray]:
        kp = np.frombuffer(keypoints or b"", dtype="<f4").reshape(-1, 2).astype(np.float32)
        de = np.frombuffer(descriptors or b"", dtype="<f4")
        # D follows from the byte count (128 RootSIFT, 248 with VGG); the features version keeps them apart
        dim = de.size // kp.shape[0] if kp.shape[0] else 128
        if de.size != kp.shape[0] * dim:
            raise ValueError(f"{kp.shape[0]} keypoints but {de.size} descriptor values: recompute the features")
        return kp, de.reshape(-1, dim).astype(np.float32)

    @classmethod
    def from_bytes(cls, keypoints: bytes | None, descriptors: bytes | None, infrared: bool = False,
                   motion_keypoints: bytes | None = None, motion_descriptors: bytes | None = None) -> "Features":
        motion = None
        if motion_keypoints is not None and motion_descriptors is not None:
            motion = cls(*cls._arrays(motion_keypoints, motion_descriptors), bool(infrared))
        return cls(*cls._arrays(keypoints, descriptors), bool(infrared), motion)

    @classmethod
    def empty(cls, infrared: bool = False) -> "Features":
        return cls(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32), infrared)


@dataclass(frozen=True)
class Place:
    """Where a crop sits in its camera's frame: ``camera`` (deployment) and the map from crop pixels
    to normalised frame coordinates, ``u = x0 + px * sx``, ``v = y0 + py * sy``.

    Two crops from one fixed camera share the background at the same frame position; a putative
    match that does not move in the frame between two different visits is scenery, not coat.
    """

    camera: str
    x0: float
    y0: float
    sx: float
    sy: float

    def to_frame(self, pts: np.ndarray) -> np.ndarray:
        """``(K, 2)`` crop pixels -> ``(K, 2)`` normalised frame coordinates."""
        return np.asarray(pts, np.float64) * [self.sx, self.sy] + [self.x0, self.y0]


def drop_static(qi: np.ndarray, ri: np.ndarray, q_kp: np.ndarray, r_kp: np.ndarray, q_place: Place | None,
                r_place: Place | None, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """The putative matches ``(qi, ri)`` (indices into the keypoints ``(N, 2)`` / ``(M, 2)``, crop pixels)
    less those that stay put in the frame: on one camera (both places given, same ``camera``), a match
    whose two ends lie within ``tol`` (fraction of the frame) of each other is scenery two visits share,
    not coat. Every local verifier applies it before its geometry (``tol`` <= 0: off)."""
    if not len(qi) or tol <= 0 or q_place is None or r_place is None or q_place.camera != r_place.camera:
        return qi, ri
    moved = np.abs(q_place.to_frame(q_kp[qi]) - r_place.to_frame(r_kp[ri])).max(axis=1)
    keep = moved > tol
    return qi[keep], ri[keep]


@dataclass(frozen=True)
class Verification:
    """Result of verifying a query crop against a reference crop.

    ``inliers`` is the evidence: the number of putative matches consistent with one geometric
    transform, less ``chance`` (the inliers two different animals reach by chance under these
    conditions, subtracted for infrared pairs); ``query_pts`` / ``ref_pts`` are all the geometric
    inlier pairs ``(K, 2)`` in each crop's pixel coordinates (K = inliers + chance).
    """

    inliers: int
    matches: int
    query_pts: np.ndarray = field(repr=False)
    ref_pts: np.ndarray = field(repr=False)
    chance: int = 0

    def evidence(self, limit: int = 200) -> dict:
        """The ``match_candidates.evidence_json`` payload: inlier pairs, rounded to 0.1 px, and
        ``chance`` when inliers were discounted (the review page says why it draws more pairs than
        the count)."""
        q = np.round(self.query_pts[:limit].astype(float), 1).tolist()
        r = np.round(self.ref_pts[:limit].astype(float), 1).tolist()
        return {"query_pts": q, "ref_pts": r, **({"chance": self.chance} if self.chance else {})}


def affine_inlier_mask(qp: np.ndarray, rp: np.ndarray, reproj_threshold: float) -> np.ndarray | None:
    """Inliers ``(N,) bool`` of the affine map from keypoints ``qp`` to ``rp`` (both ``(N, 2)`` float32
    pixels) fitted by MAGSAC++ within ``reproj_threshold`` px; None when no model is found. The one
    geometry step of every local verifier (RootSIFT, ALIKED, LightGlue)."""
    import cv2

    _, mask = cv2.estimateAffine2D(qp, rp, method=cv2.USAC_MAGSAC, ransacReprojThreshold=float(reproj_threshold),
                                   maxIters=2000, confidence=0.995)
    return None if mask is None else mask.ravel().astype(bool)


def is_monochrome(image, tol: float = 4.0) -> bool:
    """True for a single-channel image or an RGB one whose channels agree within ``tol`` (mean absolute
    difference, 0-255): infrared night frames, which camera traps store as grey RGB JPEGs."""
    arr = np.asarray(image)
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1):
        return True
    if arr.ndim != 3 or arr.shape[2] < 3 or arr.size == 0:
        return False
    a = arr[..., :3].astype(np.int16)
    return float(np.abs(a[..., 0] - a[..., 1]).mean()) < tol and float(np.abs(a[..., 1] - a[..., 2]).mean()) < tol


def _to_gray(image) -> np.ndarray:
    """uint8 grayscale ``(H, W)`` from a PIL image or an RGB/gray numpy array."""
    arr = np.asarray(image)
    if arr.ndim == 3:
        arr = arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(arr, 0, 255).astype(np.uint8)


def horizontal_blur(gray: np.ndarray, length: float) -> np.ndarray:
    """``gray`` ``(H, W)`` uint8 convolved with a horizontal box ``length`` pixels long (fractional
    ends weighted), the point-spread function of an animal walking across the frame during the
    exposure. ``length <= 1`` returns the input."""
    import cv2

    if length <= 1.0:
        return gray
    n = int(np.ceil(length)) | 1
    xs = np.arange(n) - (n - 1) / 2
    k = np.clip(length / 2 + 0.5 - np.abs(xs), 0.0, 1.0).astype(np.float32)[None, :]
    out = cv2.filter2D(gray.astype(np.float32), -1, k / k.sum(), borderType=cv2.BORDER_REFLECT)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


class FeatureExtractor:
    """RootSIFT features of a crop.

    Grayscale + CLAHE make infrared night frames and colour day frames comparable (both become
    local-contrast-normalised luminance). The strongest ``max_keypoints`` are kept so that one
    verification costs about the same whatever the crop size.

    Infrared frames (:func:`is_monochrome`) are smoothed with a Gaussian of ``ir_blur`` pixels (of the
    crop, before upscaling) first: their sensor noise is pixel-sized, and CLAHE lifts it into
    keypoints that fill the ``max_keypoints`` budget without belonging to the coat. On the six 12-day
    calibration cards, same-animal night/night burst pairs with more inliers than any different-animal
    pair rose from 26% to 34% with ``ir_blur=1``; day frames are left sharp (blurring them cost
    day/day pairs 0.85 -> 0.61 recall).

    Night exposures are long (about 1/30 s against 1/400 s by day), so a leopard walking past the
    camera is smeared along its direction of travel, which for a flank view is the image's horizontal.
    A sharp day crop and a smeared night crop of one coat then disagree in every descriptor. Colour
    crops therefore also get a second feature set (``Features.motion``) computed after a horizontal
    box blur of ``motion_blur`` x the box width (1 m/s at 1/30 s is about 2% of a 1.7 m body); the
    verifier uses it against infrared crops. On the six calibration cards, same-animal day/night burst
    pairs above every different-animal day/night pair rose from 23% to 43% (0.015 and 0.025 of the box
    width gave 43% and 42%; 4, 6 and 10 fixed pixels 37%, 38% and 33%).

    Two night crops of one animal are smeared by different amounts (its speed and distance differ
    between visits), so infrared crops get a motion set too, blurred by ``night_motion_blur`` of the box
    width, and the verifier also tries each night crop's set against the other's sharp one. Same-animal
    night/night burst pairs above every different-animal pair: 34% -> 41% at 0.03 (0.02: 38%, 0.045:
    37%), with one more chance inlier (``ir_chance_inliers`` 8).

    ``descriptor="rootsift+vgg"`` describes each SIFT keypoint twice: RootSIFT, and the VGG descriptor
    of Simonyan, Vedaldi & Zisserman (2014), whose pooling regions and projection were learnt on real
    photographs (OpenCV's ``xfeatures2d.VGG``, 120-d, sampling window 6.75 x the SIFT scale as OpenCV
    recommends for SIFT keypoints). Needs the opencv-contrib build of ``cv2``. See ``models/matcher``
    for what it buys and costs.
    """

    def __init__(self, *, max_keypoints: int = 600, clahe: bool = True, contrast_threshold: float = 0.02,
                 upsample_to: int = 512, max_upsample: float = 3.0, ir_blur: float = 1.0, motion_blur: float = 0.02,
                 night_motion_blur: float = 0.03, foreground=None, descriptor: str = "rootsift"):
        import cv2

        if descriptor not in DESCRIPTORS:
            raise ValueError(f"descriptor {descriptor!r}: use one of {', '.join(DESCRIPTORS)}")
        self.descriptor = descriptor
        self._vgg = _vgg_descriptor() if descriptor == "rootsift+vgg" else None
        self.max_keypoints = int(max_keypoints)
        self.upsample_to = int(upsample_to)
        self.max_upsample = float(max_upsample)
        self._sift = cv2.SIFT_create(nfeatures=self.max_keypoints, contrastThreshold=contrast_threshold)
        self._clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)) if clahe else None
        self.ir_blur = float(ir_blur)
        self.motion_blur = float(motion_blur)
        self.night_motion_blur = float(night_motion_blur)
        for name, v in (("motion_blur", self.motion_blur), ("night_motion_blur", self.night_motion_blur)):
            if not 0.0 <= v < 0.5:
                raise ValueError(f"{name} {v} is a fraction of the box width: use 0 (off) to about 0.05")
        self.version = f"{FEATURES_VERSION}-up{self.upsample_to}" if self.upsample_to else FEATURES_VERSION
        if self.ir_blur > 0:
            self.version += f"-irblur{self.ir_blur:g}"
        if self.motion_blur > 0:
            self.version += f"-motion{self.motion_blur:g}"
        if self.night_motion_blur > 0:
            self.version += f"-nightmotion{self.night_motion_blur:g}"
        if self._vgg is not None:
            self.version += "-vgg120"
        # a ForegroundSegmenter (or anything with .mask(image) and .settings): keypoints on the animal only
        self.foreground = foreground
        if foreground is not None:
            self.version += f"-fg{foreground.settings}"

    @classmethod
    def from_config(cls, cfg, catalog=None) -> FeatureExtractor:
        """From any settings object with identify's feature fields (``IdentifyConfig``); the foreground
        model is ``cfg.foreground_model``, else the catalog's active one, else the shipped one."""
        from spotid.identify.foreground import ForegroundSegmenter

        fg = ForegroundSegmenter.from_config(cfg, catalog)
        return cls(max_keypoints=cfg.max_keypoints, clahe=cfg.clahe, upsample_to=cfg.upsample_to, ir_blur=cfg.ir_blur,
                   motion_blur=cfg.motion_blur, night_motion_blur=cfg.night_motion_blur, foreground=fg,
                   descriptor=cfg.descriptor)

    def __call__(self, image, roi: tuple[float, float, float, float] | None = None,
                 foreground: np.ndarray | None = None) -> Features:
        """Features of ``image``; ``roi`` = ``(x0, y0, x1, y1)`` pixels of the image: keypoints only
        inside it (the detection box inside its padded crop: the padding is background).

        A crop whose long side is below ``upsample_to`` is upscaled (bicubic, at most
        ``max_upsample`` x) before SIFT: rosettes of a distant leopard are a few pixels wide and the
        finest SIFT octave misses them. Keypoints are returned in the input image's pixels.

        ``foreground`` (H', W') uint8, any size (resized to the image): 0 where keypoints must not be
        taken (background), nonzero elsewhere; combined with ``roi``. Without it, the extractor's own
        foreground model (if any) makes one; when that model finds too little animal, the whole crop
        (or ``roi``) is used."""
        import cv2

        gray = _to_gray(image)
        if gray.size == 0 or min(gray.shape) < 16:
            return Features.empty()
        if foreground is None and self.foreground is not None:
            foreground = self.foreground.mask(image)
        infrared = is_monochrome(image)
        if self.ir_blur > 0 and infrared:
            gray = cv2.GaussianBlur(gray, (0, 0), self.ir_blur)
        motion = None
        smear = self.night_motion_blur if infrared else self.motion_blur
        if smear > 0:
            width = (roi[2] - roi[0]) if roi is not None else gray.shape[1]
            motion = self._sift_features(horizontal_blur(gray, smear * width), roi, infrared, foreground)
        main = self._sift_features(gray, roi, infrared, foreground)
        return Features(main.keypoints, main.descriptors, infrared, motion)

    def _sift_features(self, gray: np.ndarray, roi, infrared: bool, foreground=None) -> Features:
        import cv2

        s = 1.0
        if self.upsample_to and max(gray.shape) < self.upsample_to:
            s = min(self.upsample_to / max(gray.shape), self.max_upsample)
            gray = cv2.resize(gray, (round(gray.shape[1] * s), round(gray.shape[0] * s)), interpolation=cv2.INTER_CUBIC)
        if self._clahe is not None:
            gray = self._clahe.apply(gray)
        mask = None
        if roi is not None:
            x0, y0, x1, y1 = (int(round(v * s)) for v in roi)
            mask = np.zeros(gray.shape, np.uint8)
            mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 255
        if foreground is not None:
            fg = cv2.resize(np.asarray(foreground, np.uint8), (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_NEAREST)
            mask = np.where(fg > 0, np.uint8(255), np.uint8(0)) if mask is None else np.where(fg > 0, mask, np.uint8(0))
        if mask is not None and not mask.any():
            return Features.empty(infrared)
        kps, desc = self._sift.detectAndCompute(gray, mask)
        if desc is None or not kps:
            return Features.empty(infrared)
        if len(kps) > self.max_keypoints:  # SIFT's nfeatures can keep ties beyond the cap
            order = np.argsort([-k.response for k in kps])[: self.max_keypoints]
            kps = [kps[i] for i in order]
            desc = desc[order]
        desc = desc.astype(np.float32)
        desc /= desc.sum(axis=1, keepdims=True) + 1e-7  # RootSIFT (Arandjelovic & Zisserman 2012)
        desc = np.sqrt(desc)
        if self._vgg is not None:
            kept, vgg = self._vgg.compute(gray, kps)  # samples a rotated, scaled window around each keypoint
            if vgg is None or len(kept) != len(kps):  # the two halves must describe the same points
                raise RuntimeError(f"VGG described {0 if vgg is None else len(kept)} of {len(kps)} keypoints")
            vgg = vgg.astype(np.float32)
            vgg /= np.linalg.norm(vgg, axis=1, keepdims=True) + 1e-7
            desc = np.hstack([desc, vgg]) * np.float32(1 / np.sqrt(2))  # unit norm: each part weighs alike
        pts = (np.array([k.pt for k in kps], np.float32).reshape(-1, 2) / s).astype(np.float32)
        return Features(pts, desc, infrared)


class Verifier:
    """Count geometrically consistent RootSIFT matches between two crops.

    Matching: 2-NN with Lowe's ratio test (``ratio``), optionally kept only when mutual (the
    reference's best match of the matched point is the query point). Geometry: a full affine model
    fitted with MAGSAC++ (``cv2.USAC_MAGSAC``). An affine model is looser than a homography; flanks
    bend and stretch with gait, and a homography with a tight threshold throws away true matches on
    a deforming body, while a loose one admits background. ``reproj_threshold`` is in pixels of the
    crop (crops are stored with a bounded side, so one threshold fits all).

    Static scenery: when both crops carry a :class:`Place` on the same camera, putative matches whose
    two ends lie within ``static_tol`` (fraction of the frame) of each other in frame coordinates are
    dropped before the geometry: two different visits to one station share the background, and a
    padded box around a walking leopard holds plenty of it.

    Night pairs: when both feature sets come from infrared frames (``Features.infrared``),
    ``ir_chance_inliers`` are subtracted from the inlier count. Grey, smoothed night crops of two different leopards agree on more points by chance (eye
    shine, ears, the generic head): on the six 12-day calibration cards the most inliers any
    different-animal burst pair reached was 8 for day/day and day/night pairs but 15 for night/night
    (with ``ir_blur=1``). Subtracting 7 puts night evidence on the day scale, so one calibration
    serves both: same-animal burst pairs scoring above every different-animal pair were 30% of all
    pairs with plain features, 27% with ``ir_blur=1`` alone and 37% with both. Trying night pairs
    three ways (below) adds one chance inlier, so the shipped setting is 8.

    Day against night: when exactly one crop is infrared, the colour crop's motion-blurred features
    (``Features.motion``, see :class:`FeatureExtractor`) are matched instead of its sharp ones, so both
    sides carry the same smear. The evidence points are then those of the blurred set, in the same
    crop pixels. Night against night: the pair is also tried with either crop's motion set (smeared
    more), and the best of the tries counts, with ``ir_chance_inliers`` subtracted from it.
    """

    def __init__(self, *, ratio: float = 0.8, mutual: bool = True, model: str = "affine",
                 reproj_threshold: float = 12.0, min_matches: int = 4, static_tol: float = 0.01,
                 ir_chance_inliers: int = 8):
        if model not in ("affine", "homography"):
            raise ValueError(f"unknown geometric model {model!r}: use 'affine' or 'homography'")
        self.ratio = float(ratio)
        self.mutual = bool(mutual)
        self.model = model
        self.reproj_threshold = float(reproj_threshold)
        self.min_matches = max(int(min_matches), 4 if model == "homography" else 3)
        self.static_tol = float(static_tol)
        self.ir_chance_inliers = max(int(ir_chance_inliers), 0)
        self.version = VERIFIER_VERSION if model == "affine" else VERIFIER_VERSION.replace("affine", "homography")
        if self.ir_chance_inliers:
            self.version += f"-irchance{self.ir_chance_inliers}"

    @classmethod
    def from_config(cls, cfg) -> Verifier:
        """From any settings object with identify's verifier fields (``IdentifyConfig``)."""
        return cls(ratio=cfg.ratio, mutual=cfg.mutual, model=cfg.geometric_model, reproj_threshold=cfg.reproj_threshold,
                   static_tol=cfg.static_tol, ir_chance_inliers=cfg.ir_chance_inliers)

    def putative(self, q: Features, r: Features) -> tuple[np.ndarray, np.ndarray]:
        """Indices ``(qi, ri)`` of ratio-test (and mutual) matches."""
        if len(q) < 2 or len(r) < 2:
            return np.zeros(0, int), np.zeros(0, int)
        # RootSIFT vectors have unit L2 norm: similarity = dot product, squared distance = 2 - 2 sim.
        sim = q.descriptors @ r.descriptors.T
        rows = np.arange(sim.shape[0])
        best = sim.argmax(axis=1)
        s1 = sim[rows, best]
        back = sim.argmax(axis=0) if self.mutual else None
        sim[rows, best] = -np.inf
        s2 = sim.max(axis=1)
        keep = (2.0 - 2.0 * s1) < (self.ratio ** 2) * np.maximum(2.0 - 2.0 * s2, 0.0)
        if back is not None:
            keep &= back[best] == rows
        qi = rows[keep]
        return qi, best[keep]

    def __call__(self, q: Features, r: Features, q_place: Place | None = None,
                 r_place: Place | None = None) -> Verification:
        if q.infrared and r.infrared and (q.motion is not None or r.motion is not None):
            # two night crops smeared by different amounts: also try each one smeared more
            tries = [self._verify(q, r, q_place, r_place)]
            if q.motion is not None:
                tries.append(self._verify(q.motion, r, q_place, r_place))
            if r.motion is not None:
                tries.append(self._verify(q, r.motion, q_place, r_place))
            return max(tries, key=lambda v: (v.inliers, v.matches))
        if q.infrared != r.infrared:  # day against night: the day crop smeared like the night exposure
            q = q.motion if not q.infrared and q.motion is not None else q
            r = r.motion if not r.infrared and r.motion is not None else r
        return self._verify(q, r, q_place, r_place)

    def _verify(self, q: Features, r: Features, q_place: Place | None, r_place: Place | None) -> Verification:
        import cv2

        chance = self.ir_chance_inliers if q.infrared and r.infrared else 0
        qi, ri = drop_static(*self.putative(q, r), q.keypoints, r.keypoints, q_place, r_place, self.static_tol)
        n = len(qi)
        empty = np.zeros((0, 2), np.float32)
        if n < self.min_matches:
            return Verification(0, n, empty, empty)
        qp, rp = q.keypoints[qi], r.keypoints[ri]
        if self.model == "affine":
            m = affine_inlier_mask(qp, rp, self.reproj_threshold)
        else:
            _, mask = cv2.findHomography(qp, rp, cv2.USAC_MAGSAC, self.reproj_threshold,
                                         maxIters=2000, confidence=0.995)
            m = None if mask is None else mask.ravel().astype(bool)
        if m is None:
            return Verification(0, n, empty, empty)
        k = int(m.sum())
        if k - chance < self.min_matches:  # a transform through the minimal sample alone is no evidence
            return Verification(0, n, empty, empty)
        return Verification(k - chance, n, qp[m], rp[m], chance)
