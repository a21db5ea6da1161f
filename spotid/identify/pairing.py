"""Paired-station evidence inside identify: the two cameras of a station photograph one passing animal's
left and right flanks within seconds, so those two bursts are one animal.

The census already links a left and a right *identity* that way. Identify uses the same fact one step
earlier, while it proposes new individuals: if right-flank bursts A and B were not matched to each
other by their patterns, but A was photographed together with left burst C, B with left burst D, and
C and D *were* matched, then A and B are one animal too, so they become one proposed right identity
instead of two. This is how a biologist reads a paired station, and it stops one leopard becoming
two when only one of its flanks was photographed well enough to match.

Only unambiguous co-occurrences count: at that station and time, exactly one left burst on one
camera and exactly one right burst on the other, and neither burst has two leopards of its flank in
one frame (a female with cubs passing together links nothing). A merge always needs a pattern match
on the other flank; pairing alone never joins two bursts of the same flank.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Hashable, Sequence

import numpy as np

from spotid.identify.bursts import two_animals_in_a_frame


@dataclass(frozen=True)
class BurstSpan:
    """When and where one burst (a group of frames of one flank) was photographed.

    ``start``/``end``: first and last frame time (timezone-aware); ``camera``: deployment id;
    ``station``: the deployment's location (paired cameras share it)."""

    flank: str
    station: str
    camera: str
    start: datetime
    end: datetime
    crowded: bool = False      # two or more leopards of this flank in one frame: never paired


def pair_bursts(spans: Sequence[BurstSpan], seconds: float) -> list[tuple[int, int]]:
    """Unambiguous left/right co-occurrences: pairs ``(i, j)`` of indices into ``spans`` with
    ``spans[i].flank == 'left'`` and ``spans[j].flank == 'right'``, same station, different cameras,
    time spans within ``seconds`` of each other, and each the other's only such partner.
    Spans without a time or station are never paired; crowded spans are never paired and, being
    there, make their neighbours ambiguous too."""
    gap = timedelta(seconds=seconds)
    partners: dict[int, set[int]] = defaultdict(set)
    by_station: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(spans):
        if s.station is not None and s.start is not None and s.flank in ("left", "right"):
            by_station[s.station].append(i)
    for idx in by_station.values():
        lefts = [i for i in idx if spans[i].flank == "left"]
        rights = [j for j in idx if spans[j].flank == "right"]
        for i in lefts:
            a = spans[i]
            for j in rights:
                b = spans[j]
                if a.camera != b.camera and a.start - gap <= b.end and b.start - gap <= a.end:
                    partners[i].add(j)
                    partners[j].add(i)
    return sorted((i, next(iter(ps))) for i, ps in partners.items()
                  if spans[i].flank == "left" and len(ps) == 1 and len(partners[next(iter(ps))]) == 1
                  and not spans[i].crowded and not spans[next(iter(ps))].crowded)


class _UnionFind:
    def __init__(self):
        self.parent: dict = {}

    def find(self, a):
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb, key=repr)] = min(ra, rb, key=repr)


def join_through_pairs(nodes: Sequence[Hashable], pairs: Sequence[tuple[int, int]]) -> dict[Hashable, Hashable]:
    """Components of the graph whose vertices are burst identity nodes and whose edges are the
    co-occurrence ``pairs`` (indices into ``nodes``). A node is ``(flank, cluster)`` for a burst
    proposed as new (its cluster from pattern matching within that flank) or ``('known', individual
    id)`` for a burst matched to a known individual. Returns {node: component root} for every node."""
    uf = _UnionFind()
    for n in nodes:
        uf.find(n)
    for i, j in pairs:
        uf.union(nodes[i], nodes[j])
    return {n: uf.find(n) for n in nodes}


def burst_span(flank: str, members: Sequence, station: dict[str, str]) -> BurstSpan:
    """The span of a burst's frames (objects with ``.time`` ISO strings, ``.camera``, ``.media_id`` and
    ``.box``)."""
    times = sorted(datetime.fromisoformat(m.time) for m in members if m.time)
    cam = members[0].camera
    crowded = two_animals_in_a_frame(members)
    return BurstSpan(flank, station.get(cam), cam, times[0] if times else None, times[-1] if times else None,
                     crowded)


def join_paired_clusters(plans: dict, station: dict[str, str], seconds: float) -> int:
    """Relabel the new-individual clusters of each flank's plan in place so that clusters joined
    through paired co-occurrences (:func:`pair_bursts` + :func:`join_through_pairs`) share a label,
    and set ``plan.notes`` {label: why} for the joined ones (stored with the proposed individual,
    shown on the review page).

    ``plans`` {flank: plan} with ``plan.decided`` [(members, individual, P, burst)], ``plan.new_groups``
    [(members, burst)] and ``plan.labels`` ``(len(new_groups),)`` cluster ids 0..k-1; ``station``
    {deployment id: station}. Returns how many clusters were absorbed."""
    spans, nodes = [], []
    for flank, plan in plans.items():
        for members, ind, _, _ in plan.decided:
            spans.append(burst_span(flank, members, station))
            nodes.append(("known", ind))
        for (members, _), lab in zip(plan.new_groups, plan.labels):
            spans.append(burst_span(flank, members, station))
            nodes.append((flank, int(lab)))
    pairs = pair_bursts(spans, seconds)
    root = join_through_pairs(nodes, pairs)
    merges = 0
    for flank, plan in plans.items():
        plan.notes = {}
        if not len(plan.labels):
            continue
        first: dict = {}
        for lab in plan.labels.tolist():
            first.setdefault(root[(flank, lab)], lab)
        merged = [first[root[(flank, lab)]] for lab in plan.labels.tolist()]
        absorbed = len(set(plan.labels.tolist())) - len(set(merged))
        merges += absorbed
        remap: dict[int, int] = {}
        new = np.array([remap.setdefault(int(c), len(remap)) for c in merged], int)
        if absorbed:
            for lab in set(new.tolist()):
                olds = sorted({int(o) for o, n in zip(plan.labels.tolist(), new.tolist()) if n == lab})
                if len(olds) > 1:
                    plan.notes[lab] = _join_note(flank, plan, olds, spans, nodes, pairs, seconds)
        plan.labels = new
    return merges


def _join_note(flank: str, plan, olds: list[int], spans, nodes, pairs, seconds: float) -> str:
    """Why bursts that did not match each other were proposed as one individual."""
    other = "right" if flank == "left" else "left"
    partner = {}
    for i, j in pairs:
        partner[i], partner[j] = j, i
    lines = []
    for k, n in enumerate(nodes):
        if n[0] == flank and n[1] in olds and k in partner:
            s, o = spans[k], spans[partner[k]]
            lines.append(f"{s.camera} {s.start.isoformat(timespec='seconds')} with {o.camera} "
                         f"{o.start.isoformat(timespec='seconds')}")
    return (f"{len(olds)} groups of {flank}-flank bursts that did not match each other, joined because each "
            f"was photographed within {seconds:g} s with a {other}-flank burst at the paired camera and "
            f"those {other}-flank bursts matched: " + "; ".join(sorted(set(lines))))
