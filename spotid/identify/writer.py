"""Writing identify's decisions to the catalog: sightings with their ranked candidates and evidence,
and the sightings set aside (status 'unusable') with the reason. Callers hold the transaction for
:meth:`SightingWriter.sighting`; :meth:`SightingWriter.set_aside` batches its own."""
from __future__ import annotations

import json

from spotid.catalog import Catalog, now_iso
from spotid.util import batched


class SightingWriter:
    """``cfg``: :class:`~spotid.identify.config.WriterSettings` (``auto_accept``, ``auto_accept_threshold``, ``top_k``);
    ``matcher``: ranks a frame's own candidates from its evidence; ``model_version`` is stored with
    every row. Results are counted in the run's ``IdentifyResult``."""

    def __init__(self, cfg, matcher, model_version: str):
        self.cfg = cfg
        self.matcher = matcher
        self.model_version = model_version

    def set_aside(self, cat: Catalog, rows: list, run_id: int, result, reason: str,
                  evidence: dict | None = None, burst: dict | None = None, more: dict | None = None) -> None:
        """Set ``rows`` aside (status 'unusable', ``set_aside_reason``). A burst that matched somebody
        below the threshold keeps those candidates (``evidence`` per frame, ``burst`` {individual: P}),
        so a reviewer going through set-aside sightings sees who it might be; ``more`` adds candidates
        per frame ({detection id: ({individual: P}, [Candidate])}, e.g. this run's new proposals)."""
        if rows:
            result.unusable_reasons[reason] = result.unusable_reasons.get(reason, 0) + len(rows)
        for chunk in batched(rows, 500):
            with cat.transaction():
                for r in chunk:
                    cur = cat.execute(
                        "INSERT OR IGNORE INTO sightings (detection_id, individual_id, flank, status, run_id, "
                        "model_version, updated_at, set_aside_reason) VALUES (?, NULL, ?, 'unusable', ?, ?, ?, ?)",
                        (r.detection_id, r.flank, run_id, self.model_version, now_iso(), reason))
                    if cur.rowcount == 0:
                        continue
                    result.unusable += 1
                    ev = (evidence or {}).get(r.detection_id)
                    probs, extra = (more or {}).get(r.detection_id, ({}, []))
                    cands = (self.matcher.decide([ev]) if ev else []) + extra
                    if cands:
                        self.candidates(cat, int(cur.lastrowid), {**(burst or {}), **probs}, cands, run_id)

    def sighting(self, cat: Catalog, r, ind: int, p: float | None, burst: dict, cands: list, run_id: int,
                 result) -> None:
        """One sighting; its candidates ranked as the burst decided (``burst`` {individual: P}), each
        with this frame's own P, scores and keypoint evidence (``cands``)."""
        cfg = self.cfg
        known = p is not None
        status = "auto" if known and cfg.auto_accept and p >= cfg.auto_accept_threshold else "pending"
        cur = cat.execute(
            "INSERT OR IGNORE INTO sightings (detection_id, individual_id, flank, status, probability, run_id, "
            "model_version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (r.detection_id, ind, r.flank, status, p, run_id, self.model_version, now_iso()))
        if cur.rowcount == 0:
            return
        sid = int(cur.lastrowid)
        if not known:
            result.new_sightings += 1
        elif status == "auto":
            result.auto += 1
        else:
            result.matched += 1
        self.candidates(cat, sid, burst, cands, run_id)

    def candidates(self, cat: Catalog, sid: int, burst: dict, cands: list, run_id: int) -> None:
        """The sighting's candidates ranked as its burst decided (``burst`` {individual: P}), each with
        this frame's own P, scores and keypoint evidence (``cands``); the best ``top_k``."""
        by_ind = {c.individual: c for c in cands}
        order = sorted(by_ind, key=lambda i: -burst.get(i, 0.0))
        for rank, i in enumerate(order[: self.cfg.top_k], start=1):
            c = by_ind[i]
            cat.execute(
                "INSERT OR IGNORE INTO match_candidates (sighting_id, individual_id, rank, embed_score, verify_inliers, "
                "probability, reference_detection_id, evidence_json, run_id, model_version) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (sid, int(i), rank, c.embed_score, c.inliers, c.probability, int(c.ref), json.dumps(c.evidence),
                 run_id, self.model_version))
