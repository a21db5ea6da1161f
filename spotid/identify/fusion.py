"""Calibrated fusion (the idea of WildFusion, Cermak et al. 2024): every scorer's raw score becomes
P(same individual) by its own calibration, and the fused P is the (weighted) average of them.

Scorers and their raw scores: ``embedding`` the cosine of two embeddings; each local matcher of
:mod:`spotid.identify.local` (``sift``, ``aliked``, ...) its inlier count. Each calibration is a
monotone logistic ``P = sigmoid(w * t(raw) + b)``, ``w >= 0``, ``t`` the identity for cosines and
``log1p`` for inlier counts, fitted on labelled pairs of individuals the evaluation never sees.
Averaging probabilities (not logits) keeps one confident scorer from being outvoted to nothing and
one overconfident scorer from taking over: each can move the fused P by at most its weight.
A scorer without a score for a pair (NaN: e.g. a crop too small for that matcher) is left out of that
pair's average, the weights of the others renormalised; a scorer of weight 0 is left out everywhere.

How the calibrated P are combined (``combine``, chosen on validation individuals by ``spotid train
fusion --select``; ``mean`` when a fusion.json does not say):

- ``mean``: the weighted mean of the P (WildFusion);
- ``noisy_or``: ``1 - prod_k (1 - P_k) ** (weight_k / sum weight)``, the weighted geometric mean of the
  "not the same animal" probabilities: one scorer that is sure of a match lifts the fused P more than
  in the mean, while scorers near 0 pull it down less (a verifier that finds nothing on a pair of
  photos with different light says little);
- ``max``: the largest P of the scorers with weight > 0 (the shipped fusion's rule since 2026-12-06:
  fitted on nyala and synthetic leopards, each verifier is strong on one kind of coat and near chance on
  the other, ALIKED on real stripes, RootSIFT on the renders; the largest P lets whichever is sure
  speak, where a mean diluted it; models/matcher/fusion/README.md).

Each stays between the smallest and the largest of the scorers' P.

The decision ("is this individual the query's?") keeps the competitor logic of
:class:`~spotid.identify.calibrate.Decision`: from the fused P of the individual's best crop and of the
best OTHER individual's, ``P = sigmoid(a * logit(p_own) + c * logit(max(p_other, floor)) + e)``,
``a >= 0``, ``c <= 0``: a query that matches everything a little is not a match, and the floor stands
in for the competitor a small gallery lacks (see models/matcher/README.md).

A new embedder (or a new local matcher) needs only a refit: ``spotid train fusion DIR --encounter RX
--verifiers sift,aliked --out models/matcher/fusion`` (models/matcher/fusion/reproduce.sh).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from spotid.identify.calibrate import _sigmoid, fit_logistic
from spotid.util import atomic_write_json, models_dir

FUSION_FILE = "fusion.json"
TRANSFORMS = ("cos", "log1p")
COMBINES = ("mean", "noisy_or", "max")
_EPS = 1e-6


def transform_of(scorer: str) -> str:
    """The raw-score transform of a scorer: the cosine as is, inlier counts through log1p."""
    return "cos" if scorer == "embedding" else "log1p"


def _t(transform: str, raw) -> np.ndarray:
    x = np.asarray(raw, np.float64)
    if transform == "cos":
        return x
    if transform == "log1p":
        return np.log1p(np.maximum(x, 0.0))
    raise ValueError(f"unknown transform {transform!r}; one of {TRANSFORMS}")


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class ScoreCalibration:
    """P(same) = sigmoid(w * t(raw) + b), ``w >= 0``; NaN raw -> NaN."""

    transform: str
    w: float
    b: float

    def __call__(self, raw) -> np.ndarray:
        x = _t(self.transform, raw)
        return np.where(np.isnan(x), np.nan, _sigmoid(self.w * np.nan_to_num(x) + self.b))


def fit_score_calibration(raw, same, transform: str) -> ScoreCalibration:
    """Fit one scorer's calibration on pairs (NaN raw scores ignored), keeping the data's prior of a
    match: ``raw`` ``(N,)``, ``same`` ``(N,)`` bool."""
    x = _t(transform, raw)
    y = np.asarray(same, np.float64)
    ok = ~np.isnan(x)
    w, b = fit_logistic(x[ok, None], y[ok], sample_weight=np.ones(int(ok.sum())))
    return ScoreCalibration(transform, float(w[0]), float(b))


@dataclass(frozen=True)
class Fusion:
    """Per-scorer calibrations, averaging weights, the combine rule (:data:`COMBINES`) and the
    competitor-aware decision (a, c, e, floor)."""

    calibrations: dict[str, ScoreCalibration]
    weights: dict[str, float]
    decision: tuple[float, float, float] = (1.0, 0.0, 0.0)
    floor: float = 0.0
    meta: dict = field(default_factory=dict, compare=False)
    combine: str = "mean"

    def __post_init__(self):
        if self.combine not in COMBINES:
            raise ValueError(f"fusion combine {self.combine!r}: use one of {', '.join(COMBINES)}")

    @property
    def scorers(self) -> list[str]:
        return list(self.calibrations)

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "fusion@unversioned"))

    def require(self, scorers: Sequence[str]) -> None:
        """ValueError naming the fix when any of ``scorers`` has no calibration in this fusion."""
        missing = [k for k in scorers if k not in self.calibrations]
        if missing:
            local = [k for k in scorers if k != "embedding"]
            raise ValueError(f"fusion {self.version} has no calibration for {missing} (it has {self.scorers}): "
                             f"fit one with `spotid train fusion DIR --verifiers {','.join(local)} --out FOLDER` "
                             "on folders you do not evaluate on (models/matcher/fusion/reproduce.sh)")

    def off_fit(self, versions: Mapping[str, str]) -> list[str]:
        """What of ``versions`` ({scorer: the features/verifier version a run builds}) differs from what this
        fusion was fitted on (``meta['versions']``), one line each; empty when everything fits (a scorer
        without a recorded version counts as fitting). Its calibrations describe raw scores of the fitted
        features only: identify refuses a mismatch, ``eval reid`` warns."""
        fitted = self.meta.get("versions") or {}
        return [f"{name}: fitted on {fitted[name]}, this run builds {v}" for name, v in versions.items()
                if fitted.get(name) and fitted[name] != v]

    def probs(self, raw: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{scorer: calibrated P(same)} for the scorers of ``raw`` this fusion knows."""
        self.require(list(raw))
        return {k: self.calibrations[k](v) for k, v in raw.items()}

    def fuse(self, raw: Mapping[str, np.ndarray], use: Sequence[str] | None = None) -> np.ndarray:
        """The calibrated P(same) of the scorers in ``use`` (default: all of ``raw``) combined by
        ``combine`` with their weights; arrays broadcast. Per element, scorers with NaN (and scorers of
        weight 0) are left out; none left -> NaN."""
        use = list(use) if use is not None else list(raw)
        p = self.probs({k: raw[k] for k in use})
        arrs = np.broadcast_arrays(*(p[k] for k in use))
        num = np.zeros(arrs[0].shape)
        den = np.zeros(arrs[0].shape)
        top = np.full(arrs[0].shape, -np.inf)
        for k, a in zip(use, arrs):
            w = float(self.weights.get(k, 1.0))
            ok = ~np.isnan(a) & (w > 0)
            a = np.nan_to_num(a)
            if self.combine == "noisy_or":  # log of the miss probability, clipped so P = 1 stays finite
                a = np.log1p(-np.minimum(a, 1 - _EPS))
            num += np.where(ok, w * a, 0.0)
            den += np.where(ok, w, 0.0)
            top = np.where(ok, np.maximum(top, a), top)
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.combine == "max":
                return np.where(den > 0, top, np.nan)
            mean = num / np.where(den > 0, den, 1.0)
            return np.where(den > 0, -np.expm1(mean) if self.combine == "noisy_or" else mean, np.nan)

    def decide(self, p_own, p_other) -> np.ndarray:
        """P(this individual is the query's) from the fused P of its best crop and of the best other
        individual's (0 when there is none; it never counts below ``floor``)."""
        a, c, e = self.decision
        po = np.maximum(np.nan_to_num(np.asarray(p_other, np.float64)), self.floor)
        return _sigmoid(a * logit(p_own) + c * logit(po) + e)

    def to_json(self) -> dict:
        return {"calibrations": {k: {"transform": c.transform, "w": c.w, "b": c.b} for k, c in self.calibrations.items()},
                "weights": dict(self.weights), "combine": self.combine, "decision": {"a": self.decision[0], "c": self.decision[1],
                                                            "e": self.decision[2], "floor": self.floor},
                "model": "P_k = sigmoid(w_k * t_k(raw_k) + b_k), t = cos | log1p(inliers); over the scorers "
                         "with a score and weight > 0: mean P = sum_k weight_k P_k / sum_k weight_k, noisy_or P = "
                         "1 - prod_k (1 - P_k)^(weight_k / sum_k weight_k), max P = max_k P_k; "
                         "decision = sigmoid(a * logit(P_own) + c * logit(max(P_other, floor)) + e)",
                **self.meta}

    @classmethod
    def from_json(cls, data: dict) -> "Fusion":
        cals = {k: ScoreCalibration(str(v["transform"]), float(v["w"]), float(v["b"]))
                for k, v in data["calibrations"].items()}
        d = data.get("decision") or {}
        meta = {k: v for k, v in data.items() if k not in ("calibrations", "weights", "decision", "model", "combine")}
        return cls(cals, {k: float(v) for k, v in data.get("weights", {}).items()},
                   (float(d.get("a", 1.0)), float(d.get("c", 0.0)), float(d.get("e", 0.0))),
                   float(d.get("floor", 0.0)), meta, str(data.get("combine", "mean")))


