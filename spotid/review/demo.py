"""A small, fully populated review catalog: for the tests, the screenshot and trying the page.

``build_demo_catalog(db, image_dir)`` writes stations (paired cameras), frames, detections, crops
(JPEGs on disk), confirmed individuals with reference sightings, and pending sightings with ranked
candidates whose ``evidence_json`` holds true keypoint correspondences: every crop is an affine view
of its individual's coat texture, so a coat point maps exactly into both crops.

Textures: ``"blobs"`` (fast random spots, for tests), ``"coat"`` (affine views of the synth stage's
procedural rosette coats, :func:`spotid.synth.coat.flank_coat`) or ``"animal"`` (whole leopards
rendered by :func:`spotid.synth.animals.render_animal`, with the evidence computed by identify's
RootSIFT verifier as a real identify run would, for the screenshot).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from spotid.catalog import Catalog, now_iso
from spotid.catalog.tables import crops, deployments, detections, individuals, media, sightings
from spotid.types import MediaRow

CROP_W, CROP_H = 420, 280
FRAME_W, FRAME_H = 960, 640
TZ = timezone(timedelta(hours=10))
STATIONS = ("S01", "S02", "S03", "S04", "S05")


@dataclass
class DemoCatalog:
    db_path: Path
    individuals: dict[str, int] = field(default_factory=dict)       # name -> id
    pending: list[int] = field(default_factory=list)                # pending sighting ids
    truth: dict[int, str] = field(default_factory=dict)             # pending sighting id -> true individual name
    references: dict[str, list[int]] = field(default_factory=dict)  # name -> reference sighting ids


def _blob_coat(seed: int, h: int = 256, w: int = 640) -> np.ndarray:
    import cv2
    r = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    img[:] = (102, 166, 212)  # tawny, BGR
    img *= (0.85 + 0.15 * r.random((h, w, 1))).astype(np.float32)
    for _ in range(90):
        c = (int(r.integers(0, w)), int(r.integers(0, h)))
        ax = (int(r.integers(6, 16)), int(r.integers(5, 13)))
        cv2.ellipse(img, c, ax, float(r.integers(0, 180)), 0, int(r.integers(200, 360)), (25, 29, 36), int(r.integers(3, 6)))
    return img


def _coat(texture: str, seed: int, individual: int, flank: str) -> np.ndarray:
    """(H, W, 3) float32 BGR coat of one flank identity."""
    if texture == "coat":
        from spotid.synth.coat import flank_coat
        rgb, _ = flank_coat(seed, individual, flank)
        return rgb[:, :, ::-1].copy()
    return _blob_coat(seed * 1000 + individual * 2 + (flank == "right"))


def _view(r: np.random.Generator, coat_hw: tuple[int, int]) -> np.ndarray:
    """A random 2x3 affine map coat -> crop pixels showing most of the flank, slightly rotated."""
    h, w = coat_hw
    s = r.uniform(0.62, 0.78)
    a = math.radians(r.uniform(-7, 7))
    R = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    centre = np.array([w / 2 + r.uniform(-50, 50), h / 2 + r.uniform(-15, 15)])
    t = np.array([CROP_W / 2, CROP_H / 2]) - R @ centre
    return np.hstack([R, t[:, None]])


def _render(coat: np.ndarray, A: np.ndarray, r: np.random.Generator) -> np.ndarray:
    import cv2
    bg = np.empty((CROP_H, CROP_W, 3), np.float32)
    bg[:] = (60, 88, 74)  # undergrowth
    bg *= (0.7 + 0.3 * r.random((CROP_H, CROP_W, 1))).astype(np.float32)
    mask = cv2.warpAffine(np.ones(coat.shape[:2], np.float32), A, (CROP_W, CROP_H))
    body = cv2.warpAffine(coat, A, (CROP_W, CROP_H), flags=cv2.INTER_LINEAR)
    img = body * mask[..., None] + bg * (1 - mask[..., None])
    img = img * r.uniform(0.75, 1.1) + r.normal(0, 4, img.shape)  # exposure, sensor noise (night IR-ish)
    return np.clip(img, 0, 255).astype(np.uint8)


def _evidence(r: np.random.Generator, coat_hw, Aq: np.ndarray, Ar: np.ndarray, n: int) -> dict:
    h, w = coat_hw
    q_pts, r_pts = [], []
    for _ in range(n * 20):
        if len(q_pts) == n:
            break
        p = np.array([r.uniform(0, w), r.uniform(0, h), 1.0])
        q, rr = Aq @ p, Ar @ p
        if 4 <= q[0] < CROP_W - 4 and 4 <= q[1] < CROP_H - 4 and 4 <= rr[0] < CROP_W - 4 and 4 <= rr[1] < CROP_H - 4:
            q_pts.append([round(float(q[0]), 1), round(float(q[1]), 1)])
            r_pts.append([round(float(rr[0]), 1), round(float(rr[1]), 1)])
    return {"query_pts": q_pts, "ref_pts": r_pts}


class _AnimalCrops:
    """Whole rendered leopards as crops; evidence from identify's verifier (lazy imports)."""

    def __init__(self, seed: int):
        from spotid.identify.verify import FeatureExtractor, Verifier
        from spotid.synth.coat import leopard_coat
        self.seed, self._coat = seed, leopard_coat
        self.coats: dict = {}
        self.images: dict[int, np.ndarray] = {}
        self.features: dict = {}
        self.extract, self.verify = FeatureExtractor(), Verifier()

    def render(self, i: int, flank: str, r: np.random.Generator) -> np.ndarray:
        from spotid.synth.animals import Pose, render_animal
        if i not in self.coats:
            self.coats[i] = self._coat(self.seed, i)
        pose = Pose(facing=-1 if flank == "left" else 1, gait="walk", phase=float(r.uniform(0, 2 * math.pi)),
                    yaw=float(r.uniform(-0.15, 0.15)), head_pitch=float(r.uniform(-0.1, 0.1)))
        sp = render_animal("leopard", self.coats[i], flank, pose, float(r.uniform(210, 290)))
        h, w = sp.alpha.shape
        pad = int(0.06 * w)
        import cv2
        bg = np.empty((h + 2 * pad, w + 2 * pad, 3), np.float32)
        bg[:] = (58, 84, 70)  # undergrowth, BGR: blurred light and shade
        shade = cv2.GaussianBlur(r.random((bg.shape[0], bg.shape[1])).astype(np.float32), (0, 0), 6)
        bg *= (0.55 + 0.9 * (shade - shade.min()) / (np.ptp(shade) + 1e-6))[..., None]
        a = sp.alpha[..., None]
        bg[pad:pad + h, pad:pad + w] = sp.rgb[:, :, ::-1] * a + bg[pad:pad + h, pad:pad + w] * (1 - a)
        img = bg * r.uniform(0.8, 1.1) + r.normal(0, 1.0, bg.shape)
        return np.clip(img, 0, 255).astype(np.uint8)

    def evidence(self, q_det: int, r_det: int) -> dict:
        for d in (q_det, r_det):
            if d not in self.features:
                self.features[d] = self.extract(self.images[d][:, :, ::-1])
        return self.verify(self.features[q_det], self.features[r_det]).evidence(limit=60)


