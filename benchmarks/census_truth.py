"""How far the count is from the truth: `spotid demo` over several seeds, against a baseline.

    python benchmarks/census_truth.py [--seeds 0 1 2 3] [--out /tmp/spotid-bench-census] [--json OUT]
        [--baseline KEY=VALUE ...] [--reuse] [--field [--per-card]]
    python benchmarks/census_truth.py --secr-coverage --seeds $(seq 0 29) [--stations 16 --days 40]

For each seed, renders the demo's synthetic survey (8 leopards, paired stations), runs ingest ->
detect -> identify -> census with the shipped models, and prints, per seed and summed: leopards
photographed, the counted MNA and its ratio to photographed (1.0 = no split and no merge), proposed
identities, split and merged (individual, flank) identities, purity, and whether the 95% CI of N̂
contains the true N. The BASELINE, computed in the same run on the same catalog, re-runs identify
with ``configs/identify.yaml`` changed by ``--baseline`` (default ``pair_seconds=null``: paired-station
joining off, i.e. matching by pattern alone; ``--baseline found_min_frames=1 --baseline
new_cluster_min_inliers=0`` shows what the founding rules buy). ``--reuse`` keeps the catalogs of an
earlier run in ``--out`` (same detections and cached crop features) and re-runs identify for both
sides, so comparing settings takes seconds per seed instead of a minute. ``--field`` also re-runs both
sides as a field team runs identify (no auto-accept, nobody reviews) and audits what a reviewer would
be shown: proposed identities, their splits, and how many matches are right; ``--per-card`` runs it
one deployment at a time, as ``spotid process`` does after each card. Numbers are synthetic truth,
not field accuracy; the matcher card (models/matcher/README.md) explains what limits them.

``--secr-coverage`` measures the density estimator alone: for each seed, the synthetic world's leopard
triggers (no rendering) become a catalog with true identities (spotid.workflow.truth.catalog_from_world),
the census fits SECR per flank (its default settings: count detectors, 12 km buffer) and the benchmark
prints, per survey and overall, the estimate against the world's true density (animals per 100 km² of
its state space): coverage of the 95% CI, relative bias, and the same for N̂ of the closed-population
model chosen by AICc against the population. The world puts animals only within ``buffer_m`` (3 km) of
the stations, while SECR assumes them everywhere on its mask, so a second fit uses the world's own state
space as the mask: the difference between the two is the cost of a mask larger than the habitat.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _matches(cat, truth: dict, card: Path) -> dict:
    """How right the matcher's matches are: each identity's truth is the majority of the sightings
    that founded it (no probability); a matched sighting (with a probability) is right when its
    detection's truth is that individual."""
    from spotid.synth.truth import truth_boxes

    boxes = truth_boxes(cat, truth, card, min_iou=0.1)
    rows = cat.query("SELECT detection_id, individual_id, probability FROM sightings")
    true_of = {int(r["detection_id"]): (boxes.get(int(r["detection_id"])) or {}).get("individual_id") for r in rows}
    founders: dict = {}
    for r in rows:
        if r["probability"] is None:
            founders.setdefault(r["individual_id"], []).append(true_of[int(r["detection_id"])])
    label = {k: max(set(v), key=v.count) for k, v in founders.items()}
    matched = [r for r in rows if r["probability"] is not None]
    right = sum(true_of[int(r["detection_id"])] == label.get(r["individual_id"]) for r in matched)
    return {"matched_right": right, "matched_wrong": len(matched) - right}


def _within(row: dict, key: str) -> bool:
    """The issue's demo bar (:func:`spotid.workflow.truth.within_10pct`) for ``row[key]``."""
    from spotid.workflow.truth import within_10pct

    return bool(within_10pct(row[key], row["photographed"]))


