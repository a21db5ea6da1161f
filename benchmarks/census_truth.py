"""How far the count is from the truth: `spotid demo` over several seeds, against its own baseline.

    python benchmarks/census_truth.py [--seeds 0 1 2 3] [--out /tmp/spotid-bench-census] [--json OUT]

For each seed, renders the demo's synthetic survey (8 leopards, paired stations), runs ingest ->
detect -> identify -> census with the shipped models, and prints, per seed and summed: leopards
photographed, the counted MNA and its ratio to photographed (1.0 = no split and no merge), proposed
identities, split and merged (individual, flank) identities, purity, and whether the 95% CI of N̂
contains the true N. The BASELINE, computed in the same run on the same catalog, re-runs identify
with paired-station joining off (``pair_seconds: null``), i.e. matching by pattern alone; the ratio
baseline MNA / MNA shows what the paired-station evidence buys. Numbers are synthetic truth, not
field accuracy; the matcher card (models/matcher/README.md) explains what limits them.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _rerun_identify(db: Path, card: Path, config_yaml: Path) -> dict:
    """Identify (settings from ``config_yaml``) + census + truth check again on a copy of ``db``
    with its identities cleared."""
    from spotid.catalog import Catalog
    from spotid.census.census import Census
    from spotid.census.config import CensusConfig
    from spotid.identify.pipeline import identify_catalog
    from spotid.pipeline import _truth, accept_new_individuals, check_against_truth

    copy = db.with_name("baseline.db")
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with sqlite3.connect(copy) as con:
        con.execute("PRAGMA foreign_keys = OFF")
        for t in ("match_candidates", "flank_links", "sightings", "individuals"):
            con.execute(f"DELETE FROM {t}")
    with Catalog(copy, create=False) as cat:
        identify_catalog(cat, auto_accept=True, config_path=config_yaml)
        accept_new_individuals(cat)
        res = Census(CensusConfig())(cat)
        _, _, truth = _truth(card)
        check = check_against_truth(cat, truth, card)
    for f in (copy, copy.with_name(copy.name + "-wal"), copy.with_name(copy.name + "-shm")):
        f.unlink(missing_ok=True)
    return {"mna": res.mna, **check}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--out", type=Path, default=Path("/tmp/spotid-bench-census"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    import yaml

    from spotid.config import default_yaml
    from spotid.identify.pipeline import IdentifyConfig
    from spotid.pipeline import Demo, DemoConfig

    args.out.mkdir(parents=True, exist_ok=True)
    nopair = args.out / "identify_no_pairing.yaml"
    settings = yaml.safe_load(Path(default_yaml(IdentifyConfig)).read_text()) or {}
    nopair.write_text(yaml.safe_dump({**settings, "pair_seconds": None}))
    rows = []
    for seed in args.seeds:
        out = args.out / f"seed{seed}"
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        r = Demo(DemoConfig(seed=seed))(out / "demo.db", out).to_json()
        tc, c = r["truth_check"], r["census"]
        base = _rerun_identify(out / "demo.db", out / "card", nopair)
        rows.append({"seed": seed, "true_N": r["true_individuals"], "photographed": r["true_detected_individuals"],
                     "mna": c["mna"], "N": c["N"], "lcl": c["lcl"], "ucl": c["ucl"],
                     "identities": tc["identities"], "splits": tc["split_individual_flanks"],
                     "merges": tc["merged_identities"], "purity": tc["sighting_purity"],
                     "ci_contains_N": tc["ci_contains_true_N"], "baseline_mna": base["mna"],
                     "baseline_identities": base["identities"], "seconds": r["seconds"]["total"]})
        x = rows[-1]
        print(f"seed {seed}: photographed {x['photographed']}, MNA {x['mna']} (ratio {x['mna'] / max(x['photographed'], 1):.2f}), "
              f"identities {x['identities']}, splits {x['splits']}, merges {x['merges']}, purity {x['purity']}, "
              f"CI {x['lcl'] and round(x['lcl'], 1)}-{x['ucl'] and round(x['ucl'], 1)} contains N={x['true_N']}: "
              f"{x['ci_contains_N']} | baseline (no paired-station joining) MNA {x['baseline_mna']}, "
              f"identities {x['baseline_identities']} | {x['seconds']} s", flush=True)
    photo = sum(x["photographed"] for x in rows)
    mna = sum(x["mna"] for x in rows)
    base = sum(x["baseline_mna"] for x in rows)
    print(f"total: photographed {photo}, MNA {mna} (ratio {mna / max(photo, 1):.2f}); baseline MNA {base} "
          f"(baseline / MNA = {base / max(mna, 1):.2f}); merges {sum(x['merges'] for x in rows)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
