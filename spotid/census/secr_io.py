"""SECR inputs: R-style capture and trap files, and the catalog census, as :class:`CaptureData`.

Files (the layout of secr's ``read.capthist(format = "trapID")``, as CSV with a header):

- traps: ``trap,x,y`` plus optional usage: one ``usage`` column holding a string of per-occasion
  values (``11011``, or numbers separated by spaces/``/``), or one numeric column per occasion;
- captures: ``[session,]id,occasion,trap[,count]`` one row per detection (``count`` repeats it);
  occasions are numbered from 1; extra columns (x, y, covariates) are ignored;
- usage (``--usage``): ``trap`` then one column per occasion (effort, 0 = not operating).

Coordinates are in metres unless a ``scale`` converts them (e.g. 1000 for kilometres).
"""
from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np

from spotid.census.registry import CaptureData


def _rows(path: Path, what: str) -> tuple[list[str], list[dict]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in r.items() if k is not None}
                    for r in reader]
            cols = [(c or "").strip().lower() for c in (reader.fieldnames or [])]
    except OSError as e:
        raise ValueError(f"cannot read the {what} file {path}: {e.strerror}") from None
    if not rows:
        raise ValueError(f"{path}: the {what} file has no rows (a header line, then one row per "
                         f"{'trap' if what == 'traps' else 'detection'})")
    return cols, rows


def _usage_string(text: str) -> list[float]:
    parts = re.split(r"[\s/,;]+", text.strip())
    if len(parts) == 1:          # secr's compact form: one digit per occasion
        return [float(c) for c in parts[0]]
    return [float(p) for p in parts if p]


def read_traps(path: Path, scale: float = 1.0) -> tuple[tuple[str, ...], np.ndarray, np.ndarray | None]:
    """-> (trap ids, (K, 2) x/y in metres, (K, S) usage or None)."""
    cols, rows = _rows(path, "traps")
    missing = [c for c in ("trap", "x", "y") if c not in cols]
    if missing:
        raise ValueError(f"{path}: the traps file needs columns trap,x,y (missing {', '.join(missing)}; "
                         f"found {', '.join(cols)})")
    ids, xy, seen = [], [], {}
    for line, r in enumerate(rows, start=2):
        tid = r["trap"]
        if not tid:
            raise ValueError(f"{path}, line {line}: a trap without an ID")
        if tid in seen:
            raise ValueError(f"{path}: trap ID {tid!r} appears twice (lines {seen[tid]} and {line}); each "
                             "station needs exactly one row (merge the two cameras of a pair into one station)")
        seen[tid] = line
        try:
            x, y = float(r["x"]), float(r["y"])
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError
        except ValueError:
            raise ValueError(f"{path}, line {line}: station {tid!r} has no coordinates (x={r['x']!r}, "
                             f"y={r['y']!r}); give x and y in metres (projected), or drop the station") from None
        ids.append(tid)
        xy.append((x * scale, y * scale))
    usage = None
    # per-occasion columns are named by number (1, 2, ... or u1, usage1, occ1, o1); others are ignored
    per_occ = [c for c in cols if re.fullmatch(r"(usage|u|occ|o)?[_.]?\d+", c)]
    try:
        if "usage" in cols:
            vals = [_usage_string(r["usage"]) for r in rows]
        elif per_occ:
            vals = [[float(r[c]) for c in per_occ] for r in rows]
        else:
            vals = None
    except ValueError:
        raise ValueError(f"{path}: usage must be numbers (a string like 11011 in a 'usage' column, or one "
                         "numeric column per occasion)") from None
    if vals is not None:
        if len({len(v) for v in vals}) != 1:
            raise ValueError(f"{path}: every trap needs the same number of usage values (one per occasion)")
        usage = np.array(vals, dtype=float)
    if usage is not None and (usage < 0).any():
        raise ValueError(f"{path}: negative usage (effort must be >= 0)")
    return tuple(ids), np.array(xy, dtype=float), usage


