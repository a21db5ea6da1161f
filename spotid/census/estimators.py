"""Closed-population capture-recapture estimators, as in program CAPTURE and R's ``secr::closedN``.

Input everywhere is a 0/1 capture-history matrix ``X`` of shape (animals, occasions): ``X[i, j] = 1``
when animal ``i`` was detected (at least once) on occasion ``j``. All-zero rows are ignored.

Models (Otis et al. 1978; Rexstad & Burnham 1991):
- ``M0``: constant capture probability, multinomial maximum likelihood with continuous N
  (``secr`` estimator "null"; NOT Rcapture's log-linear M0, which gives 75.43 instead of 74.70
  for the hare data);
- ``Mt``: capture probability varying by occasion (Darroch), ML;
- ``Mb``: behavioural response / removal (Zippin), ML;
- ``Mh-chao``: Chao (1987) lower-bound estimator for heterogeneity, bias-corrected
  ``S + f1 (f1 - 1) / (2 (f2 + 1))`` when f2 = 0;
- ``Mh-jackknife``: Burnham & Overton (1979) jackknife with the sequential order-selection test
  and CAPTURE's interpolation, with the unconditional variance of K. P. Burnham;
- ``Mh-2point`` and ``Mh-betabinomial``: heterogeneity models with a likelihood (secr ``h2`` and
  ``betabinomial``, in :mod:`spotid.census.mixture`), so AICc can weigh heterogeneity too.

Each result carries N̂, SE, the log-normal 95% interval of Chao (1987) / CAPTURE
(``lcl = Mt1 + f0 / C``, ``ucl = Mt1 + f0 C``, ``f0 = N̂ - Mt1``,
``C = exp(z sqrt(log(1 + (SE / f0)^2)))``), the log-likelihood including the multinomial
coefficient ``log N! / ((N - Mt1)! Mt1!)`` exactly as ``secr::closedN`` writes it, and
``AICc = -2 logL + 2 K Mt1 / (Mt1 - K - 1)`` (K = number of parameters; the effective sample size is
the number of animals seen, as in secr). Boundary cases never produce NaN: they set ``status``
and a ``note`` saying what happened and what to do.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import optimize, stats
from scipy.special import gammaln, xlogy

MAX_N = 1e7
# f0 = N̂ - Mt1 below this counts as "N̂ equals the number seen".
BOUNDARY_F0 = 1e-3

# status values
OK = "ok"
AT_BOUNDARY = "at_boundary"        # N̂ equals the number seen
UNDEFINED = "undefined"            # the model cannot be fitted to these data
NOT_ESTIMABLE = "not_estimable"    # the likelihood has no finite maximum (no recaptures, ...)
BIAS_CORRECTED = "bias_corrected"  # Chao with f2 = 0


@dataclass
class Estimate:
    """One model's population-size estimate. ``N``/``se``/``lcl``/``ucl`` are None when undefined."""

    model: str
    N: float | None
    se: float | None
    lcl: float | None
    ucl: float | None
    loglik: float | None = None
    npar: int | None = None
    aic: float | None = None
    aicc: float | None = None
    daicc: float | None = None
    aicc_weight: float | None = None
    mt1: int = 0
    status: str = OK
    note: str = ""
    ci_method: str = "log-normal (Chao 1987)"
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):  # never emit NaN/inf in JSON
                d[k] = None
        return d


@dataclass
class CaptureSummary:
    """Summary statistics of a capture-history matrix (secr ``summary(capthist)$counts``).

    ``n[j]`` animals caught on occasion j, ``u[j]`` first caught on j, ``f[k-1]`` animals caught on
    exactly k occasions (k = 1..T).
    """

    n_animals: int
    n_occasions: int
    n: np.ndarray
    u: np.ndarray
    f: np.ndarray

    @classmethod
    def from_matrix(cls, X) -> "CaptureSummary":
        X = as_histories(X)
        T = X.shape[1]
        n = X.sum(axis=0).astype(int)
        first = np.argmax(X, axis=1)
        u = np.bincount(first, minlength=T).astype(int)
        k = X.sum(axis=1)
        f = np.bincount(k, minlength=T + 1)[1 : T + 1].astype(int)
        return cls(n_animals=int(X.shape[0]), n_occasions=T, n=n, u=u, f=f)


