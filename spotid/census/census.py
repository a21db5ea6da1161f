"""Catalog census: sightings -> independent events -> capture histories, MNA, flank links, estimates.

Units and conventions:
- Counted sightings: ``sightings.status`` in ``CensusConfig.statuses`` (default auto + confirmed) with
  an identity; identities are resolved through ``individuals.merged_into`` chains.
- A *station* is ``deployments.location_id`` (falling back to the deployment id); the two cameras of
  a paired station are two deployments sharing it.
- An *identity* is one catalog individual (one flank). An *animal* is a connected group of
  identities joined by flank links (at most one left and one right identity in practice).
- Occasions are cut in local camera time from the period start (or the earliest deployment start),
  ``occasion_days`` long. Independence and flank linking use absolute time.
"""
from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from spotid.catalog import Catalog
from spotid.catalog.tables import deployments, individuals, media, sightings
from spotid.census.config import CensusConfig
from spotid.census.estimators import EstimationResult
from spotid.census.registry import estimate_all
from spotid.census.history import FlankBounds, choose_flank
from spotid.census.linking import FlankLink, find_flank_links
from spotid.census.result import (MAX_OCCASIONS, CensusResult, Event, PeriodTooLong, Sighting, Station, _local,
                                  parse_bound, project_stations)
from spotid.types import IndividualRow
from spotid.util import parse_ts

log = logging.getLogger(__name__)


# -- loading ------------------------------------------------------------------------------------------
def _resolver(rows: list[IndividualRow]) -> dict[int, int]:
    parent = {r.id: r.merged_into for r in rows}
    out = {}
    for i in parent:
        cur, seen = i, set()
        while parent.get(cur) is not None and cur not in seen:
            seen.add(cur)
            cur = parent[cur]
        out[i] = cur
    return out


