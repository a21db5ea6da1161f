"""Shipped and user-trained models: where they are, what they are, which one is active.

A model is a folder holding the weights file and ``card.json`` (machine-readable model card) plus
``README.md`` (the human model card)::

    models/detector/
        card.json      {"name", "kind", "weights", "sha256", "classes", "input_size",
                        "thresholds", "metrics", "training_data", "licence", "parent", ...}
        weights.pt
        README.md

The active model of a kind is, in order: an explicit path, the catalog setting ``model.<kind>``
(``spotid models use``), ``$SPOTID_MODEL_<KIND>``, then the shipped ``models/<kind>``. Its weights must
match the card's sha256 before they are loaded.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spotid.util import atomic_write_json, models_dir

KINDS = ("detector", "classifier", "flank", "embedder", "foreground")


class ModelError(RuntimeError):
    pass


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelCard:
    name: str
    kind: str
    weights: str                      # file name inside the model folder
    sha256: str
    folder: Path = field(compare=False)
    meta: dict = field(default_factory=dict, compare=False, hash=False)  # everything else in card.json

    @property
    def weights_path(self) -> Path:
        return self.folder / self.weights

    @property
    def version(self) -> str:
        """Short, stable identifier recorded with every result: ``name@sha256[:12]``."""
        return f"{self.name}@{self.sha256[:12]}"

    def get(self, key: str, default: Any = None) -> Any:
        return self.meta.get(key, default)


def load_card(path: str | Path, *, verify: bool = False) -> ModelCard:
    """Read the card of the model at ``path`` (its folder, its card.json or its weights file)."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    card_file = folder / "card.json"
    if not card_file.exists():
        raise ModelError(f"no model card at {card_file}: a model folder needs card.json next to the weights")
    try:
        meta = json.loads(card_file.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:   # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ModelError(f"{card_file} cannot be read as a model card ({e}): restore it from the model's "
                         "folder or re-export the model") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{card_file} is no model card (a JSON object): restore it or re-export the model")
    for key in ("name", "kind", "weights", "sha256"):
        if key not in meta:
            raise ModelError(f"{card_file} lacks {key!r}")
    card = ModelCard(meta["name"], meta["kind"], meta["weights"], meta["sha256"], folder, meta)
    if not card.weights_path.exists():
        raise ModelError(f"{card_file} names weights {card.weights!r}, which is missing")
    if verify and _checked_sha256(card.weights_path) != card.sha256:
        raise ModelError(f"{card.weights_path} does not match the sha256 in its card (a damaged or half-copied "
                         "file, or weights changed by hand): copy the model folder again, or re-export the model")
    return card


#: {(weights path, size, mtime ns): sha256}: a process that loads one model for every stage hashes it once
_SHA_SEEN: dict[tuple, str] = {}


def _checked_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_SEEN:
        _SHA_SEEN[key] = sha256_file(path)
    return _SHA_SEEN[key]


def write_card(folder: str | Path, *, name: str, kind: str, weights: str, **meta: Any) -> ModelCard:
    """Write ``card.json`` for the weights in ``folder`` (sha256 computed here)."""
    folder = Path(folder)
    if kind not in KINDS:
        raise ModelError(f"unknown model kind {kind!r}; one of {KINDS}")
    sha = sha256_file(folder / weights)
    data = {"name": name, "kind": kind, "weights": weights, "sha256": sha, **meta}
    atomic_write_json(folder / "card.json", data, indent=2)
    return ModelCard(name, kind, weights, sha, folder, data)


def shipped(kind: str) -> Path:
    return models_dir() / kind


def resolve(kind: str, path: str | Path | None = None, catalog=None) -> ModelCard:
    """The card of the model to use for ``kind`` (see module docstring for the order). Its weights are
    checked against the card's sha256 (once per file and process), so a damaged copy is refused with the
    fix instead of failing deep inside torch, and every result's model version names the weights it ran."""
    if kind not in KINDS:
        raise ModelError(f"unknown model kind {kind!r}; one of {KINDS}")
    candidates: list[Path] = []
    if path is not None:
        candidates.append(Path(path))
    elif catalog is not None and catalog.get_setting(f"model.{kind}"):
        candidates.append(Path(catalog.get_setting(f"model.{kind}")))
    elif os.environ.get(f"SPOTID_MODEL_{kind.upper()}"):
        candidates.append(Path(os.environ[f"SPOTID_MODEL_{kind.upper()}"]))
    else:
        candidates.append(shipped(kind))
    p = candidates[0]
    if not p.exists():
        raise ModelError(f"no {kind} model at {p}: pass a model folder, or `spotid models use PATH`")
    card = load_card(p, verify=True)
    if card.kind != kind:
        raise ModelError(f"{p} is a {card.kind} model, not a {kind}")
    return card


def use(path: str | Path, db: str | Path) -> ModelCard:
    """Record the model at ``path`` as the active one of its kind in catalog ``db``.

    The weights are checked against the card's sha256 first, so a half-copied file is refused.
    """
    from spotid.catalog import Catalog

    card = load_card(path, verify=True)
    with Catalog(db) as cat:
        cat.set_setting(f"model.{card.kind}", str(card.folder.resolve()))
    return card


def available(db: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per model kind and candidate: the shipped model and the catalog's choice, which is active."""
    from spotid.catalog import Catalog

    chosen: dict[str, str] = {}
    if db is not None and Path(db).exists():
        with Catalog(db) as cat:
            chosen = {k: cat.get_setting(f"model.{k}") for k in KINDS if cat.get_setting(f"model.{k}")}
    rows = []
    for kind in KINDS:
        entries = []
        if kind in chosen:
            entries.append(("catalog", Path(chosen[kind])))
        entries.append(("shipped", shipped(kind)))
        for i, (source, p) in enumerate(entries):
            row: dict[str, Any] = {"kind": kind, "source": source, "path": str(p), "active": i == 0}
            try:
                card = load_card(p)
                row.update(version=card.version, metrics=card.get("metrics"))
            except ModelError as e:
                row.update(version=None, error=str(e))
                if not p.exists():
                    row["active"] = False
            rows.append(row)
    return rows
