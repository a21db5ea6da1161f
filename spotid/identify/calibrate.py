"""Calibrated probabilities from the embedding cosine and the verifier inlier count.

Two questions, two kinds of model, each for three scorers (fused / embedding-only / verifier-only):

1. **Pairwise** P(same individual) of one (query crop, reference crop) pair; ranks gallery crops and
   joins new-individual candidates. Fitted on held-out labelled pairs (the pairs the matcher
   verifies):

- ``fused``:     P = sigmoid(a * cos + b * log1p(inliers) + c)
- ``embedding``: P = sigmoid(a * cos + c)
- ``verifier``:  P = sigmoid(b * log1p(inliers) + c)

2. **Decision** P(this individual is the right one) for one query against a gallery, from the
   query's best evidence for that individual AND its best evidence for any other individual
   (the margin: a textured query that matches everything a little is not a match):
   ``P = sigmoid(a*cos + b*log1p(inliers) + c*cos_other + d*log1p(inliers_other) + e)``, fitted on
   held-out leave-one-out queries where a share of individuals is left out of the gallery (open
   set), so "no known individual" is in the training data.

Coefficients on own evidence are constrained >= 0 and on competing evidence <= 0, so P never falls
when the evidence for the individual grows (monotone by construction, whatever the training data). The artefact is a small JSON file with a
card (``models/matcher/calibration.json`` + ``README.md``); ``spotid train matcher`` refits it.
The embedding-only and verifier-only models exist so that `spotid eval reid` can report open-set
accuracy of each score at the same probability threshold as the fused one.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from spotid.util import atomic_write_json, models_dir

log = logging.getLogger(__name__)

KINDS = ("fused", "embedding", "verifier")
CALIBRATION_FILE = "calibration.json"


def features(kind: str, embed_score, inliers) -> np.ndarray:
    """Design matrix ``(N, 2)`` = [cos, log1p(inliers)], with the unused column zeroed for the
    single-score kinds. ``embed_score``/``inliers`` broadcast to (N,)."""
    cos = np.atleast_1d(np.asarray(embed_score, dtype=np.float64))
    inl = np.atleast_1d(np.asarray(inliers, dtype=np.float64))
    cos, inl = np.broadcast_arrays(cos, inl)
    x = np.stack([cos, np.log1p(np.maximum(inl, 0.0))], axis=1)
    if kind == "embedding":
        x[:, 1] = 0.0
    elif kind == "verifier":
        x[:, 0] = 0.0
    elif kind != "fused":
        raise ValueError(f"unknown calibration kind {kind!r}; one of {KINDS}")
    return x


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


@dataclass(frozen=True)
class Logistic:
    """P = sigmoid(w_cos * cos + w_inl * log1p(inliers) + bias)."""

    w_cos: float
    w_inl: float
    bias: float

    def __call__(self, embed_score, inliers, kind: str = "fused") -> np.ndarray:
        x = features(kind, embed_score, inliers)
        return _sigmoid(x @ np.array([self.w_cos, self.w_inl]) + self.bias)


DECISION_FEATURES = ("cos", "log1p_inliers", "cos_other", "log1p_inliers_other")
_DECISION_COLS = {"fused": [0, 1, 2, 3], "embedding": [0, 2], "verifier": [1, 3]}


def decision_features(kind: str, cos, inliers, cos_other, inliers_other, other_floor: float = 0.0) -> np.ndarray:
    """Design matrix ``(N, 4)`` = [cos, log1p(inl), cos_other, log1p(max(inl_other, other_floor))], the
    columns a kind does not use zeroed. Arguments broadcast to (N,).

    ``other_floor``: the competitor's inliers never count below this. With one or two individuals of
    a flank in the gallery there is often no competitor at all, and nothing tells the model what
    chance agreement looks like; the floor stands in for the competitor a larger gallery would have."""
    if kind not in _DECISION_COLS:
        raise ValueError(f"unknown calibration kind {kind!r}; one of {KINDS}")
    a = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, np.float64)) for v in (cos, inliers, cos_other, inliers_other)))
    x = np.stack([a[0], np.log1p(np.maximum(a[1], 0.0)), a[2], np.log1p(np.maximum(a[3], max(other_floor, 0.0)))],
                 axis=1)
    unused = [c for c in range(4) if c not in _DECISION_COLS[kind]]
    x[:, unused] = 0.0
    return x


@dataclass(frozen=True)
class Decision:
    """P(right individual) = sigmoid(w . decision_features + bias); w = (cos, log1p_inl, cos_other,
    log1p_inl_other), the first two >= 0, the last two <= 0."""

    w: tuple[float, float, float, float]
    bias: float
    other_floor: float = 0.0     # see decision_features

    def __call__(self, kind: str, cos, inliers, cos_other, inliers_other) -> np.ndarray:
        x = decision_features(kind, cos, inliers, cos_other, inliers_other, self.other_floor)
        return _sigmoid(x @ np.asarray(self.w, np.float64) + self.bias)


@dataclass(frozen=True)
class Calibration:
    """The fitted pairwise (``models``) and decision (``decisions``) models plus where they came
    from (``meta``: data, pair counts, metrics). Without decision models (an older file),
    :meth:`decide` falls back to the pairwise P of the individual's own evidence."""

    models: dict[str, Logistic]
    meta: dict = field(default_factory=dict, compare=False)
    decisions: dict[str, Decision] = field(default_factory=dict)

    def prob(self, embed_score, inliers, kind: str = "fused") -> np.ndarray:
        """Pairwise calibrated P(same) ``(N,)`` float64 for the given score kind."""
        return self.models[kind](embed_score, inliers, kind)

    def decide(self, kind: str, cos, inliers, cos_other, inliers_other) -> np.ndarray | float:
        """P(this individual is the query's) ``(N,)`` (a float for scalar inputs) from its best
        evidence (``cos``, ``inliers``) and the best competing individual's."""
        if kind in self.decisions:
            p = self.decisions[kind](kind, cos, inliers, cos_other, inliers_other)
        else:
            p = self.prob(cos, inliers, kind)
        scalar = all(np.ndim(v) == 0 for v in (cos, inliers, cos_other, inliers_other))
        return float(p[0]) if scalar else p

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "calibration@unversioned"))

    @property
    def features_version(self) -> str | None:
        """``FeatureExtractor.version`` of the features the inlier counts were fitted on (None: unknown)."""
        return self.meta.get("features")

    def check_features(self, features_version: str) -> bool:
        """Whether these inlier counts come from the features this was fitted on; logs a warning naming
        both versions and the refit when not (unknown counts as fitting)."""
        if self.features_version in (None, features_version):
            return True
        log.warning("matcher calibration %s was fitted on features %s, but these are %s: its probabilities "
                    "may not hold; refit it with `spotid train matcher` (models/matcher/reproduce.sh)",
                    self.version, self.features_version, features_version)
        return False

    def to_json(self) -> dict:
        out = {
            "models": {k: {"w_cos": m.w_cos, "w_inl": m.w_inl, "bias": m.bias} for k, m in self.models.items()},
            "model_inputs": "fused: [cos, log1p(inliers)]; embedding: [cos]; verifier: [log1p(inliers)]",
        }
        if self.decisions:
            out["decisions"] = {k: {"w": list(d.w), "bias": d.bias, "other_floor": d.other_floor}
                                for k, d in self.decisions.items()}
            out["decision_features"] = list(DECISION_FEATURES)
        return {**out, **self.meta}

    @classmethod
    def from_json(cls, data: dict) -> "Calibration":
        models = {k: Logistic(float(v["w_cos"]), float(v["w_inl"]), float(v["bias"]))
                  for k, v in data["models"].items()}
        missing = set(KINDS) - set(models)
        if missing:
            raise ValueError(f"calibration lacks models {sorted(missing)}: refit with `spotid train matcher`")
        decisions = {k: Decision(tuple(float(x) for x in v["w"]), float(v["bias"]), float(v.get("other_floor", 0.0)))
                     for k, v in (data.get("decisions") or {}).items()}
        # "features" is meta: the features version `spotid train matcher` fitted on
        meta = {k: v for k, v in data.items() if k not in ("models", "model_inputs", "decisions", "decision_features")}
        return cls(models, meta, decisions)


