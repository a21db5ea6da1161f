"""The estimator seam: one interface, one registry, one function that runs them all.

An estimator is an object with a ``name`` and ``__call__(data: CaptureData) -> Estimate``. Its input,
:class:`CaptureData`, carries the 0/1 capture histories that every closed-population model reads, and
room for what a spatial model needs: where each animal was caught (per trap), the trap layout and the
trap-by-occasion effort (usage). A non-spatial model ignores the spatial fields.

Adding an estimator = its class (or function) in its own module + one :func:`register` call below + its
tests. Nothing else lists model names: ``MODELS``, ``LIKELIHOOD_MODELS`` and ``SECR_NAMES`` are read
off the registry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from spotid.census import mixture
from spotid.census.secr import SECR
from spotid.census.estimators import (CaptureSummary, Estimate, EstimationResult, add_aicc, as_histories, m0,
                                      mb, mh_chao, mh_jackknife, mt)


@dataclass(frozen=True)
class CaptureData:
    """Input of every estimator.

    Attributes:
        histories: ``(animals, occasions)`` 0/1 int, all-zero rows removed (:func:`as_histories`).
        captures: optional ``(animals, occasions, traps)`` detection counts (spatial models).
        traps: optional ``(traps, 2)`` x/y in metres (a projected coordinate system).
        trap_ids: names of the traps, in the order of ``traps``.
        usage: optional ``(traps, occasions)`` effort (0 = not operating; 1 = a full occasion).
    """

    histories: np.ndarray
    captures: np.ndarray | None = None
    traps: np.ndarray | None = None
    trap_ids: tuple[str, ...] = ()
    usage: np.ndarray | None = None

    @classmethod
    def from_histories(cls, X) -> "CaptureData":
        return cls(histories=as_histories(X))

    @property
    def spatial(self) -> bool:
        return self.captures is not None and self.traps is not None


class Estimator(Protocol):
    """What the registry holds."""

    name: str                  # spotid's model name, as shown in tables ("M0", "Mh-chao", ...)
    secr_name: str | None      # the same model's name in R's secr (closedN estimator), if any
    has_likelihood: bool       # True: it reports logLik, so AICc can rank it against the others
    spatial: bool              # True: it needs CaptureData.captures/traps

    def __call__(self, data: CaptureData) -> Estimate: ...


@dataclass(frozen=True)
class HistoryEstimator:
    """A closed-population model that reads only the 0/1 histories (``fn(X) -> Estimate``)."""

    name: str
    fn: Callable[[np.ndarray], Estimate]
    secr_name: str | None
    has_likelihood: bool
    spatial: bool = False

    def __call__(self, data: CaptureData) -> Estimate:
        return self.fn(data.histories)


ESTIMATORS: dict[str, Estimator] = {}


def register(estimator: Estimator) -> Estimator:
    if estimator.name in ESTIMATORS:
        raise ValueError(f"estimator {estimator.name!r} is registered twice")
    ESTIMATORS[estimator.name] = estimator
    return estimator


for _est in (HistoryEstimator("M0", m0, "null", True),
             HistoryEstimator("Mt", mt, "darroch", True),
             HistoryEstimator("Mb", mb, "zippin", True),
             HistoryEstimator("Mh-chao", mh_chao, "chao", False),
             HistoryEstimator("Mh-jackknife", mh_jackknife, "jackknife", False),
             HistoryEstimator("Mh-2point", mixture.mh_2point, "h2", True),
             HistoryEstimator("Mh-betabinomial", mixture.mh_betabinomial, "betabinomial", True),
             SECR()):   # spatial: the default settings of secr.fit (multi-catch, half-normal, 100 m buffer)
    register(_est)

# the non-spatial models, in the order of every table
MODELS: tuple[str, ...] = tuple(n for n, e in ESTIMATORS.items() if not e.spatial)
LIKELIHOOD_MODELS: tuple[str, ...] = tuple(n for n in MODELS if ESTIMATORS[n].has_likelihood)
# the non-spatial models' names in secr::closedN (SECR itself is secr.fit, not a closedN estimator)
SECR_NAMES: dict[str, str] = {n: ESTIMATORS[n].secr_name for n in MODELS if ESTIMATORS[n].secr_name}


def get(name: str) -> Estimator:
    if name not in ESTIMATORS:
        raise ValueError(f"unknown model {name!r}; choose from {list(ESTIMATORS)}")
    return ESTIMATORS[name]


def estimate_all(X, models: tuple[str, ...] = MODELS) -> EstimationResult:
    """Run the named non-spatial models on one capture-history matrix; pick the lowest-AICc one.

    As in secr::closedN, AICc ranks the likelihood models (M0, Mt, Mb and the Mh 2-point mixture
    and beta-binomial); Chao and the jackknife have no likelihood, so ``best`` falls back to them
    (jackknife first) only when no likelihood model has an AICc.
    """
    data = X if isinstance(X, CaptureData) else CaptureData.from_histories(X)
    unknown = [m for m in models if m not in ESTIMATORS or ESTIMATORS[m].spatial]
    if unknown:
        raise ValueError(f"unknown model(s) {sorted(unknown)}; choose from {list(MODELS)}")
    ests = [ESTIMATORS[m](data) for m in models]
    add_aicc(ests)
    ranked = sorted((e for e in ests if e.aicc is not None), key=lambda e: e.aicc)
    if ranked:
        names = ", ".join(e.model for e in ranked)
        best, reason = ranked[0].model, f"lowest AICc among the likelihood models ({names})"
    else:
        ok = sorted((e for e in ests if e.N is not None and e.model in ("Mh-jackknife", "Mh-chao")),
                    key=lambda e: e.model != "Mh-jackknife")
        best = ok[0].model if ok else None
        fitted = [e for e in ests if e.loglik is not None]
        # AICc needs more animals than parameters + 1 (secr reports NA). With a handful of animals
        # AIC favours boundary fits whose intervals are far too narrow (checked on simulated
        # surveys), so the jackknife, CAPTURE's robust default, is shown instead.
        why = ("AICc is undefined with so few animals for the number of parameters" if fitted
               else "no likelihood model could be fitted")
        reason = f"{why}; heterogeneity estimator (jackknife) shown" if ok else "no model could be fitted"
    s = CaptureSummary.from_matrix(data.histories)
    counts = {"n": s.n.tolist(), "u": s.u.tolist(), "f": s.f.tolist()}
    return EstimationResult(mna=s.n_animals, n_occasions=s.n_occasions, estimates=ests, best=best,
                            best_reason=reason, counts=counts)
