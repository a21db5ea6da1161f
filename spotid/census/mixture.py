"""Likelihood models for individual heterogeneity (Mh), so AICc can weigh heterogeneity against M0/Mt/Mb.

- ``Mh-2point``: Pledger's two-point finite mixture (secr ``h2``): a share ``pi`` of animals with
  capture probability ``theta1``, the rest ``theta2``;
- ``Mh-betabinomial``: capture probabilities drawn from a beta distribution (Dorazio & Royle; secr
  ``betabinomial``).

Both maximise the same likelihoods as ``secr::closedN`` (multinomial coefficient included, so the
log-likelihoods and AICc are directly comparable with M0, Mt and Mb) and reproduce its N̂. The SE
differs on purpose: from the inverse Hessian ``v = Var(log f0)``, we use the log-normal
``SE = f0 sqrt(exp(v) - 1)``; secr 5.4.1 computes ``f0 sqrt(exp(v^2) - 1)``, which squares the
variance and understates the SE (hare: 1.98 in secr, 4.4 here for the 2-point mixture).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import optimize
from scipy.special import expit, gammaln

from spotid.census.estimators import (BOUNDARY_F0, MAX_N, NOT_ESTIMABLE, CaptureSummary, Estimate,
                                      _finish_ci, _undefined, lognormal_ci)


LOG_MAX_F0 = math.log(MAX_N)
DIVERGED_F0 = 1e6   # an f0 this large is the search running off to infinity, not an estimate


def _coef(N: float, S: float) -> float:
    return float(gammaln(N + 1) - gammaln(N - S + 1) - gammaln(S + 1))


def _fit(nll, x0: np.ndarray) -> np.ndarray:
    """Minimise with several methods from secr's start (these surfaces have flat ridges), then polish."""
    best = None
    for method in ("Nelder-Mead", "BFGS", "Powell"):
        try:
            r = optimize.minimize(nll, x0, method=method, options={"maxiter": 3000})
        except (ValueError, FloatingPointError, OverflowError):
            continue
        if np.isfinite(r.fun) and (best is None or r.fun < best.fun):
            best = r
    if best is None:
        return x0
    r = optimize.minimize(nll, best.x, method="Nelder-Mead",
                          options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000, "maxfev": 8000})
    return r.x if r.fun <= best.fun else best.x