def as_histories(X) -> np.ndarray:
    """A clean 0/1 int matrix (animals, occasions) without all-zero rows; raises ValueError."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"capture histories must be a 2-D matrix (animals x occasions), got shape {X.shape}")
    if X.size and (np.any(X < 0) or not np.all(np.isfinite(X))):
        raise ValueError("capture histories must hold 0 (not seen) or 1 (seen)")
    X = (X > 0).astype(int)
    return X[X.sum(axis=1) > 0]


# -- confidence interval --------------------------------------------------------------------------
def lognormal_ci(mt1: float, N: float, se: float, level: float = 0.95) -> tuple[float, float] | None:
    """CAPTURE's log-normal interval for N̂ (Rexstad & Burnham 1991; Chao 1987).

    Returns None when ``f0 = N̂ - Mt1`` is not positive (the interval is then undefined).
    """
    f0 = N - mt1
    if not (f0 > 0) or se is None or not math.isfinite(se):
        return None
    z = stats.norm.ppf(1 - (1 - level) / 2)
    c = math.exp(z * math.sqrt(math.log1p((se / f0) ** 2)))
    return mt1 + f0 / c, mt1 + f0 * c


# -- maximum likelihood helpers -------------------------------------------------------------------
def _log_multinomial_coef(N: float, mt1: int) -> float:
    return float(gammaln(N + 1) - gammaln(N - mt1 + 1) - gammaln(mt1 + 1))


def _maximise(loglik, mt1: int, max_n: float = MAX_N) -> tuple[float, float]:
    """Maximise a 1-D log-likelihood in N over [Mt1, max_n].

    A log-spaced grid over f0 = N - Mt1 finds the right basin (the interval spans 10 orders of
    magnitude, where plain golden-section search can stall), then bounded Brent refines it.
    """
    f0_grid = np.concatenate([[0.0], np.logspace(-6, math.log10(max_n - mt1 if max_n > mt1 else 1), 400)])
    vals = np.array([loglik(mt1 + f) for f in f0_grid])
    vals = np.where(np.isfinite(vals), vals, -np.inf)
    i = int(np.argmax(vals))
    lo = f0_grid[max(i - 1, 0)]
    hi = f0_grid[min(i + 1, len(f0_grid) - 1)]
    best_f0, best = f0_grid[i], vals[i]
    if hi > lo:
        res = optimize.minimize_scalar(lambda f: -loglik(mt1 + f), bounds=(lo, hi), method="bounded",
                                       options={"xatol": 1e-9 * max(1.0, hi)})
        if res.success and -res.fun >= best:
            best_f0, best = float(res.x), float(-res.fun)
    return mt1 + best_f0, float(best)


def _ml_result(model: str, loglik, mt1: int, npar: int, se_fn, max_n: float = MAX_N, *, recaptures: int,
               **details) -> Estimate:
    if recaptures == 0:
        return Estimate(model, None, None, None, None, npar=npar, mt1=mt1, status=NOT_ESTIMABLE,
                        note="no animal was caught twice: the likelihood has no finite maximum, N̂ is not "
                             "estimable with this model (see Mh-chao, bias-corrected)", details=details)
    N, ll = _maximise(loglik, mt1, max_n)
    if N - mt1 > min(1e6, 0.99 * max_n):  # the maximum ran off towards infinity
        return Estimate(model, None, None, None, None, npar=npar, mt1=mt1, status=NOT_ESTIMABLE,
                        note="the likelihood increases without bound in N (too few recaptures): "
                             "N̂ is not estimable with this model", details=details)
    se = se_fn(N)
    est = Estimate(model, N, se, None, None, loglik=ll, npar=npar, mt1=mt1, details=details)
    _finish_ci(est, loglik)
    return est


def _finish_ci(est: Estimate, loglik=None, level: float = 0.95) -> None:
    """Fill lcl/ucl (log-normal, as secr). At the boundary (N̂ = Mt1) also give the profile-likelihood
    upper limit when ``loglik(N)`` is passed, in ``details['ucl_profile']`` and the note."""
    if est.N is None:
        return
    if est.se is None or not math.isfinite(est.se):
        est.se = None
    ci = lognormal_ci(est.mt1, est.N, est.se, level) if est.se is not None else None
    if est.N - est.mt1 > BOUNDARY_F0 and ci is not None:
        est.lcl, est.ucl = ci
        return
    # N̂ equals the number seen: f0 -> 0, and the log-normal interval of secr::closedN and CAPTURE
    # (Mt1 + f0/C .. Mt1 + f0*C) collapses onto the number seen: "6.0 (6.0-6.0)" for a survey that may
    # well have missed animals. The profile-likelihood interval (chi-square 1 df) does not degenerate, so
    # it is the reported one; the log-normal upper limit stays in details for comparison with other tools.
    est.status = AT_BOUNDARY
    est.lcl = float(est.mt1)
    ln = lognormal_ci(est.mt1, est.N, est.se, level) if est.se is not None else None
    # as f0 -> 0+ the log-normal upper limit Mt1 + f0*C tends to Mt1 (f0*C ~ f0*exp(z*sqrt(2 ln(se/f0))))
    est.details["ucl_lognormal"] = ln[1] if ln else (float(est.mt1) if est.se is not None else None)
    profile = None
    if loglik is not None and est.loglik is not None:
        crit = stats.chi2.ppf(level, 1) / 2
        target = est.loglik - crit
        g = lambda N: loglik(N) - target  # noqa: E731
        hi = est.N + 1.0
        while g(hi) > 0 and hi < MAX_N:
            hi = est.mt1 + 2 * (hi - est.mt1)
        if g(hi) <= 0:
            profile = float(optimize.brentq(g, est.N, hi, xtol=1e-6))
    est.details["ucl_profile"] = profile
    if profile is not None:
        est.ucl = profile
        est.ci_method = "profile likelihood (N̂ at the number seen; the log-normal interval collapses)"
        why = (f"the log-normal interval (as in secr) collapses onto the number seen "
               f"(upper limit {est.details['ucl_lognormal']:.1f}) and understates the uncertainty, so the "
               f"profile-likelihood interval is reported ({est.lcl:.0f}-{profile:.1f})"
               if est.details["ucl_lognormal"] is not None else
               "the profile-likelihood interval is reported")
    else:
        est.ucl = est.details["ucl_lognormal"]
        why = ("the log-normal interval (as in secr) collapses towards the number seen and understates the "
               "uncertainty; this model has no profile likelihood here" + ("" if est.ucl is not None else
                                                                            "; no upper limit can be given"))
    est.note = (est.note + "; " if est.note else "") + (
        "N̂ equals the number seen (every animal probably detected): " + why)


# -- the five estimators ----------------------------------------------------------------------------
def m0(X, max_n: float = MAX_N) -> Estimate:
    """M0, multinomial ML with continuous N (Otis et al. 1978 p. 105; secr ``null``)."""
    s = CaptureSummary.from_matrix(X)
    T, mt1, n = s.n_occasions, s.n_animals, int(s.n.sum())
    if T < 2 or mt1 == 0:
        return _undefined("M0", s, "need at least 2 occasions and 1 capture")

    def loglik(N):
        return (xlogy(n, n) + xlogy(T * N - n, T * N - n) - xlogy(T * N, T * N)
                + _log_multinomial_coef(N, mt1))

    def se_fn(N):
        p = n / (T * N)
        if p >= 1:
            return 0.0
        denom = (1 - p) ** (-T) - T / (1 - p) + T - 1
        return math.sqrt(N / denom) if denom > 0 else None

    return _ml_result("M0", loglik, mt1, 2, se_fn, max_n, recaptures=n - mt1)


def mt(X, max_n: float = MAX_N) -> Estimate:
    """Mt, Darroch's ML estimator (Otis et al. 1978 pp. 106-7; secr ``darroch``).

    Undefined when an occasion has no captures (its capture probability is 0, and CAPTURE/secr
    give NaN): pool occasions first.
    """
    s = CaptureSummary.from_matrix(X)
    T, mt1 = s.n_occasions, s.n_animals
    if T < 2 or mt1 == 0:
        return _undefined("Mt", s, "need at least 2 occasions and 1 capture")
    empty = [j + 1 for j in range(T) if s.n[j] == 0]
    if empty:
        return _undefined("Mt", s, f"occasion(s) {empty} have no captures, so Mt (Darroch) is undefined: "
                                   "pool occasions (merge adjacent columns; from a catalog, "
                                   "`spotid census --occasion-days` larger) or drop the empty ones",
                          npar=T + 1)
    nt = s.n.astype(float)

    def loglik(N):
        return float(_log_multinomial_coef(N, mt1) - T * xlogy(N, N) + np.sum(xlogy(nt, nt) + xlogy(N - nt, N - nt)))

    def se_fn(N):
        if np.any(nt >= N):
            return None
        t1 = float(np.prod(1 - nt / N))
        t2 = float(np.sum(1 / (1 - nt / N)))
        denom = 1 / t1 + T - 1 - t2
        return math.sqrt(N / denom) if denom > 0 else None

    return _ml_result("Mt", loglik, mt1, T + 1, se_fn, max_n, recaptures=int(nt.sum()) - mt1)


def mb(X, max_n: float = MAX_N) -> Estimate:
    """Mb, Zippin's removal ML estimator with the full likelihood (Otis et al. 1978 p. 108; secr ``zippin``)."""
    s = CaptureSummary.from_matrix(X)
    T, mt1 = s.n_occasions, s.n_animals
    if T < 2 or mt1 == 0:
        return _undefined("Mb", s, "need at least 2 occasions and 1 capture")
    m = int(np.sum(s.n - s.u))  # recaptures
    Mj = np.concatenate([[0], np.cumsum(s.u)])
    Mdot = int(Mj[1:T].sum())
    cterm = xlogy(m, m / Mdot) + xlogy(Mdot - m, 1 - m / Mdot) if Mdot > 0 else 0.0

    def loglik(N):
        return float(_log_multinomial_coef(N, mt1) + xlogy(mt1, mt1)
                     + xlogy(T * N - Mdot - mt1, T * N - Mdot - mt1) - xlogy(T * N - Mdot, T * N - Mdot) + cterm)

    def se_fn(N):
        p = mt1 / (T * N - Mdot)
        q = (1 - p) ** T
        denom = (1 - q) ** 2 - T**2 * p**2 * (1 - p) ** (T - 1)
        return math.sqrt(N * q * (1 - q) / denom) if denom > 0 else None

    # Zippin's condition for a finite estimate: new captures must decline over the occasions.
    declining = float(np.sum((T + 1 - 2 * np.arange(1, T + 1)) * s.u)) > 0
    est = _ml_result("Mb", loglik, mt1, 3, se_fn, max_n, recaptures=m)
    if not declining and est.status == OK:
        est.note = "new captures do not decline over the occasions: the removal model fits poorly"
    elif est.status == NOT_ESTIMABLE and m > 0:
        est.note = "new captures do not decline over the occasions: N̂ (Zippin) is not estimable"
    return est