def build_demo_catalog(db_path: str | Path, image_dir: str | Path, *, n_individuals: int = 6, n_pending: int = 8,
                       seed: int = 0, texture: str = "blobs") -> DemoCatalog:
    """Write the demo catalog (``db_path`` must not hold one yet) and its JPEGs under ``image_dir``."""
    import cv2
    if texture not in ("blobs", "coat", "animal"):
        raise ValueError(f"texture {texture!r}: use 'blobs', 'coat' or 'animal'")
    animal = _AnimalCrops(seed) if texture == "animal" else None
    db_path, image_dir = Path(db_path), Path(image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    r = np.random.default_rng(seed)
    out = DemoCatalog(db_path)
    start = datetime(2026, 1, 5, 18, 0, tzinfo=TZ)
    coats: dict[tuple[int, str], np.ndarray] = {}

    def coat(i: int, flank: str) -> np.ndarray:
        if (i, flank) not in coats:
            coats[(i, flank)] = _coat(texture, seed, i, flank)
        return coats[(i, flank)]

    with Catalog(db_path) as cat, cat.transaction():
        if sightings.count(cat):
            raise ValueError(f"{db_path} already holds sightings: build the demo in a new file")
        run = cat.record_run("identify", "demo-embedder@000000000000")
        for k, st in enumerate(STATIONS):
            for cam in "AB":
                deployments.upsert(cat, {"id": f"{st}{cam}", "location_id": st, "location_name": f"Ridge trail {k + 1}",
                                         "latitude": 43.1 + 0.02 * k, "longitude": 131.5 + 0.03 * k,
                                         "start": start.isoformat(), "end": (start + timedelta(days=60)).isoformat(),
                                         "tz": "+10:00", "camera_model": "Reconyx HP2X"})
        n_media = 0

        def add_detection(i: int, flank: str, A: np.ndarray, when: datetime, station: str, quality: float) -> int:
            nonlocal n_media
            n_media += 1
            crop = animal.render(i, flank, r) if animal is not None else _render(coat(i, flank), A, r)
            crop_path = image_dir / f"crop_{n_media:04d}.jpg"
            cv2.imwrite(str(crop_path), crop, [cv2.IMWRITE_JPEG_QUALITY, 88])
            frame = np.empty((FRAME_H, FRAME_W, 3), np.uint8)
            frame[:] = (52, 70, 60)
            ch, cw = crop.shape[:2]
            x0, y0 = int(r.integers(20, FRAME_W - cw - 20)), int(r.integers(40, FRAME_H - ch - 20))
            frame[y0:y0 + ch, x0:x0 + cw] = crop
            frame_path = image_dir / f"frame_{n_media:04d}.jpg"
            cv2.imwrite(str(frame_path), frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
            dep = f"{station}{'AB'[n_media % 2]}"
            mid = media.insert(cat, MediaRow(
                deployment_id=dep, sha=f"demo{seed}-{n_media:06d}", path=str(frame_path),
                rel_path=f"DCIM/100RECNX/IMG_{n_media:04d}.JPG", kind="image", timestamp=when.isoformat(),
                time_source="DateTimeOriginal", width=FRAME_W, height=FRAME_H, size_bytes=frame_path.stat().st_size))
            did = detections.insert(cat, mid, run_id=run, detector="demo", category=1, conf=0.93, x=x0 / FRAME_W,
                                    y=y0 / FRAME_H, w=cw / FRAME_W, h=ch / FRAME_H, label="leopard", label_conf=0.97)
            # Feature columns hold bytes, as identify leaves them; review must never read them.
            emb = r.random(128).astype("<f4").tobytes()
            kps, descs = r.random((4, 2)).astype("<f4").tobytes(), r.random((4, 128)).astype("<f4").tobytes()
            crops.upsert_cache(cat, [(did, quality, 0.1, CROP_W, 0, flank, 0.95, emb, "demo-embedder@000000000000",
                                      kps, descs, None, None, None, "demo", str(crop_path), None)])
            if animal is not None:
                animal.images[int(did)] = crop
            return int(did)

        def when_at() -> datetime:
            return start + timedelta(days=float(r.uniform(0, 55)), minutes=float(r.uniform(0, 600)))

        views: dict[int, np.ndarray] = {}     # reference sighting id -> its affine view
        flanks = ["left"] * n_individuals
        flanks[-2:] = ["right", "right"]
        ids: list[int] = []
        names: list[str] = []
        for i in range(n_individuals):
            name = f"{'L' if flanks[i] == 'left' else 'R'}-{flanks[:i + 1].count(flanks[i]):04d}"  # identify's names
            names.append(name)
            iid = individuals.insert(cat, name=name, flank=flanks[i], status="confirmed", created_at=now_iso(),
                                     created_by="import")
            out.individuals[name] = int(iid)
            ids.append(int(iid))
            out.references[name] = []
            for k in range(int(r.integers(2, 5))):
                A = _view(r, coat(i, flanks[i]).shape[:2])
                did = add_detection(i, flanks[i], A, when_at(), STATIONS[int(r.integers(0, len(STATIONS)))],
                                    round(float(r.uniform(0.45, 0.95)), 2))
                sid = sightings.insert_identified(cat, detection_id=did, individual_id=iid, flank=flanks[i],
                                                  status="confirmed" if k % 2 == 0 else "auto",
                                                  probability=round(float(r.uniform(0.9, 0.99)), 3), run_id=run,
                                                  model_version="demo", updated_at=now_iso())
                views[int(sid)] = A
                out.references[name].append(int(sid))
        if n_individuals >= 2:  # the first left and the first right flank are one animal
            li = next(ids[i] for i in range(n_individuals) if flanks[i] == "left")
            ri = next(ids[i] for i in range(n_individuals) if flanks[i] == "right")
            individuals.upsert_flank_link(cat, li, ri, reason="paired-station", evidence_json=None,
                                          created_at=now_iso())

        left = [i for i in range(n_individuals) if flanks[i] == "left"]
        n_new = 0
        for p in range(n_pending):
            new_animal = p == n_pending - 1        # the last one: an animal not in the catalog yet
            true_i = n_individuals + 100 + p if new_animal else left[p % len(left)]
            A_q = _view(r, (256, 640))
            did = add_detection(true_i, "left", A_q, when_at(), STATIONS[p % len(STATIONS)],
                                round(float(r.uniform(0.4, 0.9)), 2))
            # Candidates: the true individual (unless new) and two look-alikes, probabilities around 0.5.
            others = [i for i in left if i != true_i]
            r.shuffle(others)
            cand = ([] if new_animal else [true_i]) + others[:2 if not new_animal else 3]
            probs = sorted((round(float(x), 3) for x in r.uniform(0.05, 0.95, len(cand))), reverse=True)
            if not new_animal and p % 4 == 1:  # sometimes the truth is ranked second
                cand[0], cand[1] = cand[1], cand[0]
            if new_animal:
                probs = [round(x * 0.3, 3) for x in probs]
            # Evidence and (for rendered animals) probabilities from it; then rank by probability.
            rows = []
            for ci, pr in zip(cand, probs):
                ref_sid = out.references[names[ci]][0]
                ref_det = sightings.detection_of(cat, ref_sid)
                n_pts = int(8 + 30 * pr) if ci == true_i else int(r.integers(0, 5))
                if animal is not None:
                    ev = animal.evidence(did, ref_det)
                    # a stand-in calibration: logistic in the inlier count, plus embedding noise
                    pr = round(float(np.clip(1 / (1 + math.exp(-(len(ev["query_pts"]) - 12) / 4))
                                             + r.normal(0, 0.08), 0.02, 0.98)), 3)
                elif ci == true_i:
                    ev = _evidence(r, (256, 640), A_q, views[ref_sid], n_pts)
                else:  # a look-alike: a few random, geometrically inconsistent pairs
                    ev = {"query_pts": [[round(float(r.uniform(0, CROP_W)), 1), round(float(r.uniform(0, CROP_H)), 1)]
                                        for _ in range(n_pts)],
                          "ref_pts": [[round(float(r.uniform(0, CROP_W)), 1), round(float(r.uniform(0, CROP_H)), 1)]
                                      for _ in range(n_pts)]}
                rows.append((ci, pr, ref_det, ev))
            if animal is not None:
                rows.sort(key=lambda t: -t[1])
            proposed = ids[rows[0][0]]
            if new_animal or rows[0][1] < 0.3:
                proposed = individuals.insert(cat, name=f"L-{len(left) + n_new + 1:04d}", flank="left",
                                              status="proposed", created_at=now_iso(), created_by=f"run:{run}")
                n_new += 1
            sid = sightings.insert_identified(cat, detection_id=did, individual_id=proposed, flank="left",
                                              status="pending", probability=rows[0][1], run_id=run,
                                              model_version="demo", updated_at=now_iso())
            out.pending.append(int(sid))
            out.truth[int(sid)] = "new" if new_animal else names[true_i]
            for rank, (ci, pr, ref_det, ev) in enumerate(rows, start=1):
                sightings.insert_candidate(cat, sighting_id=sid, individual_id=ids[ci], rank=rank,
                                           embed_score=round(0.4 + 0.5 * pr, 3), verify_inliers=len(ev["query_pts"]),
                                           probability=round(pr, 3), reference_detection_id=ref_det,
                                           evidence_json=json.dumps(ev), run_id=run, model_version="demo")
    return out