def _rerun_identify(db: Path, card: Path, config_yaml: Path, name: str = "baseline.db", field: bool = False,
                    per_card: bool = False) -> dict:
    """Identify (settings from ``config_yaml``) + census + truth check again on a copy of ``db``
    with its identities cleared. ``field``: as a field team runs it (no auto-accept, nobody accepts
    the proposals), so the census counts nothing and what matters is ``matched_right``/``_wrong``:
    the suggestions a reviewer will see. ``per_card``: identify one deployment at a time, in order, as
    ``spotid process`` does after each card (early cards meet a small gallery)."""
    from spotid.catalog import Catalog
    from spotid.census.census import Census
    from spotid.census.config import CensusConfig
    from spotid.identify.pipeline import identify_catalog
    from spotid.workflow.truth import accept_new_individuals, check_against_truth, read_truth as _truth

    copy = db.with_name(name)
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with sqlite3.connect(copy) as con:
        con.execute("PRAGMA foreign_keys = OFF")
        for t in ("match_candidates", "flank_links", "sightings", "individuals"):
            con.execute(f"DELETE FROM {t}")
    with Catalog(copy, create=False) as cat:
        deployments = [r["id"] for r in cat.query("SELECT id FROM deployments ORDER BY id")] if per_card else [None]
        for dep in deployments:
            identify_catalog(cat, auto_accept=not field, config_path=config_yaml, deployment=dep)
        if not field:
            accept_new_individuals(cat)
        res = Census(CensusConfig())(cat)
        n_pop, n_photo, truth = _truth(card)
        check = check_against_truth(cat, truth, card) | _matches(cat, truth, card)
        if field:  # nothing is accepted: audit the proposals themselves
            proposed = check_against_truth(cat, truth, card, statuses=("auto", "confirmed", "pending"))
            check |= {"proposed": proposed["identities"], "proposed_splits": proposed["split_individual_flanks"],
                      "proposed_merges": proposed["merged_identities"]}
    for f in (copy, copy.with_name(copy.name + "-wal"), copy.with_name(copy.name + "-shm")):
        f.unlink(missing_ok=True)
    best = res.best_estimate()
    return {"mna": res.mna, "true_N": n_pop, "photographed": n_photo, "N": best.N if best else None,
            "lcl": best.lcl if best else None, "ucl": best.ucl if best else None, **check}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--out", type=Path, default=Path("/tmp/spotid-bench-census"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--baseline", action="append", default=None, metavar="KEY=VALUE",
                    help="identify setting of the baseline (repeatable; default pair_seconds=null)")
    ap.add_argument("--reuse", action="store_true",
                    help="re-run identify on the catalogs an earlier run left in --out instead of new demos")
    ap.add_argument("--field", action="store_true",
                    help="also run identify both ways as a field team does (no auto-accept, nobody reviews) "
                         "and count the proposed identities, their splits and the right/wrong matches")
    ap.add_argument("--per-card", action="store_true",
                    help="with --field: identify one deployment at a time, as `spotid process` runs card by card")
    ap.add_argument("--secr-coverage", action="store_true",
                    help="SECR density on true identities of synthetic worlds (no rendering): CI coverage, bias")
    ap.add_argument("--stations", type=int, default=16, help="with --secr-coverage: stations per world")
    ap.add_argument("--days", type=int, default=40, help="with --secr-coverage: survey days")
    ap.add_argument("--individuals", type=int, default=20, help="with --secr-coverage: animals per world")
    args = ap.parse_args()
    if args.secr_coverage:
        secr_coverage(args)
        return
    import logging

    logging.basicConfig(level=logging.WARNING)
    import yaml

    from spotid.config import default_yaml
    from spotid.identify.pipeline import IdentifyConfig
    from spotid.workflow.demo import Demo, DemoConfig

    args.out.mkdir(parents=True, exist_ok=True)
    from spotid.config import parse_setting

    try:
        changes = dict(parse_setting(t) for t in (args.baseline or ["pair_seconds=null"]))
    except ValueError as e:
        raise SystemExit(f"--baseline {e}, e.g. --baseline found_min_frames=1") from None
    settings = yaml.safe_load(Path(default_yaml(IdentifyConfig)).read_text()) or {}
    unknown = sorted(set(changes) - set(settings))
    if unknown:
        raise SystemExit(f"--baseline: {', '.join(unknown)} not in configs/identify.yaml; see that file for the names")
    label = ", ".join(f"{k}={v}" for k, v in changes.items())
    current_yaml, baseline_yaml = args.out / "identify_current.yaml", args.out / "identify_baseline.yaml"
    current_yaml.write_text(yaml.safe_dump(settings))
    baseline_yaml.write_text(yaml.safe_dump({**settings, **changes}))
    rows = []
    for seed in args.seeds:
        out = args.out / f"seed{seed}"
        if args.reuse and (out / "demo.db").is_file() and (out / "card" / "truth.json").is_file():
            t0 = time.perf_counter()
            cur = _rerun_identify(out / "demo.db", out / "card", current_yaml, "current.db")
            seconds = round(time.perf_counter() - t0, 1)
        else:
            if out.exists():
                shutil.rmtree(out)
            out.mkdir(parents=True)
            r = Demo(DemoConfig(seed=seed))(out / "demo.db", out).to_json()
            cur = {"mna": r["census"]["mna"], "true_N": r["true_individuals"],
                   "photographed": r["true_detected_individuals"],
                   **{k: r["census"][k] for k in ("N", "lcl", "ucl")}, **r["truth_check"]}
            seconds = r["seconds"]["total"]
        t0 = time.perf_counter()
        base = _rerun_identify(out / "demo.db", out / "card", baseline_yaml)
        base_seconds = round(time.perf_counter() - t0, 1)
        ci = (cur["lcl"] <= cur["true_N"] <= cur["ucl"]) if cur["lcl"] is not None and cur["ucl"] is not None else None
        rows.append({"seed": seed, "true_N": cur["true_N"], "photographed": cur["photographed"],
                     "mna": cur["mna"], "N": cur["N"], "lcl": cur["lcl"], "ucl": cur["ucl"],
                     "identities": cur["identities"], "splits": cur["split_individual_flanks"],
                     "merges": cur["merged_identities"], "purity": cur["sighting_purity"],
                     "not_leopard": cur["identities_not_leopard"],
                     "baseline_not_leopard": base["identities_not_leopard"],
                     "ci_contains_N": ci, "baseline": label, "baseline_mna": base["mna"],
                     "baseline_identities": base["identities"], "baseline_splits": base["split_individual_flanks"],
                     "baseline_merges": base["merged_identities"], "seconds": seconds,
                     "baseline_seconds": base_seconds})
        if args.field:
            for side, yml in (("field", current_yaml), ("baseline_field", baseline_yaml)):
                f = _rerun_identify(out / "demo.db", out / "card", yml, f"{side}.db", field=True, per_card=args.per_card)
                rows[-1][side] = {k: f[k] for k in ("proposed", "proposed_splits", "proposed_merges", "matched_right",
                                                    "matched_wrong")}
        x = rows[-1]
        print(f"seed {seed}: photographed {x['photographed']}, MNA {x['mna']} (ratio {x['mna'] / max(x['photographed'], 1):.2f}), "
              f"identities {x['identities']}, splits {x['splits']}, merges {x['merges']}, "
              f"on no leopard {x['not_leopard']}, purity {x['purity']}, "
              f"CI {x['lcl'] and round(x['lcl'], 1)}-{x['ucl'] and round(x['ucl'], 1)} contains N={x['true_N']}: "
              f"{x['ci_contains_N']} | baseline ({label}) MNA {x['baseline_mna']}, splits {x['baseline_splits']}, "
              f"merges {x['baseline_merges']} | {x['seconds']} s", flush=True)
    photo = sum(x["photographed"] for x in rows)
    mna = sum(x["mna"] for x in rows)
    base = sum(x["baseline_mna"] for x in rows)
    print(f"total: photographed {photo}, MNA {mna} (ratio {mna / max(photo, 1):.2f}), splits "
          f"{sum(x['splits'] for x in rows)}, merges {sum(x['merges'] for x in rows)}, identities on no leopard "
          f"{sum(x['not_leopard'] for x in rows)}, within 10% {sum(_within(x, 'mna') for x in rows)}; "
          f"baseline ({label}) MNA {base} "
          f"(baseline / MNA = {base / max(mna, 1):.2f}), splits {sum(x['baseline_splits'] for x in rows)}, "
          f"merges {sum(x['baseline_merges'] for x in rows)}, on no leopard "
          f"{sum(x['baseline_not_leopard'] for x in rows)}, within 10% {sum(_within(x, 'baseline_mna') for x in rows)}")
    if args.reuse:   # both sides ran identify + census on the same catalogs, one after the other
        cur_s, base_s = sum(x["seconds"] for x in rows), sum(x["baseline_seconds"] for x in rows)
        print(f"identify + census seconds: current {cur_s:.0f}, baseline {base_s:.0f} "
              f"(current / baseline = {cur_s / max(base_s, 1e-9):.2f})")
    if args.field:
        for side in ("field", "baseline_field"):
            t = {k: sum(x[side][k] for x in rows) for k in rows[0][side]}
            print(f"{side}: proposed identities {t['proposed']}, split (individual, flank) {t['proposed_splits']}, "
                  f"holding two animals {t['proposed_merges']}, "
                  f"matches right {t['matched_right']}, wrong {t['matched_wrong']} "
                  f"({t['matched_right'] / max(t['matched_right'] + t['matched_wrong'], 1):.0%} right)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


def secr_coverage(args) -> None:
    """SECR density CI coverage and bias on true identities (see the module docstring)."""
    import math

    from spotid.catalog import Catalog
    from spotid.census.census import Census
    from spotid.census.config import CensusConfig
    from spotid.census.secr import SECR
    from spotid.census.secr_io import capture_data_from_census
    from spotid.census.secr_mask import make_mask
    from spotid.synth.config import SynthConfig
    from spotid.synth.world import World
    from spotid.workflow.truth import catalog_from_world, world_density

    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"{'seed':>4} {'animals':>7} {'seen':>4} {'flank':>5} {'D true':>7} {'D hat':>7} {'95% CI':>15} "
          f"{'holds':>5} {'N':>3} {'N hat':>6} {'N CI holds':>10}")
    for seed in args.seeds:
        world = World(SynthConfig(seed=seed, individuals=args.individuals, stations=args.stations, days=args.days))
        db = args.out / f"secr_{seed}.db"
        db.unlink(missing_ok=True)
        t0 = time.perf_counter()
        with Catalog(db) as cat:
            catalog_from_world(cat, world)
            res = Census(CensusConfig(secr=True, write_flank_links=False))(cat)
        d_true = world_density(world)
        e = res.density()
        d = (e.details or {}).get("D_per_100km2", {}) if e is not None else {}
        # the same data on a mask that is the world's own state space (its rectangle, buffer_m around
        # the stations): SECR assumes animals everywhere on the mask, the world has none beyond buffer_m
        data = capture_data_from_census(res, res.summary().get("density_flank"))
        ss = SECR(detector="count", mask=make_mask(data.traps, world.cfg.buffer_m, 64, type="traprect"))(data)
        dss = (ss.details or {}).get("D_per_100km2", {})
        best = res.best_estimate()
        row = {"seed": seed, "animals": len(world.population), "seen": res.mna, "flank": res.summary().get("density_flank"),
               "D_true": d_true, "D": d.get("estimate"), "lcl": d.get("lcl"), "ucl": d.get("ucl"),
               "N": len(world.population), "N_hat": best.N if best else None,
               "N_holds": bool(best and best.lcl is not None and best.lcl <= len(world.population) <= best.ucl),
               "seconds": round(time.perf_counter() - t0, 1)}
        row["holds"] = row["D"] is not None and row["lcl"] <= d_true <= row["ucl"]
        row.update(D_ss=dss.get("estimate"), lcl_ss=dss.get("lcl"), ucl_ss=dss.get("ucl"))
        row["holds_ss"] = row["D_ss"] is not None and row["lcl_ss"] <= d_true <= row["ucl_ss"]
        rows.append(row)
        ci = f"{row['lcl']:.1f}–{row['ucl']:.1f}" if row["D"] is not None else "—"
        print(f"{seed:>4} {row['animals']:>7} {row['seen']:>4} {str(row['flank']):>5} {d_true:>7.2f} "
              f"{row['D'] if row['D'] is None else round(row['D'], 2)!s:>7} {ci:>15} {str(row['holds']):>5} "
              f"{row['N']:>3} {row['N_hat'] if row['N_hat'] is None else round(row['N_hat'], 1)!s:>6} "
              f"{str(row['N_holds']):>10}   state-space mask: "
              f"{row['D_ss'] if row['D_ss'] is None else round(row['D_ss'], 2)!s} {str(row['holds_ss'])}", flush=True)
    fitted = [r for r in rows if r["D"] is not None]
    cover = sum(r["holds"] for r in fitted)
    bias = sum(r["D"] / r["D_true"] - 1 for r in fitted) / len(fitted) if fitted else math.nan
    print(f"SECR (census defaults: 12 km trap buffer): {len(fitted)} of {len(rows)} surveys fitted; 95% CI holds "
          f"the true density in {cover} ({cover / max(len(fitted), 1):.0%}); mean relative bias {bias:+.1%}; "
          f"non-spatial N̂ CI holds N in {sum(r['N_holds'] for r in rows)} of {len(rows)}")
    fit_ss = [r for r in rows if r["D_ss"] is not None]
    cov_ss = sum(r["holds_ss"] for r in fit_ss)
    bias_ss = sum(r["D_ss"] / r["D_true"] - 1 for r in fit_ss) / len(fit_ss) if fit_ss else math.nan
    print(f"SECR (mask = the world's state space): {len(fit_ss)} fitted; CI holds the truth in {cov_ss} "
          f"({cov_ss / max(len(fit_ss), 1):.0%}); mean relative bias {bias_ss:+.1%}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
