"""Writing identify's decisions to the catalog: sightings with their ranked candidates and evidence,
and the sightings set aside (status 'unusable') with the reason. Callers hold the transaction for
:meth:`SightingWriter.sighting`; :meth:`SightingWriter.set_aside` batches its own."""
from __future__ import annotations

import json

from spotid.catalog import Catalog, now_iso
from spotid.catalog.tables import sightings
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
                    sid = sightings.insert_set_aside(cat, detection_id=r.detection_id, flank=r.flank, run_id=run_id,
                                                     model_version=self.model_version, updated_at=now_iso(),
                                                     reason=reason)
                    if sid is None:
                        continue
                    result.unusable += 1
                    ev = (evidence or {}).get(r.detection_id)
                    probs, extra = (more or {}).get(r.detection_id, ({}, []))
                    cands = (self.matcher.decide([ev]) if ev else []) + extra
                    if cands:
                        self.candidates(cat, sid, {**(burst or {}), **probs}, cands, run_id)

    def sighting(self, cat: Catalog, r, ind: int, p: float | None, burst: dict, cands: list, run_id: int,
                 result) -> None:
        """One sighting; its candidates ranked as the burst decided (``burst`` {individual: P}), each
        with this frame's own P, scores and keypoint evidence (``cands``)."""
        cfg = self.cfg
        known = p is not None
        status = "auto" if known and cfg.auto_accept and p >= cfg.auto_accept_threshold else "pending"
        sid = sightings.insert_identified(cat, detection_id=r.detection_id, individual_id=ind, flank=r.flank,
                                          status=status, probability=p, run_id=run_id,
                                          model_version=self.model_version, updated_at=now_iso())
        if sid is None:
            return
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
            sightings.insert_candidate(cat, sighting_id=sid, individual_id=int(i), rank=rank,
                                       embed_score=c.embed_score, verify_inliers=c.inliers, probability=c.probability,
                                       reference_detection_id=int(c.ref), evidence_json=json.dumps(c.evidence),
                                       run_id=run_id, model_version=self.model_version)
