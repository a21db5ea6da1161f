"""Scoring a catalog against the synthetic world's truth (``truth.json`` of a synth card): which detection
is which true leopard, and how many identities were split or merged. Used by ``spotid demo`` and the
benchmarks; a field survey has no truth and never calls this.
"""
from __future__ import annotations

import json
from pathlib import Path

from spotid.catalog import Catalog
from spotid.catalog.tables import deployments, detections, individuals, media, sightings
from spotid.synth.truth import truth_boxes
from spotid.types import MediaRow


def read_truth(card_root: Path) -> tuple[int, int, dict]:
    """(population size, individuals photographed, truth json) from the synth card's truth.json."""
    truth = json.loads((card_root / "truth.json").read_text(encoding="utf-8"))
    pop = truth.get("population") or []
    photographed = {a.get("individual_id") for a in truth.get("annotations", []) if a.get("individual_id")}
    if pop and all("photographed" in p for p in pop):
        photographed = {p["individual_id"] for p in pop if p["photographed"]}
    return len(pop), len(photographed), truth


def true_density(truth: dict) -> float | None:
    """Animals per 100 km² in the synthetic world's state space (``world.area_m`` = x0, y0, x1, y1 metres),
    the quantity SECR estimates; None for a truth file without it."""
    area = (truth.get("world") or {}).get("area_m")
    pop = truth.get("population") or []
    if not area or not pop:
        return None
    km2 = (area[2] - area[0]) * (area[3] - area[1]) / 1e6
    return len(pop) / km2 * 100 if km2 > 0 else None


def within_10pct(counted: int, photographed: int) -> bool | None:
    """The demo's bar (issue 20): the count within 10% of the leopards photographed; None when none was."""
    return abs(counted - photographed) <= 0.1 * photographed if photographed else None


def check_against_truth(cat: Catalog, truth: dict, card_root: Path,
                        statuses: tuple[str, ...] = ("auto", "confirmed")) -> dict:
    """Split/merge audit of the counted identities against the synthetic truth.

    Detections are matched to truth boxes by :func:`truth_boxes` at IoU >= 0.1: a box cut through a
    leopard (half the animal, or two boxes on one animal) still counts as that leopard, so an identity
    founded on it shows up as a split instead of vanishing from the audit. Per identity: the majority true
    individual (purity); a *merge* is an identity holding sightings of two or more true individuals,
    a *split* a true individual (per flank) spread over two or more identities. ``statuses``: the
    sightings audited (default: those the census counts; add ``pending`` to audit what identify
    proposed before anybody reviewed it). ``identities_not_leopard``: identities none of whose sightings
    lies on a leopard (another species, a person or scenery the classifier called leopard); the census
    counts them, while ``identities`` and the split/merge audit cannot see them.
    """
    boxes = truth_boxes(cat, truth, card_root, min_iou=0.1)
    rows = sightings.assigned_with_flank(cat, statuses)
    ident_truth: dict[int, dict] = {}
    unmatched = 0
    for r in rows:
        best = boxes.get(int(r["detection_id"]))
        if best is None:
            unmatched += 1
            continue
        ident_truth.setdefault(r["individual_id"], {}).setdefault(best["individual_id"], 0)
        ident_truth[r["individual_id"]][best["individual_id"]] += 1
    not_leopard = len({r["individual_id"] for r in rows} - set(ident_truth))
    merges = sum(1 for c in ident_truth.values() if len(c) > 1)
    per_true: dict[tuple, set] = {}
    flank = {r["individual_id"]: r["flank"] for r in rows}
    for iid, c in ident_truth.items():
        major = max(c, key=c.get)
        per_true.setdefault((major, flank[iid]), set()).add(iid)
    splits = sum(1 for s in per_true.values() if len(s) > 1)
    total = sum(sum(c.values()) for c in ident_truth.values())
    correct = sum(max(c.values()) for c in ident_truth.values())
    return {"identities": len(ident_truth), "merged_identities": merges, "split_individual_flanks": splits,
            "sighting_purity": round(correct / total, 4) if total else None,
            "sightings_not_matched_to_truth": unmatched, "identities_not_leopard": not_leopard}


def accept_new_individuals(cat: Catalog) -> int:
    """Demo only (nobody reviews): accept the sightings that found machine-proposed new individuals.

    Identify leaves them 'pending' for a biologist; matches to known individuals were already
    auto-accepted at the re-ID model's threshold, and the rest stay pending (not counted).
    """
    with cat.transaction() as conn:
        return sightings.accept_founders_of_proposed(conn)


def catalog_from_world(cat: Catalog, world) -> dict[tuple[str, str], int]:
    """Write a synthetic world's leopard triggers into ``cat`` as if identified perfectly (no rendering,
    no detector, no re-ID): deployments at the stations' latitude/longitude, one media + detection +
    confirmed sighting per left/right-flank trigger, one individual per (animal, flank). Measures the
    census and its estimators alone. Returns {(truth id, flank): individual id}.
    """
    from datetime import timedelta

    from spotid.catalog import now_iso

    ind: dict[tuple[str, str], int] = {}
    end = (world.start + timedelta(days=world.cfg.days)).isoformat()
    with cat.transaction() as conn:
        for dep, st in world.deployments:
            deployments.insert(conn, dep, location_id=st.id, latitude=st.latitude, longitude=st.longitude,
                               start=world.start.isoformat(), end=end, created_at=now_iso())
        for k, t in enumerate(world.triggers()):
            if t.species != "leopard" or t.view not in ("left", "right"):
                continue
            m = media.insert(conn, MediaRow(deployment_id=t.deployment, sha=f"s{k}", path=f"/world/{k}.jpg",
                                            rel_path=f"{k}.jpg", kind="image", timestamp=t.start.isoformat(),
                                            size_bytes=1))
            key = (t.individual, t.view)
            if key not in ind:
                ind[key] = individuals.insert_with_truth(conn, name=f"{key[0]}-{key[1]}", flank=key[1],
                                                         status="confirmed", created_at=now_iso(), truth_id=key[0])
            d = detections.insert(conn, media_id=m, detector="truth", category=1, conf=1.0, x=0.1, y=0.1, w=0.3,
                                  h=0.3, label="leopard")
            sightings.insert(conn, detection_id=d, individual_id=ind[key], status="confirmed", updated_at=now_iso())
    return ind


def world_density(world) -> float:
    """Animals per 100 km² in a synthetic world's state space (what SECR estimates)."""
    x0, y0, x1, y1 = world.area
    return len(world.population) / ((x1 - x0) * (y1 - y0) / 1e6) * 100