def mh_chao(X) -> Estimate:
    """Chao (1987) Mh estimator from the capture frequencies f1, f2 (secr ``chao`` when f2 > 0).

    f2 = 0: the bias-corrected form ``S + f1 (f1 - 1) / (2 (f2 + 1))`` with its variance
    (Chao 2005), because the classical ``f1^2 / (2 f2)`` divides by zero.
    """
    s = CaptureSummary.from_matrix(X)
    S = s.n_animals
    if S == 0:
        return _undefined("Mh-chao", s, "no animals captured")
    f1 = float(s.f[0])
    f2 = float(s.f[1]) if s.n_occasions > 1 else 0.0
    status, note = OK, ""
    if f2 > 0:
        N = S + f1**2 / f2 / 2
        r = f1 / f2
        var = f2 * (0.25 * r**4 + r**3 + 0.5 * r**2)
    else:
        N = S + f1 * (f1 - 1) / 2
        var = f1 * (f1 - 1) / 2 + f1 * (2 * f1 - 1) ** 2 / 4 - f1**4 / 4 / N if N > 0 else 0.0
        var = max(var, 0.0)
        status, note = BIAS_CORRECTED, "no animal caught exactly twice (f2 = 0): bias-corrected Chao estimator"
        if f1 == S:
            note += "; every animal was seen once, so the estimate is very uncertain"
    est = Estimate("Mh-chao", N, math.sqrt(var), None, None, mt1=S, status=status, note=note,
                   details={"f1": int(f1), "f2": int(f2)})
    _finish_ci(est)
    return est


