"""Habitat masks for SECR: the grid of possible activity centres, built the way R's ``secr::make.mask`` does.

A mask is ``points`` (M, 2) x/y in metres (cell centres) plus the cell ``spacing`` in metres; each point
stands for a square cell of ``spacing²`` m². Areas are reported in hectares, as secr does.

``make_mask(traps, buffer=100, nx=64)`` reproduces ``make.mask(traps, buffer, nx = 64, type =
"trapbuffer")`` (what ``secr.fit`` builds when given no mask):

- the bounding box of the traps is widened by ``buffer`` on every side;
- ``spacing = (box width) / nx``;
- cell centres run from ``xmin + spacing/2`` in steps of ``spacing`` up to ``xmax`` (same spacing in y);
- ``trapbuffer`` keeps the centres within ``buffer`` of at least one trap (``<=``), ``traprect`` all.

A habitat polygon (CSV of x,y vertices or GeoJSON Polygon/MultiPolygon, holes allowed) clips the mask to
the centres inside it (secr's ``poly`` argument, cell.overlap = "centre"). A ready-made mask of points
(``read_mask_points``: x,y[,habitat] on a regular grid, e.g. SPACECAP's state-space file) is used as is.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MASK_TYPES = ("trapbuffer", "traprect")


@dataclass(frozen=True)
class Mask:
    """Possible activity centres. ``points``: (M, 2) metres; ``spacing``: cell side in metres."""

    points: np.ndarray
    spacing: float
    source: str = ""

    @property
    def cell_area_ha(self) -> float:
        return self.spacing ** 2 / 1e4

    @property
    def area_ha(self) -> float:
        return self.cell_area_ha * len(self.points)

    def __len__(self) -> int:
        return len(self.points)

    def summary(self) -> dict:
        return {"points": int(len(self.points)), "spacing_m": float(self.spacing),
                "cell_area_ha": float(self.cell_area_ha), "area_ha": float(self.area_ha),
                "area_km2": float(self.area_ha / 100), "source": self.source}


def points_in_polygons(xy: np.ndarray, rings: list[np.ndarray]) -> np.ndarray:
    """Even-odd rule over all rings: (P, 2) points -> (P,) bool. Holes and multipolygons come out right
    because a point inside a hole crosses the outer ring and the hole's ring."""
    x, y = xy[:, 0][:, None], xy[:, 1][:, None]
    inside = np.zeros(len(xy), dtype=bool)
    for ring in rings:
        r = np.asarray(ring, dtype=float)
        if len(r) < 3:
            continue
        x1, y1 = r[:, 0][None, :], r[:, 1][None, :]
        x2, y2 = np.roll(r[:, 0], -1)[None, :], np.roll(r[:, 1], -1)[None, :]
        straddle = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xcross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        crossings = np.sum(straddle & (x < xcross), axis=1)
        inside ^= (crossings % 2 == 1)
    return inside


def make_mask(traps: np.ndarray, buffer: float = 100.0, nx: int = 64, type: str = "trapbuffer",
              polygon: list[np.ndarray] | None = None, spacing: float | None = None) -> Mask:
    """secr's ``make.mask(traps, buffer, nx, type)``, optionally clipped to habitat polygon rings.

    Args:
        traps: (K, 2) trap x/y in metres.
        buffer: metres added around the traps' bounding box; ``trapbuffer`` also keeps only points
            within this distance of a trap.
        nx: number of cells across the widened box (sets the spacing unless ``spacing`` is given).
        polygon: rings (each (V, 2) metres) of the habitat; points outside are dropped.
    """
    traps = np.asarray(traps, dtype=float)
    if type not in MASK_TYPES:
        raise ValueError(f"unknown mask type {type!r}; choose from {MASK_TYPES}")
    if buffer <= 0:
        raise ValueError(f"buffer must be positive (got {buffer}); secr's default is 100 m, "
                         "use about 4 σ for a half-normal detection function")
    if nx < 2:
        raise ValueError(f"nx must be at least 2 (got {nx})")
    xl = (traps[:, 0].min() - buffer, traps[:, 0].max() + buffer)
    yl = (traps[:, 1].min() - buffer, traps[:, 1].max() + buffer)
    if spacing is None:
        spacing = (xl[1] - xl[0]) / nx
    # R's seq(from, to, by) stops at the last value <= to (with a little tolerance)
    x = np.arange(xl[0] + spacing / 2, xl[1] + 1e-10 * spacing, spacing)
    y = np.arange(yl[0] + spacing / 2, yl[1] + 1e-10 * spacing, spacing)
    gx, gy = np.meshgrid(x, y)               # expand.grid: x varies fastest
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    src = f"{type}, buffer {buffer:g} m, nx {nx}"
    if type == "trapbuffer":
        d2 = ((pts[:, None, :] - traps[None, :, :]) ** 2).sum(-1).min(axis=1)
        pts = pts[d2 <= buffer ** 2 * (1 + 1e-12)]
    if polygon is not None:
        pts = pts[points_in_polygons(pts, polygon)]
        src += ", clipped to the habitat polygon"
    if len(pts) == 0:
        raise ValueError("the habitat mask is empty: the polygon does not overlap the buffered traps "
                         "(check that traps and polygon use the same coordinates, in metres)")
    return Mask(points=pts, spacing=float(spacing), source=src)


