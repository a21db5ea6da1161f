"""Calibrated P(same individual) from the embedding cosine and the verifier inlier count.

Three logistic models are fitted on held-out labelled pairs (query crop, reference crop, same?):

- ``fused``:     P = sigmoid(a * cos + b * log1p(inliers) + c)
- ``embedding``: P = sigmoid(a * cos + c)
- ``verifier``:  P = sigmoid(b * log1p(inliers) + c)

Coefficients on the scores are constrained to be >= 0, so P never falls when the evidence grows
(monotone by construction, whatever the training pairs). The artefact is a small JSON file with a
card (``models/matcher/calibration.json`` + ``README.md``); ``spotid train matcher`` refits it.
The embedding-only and verifier-only models exist so that `spotid eval reid` can report open-set
accuracy of each score at the same probability threshold as the fused one.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(frozen=True)
class Calibration:
    """The three fitted models plus where they came from (``meta``: data, pair counts, metrics)."""

    models: dict[str, Logistic]
    meta: dict = field(default_factory=dict, compare=False)

    def prob(self, embed_score, inliers, kind: str = "fused") -> np.ndarray:
        """Calibrated P(same) ``(N,)`` float64 for the given score kind."""
        return self.models[kind](embed_score, inliers, kind)

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "calibration@unversioned"))

    def to_json(self) -> dict:
        return {
            "models": {k: {"w_cos": m.w_cos, "w_inl": m.w_inl, "bias": m.bias} for k, m in self.models.items()},
            "features": "fused: [cos, log1p(inliers)]; embedding: [cos]; verifier: [log1p(inliers)]",
            **self.meta,
        }

    @classmethod
    def from_json(cls, data: dict) -> "Calibration":
        models = {k: Logistic(float(v["w_cos"]), float(v["w_inl"]), float(v["bias"]))
                  for k, v in data["models"].items()}
        missing = set(KINDS) - set(models)
        if missing:
            raise ValueError(f"calibration lacks models {sorted(missing)}: refit with `spotid train matcher`")
        meta = {k: v for k, v in data.items() if k not in ("models", "features")}
        return cls(models, meta)


#: Used only when no calibration file exists (a fresh install without models/). Conservative:
#: P(same) passes 0.5 only with ~20 inliers at a middling cosine; stated in every run's config.
DEFAULT = Calibration(
    {"fused": Logistic(4.0, 2.5, -9.5), "embedding": Logistic(8.0, 0.0, -6.0), "verifier": Logistic(0.0, 3.0, -9.0)},
    {"version": "calibration@default", "note": "hand-set fallback; fit one with `spotid train matcher`"},
)


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1e-3, sample_weight: np.ndarray | None = None
                 ) -> tuple[np.ndarray, float]:
    """Fit ``P(y=1|x) = sigmoid(x @ w + b)`` with ``w >= 0`` (monotone), by L-BFGS-B.

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
    bounds = [(0.0, None)] * nf + [(None, None)]
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


def default_path() -> Path:
    return models_dir() / "matcher" / CALIBRATION_FILE


def load_calibration(path: str | Path | None = None) -> Calibration:
    """Load ``path`` (a file or a folder holding calibration.json), else the shipped one, else
    :data:`DEFAULT` with a warning."""
    p = Path(path) if path is not None else default_path()
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
    digest = hashlib.sha256(json.dumps(body["models"], sort_keys=True).encode()).hexdigest()[:12]
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
    lines += ["", "## Fitted on", "", "```", json.dumps(body.get("data", {}), indent=1), "```", "",
              "Data recipe: " + str(body.get("data_recipe") or "see the command below"), "",
              "## Held-out check", "", "```", json.dumps(body.get("metrics", {}), indent=1), "```", "",
              "## Reproduce", "", "```", str(body.get("command", "spotid train matcher DIR --out models/matcher")),
              "```", "", f"Embedder at fit time: `{body.get('embedder', '?')}`; verifier: `{body.get('verifier', '?')}`.",
              "Refit whenever the embedder changes: the cosine scale belongs to one set of weights.", ""]
    atomic_write_text(folder / "README.md", "\n".join(lines))