def _jack_coefficients(T: int) -> np.ndarray:
    """Burnham & Overton (1979) Table 1 coefficients a_{k,i} + 1, shape (min(T, 5), T)."""
    T = np.float64(T)  # numpy floats: 0/0 for small T gives nan (unused entries), not ZeroDivisionError
    T1, T2, T3, T4, T5 = T - 1, T - 2, T - 3, T - 4, T - 5
    a = np.zeros((5, 5))
    with np.errstate(divide="ignore", invalid="ignore"):
        a[0, 0] = T1 / T
        a[1, 0] = (2 * T - 3) / T
        a[1, 1] = -(T2**2) / (T * T1)
        a[2, 0] = (3 * T - 6) / T
        a[2, 1] = -(3 * T**2 - 15 * T + 19) / (T * T1)
        a[2, 2] = T3**3 / (T * T1 * T2)
        a[3, 0] = (4 * T - 10) / T
        a[3, 1] = -(6 * T**2 - 36 * T + 55) / (T * T1)
        a[3, 2] = (4 * T**3 - 42 * T**2 + 148 * T - 175) / (T * T1 * T2)
        a[3, 3] = -(T4**4) / (T * T1 * T2 * T3)
        a[4, 0] = (5 * T - 15) / T
        a[4, 1] = -(10 * T**2 - 70 * T + 125) / (T * T1)
        a[4, 2] = (10 * T**3 - 120 * T**2 + 485 * T - 660) / (T * T1 * T2)
        a[4, 3] = -(T4**5 - T5**5) / (T * T1 * T2 * T3)
        a[4, 4] = T5**5 / (T * T1 * T2 * T3 * T4)
    T = int(T)
    k = min(T, 5)
    out = np.zeros((k, T))
    out[:, :k] = a[:k, :k]
    return out + 1.0