def _hessian(fn, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    n = len(x)
    H = np.zeros((n, n))
    for a in range(n):
        for b in range(a, n):
            ea = np.zeros(n)
            eb = np.zeros(n)
            ea[a] = h
            eb[b] = h
            H[a, b] = H[b, a] = (fn(x + ea + eb) - fn(x + ea - eb) - fn(x - ea + eb) + fn(x - ea - eb)) / (4 * h * h)
    return H


def _result(model: str, nll, x: np.ndarray, S: int, npar: int, details: dict) -> Estimate:
    f0 = math.exp(x[0])
    N = S + f0
    if not np.isfinite(nll(x)) or f0 > DIVERGED_F0:
        # the optimiser ran towards the edge of the search box: the likelihood keeps rising with N
        return Estimate(model, None, None, None, None, npar=npar, mt1=S, status=NOT_ESTIMABLE,
                        note="the likelihood keeps increasing with N (no finite maximum): N̂ is not estimable "
                             "with this model", details=details)
    se = None
    try:
        with np.errstate(all="ignore"):
            cov = np.linalg.inv(_hessian(nll, x))
        v = float(cov[0, 0])
        if 0 < v < 50:
            se = f0 * math.sqrt(math.expm1(v))
    except np.linalg.LinAlgError:
        pass
    est = Estimate(model, N, se, None, None, loglik=-float(nll(x)), npar=npar, mt1=S, details=details)
    if f0 <= BOUNDARY_F0:
        # the same boundary rule as the closed-form models (a profile over N would need the nuisance
        # parameters re-maximised at each N, so only the log-normal limit is given here)
        _finish_ci(est)
        return est
    ci = lognormal_ci(S, N, se) if se is not None else None
    if ci is None:
        est.note = "the likelihood is flat in N (Hessian not invertible): no SE or interval from this model"
        return est
    est.lcl, est.ucl = ci
    return est


def mh_2point(X) -> Estimate:
    """Pledger two-point mixture (secr ``h2``); parameters (log f0, logit pi, logit theta1, logit theta2)."""
    s = CaptureSummary.from_matrix(X)
    T, S = s.n_occasions, s.n_animals
    if T < 2 or S < 2 or s.f[1:].sum() == 0:
        return _undefined("Mh-2point", s, "need at least 2 occasions and some animals caught more than once")
    f = s.f.astype(float)
    i = np.arange(1, T + 1)

    def nll(b):
        # a box keeps the search where the arithmetic is exact (flat ridges run off to infinity)
        if not (-15 <= b[0] <= LOG_MAX_F0 and np.all(np.abs(b[1:]) <= 30)):
            return 1e10
        with np.errstate(all="ignore"):
            N = S + math.exp(b[0])
            p1, t1, t2 = expit(b[1]), expit(b[2]), expit(b[3])
            terms = np.log(p1 * t1**i * (1 - t1) ** (T - i) + (1 - p1) * t2**i * (1 - t2) ** (T - i))
            miss = p1 * (1 - t1) ** T + (1 - p1) * (1 - t2) ** T
            ll = _coef(N, S) + (N - S) * math.log(miss) + float(np.sum(f * terms)) if miss > 0 else -np.inf
        return -ll if np.isfinite(ll) else 1e10

    x = _fit(nll, np.array([math.log(5), 0.0, -1.0, 1.0]))
    det = {"pi": float(expit(x[1])), "theta1": float(expit(x[2])), "theta2": float(expit(x[3]))}
    est = _result("Mh-2point", nll, x, S, 4, det)
    if est.N is not None and (min(det["pi"], 1 - det["pi"]) < 1e-4 or abs(det["theta1"] - det["theta2"]) < 1e-3):
        est.se = est.lcl = est.ucl = None
        est.status = "reduces_to_M0"
        est.note = "one mixture class is empty or both classes coincide: the model reduces to M0; see M0"
    return est


def mh_betabinomial(X) -> Estimate:
    """Beta-binomial heterogeneity (secr ``betabinomial``); parameters log(f0, mean p, variance of p)."""
    s = CaptureSummary.from_matrix(X)
    T, S = s.n_occasions, s.n_animals
    if T < 2 or S < 2 or s.f[1:].sum() == 0:
        return _undefined("Mh-betabinomial", s, "need at least 2 occasions and some animals caught more than once")
    f = s.f.astype(float)
    i = np.arange(1, T + 1)

    def nll(pr):
        if not (-15 <= pr[0] <= LOG_MAX_F0 and -30 <= pr[1] < 0 and -40 <= pr[2] <= 0):
            return 1e10
        with np.errstate(all="ignore"):
            pr = np.exp(pr)
            N = S + pr[0]
            rat = pr[1] * (1 - pr[1]) / pr[2]
            # rat -> infinity is the binomial (no heterogeneity) limit, where lgamma differences of huge
            # arguments lose all precision: cap it (beyond 1e7 the model is M0 for all purposes)
            if rat < 1 or rat > 1e7:
                return 1e10
            a, b = pr[1] * (rat - 1), (1 - pr[1]) * (rat - 1)
            ll = (_coef(N, S) + N * (gammaln(a + b) - gammaln(a) - gammaln(b) - gammaln(a + b + T))
                  + (N - S) * (gammaln(a) + gammaln(b + T)) + float(np.sum(f * (gammaln(a + i) + gammaln(b + T - i)))))
        return -ll if np.isfinite(ll) else 1e10

    x = _fit(nll, np.log([10.0, 1 / T, 0.2 / T * (1 - 1 / T)]))
    mean_p, var_p = float(math.exp(x[1])), float(math.exp(x[2]))
    det = {"mean_p": mean_p, "var_p": var_p}
    est = _result("Mh-betabinomial", nll, x, S, 3, det)
    if mean_p * (1 - mean_p) / var_p > 1e5 and est.N is not None:
        # the variance of p went to zero: the model has collapsed onto M0 and the Hessian of a
        # parameter at its limit says nothing about the uncertainty of N
        est.se = est.lcl = est.ucl = None
        est.status = "reduces_to_M0"
        est.note = "no heterogeneity detected (variance of p at its lower limit): the model reduces to M0; see M0"
    return est
