"""SECR (spotid.census.secr*): hand-checked pieces, a brute-force likelihood, a simulation, bad input, secrdemo."""
from __future__ import annotations

import json
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import gammaln
from typer.testing import CliRunner

from spotid.census import registry
from spotid.census.secr import (SECR, SECRDataError, _Problem, detection_probability, fit_secr, hazard)
from spotid.census.secr_io import capture_data_from_census, load_secr_inputs, simulate_secr
from spotid.census.secr_mask import Mask, make_mask, points_in_polygons, read_mask_points, read_polygon


# --- detection functions ----------------------------------------------------------------------------

def test_detection_functions_by_hand():
    # HN: g(σ) = g0 e^{-1/2}
    assert detection_probability(20.0, 0.3, 20.0, None, "HN") == pytest.approx(0.3 * math.exp(-0.5), rel=1e-12)
    assert detection_probability(0.0, 0.3, 20.0, None, "HN") == pytest.approx(0.3, rel=1e-12)
    # HR: g(σ) = g0 (1 - e^{-1}) for any z; at 2σ with z = 2: g0 (1 - e^{-1/4})
    assert detection_probability(10.0, 0.5, 10.0, 2.0, "HR") == pytest.approx(0.5 * (1 - math.exp(-1)), rel=1e-12)
    assert detection_probability(20.0, 0.5, 10.0, 2.0, "HR") == pytest.approx(0.5 * (1 - math.exp(-0.25)), rel=1e-12)
    assert detection_probability(0.0, 0.5, 10.0, 2.0, "HR") == pytest.approx(0.5, rel=1e-12)
    # HHN is a hazard: p = 1 - exp(-λ0 e^{-1/2}); the HN hazard is -log(1 - g)
    assert detection_probability(5.0, 0.4, 5.0, None, "HHN") == pytest.approx(1 - math.exp(-0.4 * math.exp(-0.5)))
    assert hazard(np.array(400.0), 0.3, 20.0, None, "HN") == pytest.approx(-math.log(1 - 0.3 * math.exp(-0.5)))
    with pytest.raises(ValueError, match="unknown detection function"):
        hazard(np.array(1.0), 0.3, 1.0, None, "EX")


# --- masks ---------------------------------------------------------------------------------------------

def test_mask_two_traps_by_hand():
    traps = np.array([[0.0, 0.0], [100.0, 0.0]])
    # box -50..150 × -50..50, spacing 200/8 = 25 m: 8 × 4 cell centres at -37.5, -12.5, ...
    rect = make_mask(traps, buffer=50, nx=8, type="traprect")
    assert len(rect) == 32 and rect.spacing == 25.0
    assert sorted(set(rect.points[:, 0])) == [-37.5, -12.5, 12.5, 37.5, 62.5, 87.5, 112.5, 137.5]
    assert sorted(set(rect.points[:, 1])) == [-37.5, -12.5, 12.5, 37.5]
    assert rect.area_ha == pytest.approx(32 * 625 / 1e4)
    # trapbuffer: rows y = ±12.5 all within 50 m (8 + 8); rows y = ±37.5 only x = -12.5, 12.5, 87.5, 112.5
    buf = make_mask(traps, buffer=50, nx=8)
    assert len(buf) == 24 and buf.area_ha == pytest.approx(1.5)
    # a habitat polygon (x <= 50) drops the right-hand half
    clipped = make_mask(traps, buffer=50, nx=8, polygon=[np.array([[-60, -60], [50, -60], [50, 60], [-60, 60]])])
    assert len(clipped) == 12 and (clipped.points[:, 0] < 50).all()


def test_polygon_with_hole_and_files(tmp_path):
    outer = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    hole = np.array([[4, 4], [6, 4], [6, 6], [4, 6]], float)
    pts = np.array([[1, 1], [5, 5], [11, 5], [9, 9]], float)
    assert points_in_polygons(pts, [outer, hole]).tolist() == [True, False, False, True]
    gj = tmp_path / "habitat.geojson"
    gj.write_text(json.dumps({"type": "Feature", "geometry": {"type": "Polygon",
                                                              "coordinates": [outer.tolist(), hole.tolist()]}}))
    rings = read_polygon(gj, scale=1000)
    assert len(rings) == 2 and rings[0][1].tolist() == [10000, 0]
    grid = tmp_path / "mask.csv"
    grid.write_text("x,y,avail\n0,0,1\n0.5,0,1\n1,0,0\n0,0.5,1\n")
    m = read_mask_points(grid, scale=1000)
    assert len(m) == 3 and m.spacing == pytest.approx(500) and m.area_ha == pytest.approx(3 * 25)


