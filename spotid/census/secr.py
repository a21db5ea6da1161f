"""Spatially explicit capture-recapture (SECR) by maximum likelihood (Borchers & Efford 2008), as R's secr.

Data: ``captures`` (n, S, K) detection counts of n animals on S occasions at K traps, ``traps`` (K, 2)
x/y in metres, ``usage`` (K, S) effort (0 = not operating, 1 = a full occasion); a :class:`Mask` (M
points). Model: activity centres are a homogeneous Poisson process of density D (animals/ha) on the
mask; the hazard of detection at trap k for an animal centred at x is ``h_k(x) = -log(1 - g(d))`` for
secr's HN/HR (``g0``), or ``λ(d)`` itself for HHN/HHR (``λ0``), and usage scales the hazard
(secr's convention):

- ``multi`` (multi-catch trap; also what secr.fit uses for single-catch traps): on occasion s the
  animal is caught somewhere with probability ``1 - exp(-H_s)``, ``H_s = Σ_k u_ks h_k``, at trap k
  with share ``u_ks h_k / H_s``;
- ``proximity``: binary per trap and occasion, ``p_ks = 1 - exp(-u_ks h_k)``;
- ``count``: Poisson counts per trap and occasion with mean ``u_ks h_k``.

Full log-likelihood (secr's ``CL = FALSE``, Poisson n; the same terms as ``secr.fit``'s logLik)::

    log L = n log(D a_c) + Σ_i log Σ_m Pr(ω_i | x_m) - D a(θ) - Σ_ω log(n_ω!)

with ``a_c`` the mask cell area, ``a(θ) = a_c Σ_m p.(x_m)`` the effective sampling area (esa),
``p.(x) = 1 - exp(-Σ_ks u_ks h_k(x))`` and ``n_ω`` the number of animals sharing each distinct
capture history. At the maximum ``D̂ = n / a(θ̂)``, so the fit profiles D out and maximises over the
detection parameters only (BFGS on the link scale, Nelder-Mead as fallback), then takes the Hessian of the full
likelihood in all parameters by central differences: SEs by the delta method and 95% intervals
back-transformed from the link scale (D: ``exp(log D̂ ± 1.96 SE(log D̂))``), as secr.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import optimize
from scipy.special import expit, gammaln, logit, logsumexp

from spotid.census.secr_mask import Mask

log = logging.getLogger(__name__)

DETECTORS = ("multi", "proximity", "count")
# name -> (secr code, baseline parameter, has shape z)
DETECTFNS = {"HN": (0, "g0", False), "HR": (1, "g0", True), "HHN": (14, "lambda0", False),
             "HHR": (15, "lambda0", True)}
Z95 = 1.959963984540054
EDGE_PDOT = 0.05    # warn when an animal centred on the mask's edge is this detectable


class SECRDataError(ValueError):
    """The data cannot support an SECR fit; the message says why and what to do."""


def hazard(d2: np.ndarray, base: float, sigma: float, z: float | None, detectfn: str) -> np.ndarray:
    """Per-occasion detection hazard ``h(d)`` at squared distance ``d2`` (any shape, m²).

    HN: ``g = g0 exp(-d²/2σ²)``; HR: ``g = g0 (1 - exp(-(d/σ)^-z))``; both as hazard ``-log(1-g)``.
    HHN: ``λ0 exp(-d²/2σ²)``; HHR: ``λ0 (1 - exp(-(d/σ)^-z))`` (already hazards).
    """
    if detectfn in ("HN", "HHN"):
        f = np.exp(-d2 / (2 * sigma * sigma))
    elif detectfn in ("HR", "HHR"):
        with np.errstate(divide="ignore", over="ignore"):
            f = -np.expm1(-np.power(np.sqrt(d2) / sigma, -z))   # d = 0 -> 1
    else:
        raise ValueError(f"unknown detection function {detectfn!r}; choose from {list(DETECTFNS)}")
    if DETECTFNS[detectfn][1] == "g0":
        return -np.log1p(-base * f)
    return base * f


def detection_probability(d: np.ndarray, base: float, sigma: float, z: float | None, detectfn: str) -> np.ndarray:
    """``g(d)``: the probability of detection in one full occasion at distance ``d`` (metres)."""
    return -np.expm1(-hazard(np.asarray(d, float) ** 2, base, sigma, z, detectfn))


@dataclass
class SECRFit:
    """Result of one SECR fit. Densities per hectare unless named otherwise."""

    detector: str
    detectfn: str
    n_animals: int
    n_occasions: int
    n_traps: int
    n_detections: int
    D: float | None = None                  # animals / ha
    D_se: float | None = None
    D_lcl: float | None = None
    D_ucl: float | None = None
    params: dict = field(default_factory=dict)   # name -> {estimate, se, lcl, ucl, link}
    N: float | None = None                  # expected number of centres in the mask, D × mask area
    N_se: float | None = None
    N_lcl: float | None = None
    N_ucl: float | None = None
    esa_ha: float | None = None             # a(θ̂) = ∫ p.(x) dx; equals n / D̂ at the MLE
    loglik: float | None = None
    npar: int = 0
    aic: float | None = None
    aicc: float | None = None
    mask: dict = field(default_factory=dict)
    status: str = "ok"
    notes: list = field(default_factory=list)
    evaluations: int = 0
    seconds: float = 0.0

    def per_100km2(self, v: float | None) -> float | None:
        return None if v is None else v * 1e4

    def to_dict(self) -> dict:
        d = asdict(self)
        d["D_per_100km2"] = {k: self.per_100km2(getattr(self, a)) for k, a in
                             (("estimate", "D"), ("se", "D_se"), ("lcl", "D_lcl"), ("ucl", "D_ucl"))}
        return _finite(d)


def _finite(v):
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def _log(x: np.ndarray) -> np.ndarray:
    """log with a finite floor, so that 0 × log(0) in the matrix products stays 0 (never NaN)."""
    return np.log(np.maximum(x, 1e-300))


class _Problem:
    """Everything about the data that does not depend on the parameters, computed once."""

    def __init__(self, captures, traps, usage, mask: Mask, detector: str, detectfn: str):
        self.detector, self.detectfn = detector, detectfn
        self.w = np.asarray(captures)
        self.n, self.S, self.K = self.w.shape
        self.usage = np.asarray(usage, float)
        self.U = self.usage.sum(axis=1)                                   # (K,) total effort per trap
        self.d2 = ((np.asarray(traps, float)[:, None, :] - mask.points[None, :, :]) ** 2).sum(-1)  # (K, M)
        self.M, self.cell = len(mask), mask.cell_area_ha
        i, s, k = np.nonzero(self.w)
        y = self.w[i, s, k].astype(float)
        u = self.usage[k, s]
        # log Pr(ω_i | x) is a sum of per-detection terms; they are grouped so that one matrix product
        # (animals × groups) @ (groups × mask) adds them up
        if detector == "multi":        # log u_ks + log h_k(x) + log((1 - e^-H_s)/H_s) + H_s
            self.A_k = np.zeros((self.n, self.K))
            np.add.at(self.A_k, (i, k), 1.0)
            self.A_s = np.zeros((self.n, self.S))
            np.add.at(self.A_s, (i, s), 1.0)
            self.c_i = np.bincount(i, weights=np.log(u), minlength=self.n)
        elif detector == "count":      # y (log u_ks + log h_k(x)) - log y!
            self.A_k = np.zeros((self.n, self.K))
            np.add.at(self.A_k, (i, k), y)
            self.c_i = np.bincount(i, weights=y * np.log(u), minlength=self.n)
        else:                          # log(1 - e^{-u h_k(x)}) + u h_k(x), one row per distinct (k, u)
            pairs, inv = np.unique(np.column_stack([k, u]), axis=0, return_inverse=True)
            self.pair_k, self.pair_u = pairs[:, 0].astype(int), pairs[:, 1]
            self.A_p = np.zeros((self.n, len(pairs)))
            np.add.at(self.A_p, (i, inv.ravel()), 1.0)
        self.det_y = y
        # Σ_ω log n_ω!: animals with the same (S, K) history are exchangeable (secr's logmultinom)
        _, counts = np.unique(self.w.reshape(self.n, -1), axis=0, return_counts=True)
        self.log_mult = float(gammaln(counts + 1).sum())
        self.const_y = float(gammaln(self.det_y + 1).sum()) if detector == "count" else 0.0
        self.z_free = DETECTFNS[detectfn][2]
        self.base_name = DETECTFNS[detectfn][1]
        self.evals = 0

    # link scale: [log D, logit g0 | log λ0, log σ, (log z)]
    def real(self, beta):
        base = expit(beta[1]) if self.base_name == "g0" else math.exp(beta[1])
        z = math.exp(beta[3]) if self.z_free else None
        return math.exp(beta[0]), base, math.exp(beta[2]), z

    def parts(self, theta):
        """-> (Σ_i log Σ_m Pr(ω_i|x_m), a(θ) in ha) for detection parameters ``theta`` (link scale)."""
        self.evals += 1
        _, base, sigma, z = self.real(np.r_[0.0, theta])
        hk = hazard(self.d2, base, sigma, z, self.detectfn)             # (K, M)
        total = self.U @ hk                                               # (M,) Σ_ks u_ks h_k
        pdot = -np.expm1(-total)
        a = self.cell * pdot.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.detector == "multi":
                Hs = self.usage.T @ hk                                    # (S, M) hazard of being caught
                R = np.where(Hs > 1e-12, np.log(-np.expm1(-Hs)) - np.log(Hs), -Hs / 2) + Hs
                logpr = self.A_k @ _log(hk) + self.A_s @ R + self.c_i[:, None]
            elif self.detector == "count":
                logpr = self.A_k @ _log(hk) + self.c_i[:, None]
            else:
                uh = self.pair_u[:, None] * hk[self.pair_k]
                logpr = self.A_p @ (_log(-np.expm1(-uh)) + uh)
        logpr -= total[None, :]                                           # (n, M)
        lse = logsumexp(logpr, axis=1)
        return float(lse.sum()), float(a)

    def loglik(self, beta) -> float:
        D = math.exp(beta[0])
        s, a = self.parts(np.asarray(beta[1:]))
        if not (math.isfinite(s) and a > 0):
            return -math.inf
        return self.n * math.log(D * self.cell) + s - D * a - self.log_mult - self.const_y

    def profile(self, theta) -> float:
        """log L at D̂(θ) = n / a(θ)."""
        s, a = self.parts(np.asarray(theta))
        if not (math.isfinite(s) and a > 0):
            return -math.inf
        return self.n * math.log(self.n * self.cell / a) + s - self.n - self.log_mult - self.const_y


def check_data(captures: np.ndarray, usage: np.ndarray, detector: str, trap_ids=()) -> None:
    """Refuse data that cannot support an SECR fit, saying why (raises :class:`SECRDataError`)."""
    w = np.asarray(captures)
    if detector not in DETECTORS:
        raise SECRDataError(f"unknown detector {detector!r}; choose from {list(DETECTORS)}")
    if w.ndim != 3 or w.shape[0] == 0 or w.sum() == 0:
        raise SECRDataError("no detections: SECR needs animals detected at traps")
    if (w < 0).any():
        raise SECRDataError("negative detection counts")
    n, S, K = w.shape
    name = (lambda k: trap_ids[k]) if len(trap_ids) == K else (lambda k: f"#{k + 1}")
    i, s, k = np.nonzero(w)
    idle = usage[k, s] <= 0
    if idle.any():
        j = int(np.argmax(idle))
        raise SECRDataError(f"{int(idle.sum())} detection(s) at traps not operating (usage 0), e.g. at trap "
                            f"{name(k[j])} on occasion {s[j] + 1}: fix the usage (effort) or the capture")
    if detector == "multi":
        per_occ = w.sum(axis=2)
        if (per_occ > 1).any():
            a, o = np.argwhere(per_occ > 1)[0]
            raise SECRDataError(f"animal #{a + 1} is detected {int(per_occ[a, o])} times on occasion {o + 1}: a "
                                "multi-catch trap holds an animal once per occasion; use --detector proximity "
                                "or count for camera stations")
    traps_used = np.unique(k)
    if len(traps_used) == 1:
        raise SECRDataError(f"all {int(w.sum())} detections are at one trap ({name(traps_used[0])}): σ (the "
                            "scale of movement) is not estimable; SECR needs animals detected at several traps")
    per_animal = (w > 0).sum(axis=(1, 2))
    if (per_animal <= 1).all() and (w.sum(axis=(1, 2)) <= 1).all():
        raise SECRDataError(f"no recaptures: each of the {n} animals was detected once, so neither D nor σ is "
                            "estimable; survey longer or with more traps, or report the count of animals seen")
    if ((w.sum(axis=1) > 0).sum(axis=1) < 2).all():
        raise SECRDataError("no animal was detected at two or more traps (no spatial recaptures): σ is not "
                            "estimable; SECR needs some animals seen at several traps")


def _rpsv(w: np.ndarray, traps: np.ndarray) -> float | None:
    """secr's RPSV(CC = TRUE): root pooled spatial variance of each animal's detection locations."""
    ss, df = 0.0, 0
    for a in range(w.shape[0]):
        _, k = np.nonzero(w[a])
        if len(k) > 1:
            xy = traps[k]
            ss += float(((xy - xy.mean(0)) ** 2).sum())
            df += len(k) - 1
    return math.sqrt(ss / df / 2) if df and ss > 0 else None


def _hessian(f, x: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """Central-difference Hessian of scalar ``f`` at ``x`` (steps ``h`` on the link scale)."""
    p = len(x)
    H = np.zeros((p, p))
    f0 = f(x)
    E = np.eye(p) * h
    for a in range(p):
        H[a, a] = (f(x + E[a]) - 2 * f0 + f(x - E[a])) / h ** 2
        for b in range(a):
            H[a, b] = H[b, a] = (f(x + E[a] + E[b]) - f(x + E[a] - E[b]) - f(x - E[a] + E[b])
                                 + f(x - E[a] - E[b])) / (4 * h * h)
    return H


def fit_secr(captures, traps, usage, mask: Mask, detector: str = "multi", detectfn: str = "HN",
             trap_ids=()) -> SECRFit:
    """Maximum-likelihood SECR fit. Shapes: captures (n, S, K), traps (K, 2) m, usage (K, S) or None."""
    t0 = time.perf_counter()
    w = np.asarray(captures, dtype=float)
    traps = np.asarray(traps, dtype=float)
    usage = np.ones((w.shape[2], w.shape[1])) if usage is None else np.asarray(usage, dtype=float)
    if detectfn not in DETECTFNS:
        raise SECRDataError(f"unknown detection function {detectfn!r}; choose from {list(DETECTFNS)}")
    if usage.shape != (w.shape[2], w.shape[1]):
        raise SECRDataError(f"usage is {usage.shape} but the captures need (traps, occasions) = "
                            f"{(w.shape[2], w.shape[1])}")
    check_data(w, usage, detector, trap_ids)
    if detector == "proximity" and (w > 1).any():
        log.info("proximity detectors are binary: %d trap-occasions with several detections count once",
                 int((w > 1).sum()))
        w = (w > 0).astype(float)
    with _one_blas_thread():   # small matrix products: one thread is faster, and kind to shared CPUs
        return _fit(w, traps, usage, mask, detector, detectfn, t0)


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(1)
    except ImportError:  # optional: without it numpy uses its default thread count
        import contextlib
        return contextlib.nullcontext()


def _fit(w, traps, usage, mask, detector, detectfn, t0) -> SECRFit:
    P = _Problem(w, traps, usage, mask, detector, detectfn)
    fit = SECRFit(detector=detector, detectfn=detectfn, n_animals=P.n, n_occasions=P.S, n_traps=P.K,
                  n_detections=int(w.sum()), mask=mask.summary())

    # start: σ from the spread of recaptures (secr's autoini uses RPSV too), a small grid for g0/λ0
    sigma0 = _rpsv(w, traps) or float(np.median(np.sqrt(np.sort(P.d2, axis=0)[1]))) or mask.spacing
    link_base = logit if P.base_name == "g0" else np.log
    starts = [np.r_[link_base(b), math.log(sigma0 * f)] for b in (0.05, 0.2, 0.5) for f in (0.7, 1.0, 1.5)]
    if P.z_free:
        starts = [np.r_[s, math.log(z)] for s in starts for z in (2.0, 5.0)]
    neg = lambda th: -P.profile(th) if np.all(np.abs(th) < 50) else math.inf  # noqa: E731
    best = min(starts, key=neg)
    # BFGS on the smooth profile takes ~30 evaluations on secrdemo (Nelder-Mead ~250, same optimum);
    # Nelder-Mead takes over when BFGS stops early (flat or non-finite regions)
    res = optimize.minimize(neg, best, method="BFGS", options={"gtol": 1e-5})
    log.debug("BFGS: %s, %s evaluations, gradient %s", res.message, res.nfev, res.jac)
    # "precision loss" with a vanishing gradient is the optimum reached at machine precision
    converged = np.isfinite(res.fun) and (res.success or np.max(np.abs(res.jac)) < 1e-3)
    if not converged:
        nm = optimize.minimize(neg, res.x if np.isfinite(res.fun) else best, method="Nelder-Mead",
                               options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 4000, "maxfev": 8000})
        if nm.fun <= res.fun or not np.isfinite(res.fun):
            res = nm
    theta = res.x
    if not np.isfinite(res.fun):
        fit.status, fit.seconds = "failed", time.perf_counter() - t0
        fit.notes.append("the likelihood could not be evaluated at any starting value")
        return fit
    _, a = P.parts(theta)
    beta = np.r_[math.log(P.n / a), theta]
    ll = P.loglik(beta)
    names = ["D", P.base_name, "sigma"] + (["z"] if P.z_free else [])
    links = ["log", "logit" if P.base_name == "g0" else "log", "log"] + (["log"] if P.z_free else [])
    H = _hessian(lambda b: -P.loglik(b), beta)
    try:
        cov = np.linalg.inv(H)
        se_beta = np.sqrt(np.diag(cov))
        if not np.all(np.isfinite(se_beta)) or np.any(np.linalg.eigvalsh(H) <= 0):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        se_beta = np.full(len(beta), np.nan)
        fit.status = "no_variance"
        fit.notes.append("the Hessian is not positive definite: estimates may sit on a boundary, no SEs")
    D, base, sigma, z = P.real(beta)
    real = [D, base, sigma] + ([z] if P.z_free else [])
    for nm, lk, est, b, sb in zip(names, links, real, beta, se_beta):
        back = expit if lk == "logit" else np.exp
        # secr's se.untransform: delta method for logit, log-normal for log (exp(β) sqrt(exp(SE²) - 1))
        with np.errstate(over="ignore"):
            if lk == "logit":
                se, lo, hi = est * (1 - est) * sb, float(back(b - Z95 * sb)), float(back(b + Z95 * sb))
            else:   # an SE on the log scale past ~26 overflows: the data do not bound the parameter
                se = est * math.sqrt(math.expm1(sb * sb)) if sb * sb < 700 else math.inf
                lo, hi = float(back(b - Z95 * sb)), float(back(b + Z95 * sb))
        if not all(math.isfinite(v) for v in (se, lo, hi)):
            se, lo, hi = None, None, None
            if fit.status == "ok":
                fit.status = "no_variance"
            fit.notes.append(f"the SE of {nm} is unbounded (SE {sb:.3g} on the {lk} scale): these data do not "
                             "bound it, so no interval is given; more stations with recaptures are needed")
        fit.params[nm] = {"estimate": est, "se": se, "lcl": lo, "ucl": hi, "link": lk, "beta": float(b),
                          "se_beta": float(sb)}
    p = fit.params["D"]
    fit.D, fit.D_se, fit.D_lcl, fit.D_ucl = p["estimate"], p["se"], p["lcl"], p["ucl"]
    A = mask.area_ha

    def scaled(v):
        return None if v is None else v * A

    fit.N, fit.N_se, fit.N_lcl, fit.N_ucl = D * A, scaled(p["se"]), scaled(p["lcl"]), scaled(p["ucl"])
    fit.esa_ha = a
    fit.loglik, fit.npar = ll, len(beta)
    fit.aic = -2 * ll + 2 * fit.npar
    fit.aicc = fit.aic + 2 * fit.npar * (fit.npar + 1) / (P.n - fit.npar - 1) if P.n > fit.npar + 1 else None
    fit.evaluations, fit.seconds = P.evals, time.perf_counter() - t0
    _edge_note(fit, P, traps, mask, base, sigma, z)
    if not res.success:
        fit.notes.append(f"optimiser: {res.message}")
    return fit


def _edge_note(fit: SECRFit, P: _Problem, traps, mask: Mask, base, sigma, z) -> None:
    """Warn when animals centred at the mask's outer edge could still be detected (buffer too small)."""
    dmin = np.sqrt(P.d2.min(axis=0))
    edge = dmin >= dmin.max() - 1.5 * mask.spacing
    pdot = -np.expm1(-(P.U @ hazard(P.d2[:, edge], base, sigma, z, P.detectfn)))
    fit.mask["pdot_at_edge"] = float(pdot.max()) if len(pdot) else 0.0
    # a heuristic, not secr's bias.D: secrdemo with secr's own 100 m buffer has 0.034 here
    if len(pdot) and pdot.max() > EDGE_PDOT:
        fit.notes.append(f"animals centred at the mask's edge are still detected with probability up to "
                         f"{pdot.max():.3f}: the buffer may be too small (try --buffer {4 * sigma:.0f}, about 4σ̂)")