def fit_fusion(raw: Mapping[str, np.ndarray], same, *, weights: Mapping[str, float] | None = None,
               meta: dict | None = None) -> Fusion:
    """One calibration per scorer on the same labelled pairs (``raw`` {scorer: (N,)}, ``same`` (N,));
    equal weights unless ``weights`` are given."""
    cals = {k: fit_score_calibration(v, same, transform_of(k)) for k, v in raw.items()}
    w = {k: float((weights or {}).get(k, 1.0)) for k in raw}
    return Fusion(cals, w, meta=dict(meta or {}))


def fit_decision(fusion: Fusion, p_own, p_other, correct, floors: Sequence[float] = (0.0,)) -> Fusion:
    """Fit (a, c, e) of the decision on rows (fused P of a ranked individual, of its best competitor,
    whether it is the query's), ``a >= 0``, ``c <= 0``, the data's prior kept; among ``floors`` the
    one with the lowest log-loss is kept (the first on ties)."""
    y = np.asarray(correct, np.float64)
    best = None
    for fl in floors:
        x = np.stack([logit(p_own), logit(np.maximum(np.nan_to_num(np.asarray(p_other, np.float64)), fl))], 1)
        w, b = fit_logistic(x, y, sample_weight=np.ones_like(y), signs=[1, -1])
        p = np.clip(_sigmoid(x @ w + b), 1e-12, 1 - 1e-12)
        nll = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        if best is None or nll < best[0] - 1e-9:
            best = (nll, w, b, fl)
    _, w, b, fl = best
    return Fusion(fusion.calibrations, fusion.weights, (float(w[0]), float(w[1]), float(b)), float(fl), fusion.meta,
                  fusion.combine)


