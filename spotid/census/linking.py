"""Flank linking: a left and a right identity photographed together at a paired station are one animal."""
from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from spotid.catalog import Catalog, now_iso
from spotid.catalog.tables import individuals
from spotid.census.config import CensusConfig


@dataclass
class FlankLink:
    left_id: int
    right_id: int
    reason: str
    evidence: dict
    source: str            # 'catalog' (already stored) | 'paired-station' (found now)


def find_flank_links(cat: Catalog, sightings: list, resolve: dict, ind: dict, warnings: list[str],
                     cfg: CensusConfig) -> tuple[list[FlankLink], list[dict]]:
    """Stored links (resolved through merges) plus new ones from paired-station co-occurrences.

    ``sightings`` have ``.id .identity .flank .t .deployment .station``. A left and a right identity
    seen on different cameras of one station within ``cfg.flank_link_seconds`` co-occur; a pair is
    linked only when each is the other's most frequent partner (ties and pairs clashing with an
    existing link are returned as conflicts for review). New links are stored in ``flank_links``
    when ``cfg.write_flank_links``.
    """
    links: list[FlankLink] = []
    taken: dict[int, int] = {}
    for r in individuals.flank_links(cat):
        l, rr = resolve.get(r["left_id"], r["left_id"]), resolve.get(r["right_id"], r["right_id"])
        if ind.get(l, {}).get("flank") != "left" or ind.get(rr, {}).get("flank") != "right":
            warnings.append(f"stored flank link {r['left_id']}-{r['right_id']} does not join a left and a "
                            "right identity after merges: ignored")
            continue
        links.append(FlankLink(l, rr, r["reason"], json.loads(r["evidence_json"] or "{}"), "catalog"))
        taken[l], taken[rr] = rr, l
    thr = timedelta(seconds=cfg.flank_link_seconds)
    by_station = defaultdict(list)
    for s in sightings:
        by_station[s.station].append(s)
    pairs = defaultdict(list)
    for sid, ss in by_station.items():
        if len({s.deployment for s in ss}) < 2:
            continue
        rights = sorted((s for s in ss if s.flank == "right"), key=lambda s: s.t)
        rt = [s.t for s in rights]
        for s in ss:
            if s.flank != "left":
                continue
            for r in rights[bisect_left(rt, s.t - thr): bisect_right(rt, s.t + thr)]:
                if r.deployment != s.deployment:
                    pairs[(s.identity, r.identity)].append((s, r))
    # a pair links only when each is the other's most frequent partner (ties are ambiguous)
    best_l, best_r = defaultdict(list), defaultdict(list)
    for (l, r), ev in pairs.items():
        best_l[l].append((len(ev), r))
        best_r[r].append((len(ev), l))
    conflicts = []
    for (l, r), ev in sorted(pairs.items()):
        n = len(ev)
        top_l = max(c for c, _ in best_l[l])
        top_r = max(c for c, _ in best_r[r])
        ambiguous = (n < top_l or n < top_r or sum(1 for c, _ in best_l[l] if c == top_l) > 1
                     or sum(1 for c, _ in best_r[r] if c == top_r) > 1)
        stations = sorted({str(a.station) for a, _ in ev})
        evidence = {
            "rule": f"left and right identity at the two cameras of a paired station within "
                    f"{cfg.flank_link_seconds:g} s",
            "stations": stations, "n_cooccurrences": n,
            "pairs": [{"left_sighting": a.id, "right_sighting": b.id, "left_deployment": a.deployment,
                       "right_deployment": b.deployment, "station": str(a.station),
                       "dt_seconds": round(abs((a.t - b.t).total_seconds()), 3),
                       "time": a.t.isoformat()} for a, b in ev[:20]],
        }
        if taken.get(l) == r:
            continue
        if ambiguous or l in taken or r in taken:
            why = ("another pairing co-occurs as often or more" if ambiguous else
                   "one of them is already linked to a different identity")
            conflicts.append({"left_id": l, "right_id": r, "left": ind[l]["name"], "right": ind[r]["name"],
                              "n_cooccurrences": n, "why_not_linked": why, "evidence": evidence})
            continue
        reason = (f"seen together at paired station {', '.join(stations)} "
                  f"({n} time{'s' if n > 1 else ''} within {cfg.flank_link_seconds:g} s on different cameras)")
        links.append(FlankLink(l, r, reason, evidence, "paired-station"))
        taken[l], taken[r] = r, l
    if conflicts:
        warnings.append(f"{len(conflicts)} possible flank link(s) were ambiguous and not used: see "
                        "flank_link_conflicts and review them")
    if cfg.write_flank_links:
        new = [lk for lk in links if lk.source == "paired-station"]
        if new:
            with cat.transaction() as conn:
                for lk in new:
                    individuals.upsert_flank_link(conn, lk.left_id, lk.right_id, reason=lk.reason,
                                                  evidence_json=json.dumps(lk.evidence), created_at=now_iso())
    return links, conflicts
