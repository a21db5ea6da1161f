"""Census tables on disk: CSV + JSON for people and spreadsheets, and secr-ready text files.

Files written to DIR (all atomically):
- census_summary.csv / .json: one row for the period (MNA, bounds, best estimate, effort);
- estimates.csv: every model's N̂, SE, CI, logLik, AICc, status and note;
- individuals.csv / .json: one row per flank identity (first/last seen, stations, flanks, counts);
- capture_history.csv: id (animal), then one column per occasion with 0 / 1 (left) / 2 (right),
  one row per identity; rows sharing an id are one animal. ``spotid census estimate`` reads it back;
- stations.csv / .json: effort (trap-nights) and events per station; events.csv: every event;
- flank_links.csv: the links used (and the ambiguous ones, not used);
- secr_capthist_<flank>.txt + secr_traps.txt (+ secr_traps_effort.txt) for ``secr::read.capthist``
  in "trapID" format; secr_README.txt holds the R lines that read them;
- census.json: everything above in one document; census_config.yaml: the resolved configuration.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from spotid.census.result import CensusResult
from spotid.config import save_config
from spotid.util import atomic_write_json, atomic_write_text


def _csv(rows: list[dict], columns: list[str] | None = None) -> str:
    buf = io.StringIO()
    cols = columns or (list(rows[0].keys()) if rows else [])
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    return buf.getvalue()


def _secr_id(text: str) -> str:
    """secr identifiers: no blanks, tabs, commas; underscores are reserved in detector names.
    A linked animal "AL-001-L|AL-001-R" becomes "AL-001-L+AL-001-R"."""
    return re.sub(r"[\s,_]+", "-", str(text)).replace("|", "+") or "NA"


def station_rows(res: CensusResult) -> list[dict]:
    out = []
    for st in sorted(res.stations.values(), key=lambda s: str(s.id)):
        out.append({
            "station": st.id, "deployments": ";".join(sorted(st.deployments)), "n_cameras": len(st.deployments),
            "latitude": st.latitude, "longitude": st.longitude,
            "x_m": None if st.x_m is None else round(st.x_m, 2), "y_m": None if st.y_m is None else round(st.y_m, 2),
            "start": res._iso(st.start) if st.start else None, "end": res._iso(st.end) if st.end else None,
            "trap_nights": round(st.trap_nights, 3), "camera_nights": round(st.camera_nights, 3),
            "outage_days": round(st.outage_days, 3), "effort_source": st.effort_source, "n_events": st.n_events, "n_sightings": st.n_sightings,
            "n_identities": len(st.identities),
        })
    return out


def individual_rows(res: CensusResult) -> list[dict]:
    return sorted(res.identities.values(), key=lambda r: (r["animal"], r["flank"]))


def history_rows(res: CensusResult) -> tuple[list[str], list[list]]:
    occ = [f"occ{k + 1}" for k in range(res.n_occasions)]
    rows = []
    for g in res.animals:
        label = res.animal_label(g)
        for i in sorted(g, key=lambda i: res.identities[i]["flank"]):
            code = 1 if res.identities[i]["flank"] == "left" else 2
            rows.append([label] + [int(v) * code for v in res.histories[i]])
    return ["id"] + occ, rows


def event_rows(res: CensusResult) -> list[dict]:
    return [{"event": e.id, "identity": res.identities.get(e.identity, {}).get("name", e.identity),
             "flank": res.identities.get(e.identity, {}).get("flank"),
             "animal": res.identities.get(e.identity, {}).get("animal"), "station": e.station,
             "start": e.start.isoformat(), "end": e.end.isoformat(),
             "occasion": None if e.occasion is None else e.occasion + 1,
             "n_sightings": len(e.sighting_ids), "sighting_ids": ";".join(map(str, e.sighting_ids))}
            for e in res.events]


def estimate_rows(res: CensusResult) -> list[dict]:
    if res.estimates is None:
        return []
    cols = ["model", "N", "se", "lcl", "ucl", "loglik", "npar", "aic", "aicc", "daicc", "aicc_weight", "mt1",
            "status", "note", "ci_method"]
    out = []
    for e in res.estimates.estimates:
        d = e.to_dict()
        row = {k: d.get(k) for k in cols}
        row["best"] = e.model == res.estimates.best
        row["flank"] = res.estimate_flank
        out.append(row)
    return out


def write_census(res: CensusResult, out: str | Path) -> dict[str, Path]:
    """Write every census table into ``out``; returns {name: path}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def put(name: str, text: str):
        paths[name] = atomic_write_text(out / name, text)

    summary = res.summary()
    put("census_summary.csv", _csv([summary]))
    paths["census_summary.json"] = atomic_write_json(out / "census_summary.json", summary)
    est = estimate_rows(res)
    put("estimates.csv", _csv(est, list(est[0].keys()) if est else ["model"]))
    ind_cols = ["name", "id", "flank", "animal", "linked_to", "status", "first_seen", "last_seen", "stations",
                "n_sightings", "n_events", "n_occasions", "seen_before_period"]
    ind = individual_rows(res)
    put("individuals.csv", _csv(ind, ind_cols))
    paths["individuals.json"] = atomic_write_json(out / "individuals.json", ind)
    header, rows = history_rows(res)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    put("capture_history.csv", buf.getvalue())
    st = station_rows(res)
    put("stations.csv", _csv(st, list(st[0].keys()) if st else ["station"]))
    paths["stations.json"] = atomic_write_json(out / "stations.json", st)
    ev = event_rows(res)
    put("events.csv", _csv(ev, list(ev[0].keys()) if ev else ["event"]))
    lk = res.to_dict()
    link_rows = [{"left": x["left"], "right": x["right"], "used": True, "source": x["source"], "reason": x["reason"]}
                 for x in lk["flank_links"]]
    link_rows += [{"left": c["left"], "right": c["right"], "used": False, "source": "paired-station",
                   "reason": c["why_not_linked"]} for c in res.link_conflicts]
    put("flank_links.csv", _csv(link_rows, ["left", "right", "used", "source", "reason"]))
    paths.update(write_secr(res, out))
    doc = lk | {"individuals": ind, "stations": st, "events": ev,
                "capture_history": {"columns": header, "rows": rows}, "files": sorted(p.name for p in paths.values())}
    paths["census.json"] = atomic_write_json(out / "census.json", doc)
    paths["census_config.yaml"] = save_config(res.config, out / "census_config.yaml")
    return paths