# --- the likelihood against a brute-force sum -------------------------------------------------------------

def _brute_loglik(w, traps, usage, pts, cell, D, g0, sigma, detector, z=None):
    """The secr full likelihood written out with loops: Poisson n, Σ_m Pr(ω|x_m) per animal, n_ω!.
    Half-normal, or hazard-rate g0 (1 - exp(-(d/σ)^-z)) when ``z`` is given."""
    n, S, K = w.shape

    def g(x, t):
        d = math.sqrt(((x - t) ** 2).sum())
        return g0 * (1 - math.exp(-(d / sigma) ** -z)) if z else g0 * math.exp(-d * d / (2 * sigma ** 2))

    ll = n * math.log(D * cell)
    pdot_sum = 0.0
    for x in pts:
        h = [-math.log(1 - g(x, t)) for t in traps]
        pdot_sum += 1 - math.exp(-sum(usage[k, s] * h[k] for k in range(K) for s in range(S)))
    for i in range(n):
        tot = 0.0
        for x in pts:
            h = [-math.log(1 - g(x, t)) for t in traps]
            pr = 1.0
            for s in range(S):
                if detector == "multi":
                    H = sum(usage[k, s] * h[k] for k in range(K))
                    ks = [k for k in range(K) if w[i, s, k]]
                    pr *= (1 - math.exp(-H)) * usage[ks[0], s] * h[ks[0]] / H if ks else math.exp(-H)
                else:
                    for k in range(K):
                        lam = usage[k, s] * h[k]
                        if detector == "proximity":
                            p = 1 - math.exp(-lam)
                            pr *= p if w[i, s, k] else 1 - p
                        else:
                            y = w[i, s, k]
                            pr *= math.exp(-lam) * lam ** y / math.factorial(y)
            tot += pr
        ll += math.log(tot)
    _, counts = np.unique(w.reshape(n, -1), axis=0, return_counts=True)
    return ll - D * cell * pdot_sum - float(gammaln(counts + 1).sum())


@pytest.mark.parametrize("detector,detectfn", [("multi", "HN"), ("proximity", "HN"), ("count", "HN"),
                                               ("multi", "HR"), ("proximity", "HR")])
def test_loglik_matches_brute_force(detector, detectfn):
    traps = np.array([[0.0, 0.0], [30.0, 0.0]])
    pts = np.array([[0.0, 10.0], [15.0, -5.0], [40.0, 5.0]])
    mask = Mask(points=pts, spacing=10.0)
    usage = np.array([[1.0, 0.5], [1.0, 1.0]])           # trap 1 worked half of occasion 2
    w = np.zeros((3, 2, 2), dtype=int)
    w[0, 0, 0] = 1
    w[0, 1, 1] = 1
    w[1, 1, 0] = 1
    w[2, 1, 0] = 1                                         # animals 1 and 2 share a history: n_ω = 2
    if detector == "count":
        w[0, 0, 0] = 3
    D, g0, sigma, z = 12.0, 0.35, 18.0, (2.5 if detectfn == "HR" else None)
    P = _Problem(w, traps, usage, mask, detector, detectfn)
    beta = np.array([math.log(D), math.log(g0 / (1 - g0)), math.log(sigma)] + ([math.log(z)] if z else []))
    want = _brute_loglik(w, traps, usage, pts, mask.cell_area_ha, D, g0, sigma, detector, z)
    assert P.loglik(beta) == pytest.approx(want, rel=1e-10, abs=1e-10)
    # the profile likelihood is the full one at D̂ = n / a(θ)
    _, a = P.parts(beta[1:])
    assert P.profile(beta[1:]) == pytest.approx(P.loglik(np.r_[math.log(3 / a), beta[1:]]), rel=1e-12)