def _rings_from_geojson(doc: dict) -> list[np.ndarray]:
    if doc.get("type") == "FeatureCollection":
        return [r for f in doc.get("features", []) for r in _rings_from_geojson(f)]
    if doc.get("type") == "Feature":
        return _rings_from_geojson(doc.get("geometry") or {})
    if doc.get("type") == "Polygon":
        return [np.asarray(r, dtype=float)[:, :2] for r in doc["coordinates"]]
    if doc.get("type") == "MultiPolygon":
        return [np.asarray(r, dtype=float)[:, :2] for poly in doc["coordinates"] for r in poly]
    if doc.get("type") == "GeometryCollection":
        return [r for g in doc.get("geometries", []) for r in _rings_from_geojson(g)]
    return []


def read_polygon(path: Path, scale: float = 1.0) -> list[np.ndarray]:
    """Habitat polygon rings from GeoJSON (Polygon/MultiPolygon, projected coordinates) or a CSV of x,y
    vertices (an optional ``ring``/``part`` column separates rings). ``scale`` converts to metres."""
    path = Path(path)
    if path.suffix.lower() in (".geojson", ".json"):
        try:
            rings = _rings_from_geojson(json.loads(path.read_text()))
        except (json.JSONDecodeError, KeyError, ValueError, IndexError) as e:
            raise ValueError(f"{path}: not a readable GeoJSON polygon ({e})") from None
        if not rings:
            raise ValueError(f"{path}: no Polygon or MultiPolygon found; the mask needs an area")
        return [r * scale for r in rings]
    rows = _read_rows(path)
    if not rows or not {"x", "y"} <= set(rows[0]):
        raise ValueError(f"{path}: a polygon CSV needs x and y columns (one vertex per row)")
    key = "ring" if "ring" in rows[0] else ("part" if "part" in rows[0] else None)
    rings: dict[str, list] = {}
    for i, r in enumerate(rows, start=2):
        try:
            rings.setdefault(r.get(key, "") if key else "", []).append((float(r["x"]), float(r["y"])))
        except (TypeError, ValueError):
            raise ValueError(f"{path}, line {i}: vertex x/y not numbers ({r.get('x')!r}, {r.get('y')!r})") from None
    out = [np.asarray(v) * scale for v in rings.values() if len(v) >= 3]
    if not out:
        raise ValueError(f"{path}: a polygon needs at least 3 vertices")
    return out


def read_mask_points(path: Path, scale: float = 1.0) -> Mask:
    """A ready mask: CSV of x,y cell centres on a regular grid, with an optional habitat column
    (``avail``/``habitat``; 0 = not habitat, dropped), as secr's ``read.mask`` or SPACECAP's state space."""
    rows = _read_rows(path)
    if not rows or not {"x", "y"} <= set(rows[0]):
        raise ValueError(f"{path}: a mask CSV needs x and y columns (one cell centre per row)")
    flag = next((c for c in ("avail", "habitat") if c in rows[0]), None)
    try:
        xy = np.array([(float(r["x"]), float(r["y"])) for r in rows]) * scale
        keep = np.array([float(r[flag]) > 0 for r in rows]) if flag else np.ones(len(rows), bool)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: mask x/y/{flag or 'habitat'} must be numbers") from None
    ux = np.unique(np.round(xy[:, 0], 9))
    steps = np.diff(ux)
    if len(steps) == 0:
        raise ValueError(f"{path}: a mask needs points in more than one column to know its cell size")
    spacing = float(np.min(steps[steps > 1e-9 * max(1.0, abs(ux).max())]))
    pts = xy[keep]
    if len(pts) == 0:
        raise ValueError(f"{path}: no habitat points ({flag} is 0 everywhere)")
    return Mask(points=pts, spacing=spacing, source=f"points from {Path(path).name}")


def _read_rows(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return [{(k or "").strip().lower(): (v or "").strip() for k, v in r.items()} for r in csv.DictReader(f)]
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