def read_usage(path: Path, trap_ids: tuple[str, ...]) -> np.ndarray:
    """(K, S) usage in the order of ``trap_ids`` from a CSV ``trap,<occ1>,<occ2>,...``."""
    cols, rows = _rows(path, "usage")
    if "trap" not in cols or len(cols) < 2:
        raise ValueError(f"{path}: the usage file needs a trap column, then one column per occasion")
    occ = [c for c in cols if c != "trap"]
    by_id = {}
    for line, r in enumerate(rows, start=2):
        try:
            by_id[r["trap"]] = [float(r[c]) for c in occ]
        except ValueError:
            raise ValueError(f"{path}, line {line}: usage values must be numbers") from None
    unknown = sorted(set(by_id) - set(trap_ids))
    if unknown:
        raise ValueError(f"{path}: usage for traps not in the traps file: {', '.join(unknown[:10])}")
    absent = [t for t in trap_ids if t not in by_id]
    if absent:
        raise ValueError(f"{path}: no usage row for trap(s) {', '.join(absent[:10])}; give every trap a row "
                         "(0 on occasions it did not operate)")
    u = np.array([by_id[t] for t in trap_ids], dtype=float)
    if (u < 0).any():
        raise ValueError(f"{path}: negative usage (effort must be >= 0)")
    return u


def read_captures(path: Path, trap_ids: tuple[str, ...], n_occasions: int | None = None
                  ) -> tuple[tuple[str, ...], np.ndarray]:
    """-> (animal ids, (n, S, K) detection counts). S = ``n_occasions`` or the largest occasion seen."""
    cols, rows = _rows(path, "captures")
    missing = [c for c in ("id", "occasion", "trap") if c not in cols]
    if missing:
        raise ValueError(f"{path}: the captures file needs columns [session,]id,occasion,trap[,count] "
                         f"(missing {', '.join(missing)})")
    sessions = {r.get("session", "") for r in rows}
    if len(sessions) > 1:
        raise ValueError(f"{path}: {len(sessions)} sessions ({', '.join(sorted(sessions)[:5])}); fit one "
                         "session at a time (split the file by session)")
    index = {t: k for k, t in enumerate(trap_ids)}
    unknown = sorted({r["trap"] for r in rows if r["trap"] not in index})
    if unknown:
        raise ValueError(f"{path}: captures at {len(unknown)} trap(s) not in the traps file: "
                         f"{', '.join(unknown[:10])}; add them to the traps file or fix the trap IDs")
    recs = []
    for line, r in enumerate(rows, start=2):
        try:
            occ = int(float(r["occasion"]))
            cnt = int(float(r["count"])) if r.get("count") not in (None, "") else 1
        except ValueError:
            raise ValueError(f"{path}, line {line}: occasion and count must be whole numbers") from None
        if occ < 1 or (n_occasions is not None and occ > n_occasions):
            raise ValueError(f"{path}, line {line}: occasion {occ} is outside 1..{n_occasions or 'S'} "
                             "(occasions are numbered from 1; the usage has one column per occasion)")
        if cnt < 0:
            raise ValueError(f"{path}, line {line}: negative count")
        if not r["id"]:
            raise ValueError(f"{path}, line {line}: a detection without an animal id")
        recs.append((r["id"], occ - 1, index[r["trap"]], cnt))
    animals = tuple(dict.fromkeys(a for a, *_ in recs))
    S = n_occasions or max(o for _, o, _, _ in recs) + 1
    w = np.zeros((len(animals), S, len(trap_ids)), dtype=int)
    aidx = {a: i for i, a in enumerate(animals)}
    for a, o, k, c in recs:
        w[aidx[a], o, k] += c
    return animals, w


def load_secr_inputs(captures: Path, traps: Path, usage: Path | None = None, scale: float = 1.0,
                     n_occasions: int | None = None) -> tuple[CaptureData, tuple[str, ...]]:
    """R-style files -> (CaptureData with captures/traps/usage, animal ids)."""
    trap_ids, xy, u = read_traps(traps, scale)
    if usage is not None:
        u = read_usage(usage, trap_ids)
    S = u.shape[1] if u is not None else n_occasions
    animals, w = read_captures(captures, trap_ids, S)
    if u is None:
        u = np.ones((len(trap_ids), w.shape[1]))
    hist = (w.sum(axis=2) > 0).astype(int)
    return CaptureData(histories=hist, captures=w, traps=xy, trap_ids=trap_ids, usage=u), animals


