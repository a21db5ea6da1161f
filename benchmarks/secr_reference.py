"""SECR against R's secr 5.4.1 and against simulated truth.

    python benchmarks/secr_reference.py [--shared ../shared] [--surveys 0] [--seed 1] [--json OUT]

1. secrdemo (multi-catch likelihood, half-normal, 100 m trapbuffer mask, nx 64): our estimates beside
   secr 5.4.1's and their ratio (target: within 2%; logLik within 0.05).
2. Other real data without a stored R reference, for the record: deermouse ESG (multi, HN, 60 and
   100 m buffers) and the Nagarahole tigers (proximity, HN, 120 stations with usage, on the SPACECAP
   state space and on a 15 km buffer; coordinates in km).
3. ``--surveys N``: N surveys simulated from the model (6 × 6 proximity grid, 20 m apart, D 25/ha,
   g0 0.25, σ 18 m, 5 occasions), each fitted; prints the coverage of the 95% CI of D and the
   relative bias of D̂ — the baseline is the truth each survey was drawn from.
Seconds are wall-clock per fit on this (shared, loaded) machine.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REFERENCE = {"D": 5.4798, "D_se": 0.6467, "D_lcl": 4.3516, "D_ucl": 6.9005, "g0": 0.27319,
             "sigma": 29.366, "loglik": -759.0257}


def _row(name, f) -> dict:
    p = f.params
    return {"data": name, "D_per_100km2": f.D * 1e4, "D_lcl": f.D_lcl * 1e4, "D_ucl": f.D_ucl * 1e4,
            "base": p.get("g0", p.get("lambda0"))["estimate"], "sigma_m": p["sigma"]["estimate"],
            "N_mask": f.N, "esa_km2": f.esa_ha / 100, "loglik": f.loglik, "animals": f.n_animals,
            "mask_points": f.mask["points"], "seconds": round(f.seconds, 1), "notes": f.notes}


def real_data(shared: Path) -> dict:
    from spotid.census.secr import SECR
    from spotid.census.secr_io import load_secr_inputs
    from spotid.census.secr_mask import read_mask_points

    c = shared / "census"
    out = {}
    data, _ = load_secr_inputs(c / "secrdemo_captures_long.csv", c / "secrdemo_traps.csv")
    f = SECR(buffer=100, nx=64, detector="multi", detectfn="HN").fit(data)
    ours = {"D": f.D, "D_se": f.D_se, "D_lcl": f.D_lcl, "D_ucl": f.D_ucl, "g0": f.params["g0"]["estimate"],
            "sigma": f.params["sigma"]["estimate"], "loglik": f.loglik}
    print(f"secrdemo vs secr 5.4.1 ({f.seconds:.1f} s, {f.evaluations} evaluations, {f.mask['points']} mask points)")
    print(f"{'':8s} {'ours':>12s} {'secr':>12s} {'ratio':>8s}")
    for k, ref in REFERENCE.items():
        extra = f"diff {ours[k] - ref:+.4f}" if k == "loglik" else f"{ours[k] / ref:8.4f}"
        print(f"{k:8s} {ours[k]:12.5f} {ref:12.5f} {extra}")
    out["secrdemo"] = {"ours": ours, "secr_5.4.1": REFERENCE, "seconds": f.seconds}

    rows = []
    esg, _ = load_secr_inputs(c / "deermouse_ESG_captures_long.csv", c / "deermouse_ESG_traps.csv")
    for buf in (60, 100):
        rows.append(_row(f"deermouse ESG multi HN {buf} m", SECR(buffer=buf, detector="multi").fit(esg)))
    tig, _ = load_secr_inputs(c / "tiger_nagarahole_captures_long.csv", c / "tiger_nagarahole_traps.csv",
                              scale=1000)
    ss = read_mask_points(c / "tiger_nagarahole_studyarea.csv", scale=1000)
    rows.append(_row("tigers proximity HN state space", SECR(detector="proximity", mask=ss).fit(tig)))
    rows.append(_row("tigers proximity HN 15 km", SECR(detector="proximity", buffer=15000).fit(tig)))
    rows.append(_row("tigers count HN state space", SECR(detector="count", mask=ss).fit(tig)))
    print(f"\n{'data':34s} {'D/100km²':>10s} {'95% CI':>17s} {'g0':>7s} {'σ m':>7s} {'N mask':>7s} "
          f"{'esa km²':>8s} {'logLik':>9s} {'s':>5s}")
    for r in rows:
        print(f"{r['data']:34s} {r['D_per_100km2']:10.4g} {r['D_lcl']:8.4g}–{r['D_ucl']:<8.4g} {r['base']:7.4f} "
              f"{r['sigma_m']:7.1f} {r['N_mask']:7.1f} {r['esa_km2']:8.4g} {r['loglik']:9.3f} {r['seconds']:5.1f}")
    out["other"] = rows
    return out


def simulate(n: int, seed: int) -> dict:
    from spotid.census.secr import fit_secr
    from spotid.census.secr_io import simulate_secr
    from spotid.census.secr_mask import make_mask

    rng = np.random.default_rng(seed)
    gx, gy = np.meshgrid(np.arange(6) * 20.0, np.arange(6) * 20.0)
    traps = np.column_stack([gx.ravel(), gy.ravel()])
    D, g0, sigma = 25.0, 0.25, 18.0
    mask = make_mask(traps, buffer=80, nx=32)
    hits, rel, t0 = 0, [], time.perf_counter()
    for _ in range(n):
        w, _, _ = simulate_secr(rng, traps, D=D, g0=g0, sigma=sigma, n_occasions=5, buffer=80.0)
        f = fit_secr(w, traps, None, mask, "proximity", "HN")
        hits += f.D_lcl <= D <= f.D_ucl
        rel.append(f.D / D - 1)
    res = {"surveys": n, "coverage_D_95": hits / n, "relative_bias_D": float(np.mean(rel)),
           "rmse_rel": float(np.sqrt(np.mean(np.square(rel)))), "seconds_per_fit": (time.perf_counter() - t0) / n}
    print(f"\nsimulated surveys (truth D {D}/ha, g0 {g0}, σ {sigma} m): {n} fits, 95% CI of D holds the truth in "
          f"{hits}/{n} ({hits / n:.0%}); relative bias {res['relative_bias_D']:+.3f}, rel. RMSE {res['rmse_rel']:.3f}; "
          f"{res['seconds_per_fit']:.1f} s per fit")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared")
    ap.add_argument("--surveys", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    doc = {}
    if (a.shared / "census").is_dir():
        doc["real"] = real_data(a.shared)
    else:
        print(f"{a.shared}/census absent: real-data comparison skipped")
    if a.surveys:
        doc["simulation"] = simulate(a.surveys, a.seed)
    if a.json:
        a.json.write_text(json.dumps(doc, indent=1, default=float))


if __name__ == "__main__":
    main()
