"""The identify stage over a catalog: crops -> flank, embedding, features -> matches -> sightings.

``Identifier(config, embedder=..., flank=...)(catalog) -> IdentifyResult``; ``identify_catalog`` builds
the shipped models and runs it (``spotid identify`` and ``spotid demo`` call it).

What a run does, for every leopard detection (``label='leopard'``, ``static_fp=0``) without a sighting:
1. crop (cached JPEG next to the catalog), quality, flank, embedding and RootSIFT features, cached in
   ``crops`` (skipped when the cached row already has the current model versions); a left/right frame
   outvoted by the other frames of its one-animal burst takes their flank (:mod:`spotid.identify.bursts`);
2. every frame is matched against the gallery of known crops (sightings auto/confirmed/pending of
   individuals confirmed/proposed) of its flank (whole gallery when small, else cosine + descriptor-vote
   shortlist; background that stays put in one camera's frame does not count); the frames of one burst
   (same sequence, same flank) pool their evidence and get one decision P(right individual);
3. a group whose best individual reaches ``threshold`` becomes pending (or auto when auto-accept is on
   and P >= ``auto_accept_threshold``); the others are new-individual candidates, clustered across the
   run on pairwise P(same) between groups (every frame against every other group's frames, linkage
   ``cluster_linkage``, and never on fewer than ``new_cluster_min_inliers``) so that one new animal
   seen five times is proposed once; new bursts whose coat matches the other flank's new bursts more
   than its own side's take that flank first (``reflank_new_bursts``, :mod:`spotid.identify.crossflank`:
   a whole burst called the wrong side would found a second animal); then clusters of
   one flank whose bursts were photographed together with bursts of the other flank that matched
   each other (paired stations, within ``pair_seconds``) are joined (:mod:`spotid.identify.pairing`);
   every new sighting keeps the run's other same-flank proposals as ranked candidates, so the review
   page shows where one animal may have become two (:mod:`spotid.identify.proposals`); a cluster
   with fewer than ``found_min_frames`` frames of its flank, from bursts that had that many frames to
   show them in, is set aside instead (:func:`~spotid.identify.bursts.thin_clusters`);
4. frames without a left/right flank (front/back views, a classifier unsure of the side) are then
   matched one by one against both flanks' individuals, this run's included, and join one their own
   evidence takes to ``threshold`` (``match_unknown_flank``); they never found an individual nor
   become references;
5. the rest of those, and groups that match nobody but may not found an individual (too small or
   blurred, boxes below the detector's typical threshold, no frame clearly a leopard, or frames that
   do not match each other: :mod:`spotid.identify.founding`), are 'unusable' with the reason kept
   (``set_aside_reason``).
Re-runs only touch detections without a sighting, so nothing is duplicated; each batch of writes is
one transaction.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from spotid.catalog import Catalog, now_iso
from spotid.catalog.tables import crops, deployments, detections, individuals, sightings
from spotid.identify.bursts import burst_flank_vote, group_bursts, thin_clusters
from spotid.identify.calibrate import Calibration, load_calibration
from spotid.identify.config import IdentifyConfig
from spotid.identify.crops import Cropper, crop_geometry, stored_crop_size
from spotid.identify.cropstore import CropStore, stored_features
from spotid.identify.founding import FoundingRules
from spotid.identify.match import Gallery, Matcher
from spotid.identify.pairing import join_paired_clusters
from spotid.identify.proposals import (
    ClusterEvidence,
    cluster_proposals,
    sibling_candidates,
    sibling_ranking,
)
from spotid.identify.verify import FeatureExtractor, Features, Place, Verifier
from spotid.identify.result import IdentifyResult
from spotid.identify.writer import SightingWriter
from spotid.types import CropRow
from spotid.util import batched, progress

log = logging.getLogger(__name__)


@dataclass
class _Row:
    detection_id: int
    sequence_id: int | None
    media_id: int
    flank: str
    quality: float
    embedding: np.ndarray
    features: Features
    place: Place | None = None
    failed: bool = False
    camera: str | None = None          # deployment id
    conf: float = 1.0                  # detection confidence
    leopard_p: float = 1.0             # the classifier's P(leopard) (1.0 when it gave none)
    leopard_floor: float | None = None  # P(leopard) this frame needs to found one (found_min_leopard_p; None = none)
    box: tuple | None = None           # detection box, normalised (x, y, w, h)
    time: str | None = None            # ISO timestamp with offset
    burst_frames: int = 1              # frames the camera took in this frame's sequence (1 without one)
    extra: dict = field(default_factory=dict)  # {local matcher name: Features} fused beside RootSIFT


@dataclass
class _FlankPlan:
    """One flank's run before writing: frame evidence, bursts decided for known individuals
    (members, individual, P, burst P's), new-candidate bursts (members, burst P's) and their cluster
    labels ``(n_new,)``."""

    evidence: dict
    decided: list
    new_groups: list
    labels: np.ndarray
    cluster_ev: ClusterEvidence
    notes: dict = field(default_factory=dict)   # {label: why its bursts were joined}
    aside: list = field(default_factory=list)   # [(members, reason, burst P's)] set aside when written
    gallery: Gallery | None = None               # the flank's known crops the frames were matched against


class Identifier:
    """Stage: ``Identifier(cfg, embedder=E, flank=F)(catalog) -> IdentifyResult``.

    ``embedder(images) -> (N, D)`` float32 unit rows with ``.version``; ``flank(images) ->
    [FlankPrediction]`` (``.flank``, ``.conf``); images are RGB PIL crops.
    """

    def __init__(self, cfg: IdentifyConfig, *, embedder, flank, calibration: Calibration | None = None, catalog=None,
                 extractor: FeatureExtractor | None = None):
        self.cfg = cfg
        self.embedder = embedder
        self.flank = flank
        self.calibration = calibration or load_calibration(cfg.calibration, descriptor=cfg.descriptor)
        self.cropper = Cropper(pad=cfg.pad, max_side=cfg.crop_max_side, blur_ref=cfg.blur_ref,
                               size_ref=cfg.size_ref, edge_penalty=cfg.edge_penalty)
        # catalog: its active foreground model; a caller that built the extractor already passes it
        self.extractor = extractor or FeatureExtractor.from_config(cfg.features, catalog)
        self.verifier = Verifier.from_config(cfg.verifier)
        fusion, local = self._fusion(cfg, catalog) if cfg.scorer == "fusion" else (None, {})
        if fusion is None:
            self.calibration.check_features(self.extractor.version)
        self.matcher = Matcher(self.verifier, self.calibration, shortlist=cfg.shortlist, top_k=cfg.top_k,
                               verify_all=cfg.verify_all, fusion=fusion, local=local)
        self.features_version = self.extractor.version + ("+box" if cfg.box_only else "")
        self.store = CropStore(cfg.crops, embedder=embedder, flank=flank, cropper=self.cropper, extractor=self.extractor,
                               features_version=self.features_version, flank_version=self.flank_version, local=local)
        self.writer = SightingWriter(cfg.writer, self.matcher, self.model_version)
        # crop JPEG sizes, for frame positions: read once per run, though the gallery is loaded twice
        # when frames without a flank are matched after this run's individuals are written
        self._crop_sizes: dict[str, tuple[int, int] | None] = {}
        self.founding = FoundingRules(cfg, self.verifier)   # may a burst that matched nobody found one?

    @property
    def flank_version(self) -> str:
        """Flank model version and its unknown-threshold, as cached in ``crops.flank_model``."""
        return f"{getattr(self.flank, 'version', '?')}@{getattr(self.flank, 'threshold', '')}"

    def _fusion(self, cfg: IdentifyConfig, catalog) -> tuple:
        """The calibrated fusion (``cfg.fusion``, else models/matcher/fusion) and the local matchers it
        fuses beside the embedding and RootSIFT, built with identify's settings; a matcher whose version
        differs from the one the fusion was fitted on is refused with the fix."""
        from spotid.identify.fusion import load_fusion
        from spotid.identify.local import build_local

        fusion = load_fusion(cfg.fusion)
        if "embedding" in fusion.calibrations:
            fitted = str(fusion.meta.get("embedder", ""))
            if fitted and fitted != getattr(self.embedder, "version", fitted):
                log.warning("fusion %s was fitted for %s, identify embeds with %s: refit it "
                            "(models/matcher/fusion/reproduce.sh)", fusion.version, fitted, self.embedder.version)
        local = {}
        for name in fusion.scorers:
            if name in ("embedding", "sift"):
                continue
            m = build_local(name, cfg, catalog)   # feature (foreground) and verifier settings both
            off = fusion.off_fit({name: m.version})
            if off:
                raise ValueError(f"fusion {fusion.version} {off[0]}: refit the fusion "
                                 "(models/matcher/fusion/reproduce.sh) or use scorer: calibration")
            local[name] = m
        return fusion, local

    @property
    def model_version(self) -> str:
        return f"{self.embedder.version}+{self.matcher.version}"

    def _place(self, camera, bbox, crop_path) -> Place | None:
        if camera is None or crop_path is None:
            return None
        if crop_path not in self._crop_sizes:
            self._crop_sizes[crop_path] = stored_crop_size(crop_path) if Path(crop_path).exists() else None
        size = self._crop_sizes[crop_path]
        if size is None:
            return None
        _, (x0, y0, sx, sy) = crop_geometry(bbox, self.cfg.pad, size)
        return Place(str(camera), x0, y0, sx, sy)

    # -- step 1: crops and per-crop features -------------------------------------------------------
    def _todo(self, cat: Catalog, deployment: str | None) -> list:
        # a file copy time (no EXIF time) says nothing about when the camera fired: it comes back NULL, so
        # such a frame gets no paired-station time
        return detections.leopards_to_identify(cat, deployment, burst_s=self.cfg.found_burst_s)

    # -- step 2: gallery ---------------------------------------------------------------------------
    def _gallery(self, cat: Catalog, flank: str) -> tuple[Gallery, dict[int, str]]:
        """Known crops of one flank; merged individuals resolve to the one they were merged into.
        Crops embedded or featured by another model version (an older spotid) are brought up to date
        from their cached JPEGs first, so every pair is scored on the scale the calibration was fitted on."""
        rows = sightings.gallery(cat, flank)   # seen flanks only: see _write_unknown_flank
        if self.store.refresh(cat, rows):
            rows = sightings.gallery(cat, flank)
        names = individuals.names(cat)
        local = self.store.local_features(cat, rows)
        extra = {name: [local[int(r["detection_id"])][name] for r in rows] for name in self.matcher.local}
        embs, feats, inds, refs, places = [], [], [], [], []
        for r in rows:
            # a crop the update could not reach (its JPEG is gone; logged) keeps its features, but an
            # embedding from another model is on another scale (maybe another size): it gets none
            fresh = r["embedding"] is not None and r["embedder"] == self.embedder.version
            embs.append(np.frombuffer(r["embedding"], "<f4").astype(np.float32) if fresh else None)
            feats.append(stored_features(CropRow.from_row(r)))
            inds.append(int(r["ind"]))
            refs.append(int(r["detection_id"]))
            places.append(self._place(r["deployment_id"], (r["x"], r["y"], r["w"], r["h"]), r["crop_path"]))
        dim = next((e.shape[0] for e in embs if e is not None), 1)
        E = (np.stack([e if e is not None else np.zeros(dim, np.float32) for e in embs]) if embs
             else np.zeros((0, 1), np.float32))
        return Gallery(E, feats, inds, refs, places, extra), names

    # -- the run -----------------------------------------------------------------------------------
    def __call__(self, cat: Catalog, *, deployment: str | None = None, retry_set_aside: bool = False) -> IdentifyResult:
        """``retry_set_aside``: first forget the sightings an earlier run set aside that no person has
        decided, so they are matched again, e.g. views without a flank against the individuals people
        have created in review since."""
        cfg = self.cfg
        with cat.run("identify", cfg, self.model_version) as run_id:
            result = IdentifyResult(run_id=run_id, model_version=self.model_version)
            if retry_set_aside:
                result.retried = self._forget_set_aside(cat, deployment)
            cat.set_setting("identify.accept_threshold", str(cfg.auto_accept_threshold if cfg.auto_accept
                                                              else cfg.threshold))
            cat.set_setting("identify.match_threshold", str(cfg.threshold))
            rows = self.crop_rows(cat, deployment=deployment, result=result)
            result.detections = len(rows)
            if not rows:   # a rerun with new settings changes nothing already decided: say so, not just zeros
                log.info("nothing new to identify%s: every leopard detection already has a sighting, and identify "
                         "never re-decides those (review them; --retry-set-aside matches set-aside views again)",
                         f" in {deployment}" if deployment else "")
            self.writer.set_aside(cat, [r for r in rows if r.failed], run_id, result, "crop failed")
            unknown = [r for r in rows if not r.failed and r.flank not in ("left", "right")]
            plans = {}
            for flank in ("left", "right"):
                fr = [r for r in rows if not r.failed and r.flank == flank]
                if fr:
                    plans[flank] = self._plan_flank(cat, fr, flank)
            if cfg.reflank_new_bursts and plans:
                rows, plans = self._reflank(cat, rows, plans, result)
            if cfg.pair_seconds is not None:
                result.paired_merges = self._join_paired(cat, plans)
            for flank, plan in plans.items():
                self._write_flank(cat, plan, flank, run_id, result)
            self._write_unknown_flank(cat, unknown, run_id, result)
            return result

    def _forget_set_aside(self, cat: Catalog, deployment: str | None) -> int:
        """Delete identify's set-aside sightings (a person's decision clears ``set_aside_reason``, so
        theirs stay); their candidates go with them, their crops stay cached."""
        with cat.transaction() as conn:
            return sightings.delete_set_aside(conn, deployment)

    def crop_rows(self, cat: Catalog, *, deployment: str | None = None,
                  result: IdentifyResult | None = None) -> list[_Row]:
        """One row per leopard detection without a sighting: its crop, quality, flank, embedding and
        features, computed and cached where missing (``failed`` where the frame could not be cropped;
        failures are counted in ``result``). With ``burst_flank_vote`` the flank is the one-animal
        burst's majority (the cache keeps the classifier's answer), so identify and the calibration
        cards match the same flanks."""
        result = result if result is not None else IdentifyResult(run_id=0)
        todo = self._todo(cat, deployment)
        self._crop_sizes.clear()  # ensure may cut crops anew
        self.founding.reset()
        self.store.ensure(cat, todo, result)
        rows = self._load_rows(cat, [r["id"] for r in todo], {r["id"]: r for r in todo})
        if self.cfg.burst_flank_vote:  # one pass shows one side: an odd frame out is a classifier error
            voted = burst_flank_vote([r for r in rows if not r.failed])
            rows = [replace(r, flank=voted.get(r.detection_id, r.flank)) for r in rows]
            result.flank_outvoted = len(voted)
        return rows

    def _load_rows(self, cat: Catalog, ids: list[int], meta: dict) -> list[_Row]:
        out = []
        crop_refs = []   # what the other local matchers' features need of each crop: its JPEG and box
        for chunk in batched(ids, 500):
            got = crops.of_detections(cat, chunk)
            for d in chunk:
                c, m = got.get(d), meta[d]
                if c is None or c.embedding is None:
                    out.append(_Row(d, m["sequence_id"], m["media_id"], "unknown", 0.0, np.zeros(1, np.float32),
                                    Features.empty(), failed=True, camera=m["deployment_id"], time=m["timestamp"],
                                    conf=float(m["conf"]), box=(m["x"], m["y"], m["w"], m["h"])))
                    continue
                out.append(_Row(d, m["sequence_id"], m["media_id"], c.flank or "unknown", float(c.quality or 0),
                                np.frombuffer(c.embedding, "<f4").astype(np.float32),
                                stored_features(c),
                                self._place(m["deployment_id"], (m["x"], m["y"], m["w"], m["h"]), c.crop_path),
                                camera=m["deployment_id"], time=m["timestamp"], conf=float(m["conf"]),
                                leopard_p=1.0 if m["label_conf"] is None else float(m["label_conf"]),
                                leopard_floor=self.founding.leopard_floor(cat, m["detector"]),
                                box=(m["x"], m["y"], m["w"], m["h"]), burst_frames=int(m["burst_frames"])))
                crop_refs.append({"detection_id": d, "crop_path": c.crop_path,
                                  **{k: m[k] for k in ("x", "y", "w", "h")}})
        if self.matcher.local:
            local = self.store.local_features(cat, crop_refs)
            out = [replace(r, extra=local[r.detection_id]) if not r.failed else r for r in out]
        return out

    def _write_unknown_flank(self, cat: Catalog, rows: list[_Row], run_id: int, result: IdentifyResult) -> None:
        """Frames without a left/right flank (front, back, or a classifier unsure of the side) never found
        an individual. With ``match_unknown_flank`` each is matched against both flanks' galleries, this
        run's new individuals included, and joins its best individual, with that individual's flank, if
        its OWN evidence reaches ``threshold`` and ``unknown_flank_min_inliers``: two coats' rosettes do
        not agree by chance whichever way the animal faced, but a burst's other frames do not vouch for
        it (a second box on a bush in the frame would ride along), and with few individuals to compete,
        P alone is high at chance-level inliers (6 inliers gave P 0.72 for another animal). The rest
        are set aside. They never become references (``_gallery``),
        so a front view cannot carry a match from one flank to the other."""
        reason = "no left/right flank (front, back or unsure)"
        if not self.cfg.match_unknown_flank or not rows:
            self.writer.set_aside(cat, rows, run_id, result, reason)
            return
        galleries = [g for g in (self._gallery(cat, f)[0] for f in ("left", "right")) if g.individuals]
        flank_of = individuals.flanks(cat)
        aside, evidence, joined = [], {}, []
        for m in rows:
            ev, cands, placed = self._own_match([m], galleries)
            if placed:
                joined.append((replace(m, flank=flank_of[int(cands[0].individual)]), cands))
            else:
                aside.append(m)
                evidence[m.detection_id] = ev[m.detection_id]
        for chunk in batched(joined, 200):
            with cat.transaction():
                for m, cands in chunk:
                    self.writer.sighting(cat, m, cands[0].individual, cands[0].probability,
                                         {c.individual: c.probability for c in cands}, cands, run_id, result)
        result.flank_from_match += len(joined)
        # each keeps its own candidates, ranked by its own P
        self.writer.set_aside(cat, aside, run_id, result, reason, evidence)

    def _own_match(self, frames: list[_Row], galleries: list[Gallery]) -> tuple[dict, list, bool]:
        """Frames matched against ``galleries`` on their own evidence: ({detection id: evidence}, the
        candidates decided on them together, whether the best reaches ``threshold`` on at least
        ``unknown_flank_min_inliers``, the bar for placing a view on a flank by its match)."""
        ev = {m.detection_id: {k: v for g in galleries
                               for k, v in self.matcher.evidence(m.embedding, m.features, g, place=m.place,
                                                                 q_extra=m.extra).items()} for m in frames}
        cands = self.matcher.decide(list(ev.values()))
        placed = bool(cands) and cands[0].probability >= self.cfg.threshold \
            and cands[0].inliers >= self.cfg.unknown_flank_min_inliers
        return ev, cands, placed

    def _plan_flank(self, cat: Catalog, rows: list[_Row], flank: str, known: dict | None = None,
                    gallery: Gallery | None = None) -> "_FlankPlan":
        """Match every frame of one flank to the gallery, decide per burst, cluster the new ones. Writes
        nothing (the run may plan a flank again); ``known``: evidence of frames already matched against
        this flank's ``gallery`` (loaded when not given)."""
        cfg = self.cfg
        gallery = gallery if gallery is not None else self._gallery(cat, flank)[0]
        # per frame: evidence against the known gallery
        evidence = {}
        for r in progress(rows, total=len(rows), description=f"match {flank}"):
            evidence[r.detection_id] = (known[r.detection_id] if known and r.detection_id in known else
                                        self.matcher.evidence(r.embedding, r.features, gallery, place=r.place,
                                                              q_extra=r.extra))
        groups = group_bursts(rows, gap_s=cfg.pass_gap_s)
        decided, new_groups, aside = [], [], []
        for key, members in groups.items():
            cands = self.matcher.decide([evidence[m.detection_id] for m in members])
            burst = {c.individual: c.probability for c in cands}
            if cands and cands[0].probability >= cfg.threshold:
                decided.append((members, cands[0].individual, cands[0].probability, burst))
            elif (why := self.founding.why_not(cat, members)) is not None:
                aside.append((members, why, burst))
            else:
                new_groups.append((members, burst))
        labels, cluster_ev = self._cluster(new_groups)
        return _FlankPlan(evidence, decided, new_groups, labels, cluster_ev, aside=aside, gallery=gallery)

    def _reflank(self, cat: Catalog, rows: list[_Row], plans: dict,
                 result: IdentifyResult) -> tuple[list[_Row], dict]:
        """New bursts that match a known individual of the other flank on their own evidence
        (:meth:`_own_match`, the bar of views without a flank), or whose coat matches the other flank's
        new bursts (:func:`~spotid.identify.crossflank.misflanked`), take that flank; both flanks are
        then planned again, with the galleries and the evidence already measured."""
        from spotid.identify.crossflank import misflanked

        cfg = self.cfg
        if not any(p.new_groups for p in plans.values()):   # nothing would found an individual
            return rows, plans
        galleries = {f: plans[f].gallery if f in plans else self._gallery(cat, f)[0] for f in ("left", "right")}
        moved, known = {}, {d: e for p in plans.values() for d, e in p.evidence.items()}
        by_match = set()   # frames whose evidence in ``known`` is against the flank they move to
        for flank, plan in plans.items():
            other = "right" if flank == "left" else "left"
            if not galleries[other].individuals:
                continue
            for members, _ in plan.new_groups:
                ev, _, placed = self._own_match(members, [galleries[other]])
                if placed:
                    moved.update({m.detection_id: other for m in members})
                    known.update(ev)
                    by_match.update(ev)
        rest = {f: [g for g, (m, _) in enumerate(p.new_groups) if m[0].detection_id not in moved]
                for f, p in plans.items()}
        moved.update(misflanked({f: ([plans[f].new_groups[g][0] for g in idx], plans[f].cluster_ev.subset(idx))
                                 for f, idx in rest.items()}, self.matcher,
                                threshold=cfg.new_cluster_threshold, min_inliers=cfg.new_cluster_min_inliers,
                                min_prob=cfg.new_cluster_min_pair_prob, frames_per_group=self.cluster_frames,
                                linkage=cfg.cluster_linkage))
        if not moved:
            return rows, plans
        log.info("%d frame(s) of new bursts take the other flank: their coat matches that side's bursts", len(moved))
        result.flank_from_coat = len(moved)
        rows = [replace(r, flank=moved.get(r.detection_id, r.flank)) for r in rows]
        # a frame moved by the other flank's new bursts has no evidence against its new flank's gallery yet
        known = {d: e for d, e in known.items() if d not in moved or d in by_match}
        plans = {f: self._plan_flank(cat, fr, f, known=known, gallery=galleries[f])
                 for f in ("left", "right") if (fr := [r for r in rows if not r.failed and r.flank == f])}
        return rows, plans

    def _join_paired(self, cat: Catalog, plans: dict) -> int:
        """Join new clusters through paired-station co-occurrences (:func:`join_paired_clusters`)."""
        station = deployments.stations(cat)
        merges = join_paired_clusters(plans, station, self.cfg.pair_seconds)
        if merges:
            log.info("paired stations joined %d new-individual cluster(s) with their other flank's match", merges)
        return merges

    def _write_flank(self, cat: Catalog, plan: "_FlankPlan", flank: str, run_id: int,
                     result: IdentifyResult) -> None:
        evidence, decided, new_groups, labels = plan.evidence, plan.decided, plan.new_groups, plan.labels
        for members, why, burst in plan.aside:
            self.writer.set_aside(cat, members, run_id, result, why, evidence, burst)
        thin = thin_clusters([m for m, _ in new_groups], labels, self.cfg.found_min_frames)
        with cat.transaction() as conn:
            new_ids = {}
            for lab in sorted(set(labels.tolist()) - thin):
                name = individuals.next_name(cat, flank)
                new_ids[lab] = individuals.insert(conn, name=name, flank=flank, status="proposed",
                                                  created_at=now_iso(), created_by=f"run:{run_id}",
                                                  notes=plan.notes.get(lab))
                result.new_individuals.append(name)

        def siblings(g: int, members) -> dict:
            """{detection id: ({individual: P}, [Candidate])}: the run's proposals as a new burst's candidates."""
            ranking = sibling_ranking(g, labels, plan.cluster_ev, self.matcher.decider, self.cfg.top_k, among=set(new_ids))
            return {m.detection_id: sibling_candidates(ranking, m.detection_id, labels, plan.cluster_ev, new_ids)
                    for m in members}

        # too thin to found one, but a reviewer rescuing it sees this run's proposals among its candidates
        reason = (f"matched nobody, and fewer than {self.cfg.found_min_frames} frames of this flank in its "
                  "burst(s) to found a new individual")
        for g, ((members, burst), lab) in enumerate(zip(new_groups, labels)):
            if int(lab) in thin:
                self.writer.set_aside(cat, members, run_id, result, reason, evidence, burst, siblings(g, members))
        new = [(m, new_ids[int(lab)], None, v, g) for g, ((m, v), lab) in enumerate(zip(new_groups, labels))
               if int(lab) in new_ids]
        for chunk in batched([(*d, None) for d in decided] + new, 200):
            with cat.transaction():
                for members, ind, p, burst, g in chunk:
                    # a new proposal: the run's other proposals are its candidates too
                    sib = siblings(g, members) if g is not None else {}
                    for m in members:
                        frame = self.matcher.decide([evidence[m.detection_id]]) if evidence[m.detection_id] else []
                        probs, cands = sib.get(m.detection_id, ({}, []))
                        self.writer.sighting(cat, m, ind, p, {**burst, **probs}, frame + cands, run_id, result)

    #: frames per new-candidate group compared when clustering (the sharpest ones)
    cluster_frames = 4

    def _cluster(self, new_groups: list) -> tuple[np.ndarray, ClusterEvidence]:
        """Cluster new-candidate groups (:func:`cluster_proposals`)."""
        return cluster_proposals([m for m, _ in new_groups], self.matcher,
                                 threshold=self.cfg.new_cluster_threshold, linkage=self.cfg.cluster_linkage,
                                 frames_per_group=self.cluster_frames, min_inliers=self.cfg.new_cluster_min_inliers,
                                 min_prob=self.cfg.new_cluster_min_pair_prob)


def identify_catalog(cat: Catalog, *, cfg: IdentifyConfig | None = None, auto_accept: bool = False,
                     deployment: str | None = None, config_path: str | Path | None = None,
                     **overrides) -> IdentifyResult:
    """Run identify on ``cat`` with the active models. ``cfg``: a config the caller already resolved
    (``spotid process`` resolves it before any work, to refuse a mistyped setting early); else the package
    defaults, then ``config_path``, then ``auto_accept`` and ``overrides``."""
    from spotid.config import resolve_config
    from spotid.identify.embedder import Embedder
    from spotid.identify.flank import FlankClassifier

    if cfg is None:
        cfg = resolve_config(IdentifyConfig, config_path, auto_accept=auto_accept, **overrides)
    elif config_path is not None or overrides:
        raise TypeError("identify_catalog: pass a resolved cfg, or config_path and overrides, not both")
    emb = Embedder(cfg.embedder_model, catalog=cat)
    fl = FlankClassifier(cfg.flank_model, catalog=cat, threshold=cfg.flank_threshold)
    return Identifier(cfg, embedder=emb, flank=fl, catalog=cat)(cat, deployment=deployment)