def capture_data_from_census(result, flank: str | None = None) -> CaptureData:
    """SECR input from a catalog census (:class:`spotid.census.census.CensusResult`).

    Stations (a camera pair is one station: deployments share a ``location_id``) are the traps, at
    their projected x/y (``Station.x_m/y_m``, a local projection around the stations' centroid);
    usage is each station's operating days per occasion / occasion length; an animal's detections on
    one flank (``flank`` or the census's estimate flank) are its independent events per station and
    occasion (count detectors; proximity reads them as 0/1).
    """
    fl = flank or result.estimate_flank
    if fl is None:
        raise ValueError("the census has no animals, so there is nothing for SECR to fit")
    stations = [s for s in result.stations.values()]
    nocoord = [s.id for s in stations if s.x_m is None or s.y_m is None]
    effort = {s.id: np.asarray(s.usage, float) / result.config.occasion_days for s in stations}
    seen = {e.station for e in result.events if e.occasion is not None}
    bad = [sid for sid in nocoord if sid in seen or effort[sid].sum() > 0]
    if bad:
        raise ValueError(f"station(s) {', '.join(map(str, bad[:10]))} have no coordinates: give their "
                         "deployments latitude/longitude (spotid deployments) so SECR can place them")
    stations = [s for s in stations if s.id not in nocoord]
    k_of = {s.id: k for k, s in enumerate(stations)}
    S = result.n_occasions
    groups = []
    for g in result.animals:
        ids = {i for i in g if result.identities.get(i, {}).get("flank") == fl}
        if ids:
            groups.append(ids)
    w = np.zeros((len(groups), S, len(stations)), dtype=int)
    owner = {i: a for a, ids in enumerate(groups) for i in ids}
    for e in result.events:
        if e.occasion is not None and e.identity in owner and e.station in k_of:
            w[owner[e.identity], e.occasion, k_of[e.station]] += 1
    keep = w.sum(axis=(1, 2)) > 0
    w = w[keep]
    xy = np.array([(s.x_m, s.y_m) for s in stations], dtype=float).reshape(len(stations), 2)
    u = np.array([effort[s.id] for s in stations], dtype=float).reshape(len(stations), S)
    return CaptureData(histories=(w.sum(axis=2) > 0).astype(int), captures=w, traps=xy,
                       trap_ids=tuple(str(s.id) for s in stations), usage=u)


def simulate_secr(rng: np.random.Generator, traps: np.ndarray, *, D: float, g0: float, sigma: float,
                  n_occasions: int, buffer: float, detector: str = "proximity", usage: np.ndarray | None = None
                  ) -> tuple[np.ndarray, int, float]:
    """A survey drawn from the SECR model (half-normal): Poisson(D × area) centres, uniform in the traps'
    box widened by ``buffer``. -> ((n, S, K) captures of the detected animals, true N, box area in ha).

    ``D`` per ha, distances in metres, ``usage`` (K, S) scales the hazard as in the likelihood.
    """
    traps = np.asarray(traps, float)
    K, S = len(traps), n_occasions
    u = np.ones((K, S)) if usage is None else np.asarray(usage, float)
    lo, hi = traps.min(0) - buffer, traps.max(0) + buffer
    area_ha = float(np.prod(hi - lo) / 1e4)
    N = int(rng.poisson(D * area_ha))
    centres = lo + rng.random((N, 2)) * (hi - lo)
    d2 = ((centres[:, None, :] - traps[None]) ** 2).sum(-1)
    h = -np.log1p(-g0 * np.exp(-d2 / (2 * sigma ** 2)))            # (N, K) hazard per full occasion
    lam = h[:, None, :] * u.T[None, :, :]                           # (N, S, K)
    if detector == "count":
        w = rng.poisson(lam)
    elif detector == "proximity":
        w = (rng.random(lam.shape) < -np.expm1(-lam)).astype(int)
    elif detector == "multi":
        H = lam.sum(axis=2)                                         # competing hazards per occasion
        caught = rng.random(H.shape) < -np.expm1(-H)
        w = np.zeros(lam.shape, dtype=int)
        for i, s in zip(*np.nonzero(caught)):
            w[i, s, rng.choice(K, p=lam[i, s] / H[i, s])] = 1
    else:
        raise ValueError(f"unknown detector {detector!r}")
    return w[w.sum(axis=(1, 2)) > 0], N, area_ha