@dataclass(frozen=True)
class SECR:
    """The SECR estimator behind the registry seam: settings here, data through ``__call__``.

    ``__call__(data)`` needs ``data.captures`` (n, S, K), ``data.traps`` (K, 2) metres and optionally
    ``data.usage`` (K, S). The returned Estimate's N is the expected number of activity centres in the
    mask (D̂ × mask area); D per ha and per 100 km², g0/λ0, σ, esa and the mask are in ``details``.
    Data that cannot support a fit (one trap, no recaptures, ...) give status "not_estimable" and the
    reason in ``note``; :func:`fit_secr` raises instead.
    """

    buffer: float = 100.0
    nx: int = 64
    detector: str = "multi"
    detectfn: str = "HN"
    mask: Mask | None = None
    polygon: tuple | None = None          # habitat rings, each (V, 2) metres
    name: str = "SECR"
    secr_name: str | None = "secr"
    has_likelihood: bool = True
    spatial: bool = True

    def make_mask(self, traps) -> Mask:
        from spotid.census.secr_mask import make_mask
        return self.mask if self.mask is not None else make_mask(
            traps, self.buffer, self.nx, polygon=list(self.polygon) if self.polygon else None)

    def fit(self, data) -> SECRFit:
        if data.captures is None or data.traps is None:
            raise SECRDataError("SECR needs where each animal was detected (captures per trap) and the trap "
                                "coordinates; the 0/1 histories alone only support the non-spatial models")
        return fit_secr(data.captures, data.traps, data.usage, self.make_mask(data.traps), self.detector,
                        self.detectfn, trap_ids=data.trap_ids)

    def __call__(self, data):
        from spotid.census.estimators import NOT_ESTIMABLE, OK, Estimate

        n = int(np.asarray(data.histories).any(axis=1).sum()) if data.histories is not None else 0
        try:
            f = self.fit(data)
        except SECRDataError as e:
            return Estimate(model=self.name, N=None, se=None, lcl=None, ucl=None, mt1=n, status=NOT_ESTIMABLE,
                            note=str(e), ci_method="log-normal on log D (secr)")
        return Estimate(model=self.name, N=f.N, se=f.N_se, lcl=f.N_lcl, ucl=f.N_ucl, loglik=f.loglik,
                        npar=f.npar, aic=f.aic, aicc=f.aicc, mt1=f.n_animals,
                        status=OK if f.status == "ok" else f.status, note="; ".join(f.notes),
                        ci_method="log-normal on log D (secr); N = D × mask area", details=f.to_dict())