# --- a simulated survey with known density -----------------------------------------------------------------

@pytest.mark.parametrize("detector", ["proximity", "count", "multi"])
def test_simulated_survey_recovers_density(detector):
    rng = np.random.default_rng(7)
    gx, gy = np.meshgrid(np.arange(6) * 20.0, np.arange(6) * 20.0)
    traps = np.column_stack([gx.ravel(), gy.ravel()])
    D, g0, sigma = 25.0, 0.25, 18.0
    w, N, _ = simulate_secr(rng, traps, D=D, g0=g0, sigma=sigma, n_occasions=5, buffer=80.0, detector=detector)
    fit = fit_secr(w, traps, None, make_mask(traps, buffer=80, nx=32), detector, "HN")
    assert fit.status == "ok" and fit.n_animals == len(w) > 20
    assert fit.D == pytest.approx(D, rel=0.3) and fit.D_lcl < D < fit.D_ucl
    assert fit.params["sigma"]["estimate"] == pytest.approx(sigma, rel=0.2)
    assert fit.params["g0"]["estimate"] == pytest.approx(g0, rel=0.4)
    assert fit.esa_ha == pytest.approx(fit.n_animals / fit.D, rel=1e-6)   # D̂ = n / a(θ̂)
    assert fit.N == pytest.approx(fit.D * fit.mask["area_ha"])


# --- the registry and the census bridge --------------------------------------------------------------------

def test_registry_lists_secr_but_estimate_all_stays_non_spatial():
    assert "SECR" in registry.ESTIMATORS and registry.ESTIMATORS["SECR"].spatial
    assert "SECR" not in registry.MODELS and "SECR" not in registry.SECR_NAMES
    res = registry.estimate_all(np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0]]))
    assert "SECR" not in [e.model for e in res.estimates]
    est = registry.get("SECR")(registry.CaptureData.from_histories([[1, 1], [1, 0]]))
    assert est.status == "not_estimable" and "trap coordinates" in est.note


def test_capture_data_from_census():
    st = lambda sid, x, use: SimpleNamespace(id=sid, x_m=x, y_m=0.0 if x is not None else None,  # noqa: E731
                                            usage=use)
    ev = lambda iid, sid, occ: SimpleNamespace(identity=iid, station=sid, occasion=occ)  # noqa: E731
    res = SimpleNamespace(
        estimate_flank="left", n_occasions=2, config=SimpleNamespace(occasion_days=2.0),
        stations={"A": st("A", 0.0, [2.0, 1.0]), "B": st("B", 500.0, [2.0, 2.0]), "C": st("C", None, [0, 0])},
        animals=[[1, 2], [3]], identities={1: {"flank": "left"}, 2: {"flank": "right"}, 3: {"flank": "right"}},
        events=[ev(1, "A", 0), ev(1, "B", 1), ev(1, "B", 1), ev(2, "A", 1), ev(3, "A", 0), ev(1, "A", None)])
    d = capture_data_from_census(res)
    assert d.trap_ids == ("A", "B") and d.traps.tolist() == [[0, 0], [500, 0]]
    assert d.usage.tolist() == [[1.0, 0.5], [1.0, 1.0]]
    assert d.captures.shape == (1, 2, 2) and d.captures[0].tolist() == [[1, 0], [0, 2]]
    res.stations["C"].usage = [1.0, 0.0]        # a working station must have coordinates
    with pytest.raises(ValueError, match="C have no coordinates"):
        capture_data_from_census(res)


# --- bad input through the CLI ------------------------------------------------------------------------------

def _files(tmp_path, traps: str, captures: str):
    (tmp_path / "traps.csv").write_text(traps)
    (tmp_path / "caps.csv").write_text(captures)
    return [str(tmp_path / "caps.csv"), str(tmp_path / "traps.csv")]


TRAPS = "trap,x,y\nA,0,0\nB,20,0\nC,0,20\nD,20,20\n"