def decision_rows(p: np.ndarray, query_labels: Sequence, labels: Sequence, in_gallery: np.ndarray, top: int = 3
                  ) -> list[tuple[float, float, bool]]:
    """(p_own, p_other, correct) of each query's ``top`` individuals ranked by their best fused P
    (``p`` (Q, N), NaN outside a gallery; ``in_gallery`` (N,) bool: the open-set split)."""
    from spotid.identify.match import rank_individuals

    out = []
    for row, lab in enumerate(query_labels):
        ranked = rank_individuals(np.where(in_gallery, p[row], np.nan), labels)
        for k, (ind, s, _) in enumerate(ranked[:top]):
            other = ranked[1 if k == 0 else 0][1] if len(ranked) > 1 else 0.0
            out.append((float(s), float(other), ind == lab))
    return out


def default_path() -> Path:
    return models_dir() / "matcher" / "fusion" / FUSION_FILE


def load_fusion(path: str | Path | None = None) -> Fusion:
    """``path`` (a file or a folder holding fusion.json), else the shipped ``models/matcher/fusion``."""
    p = Path(path) if path is not None else default_path()
    if p.is_dir():
        p = p / FUSION_FILE
    if not p.exists():
        raise FileNotFoundError(f"no fusion calibration at {p}: fit one with `spotid train fusion DIR --out FOLDER`")
    return Fusion.from_json(json.loads(p.read_text(encoding="utf-8")))


def save_fusion(fusion: Fusion, folder: str | Path) -> Path:
    """Write ``fusion.json`` with a content version into ``folder``."""
    import hashlib

    body = fusion.to_json()
    body.pop("version", None)
    # "mean" is left out of the digest so a refit of an old mean fusion keeps its version
    parts = [body["calibrations"], body["weights"], body["decision"]] + ([body["combine"]] if body["combine"] != "mean" else [])
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]
    body["version"] = f"matcher-fusion@{digest}"
    return atomic_write_json(Path(folder) / FUSION_FILE, body, indent=2)