class _UnionFind:
    def __init__(self):
        self.p: dict[int, int] = {}

    def find(self, a: int) -> int:
        self.p.setdefault(a, a)
        while self.p[a] != a:
            self.p[a] = self.p[self.p[a]]
            a = self.p[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.p[max(ra, rb)] = min(ra, rb)


@dataclass(frozen=True)
class Occasions:
    """The census period cut into occasions, in naive local camera time: ``[origin, stop)`` is
    ``n`` occasions of ``length`` each."""

    origin: datetime
    stop: datetime
    length: timedelta
    n: int

    def of(self, t_local: datetime) -> int | None:
        """0-based occasion of a local time, or None outside the period."""
        if t_local < self.origin or t_local >= self.stop:
            return None
        return int((t_local - self.origin) / self.length)

    def bounds(self, k: int) -> tuple[datetime, datetime]:
        return self.origin + k * self.length, self.origin + (k + 1) * self.length


@dataclass
class _Catalogued:
    """What the census reads from the catalog (step 1)."""

    ind: dict[int, dict]                 # individual id -> row
    resolve: dict[int, int]              # individual id -> id after merges
    deps: dict[str, dict]                # deployment id -> row
    spans: list[tuple[str, datetime, datetime, str]]   # deployment, local start, local end, source
    sightings: list[Sighting]            # counted sightings with a usable time (any period)
    outages: dict = field(default_factory=dict)   # deployment -> [(local start, local end, reason)]
    cameras: list = field(default_factory=list)   # CameraReport per deployment (when the check ran)


@dataclass
class _Animals:
    """Identities joined into animals by flank links (step 4)."""

    links: list[FlankLink]
    conflicts: list[dict]
    groups: list[list[int]]              # identities in the period, grouped by animal
    known: dict[int, set[int]]           # min(group) -> every identity of that animal in the catalog
    bounds: FlankBounds


class Census:
    """``Census(config)(catalog) -> CensusResult``: the census of one period from a catalog.

    Steps, each its own method: read the catalog; cut the period into occasions; station effort;
    independent events; animals (flank links and two-flank bounds); capture histories; the
    identities table; estimates.
    """

    def __init__(self, config: CensusConfig | None = None):
        self.config = config or CensusConfig()

    def __call__(self, cat: Catalog) -> CensusResult:
        cfg = self.config
        warnings: list[str] = []
        start = parse_bound(cfg.start, end=False)
        end = parse_bound(cfg.end, end=True)
        if start and end and end <= start:
            raise ValueError(f"--end {cfg.end} is not after --start {cfg.start}")

        data = self._read(cat, warnings)

        def within(local: datetime) -> bool:
            return (start is None or local >= start) and (end is None or local < end)

        in_period = [s for s in data.sightings if within(s.local)]
        unusable_reasons = self._unusable(cat, within)
        occ = self._occasions(start, end, data.spans, in_period)
        stations = self._stations(data.deps, data.spans, occ, data.outages)
        n_aside = sum(unusable_reasons.values())
        if n_aside and data.sightings:   # (when nothing was counted, _read already says so)
            warnings.append(f"{n_aside} leopard sighting(s) in the period were set aside as not identifiable and "
                            "are not counted: `spotid review --include-set-aside`")
        idle = [k for k in range(occ.n) if stations and not any(st.usage[k] > 0 for st in stations.values())]
        if idle:
            shown = ", ".join(occ.bounds(k)[0].date().isoformat() for k in idle[:5]) + (" …" if len(idle) > 5 else "")
            warnings.append(f"{len(idle)} of {occ.n} occasion(s) have no camera operating ({shown}): no animal "
                            "could be photographed then; check the deployment dates or shorten the period")
        events = self._events(in_period, occ)
        animals = self._animals(cat, data, in_period, warnings)
        hist = self._histories(animals, events, occ)
        identities, resighted = self._identities(data, animals, in_period, events, hist, start)
        for e in events:
            st = stations.get(e.station)
            if st is not None and e.occasion is not None:
                st.n_events += 1
                st.n_sightings += len(e.sighting_ids)
                st.identities.add(e.identity)
        fl, est = self._estimates(data, animals, hist, occ)
        res = CensusResult(
            config=cfg, period_start=occ.origin, period_end=occ.stop, n_occasions=occ.n, identities=identities,
            animals=animals.groups, events=events, stations=stations, links=animals.links,
            link_conflicts=animals.conflicts, bounds=animals.bounds, histories=hist, estimate_flank=fl,
            estimates=est, new_animals=len(animals.groups) - resighted, resighted_animals=resighted,
            n_sightings=len(in_period), warnings=warnings,
            n_unusable_sightings=sum(unusable_reasons.values()), unusable_reasons=unusable_reasons,
            cameras=data.cameras,
            tz=_single_tz([s.t for s in data.sightings] + [parse_ts(d.get("start")) for d in data.deps.values()]))
        if cfg.secr and animals.groups:
            res.spatial = self._density(res, warnings)
        return res

    # -- 1. the catalog --------------------------------------------------------------------------------
    def _read(self, cat: Catalog, warnings: list[str]) -> _Catalogued:
        cfg = self.config
        ind_rows = individuals.brief_rows(cat)
        resolve = _resolver(ind_rows)
        # id -> {id, name, flank, status, merged_into}: linking and the outputs read these as dicts
        ind = {r.id: {"id": r.id, "name": r.name, "flank": r.flank, "status": r.status,
                      "merged_into": r.merged_into} for r in ind_rows}

        deps = {r["id"]: dict(r) for r in deployments.rows(cat)}
        media_span = media.time_span_by_deployment(cat)

        outages, untrusted, cameras = self._camera_check(cat, deps, warnings)
        all_s: list[Sighting] = []
        no_time = bad_ident = bad_clock = 0
        for r in sightings.assigned_with_media(cat, cfg.statuses):
            if r["mid"] in untrusted:
                bad_clock += 1
                continue
            t = parse_ts(r["ts"])
            if t is None or t.tzinfo is None:
                no_time += 1
                continue
            iid = resolve.get(r["iid"], r["iid"])
            info = ind.get(iid)
            if info is None or info["status"] in ("rejected", "merged"):
                bad_ident += 1
                continue
            dep = deps.get(r["dep"], {})
            station = dep.get("location_id") or r["dep"]
            all_s.append(Sighting(r["sid"], iid, info["flank"], t, _local(t), r["dep"], station, r["mid"], r["did"]))
        if no_time:
            warnings.append(f"{no_time} counted sighting(s) have no timestamp with an offset and were left out: "
                            "fix the camera clock / deployment tz and re-ingest")
        if bad_clock:
            warnings.append(f"{bad_clock} counted sighting(s) are on images whose camera clock cannot be trusted (clock "
                            "reset or dated outside the deployment) and were left out: `spotid deployments check`")
        if bad_ident:
            warnings.append(f"{bad_ident} counted sighting(s) point at a rejected or unresolvable individual "
                            "and were left out: review them")
        uncounted = sightings.count_by_status(cat, not_in=cfg.statuses)
        if uncounted.get("pending"):
            warnings.append(f"{uncounted['pending']} sighting(s) wait for review and are not counted: "
                            "`spotid review` (or --include-pending to count them as proposed)")
        if uncounted.get("unusable") and not all_s:
            warnings.append(f"no counted sighting: all {uncounted['unusable']} leopard sighting(s) were set aside as "
                            "not identifiable (the reasons are listed with the census, 'unusable_reasons' in --json); "
                            "go through them with `spotid review --include-set-aside`")

        spans = []
        for did, d in deps.items():
            s0, s1 = parse_ts(d.get("start")), parse_ts(d.get("end"))
            m0, m1 = (parse_ts(x) for x in media_span.get(did, (None, None)))
            a, b = s0 or m0, s1 or m1
            src = "deployment dates" if (s0 and s1) else "first/last media"
            if a is not None and b is not None:
                spans.append((did, _local(a), _local(b), src))
        return _Catalogued(ind=ind, resolve=resolve, deps=deps, spans=spans, sightings=all_s, outages=outages,
                           cameras=cameras)

    def _camera_check(self, cat: Catalog, deps: dict[str, dict], warnings: list[str]) -> tuple[dict, set, list]:
        """Outages per deployment (local times) from the camera check and the user's outages file, the media whose
        time cannot be trusted, and the camera reports. Nothing when neither is asked for."""
        from spotid.ingest.health import CameraCheck, read_outages

        cfg = self.config
        known = read_outages(cfg.outages, deps) if cfg.outages else []
        outages: dict[str, list] = defaultdict(list)
        if not cfg.camera_check:
            for o in known:
                outages[o.deployment].append((_local(o.start), _local(o.end), f"{o.reason} ({o.source})"))
            return dict(outages), set(), []
        reports = CameraCheck()(cat, known)
        untrusted: set[int] = set()
        for rep in reports:
            untrusted.update(rep.untrusted_media)
            for o in rep.outages:
                outages[o.deployment].append((_local(o.start), _local(o.end), f"{o.reason} ({o.source})"))
            if any(f.kind != "file_order_unknown" for f in rep.findings):
                what = "; ".join(f"{f.kind} {f.start:%Y-%m-%d}" + (f" to {f.end:%Y-%m-%d}" if f.end else "")
                                 + (" (out of the effort)" if f.outage else "") for f in rep.findings
                                 if f.start and f.kind != "file_order_unknown")
                warnings.append(f"camera {rep.deployment}: {what or rep.findings[0].kind}: `spotid deployments check` "
                                "says what to do")
        return dict(outages), untrusted, reports

    @staticmethod
    def _unusable(cat: Catalog, within) -> dict[str, int]:
        """Leopards photographed but not identifiable (front/back view, weak box, coat hidden), by reason:
        a minimum count cannot include an animal seen only that way, so the reader is told how many."""
        reasons: dict[str, int] = {}
        for r in sightings.unusable_with_time(cat):
            t = parse_ts(r["ts"])
            if t is not None and t.tzinfo is not None and within(_local(t)):
                why = r["why"] or "marked unusable in review"   # a person's decision clears identify's reason
                reasons[why] = reasons.get(why, 0) + 1
        return reasons

    # -- 2. occasions ----------------------------------------------------------------------------------
    def _occasions(self, start: datetime | None, end: datetime | None, spans, in_period: list[Sighting]) -> Occasions:
        cfg = self.config
        if start is not None:
            origin = start
        else:
            cands = [a for _, a, _, _ in spans] + [s.local for s in in_period]
            origin = min(cands) if cands else datetime(2000, 1, 1)
            origin = origin.replace(hour=0, minute=0, second=0, microsecond=0)
        if end is not None:
            stop = end
        else:
            cands = [b for _, _, b, _ in spans] + [s.local for s in in_period]
            stop = max(cands) if cands else origin + timedelta(days=cfg.occasion_days)
        occ_len = timedelta(days=cfg.occasion_days)
        n_occ = max(1, math.ceil((stop - origin) / occ_len - 1e-9))
        if n_occ > MAX_OCCASIONS:
            raise PeriodTooLong(n_occ, cfg.occasion_days, origin, stop)
        return Occasions(origin=origin, stop=origin + n_occ * occ_len, length=occ_len, n=n_occ)

    # -- 3. stations and effort ------------------------------------------------------------------------
    @staticmethod
    def _stations(deps: dict[str, dict], spans, occ: Occasions, outages: dict | None = None) -> dict[str, Station]:
        """Per station, the union of its cameras' operating periods within the period: each deployment's span
        minus its outages (``outages``: deployment -> [(local start, local end, reason)])."""
        from spotid.ingest.health import subtract

        outages = outages or {}
        stations: dict[str, Station] = {}
        for did, d in deps.items():
            sid = d.get("location_id") or did
            st = stations.setdefault(sid, Station(sid, [], None, None))
            st.deployments.append(did)
        for st in stations.values():
            lats = [deps[d]["latitude"] for d in st.deployments if deps[d].get("latitude") is not None]
            lons = [deps[d]["longitude"] for d in st.deployments if deps[d].get("longitude") is not None]
            st.latitude = float(np.mean(lats)) if lats else None
            st.longitude = float(np.mean(lons)) if lons else None
        by_station_spans = defaultdict(list)
        for did, a, b, src in spans:
            sid = deps[did].get("location_id") or did
            a, b = max(a, occ.origin), min(b, occ.stop)
            if b > a:
                cut = [(o0, o1) for o0, o1, _ in outages.get(did, [])]
                ops = subtract((a, b), cut)
                by_station_spans[sid].extend(ops)
                stations[sid].camera_nights += sum((y - x).total_seconds() for x, y in ops) / 86400
                lost = ((b - a).total_seconds() - sum((y - x).total_seconds() for x, y in ops)) / 86400
                if lost > 0:
                    stations[sid].outage_days += lost
                    why = sorted({r for _, _, r in outages[did]})
                    stations[sid].effort_notes.append(f"{did}: {lost:.1f} day(s) out ({', '.join(why)})")
            if src != "deployment dates":
                stations[sid].effort_source = "first/last media (deployment start/end missing)"
        for sid, st in stations.items():
            ivs = _union(by_station_spans.get(sid, []))
            st.trap_nights = sum((b - a).total_seconds() for a, b in ivs) / 86400
            st.start = ivs[0][0] if ivs else None
            st.end = ivs[-1][1] if ivs else None
            st.usage = [0.0] * occ.n
            for k in range(occ.n):
                o0, o1 = occ.bounds(k)
                st.usage[k] = sum(max(0.0, (min(b, o1) - max(a, o0)).total_seconds()) for a, b in ivs) / 86400
            if not ivs:
                st.effort_source = "none: no deployment dates and no timestamped media"
            if st.effort_notes:
                st.effort_source += " minus outages: " + "; ".join(st.effort_notes)
        project_stations(stations)
        return stations

    # -- 4. independent events ---------------------------------------------------------------------------
    def _events(self, in_period: list[Sighting], occ: Occasions) -> list[Event]:
        """One event per identity per station until the gap to its previous sighting exceeds
        ``independence_minutes``."""
        gap = timedelta(minutes=self.config.independence_minutes)
        events: list[Event] = []
        groups = defaultdict(list)
        for s in in_period:
            groups[(s.identity, s.station)].append(s)
        for (iid, sid), ss in sorted(groups.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            ss.sort(key=lambda s: s.t)
            cur = None
            for s in ss:
                if cur is None or s.t - cur.end > gap:
                    cur = Event(len(events) + 1, iid, sid, s.t, s.t, occ.of(s.local), [])
                    events.append(cur)
                cur.end = s.t
                cur.sighting_ids.append(s.id)
        return events

    # -- 5. animals: flank links and two-flank bounds ------------------------------------------------------
    def _animals(self, cat: Catalog, data: _Catalogued, in_period: list[Sighting], warnings: list[str]) -> _Animals:
        ind = data.ind
        links, conflicts = find_flank_links(cat, data.sightings, data.resolve, ind, warnings, self.config)
        uf = _UnionFind()
        ids_in_period = sorted({s.identity for s in in_period})
        for i in ids_in_period:
            uf.find(i)
        for lk in links:
            uf.union(lk.left_id, lk.right_id)
        comp_all = defaultdict(set)
        for i in list(uf.p):
            comp_all[uf.find(i)].add(i)
        comp = defaultdict(list)
        for i in ids_in_period:
            comp[uf.find(i)].append(i)
        groups = sorted(comp.values(), key=lambda g: min(g))
        full = {min(g): comp_all[uf.find(g[0])] for g in groups}
        # An animal's flanks are those known anywhere in the catalog: a left identity whose right
        # flank is known (even if unseen in this period) cannot be one of the right-only identities.
        known = {k: {ind[j]["flank"] for j in v} for k, v in full.items()}
        bounds = FlankBounds(linked=sum(1 for f in known.values() if f == {"left", "right"}),
                             left_only=sum(1 for f in known.values() if f == {"left"}),
                             right_only=sum(1 for f in known.values() if f == {"right"}))
        return _Animals(links=links, conflicts=conflicts, groups=groups, known=full, bounds=bounds)

    # -- 6. capture histories ----------------------------------------------------------------------------
    @staticmethod
    def _histories(animals: _Animals, events: list[Event], occ: Occasions) -> dict[int, np.ndarray]:
        """Per identity, 0/1 per occasion from its events."""
        hist = {i: np.zeros(occ.n, dtype=int) for g in animals.groups for i in g}
        for e in events:
            if e.occasion is not None:
                hist[e.identity][e.occasion] = 1
        return hist

    # -- 7. the identities table -------------------------------------------------------------------------
    @staticmethod
    def _identities(data: _Catalogued, animals: _Animals, in_period: list[Sighting], events: list[Event],
                    hist: dict[int, np.ndarray], start: datetime | None) -> tuple[dict[int, dict], int]:
        """(identity id -> row of the identities table, number of animals seen before the period)."""
        ind = data.ind
        first_before = {}
        if start is not None:
            for s in data.sightings:
                if s.local < start:
                    first_before[s.identity] = True
        identities = {}
        for g in animals.groups:
            full = animals.known[min(g)]
            label_names = sorted((ind[i]["flank"], ind[i]["name"]) for i in full)
            for i in g:
                ss = sorted((s for s in in_period if s.identity == i), key=lambda s: s.t)
                partner = sorted(ind[j]["name"] for j in full if j != i)
                identities[i] = {
                    "id": i, "name": ind[i]["name"], "flank": ind[i]["flank"], "status": ind[i]["status"],
                    "animal": "|".join(n for _, n in label_names), "linked_to": ";".join(partner),
                    "first_seen": ss[0].t.isoformat(), "last_seen": ss[-1].t.isoformat(),
                    "stations": ";".join(sorted({str(s.station) for s in ss})),
                    "n_sightings": len(ss), "n_events": sum(1 for e in events if e.identity == i),
                    "n_occasions": int(hist[i].sum()),
                    "seen_before_period": bool(first_before.get(i, False)),
                }
        resighted = sum(1 for g in animals.groups if any(first_before.get(i) for i in g))
        return identities, resighted

    # -- 9. density (SECR), each flank on its own ---------------------------------------------------------
    def _density(self, res: CensusResult, warnings: list[str]) -> dict:
        from spotid.census.secr import SECR
        from spotid.census.secr_io import capture_data_from_census

        cfg = self.config
        est = SECR(detector=cfg.secr_detector, detectfn=cfg.secr_detectfn, buffer=cfg.secr_buffer_m, nx=cfg.secr_nx)
        out = {}
        for fl in ("left", "right"):
            if not any(v["flank"] == fl for v in res.identities.values()):
                continue
            try:
                out[fl] = est(capture_data_from_census(res, fl))
            except ValueError as e:            # stations without coordinates: say so, keep the census
                warnings.append(f"SECR ({fl} flank) not fitted: {e}")
                continue
            if out[fl].N is None:
                warnings.append(f"SECR ({fl} flank): {out[fl].note}")
        return out

    # -- 8. estimates --------------------------------------------------------------------------------------
    def _estimates(self, data: _Catalogued, animals: _Animals, hist: dict[int, np.ndarray],
                   occ: Occasions) -> tuple[str | None, EstimationResult | None]:
        """Estimates from one flank's histories (each animal counted once); (flank, result)."""
        if not animals.groups:
            return None, None
        cfg, b = self.config, animals.bounds
        fl = (choose_flank(b.linked + b.left_only, b.linked + b.right_only) if cfg.estimate_flank == "auto"
              else cfg.estimate_flank)
        rows = []
        for g in animals.groups:
            h = np.zeros(occ.n, dtype=int)
            for i in g:
                if data.ind[i]["flank"] == fl:
                    h |= hist[i]
            if h.any():
                rows.append(h)
        X = np.array(rows, dtype=int).reshape(len(rows), occ.n)
        return fl, estimate_all(X, tuple(cfg.models))


def _single_tz(times) -> object:
    offs = {t.utcoffset() for t in times if t is not None and t.tzinfo is not None}
    if len(offs) == 1:
        from datetime import timezone
        return timezone(offs.pop())
    return None


def _union(ivs: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[list[datetime]] = []
    for a, b in sorted(ivs):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]