@pytest.mark.parametrize("traps,captures,message", [
    ("trap,x,y\nA,0,0\nB,20,0\nA,0,20\n", "id,occasion,trap\n1,1,A\n", "trap ID 'A' appears twice"),
    (TRAPS, "id,occasion,trap\n1,1,A\n1,2,Z\n", "not in the traps file: Z"),
    ("trap,x,y\nA,0,0\nB,,0\n", "id,occasion,trap\n1,1,A\n", "station 'B' has no coordinates"),
    (TRAPS, "id,occasion,trap\n1,1,A\n1,2,A\n2,1,A\n", "all 3 detections are at one trap (A)"),
    (TRAPS, "id,occasion,trap\n1,1,A\n2,2,B\n3,1,C\n", "no recaptures"),
    (TRAPS, "id,occasion,trap\n1,1,A\n1,1,B\n", "multi-catch trap holds an animal once per occasion"),
    (TRAPS, "session,id,occasion,trap\n1,1,1,A\n2,1,2,B\n", "fit one session at a time"),
])
def test_bad_input_gets_a_message_not_a_traceback(tmp_path, traps, captures, message):
    from spotid.cli import app

    r = CliRunner().invoke(app, ["census", "secr", *_files(tmp_path, traps, captures)])
    assert r.exit_code == 2, r.output
    assert message in " ".join(re.sub("[│╭╮╰╯─]", " ", r.output).split()), r.output
    assert "Traceback" not in r.output


def test_fit_refuses_effortless_detection():
    w = np.zeros((2, 2, 2), dtype=int)
    w[0, 0, 0] = w[0, 1, 1] = w[1, 0, 1] = 1
    with pytest.raises(SECRDataError, match="usage 0"):
        fit_secr(w, np.array([[0.0, 0], [20, 0]]), np.array([[1.0, 1], [0, 1]]),
                 make_mask(np.array([[0.0, 0], [20, 0]]), 50, 8), "proximity")


# --- secr 5.4.1 on secrdemo ---------------------------------------------------------------------------------

@pytest.mark.shared
@pytest.mark.slow
def test_secrdemo_matches_secr(shared):
    c = shared / "census"
    data, _ = load_secr_inputs(c / "secrdemo_captures_long.csv", c / "secrdemo_traps.csv")
    f = SECR(buffer=100, nx=64, detector="multi", detectfn="HN").fit(data)
    ref = {"D": 5.4798, "D_se": 0.6467, "D_lcl": 4.3516, "D_ucl": 6.9005}
    for k, v in ref.items():
        assert getattr(f, k) == pytest.approx(v, rel=0.02), k
    assert f.params["g0"]["estimate"] == pytest.approx(0.27319, rel=0.02)
    assert f.params["sigma"]["estimate"] == pytest.approx(29.366, rel=0.02)
    assert f.loglik == pytest.approx(-759.0257, abs=0.05)
    assert f.n_animals == 76 and f.n_detections == 235 and f.mask["points"] > 3000


