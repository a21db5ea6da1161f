"""Hand-built catalogs for the census and export tests (rows inserted directly, no images)."""
from __future__ import annotations

import json

import numpy as np

from spotid.catalog import Catalog, now_iso


class Builder:
    """Insert deployments / media / detections / individuals / sightings rows directly."""

    def __init__(self, cat: Catalog):
        self.cat = cat
        self.n = 0
        self.ind: dict[str, int] = {}

    def deployment(self, did, location=None, start=None, end=None, lat=None, lon=None):
        with self.cat.transaction():
            self.cat.execute("INSERT INTO deployments (id, location_id, start, end, latitude, longitude, tz, created_at) "
                             "VALUES (?,?,?,?,?,?,?,?)", (did, location, start, end, lat, lon, "+10:00", now_iso()))

    def individual(self, name, flank, status="confirmed", merged_into=None):
        with self.cat.transaction():
            cur = self.cat.execute("INSERT INTO individuals (name, flank, status, merged_into, created_at) VALUES (?,?,?,?,?)",
                                   (name, flank, status, self.ind.get(merged_into), now_iso()))
        self.ind[name] = cur.lastrowid
        return cur.lastrowid

    def media(self, dep, ts, processed=True):
        self.n += 1
        with self.cat.transaction():
            m = self.cat.execute("INSERT INTO media (deployment_id, sha, path, rel_path, kind, timestamp, size_bytes) "
                                 "VALUES (?,?,?,?,?,?,?)", (dep, f"sha{self.n}", f"/card/{dep}/IMG_{self.n:04d}.JPG",
                                                            f"DCIM/{dep}/IMG_{self.n:04d}.JPG", "image", ts, 1000)).lastrowid
            if processed:
                self.cat.execute("INSERT INTO detection_status (media_id, detector, processed_at) VALUES (?,?,?)",
                                 (m, "test-detector@0", now_iso()))
        return m

    def sighting(self, dep, ts, name, status="confirmed", label="leopard", flank=None):
        m = self.media(dep, ts)
        with self.cat.transaction():
            d = self.cat.execute("INSERT INTO detections (media_id, detector, category, conf, x, y, w, h, label, label_conf, "
                                 "classifications_json) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                 (m, "test-detector@0", 1, 0.9, 0.1, 0.2, 0.3, 0.4, label, 0.95,
                                  json.dumps([[label, 0.95]]))).lastrowid
            s = None
            if label == "leopard":
                s = self.cat.execute("INSERT INTO sightings (detection_id, individual_id, flank, status, probability, "
                                     "model_version, updated_at) VALUES (?,?,?,?,?,?,?)",
                                     (d, self.ind.get(name), flank, status, 0.9, "reid@test", now_iso())).lastrowid
        return s


def T(day, hm, sec=0):
    return f"2024-03-{day:02d}T{hm}:{sec:02d}+10:00"


def simulated_catalog(path, *, n_animals=12, n_stations=8, days=20, p=0.12, seed=0) -> tuple[Catalog, dict]:
    """A small survey: paired stations on a grid, animals with home stations, both flanks photographed
    at paired stations within seconds. Returns the catalog and the truth."""
    rng = np.random.default_rng(seed)
    cat = Catalog(path)
    b = Builder(cat)
    start, end = "2024-03-01T00:00:00+10:00", f"2024-03-{days + 1:02d}T00:00:00+10:00"
    st_xy = {}
    for k in range(n_stations):
        lat, lon = 43.0 + 0.03 * (k // 4), 131.5 + 0.04 * (k % 4)
        st_xy[k] = (lat, lon)
        b.deployment(f"S{k:02d}A", f"S{k:02d}", start, end, lat, lon)
        b.deployment(f"S{k:02d}B", f"S{k:02d}", start, end, lat, lon)
    for a in range(n_animals):
        b.individual(f"AL-{a:03d}-L", "left")
        b.individual(f"AL-{a:03d}-R", "right")
    seen = set()
    for a in range(n_animals):
        home = rng.integers(n_stations)
        for day in range(1, days + 1):
            if rng.random() < p:
                st = home if rng.random() < 0.7 else rng.integers(n_stations)
                hh = rng.integers(0, 24)
                ts = f"2024-03-{day:02d}T{hh:02d}:{rng.integers(0, 60):02d}:00+10:00"
                ts2 = ts[:-8] + "03+10:00"
                both = rng.random() < 0.6
                b.sighting(f"S{st:02d}A", ts, f"AL-{a:03d}-L", "confirmed" if rng.random() < 0.5 else "auto")
                if both:
                    b.sighting(f"S{st:02d}B", ts2, f"AL-{a:03d}-R", "auto")
                seen.add(a)
    # empty frames and a non-leopard animal
    for k in range(n_stations):
        b.media(f"S{k:02d}A", "2024-03-02T12:00:00+10:00")
    b.sighting("S00A", "2024-03-03T05:00:00+10:00", None, label="other")
    return cat, {"n_animals": n_animals, "photographed": len(seen)}
