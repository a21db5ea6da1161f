"""Capture-history files: read them, estimate from them, and the two-flank bounds.

File format (what secr/Rcapture users already have): CSV with a header, an id column first, then one
column per occasion. Values: 0 = not seen, 1 = seen. In two-flank data (as in McClintock et al.
2013 / multimark) 1 = left flank, 2 = right flank and 3 = both flanks on the same occasion; rows that
share an id belong to one animal (its left-flank row and its right-flank row), and a row holding both
1s and 2s is an animal known by both flanks.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spotid.census.estimators import EstimationResult
from spotid.census.registry import estimate_all


@dataclass
class HistoryTable:
    """Capture histories as read from a file. ``codes`` holds the raw 0/1/2/3 values, (rows, occasions)."""

    ids: list[str]
    occasions: list[str]
    codes: np.ndarray
    two_flank: bool

    @property
    def binary(self) -> np.ndarray:
        """(animals, occasions) 0/1 matrix, merging rows with the same id (any flank)."""
        animals = list(dict.fromkeys(self.ids))
        X = np.zeros((len(animals), len(self.occasions)), dtype=int)
        pos = {a: i for i, a in enumerate(animals)}
        for rid, row in zip(self.ids, self.codes):
            X[pos[rid]] |= (row > 0).astype(int)
        return X

    def flank_matrix(self, flank: str) -> tuple[list[str], np.ndarray]:
        """Ids and 0/1 histories of the animals detected on one flank ('left' = codes 1|3, 'right' = 2|3)."""
        want = {"left": (1, 3), "right": (2, 3)}[flank]
        animals = list(dict.fromkeys(self.ids))
        pos = {a: i for i, a in enumerate(animals)}
        X = np.zeros((len(animals), len(self.occasions)), dtype=int)
        for rid, row in zip(self.ids, self.codes):
            X[pos[rid]] |= np.isin(row, want).astype(int)
        keep = X.sum(axis=1) > 0
        return [a for a, k in zip(animals, keep) if k], X[keep]


def read_history(path: str | Path) -> HistoryTable:
    """Read a capture-history CSV; raises ValueError naming the problem and the expected layout."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (expected a CSV: id column, then one 0/1 column per occasion)")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if len(rows) < 2 or len(rows[0]) < 2:
        raise ValueError(f"{path}: expected a header and at least one row: id, then one column per occasion")
    header, body = rows[0], rows[1:]
    codes = []
    for ln, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise ValueError(f"{path} line {ln}: {len(r)} fields, header has {len(header)}")
        try:
            vals = [int(float(v)) if v.strip() else 0 for v in r[1:]]
        except ValueError:
            raise ValueError(f"{path} line {ln}: occasion values must be 0/1 (or 0/1/2/3 for two-flank data)") from None
        if any(v not in (0, 1, 2, 3) for v in vals):
            raise ValueError(f"{path} line {ln}: values must be 0, 1, 2 (right flank) or 3 (both flanks)")
        codes.append(vals)
    C = np.array(codes, dtype=int).reshape(len(body), len(header) - 1)
    ids = [r[0].strip() for r in body]
    two_flank = bool(np.any(C >= 2))
    return HistoryTable(ids=ids, occasions=[h.strip() for h in header[1:]], codes=C, two_flank=two_flank)


@dataclass
class FlankBounds:
    """Two-flank minimum/maximum number of animals (linked + max(L, R) .. linked + L + R)."""

    linked: int
    left_only: int
    right_only: int
    mna_min: int = field(init=False)
    mna_max: int = field(init=False)

    def __post_init__(self):
        self.mna_min = self.linked + max(self.left_only, self.right_only)
        self.mna_max = self.linked + self.left_only + self.right_only


def flank_bounds_from_table(t: HistoryTable) -> FlankBounds:
    left = set(t.flank_matrix("left")[0])
    right = set(t.flank_matrix("right")[0])
    return FlankBounds(linked=len(left & right), left_only=len(left - right), right_only=len(right - left))


@dataclass
class HistoryEstimates:
    """Result of ``spotid census estimate``: single-flank or two-flank."""

    source: str
    n_occasions: int
    mna: int
    overall: EstimationResult | None          # single-flank input
    two_flank: bool = False
    bounds: FlankBounds | None = None
    per_flank: dict[str, EstimationResult] = field(default_factory=dict)
    estimated_flank: str | None = None
    note: str = ""

    @property
    def primary(self) -> EstimationResult:
        return self.overall if self.overall is not None else self.per_flank[self.estimated_flank]

    def to_dict(self) -> dict:
        prim = self.primary
        d = {"source": self.source, "n_occasions": self.n_occasions, "mna": self.mna, "two_flank": self.two_flank}
        if self.two_flank and self.bounds is not None:
            d.update({"mna_min": self.bounds.mna_min, "mna_max": self.bounds.mna_max,
                      "linked": self.bounds.linked, "left_only": self.bounds.left_only,
                      "right_only": self.bounds.right_only, "estimated_flank": self.estimated_flank,
                      "per_flank": {k: v.to_dict() for k, v in self.per_flank.items()}})
        d.update({"estimates": [e.to_dict() for e in prim.estimates], "best": prim.best,
                  "best_reason": prim.best_reason, "counts": prim.counts, "note": self.note})
        return d


def choose_flank(n_left: int, n_right: int) -> str:
    """The flank whose histories are used for the headline estimate: the one with more identities (left on ties)."""
    return "right" if n_right > n_left else "left"


def estimate_table(t: HistoryTable, source: str = "") -> HistoryEstimates:
    if not t.two_flank:
        res = estimate_all(t.binary)
        return HistoryEstimates(source=source, n_occasions=len(t.occasions), mna=res.mna, overall=res)
    b = flank_bounds_from_table(t)
    per = {}
    for fl in ("left", "right"):
        _, X = t.flank_matrix(fl)
        per[fl] = estimate_all(X)
    fl = choose_flank(per["left"].mna, per["right"].mna)
    note = (f"two-flank data: {b.linked} animals known by both flanks, {b.left_only} left-only, "
            f"{b.right_only} right-only; MNA reported as the lower bound {b.mna_min} (upper bound {b.mna_max}); "
            f"estimates from the {fl}-flank histories ({per[fl].mna} animals, the flank with more identities)")
    return HistoryEstimates(source=source, n_occasions=len(t.occasions), mna=b.mna_min, overall=None,
                            two_flank=True, bounds=b, per_flank=per, estimated_flank=fl, note=note)


def estimate_file(path: str | Path) -> HistoryEstimates:
    return estimate_table(read_history(path), source=str(path))