def mh_jackknife(X, crit: float = 3.84) -> Estimate:
    """Burnham & Overton jackknife with CAPTURE's order selection and interpolation (secr ``jackknife``).

    Orders 1..min(T, 5); the first order k whose test against k+1 is not significant (chi-square
    1 df < 3.84) is chosen, interpolating between k-1 and k. Variance: unconditional over the
    order-selection probabilities (K. P. Burnham, as in secr).
    """
    s = CaptureSummary.from_matrix(X)
    S, T = s.n_animals, s.n_occasions
    if T < 2 or S < 2:
        return _undefined("Mh-jackknife", s, "need at least 2 occasions and 2 animals")
    fi = s.f.astype(float)
    k5 = min(5, T)
    aki = _jack_coefficients(T)
    nj = aki @ fi
    varnj = (aki**2) @ fi - nj
    difnk = nj[1:k5] - nj[: k5 - 1]
    b2f = ((aki[1:k5] - aki[: k5 - 1]) ** 2) @ fi
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (difnk / np.sqrt(S / (S - 1) * (b2f - difnk**2 / S))) ** 2
    t = np.where(np.isfinite(t), t, 0.0)
    test = np.concatenate([t, [0.0]])
    mt_ = int(np.argmax(test < crit))  # 0-based order index (order mt_+1)
    if mt_ == 0:
        xtest = nj[0] * fi[0] / (nj[0] - fi[0]) if nj[0] != fi[0] else 0.0
        if xtest > crit:
            alpha = (xtest - crit) / (xtest - test[0])
            z = aki[0] * alpha + (1 - alpha)
            N = float(z @ fi)
        else:
            N = float(nj[0])
    else:
        alpha = (test[mt_ - 1] - crit) / (test[mt_ - 1] - test[mt_])
        z = aki[mt_] * alpha + aki[mt_ - 1] * (1 - alpha)
        N = float(z @ fi)
    details = {"order": mt_ + 1, "N_by_order": [float(v) for v in nj], "test": [float(v) for v in test]}
    if N < S:
        est = Estimate("Mh-jackknife", float(nj[0]), None, None, None, mt1=S, status=UNDEFINED,
                       note="data ill-conditioned for the jackknife (N̂ < number seen); first-order value shown",
                       details=details)
        est.lcl = float(S)
        return est
    beta = np.array([stats.chi2.cdf(3.8415, 1) if tt - 1 <= 0 else stats.ncx2.cdf(3.8415, 1, tt - 1)
                     for tt in test])
    Pi = np.ones(k5)
    for i in range(1, k5):
        Pi[i] = Pi[i - 1] * (1 - beta[i - 1])
    Pi[: k5 - 1] *= beta[: k5 - 1]
    if k5 < 5:
        Pi[k5 - 1] = 1 - Pi[: k5 - 1].sum()
    var = float(np.sum(Pi * varnj) + np.sum(Pi * (nj - np.sum(Pi * nj)) ** 2))
    est = Estimate("Mh-jackknife", N, math.sqrt(max(var, 0.0)), None, None, mt1=S, details=details)
    if s.f[0] == S:
        est.note = "every animal was seen once: heterogeneity estimators are very uncertain"
    _finish_ci(est)
    return est