def write_secr(res: CensusResult, out: Path) -> dict[str, Path]:
    """secr ``read.capthist(captfile, trapfile, fmt = "trapID", detector = "proximity")`` inputs.

    One capthist per flank (an animal's left and right photographs are different detection
    processes; analyse one flank, or both separately). Detector ids are station ids.
    """
    paths: dict[str, Path] = {}
    by_flank: dict[str, set] = {"left": set(), "right": set()}
    for e in res.events:
        if e.occasion is None:
            continue
        info = res.identities.get(e.identity)
        if info is None:
            continue
        by_flank[info["flank"]].add((_secr_id(info["animal"]), e.occasion + 1, _secr_id(e.station)))
    for fl, rows in by_flank.items():
        lines = ["# Session ID Occasion Detector", f"# spotid census, {fl} flank identities; one row per "
                 "animal x occasion x station with at least one independent event"]
        lines += [f"1 {a} {o} {d}" for a, o, d in sorted(rows, key=lambda r: (r[0], r[1], r[2]))]
        name = f"secr_capthist_{fl}.txt"
        paths[name] = atomic_write_text(out / name, "\n".join(lines) + "\n")
    have_xy = [s for s in res.stations.values() if s.x_m is not None]
    lines = ["# Detector x y usage  (x, y: metres, local equirectangular projection around the stations' "
             "centroid; usage: 1 = operated during the occasion)"]
    eff = ["# Detector x y effort_occ1 ... (days operated per occasion; read.traps(binary.usage = FALSE))"]
    for s in sorted(have_xy, key=lambda s: str(s.id)):
        usage = "".join("1" if u > 0 else "0" for u in s.usage)
        lines.append(f"{_secr_id(s.id)} {s.x_m:.2f} {s.y_m:.2f} {usage}")
        eff.append(f"{_secr_id(s.id)} {s.x_m:.2f} {s.y_m:.2f} " + " ".join(f"{u:.3f}" for u in s.usage))
    paths["secr_traps.txt"] = atomic_write_text(out / "secr_traps.txt", "\n".join(lines) + "\n")
    paths["secr_traps_effort.txt"] = atomic_write_text(out / "secr_traps_effort.txt", "\n".join(eff) + "\n")
    missing = sorted(str(s.id) for s in res.stations.values() if s.x_m is None)
    readme = [
        "# Reading the spotid census into R's secr (one flank at a time):",
        "library(secr)",
        'ch <- read.capthist("secr_capthist_left.txt", "secr_traps.txt", fmt = "trapID", detector = "proximity")',
        "# or with continuous effort (days per occasion):",
        '# ch <- read.capthist("secr_capthist_left.txt", "secr_traps_effort.txt", fmt = "trapID",',
        '#                     detector = "proximity", binary.usage = FALSE)',
        "closedN(ch)            # non-spatial estimators (spotid census reproduces these)",
        "fit <- secr.fit(ch, buffer = 10000, trace = FALSE)   # choose the buffer for leopard home ranges",
    ]
    if missing:
        readme.append(f"# NOTE: stations without coordinates are not in secr_traps.txt: {', '.join(missing)}")
    paths["secr_README.txt"] = atomic_write_text(out / "secr_README.txt", "\n".join(readme) + "\n")
    return paths