#: Used only when no calibration file exists (a fresh install without models/). Conservative:
#: P(same) passes 0.5 only with ~20 inliers at a middling cosine; stated in every run's config.
DEFAULT = Calibration(
    {"fused": Logistic(4.0, 2.5, -9.5), "embedding": Logistic(8.0, 0.0, -6.0), "verifier": Logistic(0.0, 3.0, -9.0)},
    {"version": "calibration@default", "note": "hand-set fallback; fit one with `spotid train matcher`"},
)


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1e-3, sample_weight: np.ndarray | None = None,
                 signs: Sequence[int] | None = None) -> tuple[np.ndarray, float]:
    """Fit ``P(y=1|x) = sigmoid(x @ w + b)`` with ``w >= 0`` (monotone), by L-BFGS-B.
    ``signs``: per feature +1 (w >= 0) or -1 (w <= 0); default all +1.

    ``x`` ``(N, F)``, ``y`` ``(N,)`` in {0, 1}. Classes are re-weighted to equal total weight (pairs
    are heavily unbalanced: one individual matches, hundreds do not) unless ``sample_weight`` is given;
    the intercept is then corrected back to the empirical prior so that P is calibrated on the data.
    """
    from scipy.optimize import minimize

    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if len(np.unique(y)) < 2:
        raise ValueError("calibration needs both matching and non-matching pairs")
    if sample_weight is None:
        pos = y.mean()
        sample_weight = np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos))
    sw = sample_weight / sample_weight.sum()
    mu, sd = x.mean(0), x.std(0) + 1e-9
    xs = (x - mu) / sd

    def loss(theta):
        w, b = theta[:-1], theta[-1]
        z = xs @ w + b
        # log(1 + e^z) - y z, stably
        nll = np.sum(sw * (np.logaddexp(0.0, z) - y * z))
        p = _sigmoid(z)
        g = xs.T @ (sw * (p - y))
        return nll + l2 * w @ w, np.concatenate([g + 2 * l2 * w, [np.sum(sw * (p - y))]])

    nf = x.shape[1]
    signs = list(signs) if signs is not None else [1] * nf
    bounds = [(0.0, None) if sg > 0 else (None, 0.0) for sg in signs] + [(None, None)]
    res = minimize(loss, np.zeros(nf + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    w = res.x[:-1] / sd
    b = float(res.x[-1] - (res.x[:-1] * mu / sd).sum())
    return w, b


def fit_calibration(embed_score: np.ndarray, inliers: np.ndarray, same: np.ndarray, *,
                    balanced: bool = False, meta: dict | None = None) -> Calibration:
    """Fit all three models on pairs. ``balanced=False`` keeps the data's prior of a match (what a
    ranked shortlist looks like in use); ``True`` treats both classes as equally likely."""
    same = np.asarray(same).astype(np.float64)
    sw = None if balanced else np.ones_like(same)
    models = {}
    for kind in KINDS:
        x = features(kind, embed_score, inliers)
        cols = {"fused": [0, 1], "embedding": [0], "verifier": [1]}[kind]
        w, b = fit_logistic(x[:, cols], same, sample_weight=sw)
        full = np.zeros(2)
        full[cols] = w
        models[kind] = Logistic(float(full[0]), float(full[1]), b)
    return Calibration(models, dict(meta or {}))


def fit_decisions(data: dict[str, tuple[np.ndarray, np.ndarray]],
                  other_floors: Sequence[float] = (0.0,)) -> dict[str, Decision]:
    """Fit the decision model of each kind in ``data`` = {kind: (rows, correct)}: ``rows`` ``(N, 4)``
    raw [cos, inliers, cos_other, inliers_other] per (query, candidate individual) as that scorer
    ranks them; ``correct`` ``(N,)`` whether the candidate is the query's individual. The data's
    prior is kept (no re-weighting): it is the prior of use. ``other_floors``: candidate floors for the
    competitor's inliers (:func:`decision_features`); the one with the lowest log-loss on the rows is
    kept (the first on ties)."""
    out = {}
    for kind, (rows, correct) in data.items():
        rows = np.asarray(rows, np.float64).reshape(-1, 4)
        y = np.asarray(correct).astype(np.float64)
        cols = _DECISION_COLS[kind]
        best = None
        for floor in (other_floors if 3 in cols else (0.0,)):
            x = decision_features(kind, *rows.T, other_floor=floor)[:, cols]
            w, b = fit_logistic(x, y, sample_weight=np.ones_like(y), signs=[1 if c < 2 else -1 for c in cols])
            p = np.clip(_sigmoid(x @ w + b), 1e-12, 1 - 1e-12)
            nll = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
            if best is None or nll < best[0] - 1e-9:
                best = (nll, w, b, floor)
        _, w, b, floor = best
        full = np.zeros(4)
        full[cols] = w
        out[kind] = Decision(tuple(float(v) for v in full), float(b), float(floor))
    return out


def default_path(descriptor: str = "rootsift") -> Path:
    """The shipped calibration for features described by ``descriptor`` (``IdentifyConfig.descriptor``):
    inlier counts of RootSIFT and of RootSIFT + VGG sit on different scales, so each has its own fit."""
    folder = models_dir() / "matcher"
    return (folder if descriptor == "rootsift" else folder / descriptor) / CALIBRATION_FILE


def load_calibration(path: str | Path | None = None, *, descriptor: str = "rootsift") -> Calibration:
    """Load ``path`` (a file or a folder holding calibration.json), else the shipped one for
    ``descriptor``, else :data:`DEFAULT` with a warning."""
    p = Path(path) if path is not None else default_path(descriptor)
    if p.is_dir():
        p = p / CALIBRATION_FILE
    if not p.exists():
        if path is not None:
            raise FileNotFoundError(f"no calibration at {p}: fit one with `spotid train matcher DIR --out FOLDER`")
        log.warning("no matcher calibration at %s: using the hand-set default (fit one with `spotid train matcher`)", p)
        return DEFAULT
    return Calibration.from_json(json.loads(p.read_text(encoding="utf-8")))


def save_calibration(cal: Calibration, folder: str | Path) -> Path:
    """Write ``calibration.json`` with a content version and a README card into ``folder``."""
    import hashlib

    folder = Path(folder)
    body = cal.to_json()
    body.pop("version", None)
    digest = hashlib.sha256(json.dumps([body["models"], body.get("decisions")], sort_keys=True).encode()).hexdigest()[:12]
    body["version"] = f"matcher-calibration@{digest}"
    path = atomic_write_json(folder / CALIBRATION_FILE, body, indent=2)
    _write_card(folder, body)
    return path


def _write_card(folder: Path, body: dict) -> None:
    from spotid.util import atomic_write_text

    m = body["models"]
    lines = [
        f"# Matcher calibration `{body['version']}`", "",
        "Maps the embedding cosine and the RootSIFT inlier count of a (query, reference) crop pair to a",
        "calibrated P(same individual). Logistic regression with non-negative score weights (monotone).", "",
        "| model | w_cos | w_log1p_inliers | bias |", "|---|---|---|---|",
    ]
    for k in KINDS:
        lines.append(f"| {k} | {m[k]['w_cos']:.4f} | {m[k]['w_inl']:.4f} | {m[k]['bias']:.4f} |")
    if body.get("decisions"):
        d = body["decisions"]
        lines += ["", "Decision models, P(right individual) = sigmoid(w . [cos, log1p(inl), cos_other, "
                  "log1p(inl_other)] + bias):", "",
                  "| model | w_cos | w_log1p_inl | w_cos_other | w_log1p_inl_other | bias |", "|---|---|---|---|---|---|"]
        for k in KINDS:
            if k in d:
                lines.append(f"| {k} | " + " | ".join(f"{v:.4f}" for v in d[k]["w"]) + f" | {d[k]['bias']:.4f} |")
    lines += ["", "## Fitted on", "", "```", json.dumps(body.get("data", {}), indent=1), "```", "",
              "Data recipe: " + str(body.get("data_recipe") or "see the command below"), "",
              "## Held-out check", "", "```", json.dumps(body.get("metrics", {}), indent=1), "```", "",
              "## Reproduce", "", "```", str(body.get("command", "spotid train matcher DIR --out models/matcher")),
              "```", "", f"Embedder at fit time: `{body.get('embedder', '?')}`; verifier: `{body.get('verifier', '?')}`.",
              "Refit whenever the embedder changes: the cosine scale belongs to one set of weights.", ""]
    atomic_write_text(folder / "README.md", "\n".join(lines))