def test_cli_fits_files_with_usage_and_prints_json(tmp_path):
    from spotid.cli import app

    rng = np.random.default_rng(3)
    gx, gy = np.meshgrid(np.arange(5) * 25.0, np.arange(5) * 25.0)
    traps = np.column_stack([gx.ravel(), gy.ravel()])
    usage = np.ones((25, 4))
    usage[0, 2:] = 0                                    # station T0 died after occasion 2
    w, _, _ = simulate_secr(rng, traps, D=20, g0=0.3, sigma=20, n_occasions=4, buffer=80, detector="count",
                            usage=usage)
    (tmp_path / "traps.csv").write_text("trap,x,y,usage\n" + "".join(
        f"T{k},{x / 1000},{y / 1000},{''.join(str(int(v)) for v in usage[k])}\n" for k, (x, y) in enumerate(traps)))
    lines = [f"{a},{s + 1},T{k},{w[a, s, k]}" for a, s, k in zip(*np.nonzero(w))]
    (tmp_path / "caps.csv").write_text("id,occasion,trap,count\n" + "\n".join(lines) + "\n")
    r = CliRunner().invoke(app, ["census", "secr", str(tmp_path / "caps.csv"), str(tmp_path / "traps.csv"),
                                 "--unit", "km", "--detector", "count", "--nx", "32", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["n_animals"] == len(w) and d["n_detections"] == int(w.sum()) and d["n_occasions"] == 4
    assert d["D_per_100km2"]["estimate"] == pytest.approx(d["D"] * 1e4)
    assert d["D_lcl"] < d["D"] < d["D_ucl"] and d["params"]["sigma"]["estimate"] > 5
    assert d["mask"]["spacing_m"] == pytest.approx((100 + 2 * 100) / 32)   # km read as m × 1000; default 100 m buffer
    # the same data through the registry's estimator; and a table for people
    data, _ = load_secr_inputs(tmp_path / "caps.csv", tmp_path / "traps.csv", scale=1000)
    assert data.usage[0].tolist() == [1, 1, 0, 0]
    est = SECR(detector="count", nx=32)(data)
    assert est.model == "SECR" and est.N == pytest.approx(d["N"], rel=1e-6) and est.details["D"] == pytest.approx(d["D"])
    r = CliRunner().invoke(app, ["census", "secr", str(tmp_path / "caps.csv"), str(tmp_path / "traps.csv"),
                                 "--unit", "km", "--detector", "count", "--nx", "32"])
    assert r.exit_code == 0 and "D per 100 km²" in r.output and "N in the mask" in r.output


def test_capture_data_from_a_catalog_census(db_path):
    """A real CensusResult (hand-built catalog): stations are traps, events are counts, usage from effort."""
    import sys
    from pathlib import Path

    from spotid.catalog import Catalog
    from spotid.census.census import Census
    from spotid.census.config import CensusConfig

    sys.path.insert(0, str(Path(__file__).parent))
    from test_census_fixtures import Builder, T

    with Catalog(db_path) as cat:
        b = Builder(cat)
        b.deployment("D1a", "S1", T(1, "00:00"), T(5, "00:00"), 43.10, 131.90)
        b.deployment("D1b", "S1", T(1, "00:00"), T(5, "00:00"), 43.10, 131.90)   # the pair: one station
        b.deployment("D2", "S2", T(1, "00:00"), T(3, "00:00"), 43.10, 131.92)   # 2 of 4 days
        for name, fl in [("L1", "left"), ("L2", "left"), ("R1", "right")]:
            b.individual(name, fl)
        b.sighting("D1a", T(1, "20:00"), "L1")
        b.sighting("D1a", T(1, "23:00"), "L1")          # a second independent event, same occasion
        b.sighting("D2", T(2, "03:00"), "L1")
        b.sighting("D2", T(1, "03:00"), "L2")
        b.sighting("D1b", T(4, "01:00"), "R1")
        res = Census(CensusConfig())(cat)
    d = capture_data_from_census(res, flank="left")
    assert d.trap_ids == ("S1", "S2") and d.usage.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert abs(d.traps[1, 0] - d.traps[0, 0]) == pytest.approx(0.02 * 111_195 * math.cos(math.radians(43.1)), rel=1e-3)
    caps = sorted(c.tolist() for c in d.captures)                # (occasions, stations) per animal
    assert caps == [[[0, 1], [0, 0], [0, 0], [0, 0]], [[2, 0], [0, 1], [0, 0], [0, 0]]]
    assert capture_data_from_census(res, flank="right").captures.sum() == 1


@pytest.mark.slow
def test_catalog_census_fits_secr_per_flank(db_path):
    """`spotid census --model secr` on a catalog: stations placed by latitude/longitude, one sighting per
    simulated count, one SECR fit per flank; the density holds the simulated truth."""
    import sys
    from pathlib import Path

    from spotid.catalog import Catalog
    from spotid.census.census import Census
    from spotid.census.config import CensusConfig
    from spotid.census.secr_io import simulate_secr
    from spotid.cli import app

    sys.path.insert(0, str(Path(__file__).parent))
    from test_census_fixtures import Builder, T

    spacing, lat0, lon0 = 1500.0, 43.1, 131.5                # metres between stations of a 5 x 5 grid
    m_lat, m_lon = 111_195.0, 111_195.0 * math.cos(math.radians(lat0))
    traps = np.array([(i * spacing, j * spacing) for i in range(5) for j in range(5)])
    D_true = 2.0 / 100                                        # 2 per km² in animals per ha
    w, _, _ = simulate_secr(np.random.default_rng(5), traps, D=D_true, g0=0.25, sigma=1200.0, n_occasions=8,
                            buffer=5000.0, detector="count")
    with Catalog(db_path) as cat:
        b = Builder(cat)
        for k, (x, y) in enumerate(traps):
            b.deployment(f"C{k:02d}", f"S{k:02d}", T(1, "00:00"), T(9, "00:00"), lat0 + y / m_lat, lon0 + x / m_lon)
        for i, caps in enumerate(w):
            b.individual(f"L{i}", "left")
            for s, k in zip(*np.nonzero(caps)):
                for c in range(int(caps[s, k])):                 # independent events: hours apart
                    b.sighting(f"C{k:02d}", T(int(s) + 1, f"{1 + 3 * c:02d}:00"), f"L{i}")
        res = Census(CensusConfig(secr=True, secr_buffer_m=6000.0, secr_nx=40))(cat)
    assert set(res.spatial) == {"left"} and res.summary()["density_flank"] == "left"
    est = res.spatial["left"]
    assert est.status == "ok" and est.details["n_animals"] == len(w)
    lo, hi = est.details["D_lcl"], est.details["D_ucl"]
    assert lo < D_true < hi, (lo, D_true, hi)
    assert res.summary()["D_per_100km2"] == pytest.approx(est.details["D"] * 1e4)
    r = CliRunner().invoke(app, ["census", "--db", str(db_path), "--model", "secr", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["secr"]["left"]["model"] == "SECR" and doc["summary"]["D_per_100km2"] > 0


def test_density_reports_the_other_flank_when_the_estimate_flank_cannot_be_fitted():
    """Each flank is fitted alone; when the census's estimate flank has no spatial recaptures, the
    density reported is the other flank's, and the summary says so."""
    from spotid.census.estimators import Estimate
    from spotid.census.result import CensusResult

    left = Estimate("SECR", None, None, None, None, status="not_estimable", note="no spatial recaptures")
    right = Estimate("SECR", 40.0, 5.0, 30.0, 55.0, details={"D_per_100km2": {"estimate": 12.0, "lcl": 8.0,
                                                                              "ucl": 18.0, "se": 2.5}})
    res = SimpleNamespace(spatial={"left": left, "right": right}, estimate_flank="left")
    assert CensusResult.density(res) is right
    res.density = lambda: CensusResult.density(res)
    s = CensusResult._density_summary(res)
    assert s["density_flank"] == "right" and s["D_per_100km2"] == 12.0 and s["N_in_mask"] == 40.0
    assert CensusResult.density(SimpleNamespace(spatial={"left": left}, estimate_flank="left")) is None


def test_unbounded_standard_error_gives_no_interval_not_a_crash():
    """Three animals at a 2 x 2 square of stations 2 km apart (a demo survey, seed 3): the likelihood
    leaves σ or D nearly unbounded. SECR must still report what it can, without an interval it cannot
    give, and never raise (this overflowed math.expm1 once)."""
    from spotid.census.registry import CaptureData

    traps = np.array([[-999.0, -999.0], [999.0, -999.0], [-999.0, 999.0], [999.0, 999.0]])
    w = np.zeros((3, 8, 4), dtype=int)
    for a, hits in enumerate([[(2, 0), (3, 3), (6, 0)], [(3, 3), (4, 0), (4, 3)], [(5, 2)]]):
        for s, k in hits:
            w[a, s, k] = 1
    data = CaptureData(histories=(w.sum(axis=2) > 0).astype(int), captures=w, traps=traps,
                       trap_ids=("a", "b", "c", "d"), usage=np.ones((4, 8)))
    est = SECR(detector="count", buffer=12000.0, nx=64)(data)
    text = json.dumps(est.to_dict())
    assert "NaN" not in text and "Infinity" not in text
    assert est.status == "no_variance" and "SE of sigma is unbounded" in est.note
    assert est.details["params"]["sigma"]["lcl"] is None and est.details["params"]["sigma"]["se"] is None
    d = est.details["D_per_100km2"]                     # D itself is still bounded here
    assert d["lcl"] < d["estimate"] < d["ucl"]