def _undefined(model: str, s: CaptureSummary, note: str, npar: int | None = None) -> Estimate:
    return Estimate(model, None, None, None, None, npar=npar, mt1=s.n_animals, status=UNDEFINED, note=note)


# -- all models, AICc --------------------------------------------------------------------------------
@dataclass
class EstimationResult:
    """All estimates for one capture-history matrix, with the AICc choice among likelihood models."""

    mna: int
    n_occasions: int
    estimates: list[Estimate]
    best: str | None
    best_reason: str
    counts: dict

    def to_dict(self) -> dict:
        return {"mna": self.mna, "n_occasions": self.n_occasions, "estimates": [e.to_dict() for e in self.estimates],
                "best": self.best, "best_reason": self.best_reason, "counts": self.counts}

    def get(self, model: str) -> Estimate:
        for e in self.estimates:
            if e.model == model:
                return e
        raise KeyError(model)


def add_aicc(estimates: list[Estimate]) -> None:
    """AIC, AICc (secr: n = Mt1 animals), ΔAICc and Akaike weights among estimates with a likelihood."""
    for e in estimates:
        if e.loglik is None or e.npar is None or e.N is None:
            continue
        e.aic = -2 * e.loglik + 2 * e.npar
        if e.mt1 - e.npar - 1 > 0:
            e.aicc = -2 * e.loglik + 2 * e.npar * e.mt1 / (e.mt1 - e.npar - 1)
    have = [e for e in estimates if e.aicc is not None]
    if not have:
        return
    lo = min(e.aicc for e in have)
    w = {id(e): math.exp(-(e.aicc - lo) / 2) for e in have}
    tot = sum(w.values())
    for e in have:
        e.daicc = e.aicc - lo
        e.aicc_weight = w[id(e)] / tot
