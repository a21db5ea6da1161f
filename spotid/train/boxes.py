"""Hand-labelled boxes on whole photos -> training crops in the folder-per-individual layout.

Real photos rarely come as crops with flank folders; a biologist more often has photos with boxes
(Pascal VOC, a detector's output) and writes down which side each box shows. This cuts those boxes
exactly as ``spotid identify`` cuts detections (:class:`~spotid.identify.crops.Cropper`, same padding),
so the flank trainer and evaluator see what identify will feed the classifier.

Labels CSV (one row per box; pixel coordinates of the original photo)::

    file,split,box,xmin,ymin,xmax,ymax,flank[,individual][,note]

``flank`` is left | right | front | back | unknown ("unknown" rows are skipped: no label to learn);
``individual`` defaults to the photo's file stem, so a photo's boxes stay together when individuals are
held out. Output: ``OUT/<individual>/<flank>/<stem>_b<box>.jpg``.

:func:`review_source` makes the same layout from the review page's decisions (``spotid train flank --db``).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from spotid.identify.flank import CLASSES

REQUIRED = ("file", "xmin", "ymin", "xmax", "ymax", "flank")


@dataclass
class CutResult:
    by_flank: dict[str, int] = field(default_factory=dict)          # crops written per flank
    skipped_unknown: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)

    @property
    def written(self) -> int:
        return sum(self.by_flank.values())


def read_box_labels(labels_csv: str | Path) -> list[dict]:
    """Rows of a labels CSV; raises ValueError naming the missing columns."""
    with open(labels_csv, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{labels_csv} lacks column(s) {missing}: expected header "
                             "file,split,box,xmin,ymin,xmax,ymax,flank[,individual][,note]")
        return list(reader)


def pixel_box(row: dict) -> tuple[float, float, float, float]:
    """A labels-CSV row's box in pixels: (xmin, ymin, xmax, ymax)."""
    return tuple(float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax"))


def normalised_box(row: dict, width: int, height: int) -> tuple[float, float, float, float]:
    """A labels-CSV row's box as a detection's: normalised (x, y, w, h) of a ``width`` x ``height`` photo."""
    x0, y0, x1, y1 = pixel_box(row)
    return x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height


def cut_labelled_boxes(labels_csv: str | Path, images_root: str | Path, out: str | Path, *,
                       split: str | None = None, pad: float = 0.1, max_side: int = 512) -> CutResult:
    """Cut every labelled box (of ``split`` when given; the photo is looked up as
    ``images_root/<split>-images/<file>`` then ``images_root/<file>``) into ``out``."""
    from spotid.identify.crops import Cropper, image_size, save_crop
    from spotid.ingest.probe import probe_file

    images_root, out = Path(images_root), Path(out)
    cropper = Cropper(pad=pad, max_side=max_side)
    res = CutResult()
    for r in read_box_labels(labels_csv):
        if split is not None and r.get("split") != split:
            continue
        flank = r["flank"].strip().lower()
        if flank == "unknown":
            res.skipped_unknown += 1
            continue
        if flank not in CLASSES:
            raise ValueError(f"{labels_csv}: flank {r['flank']!r} for {r['file']}: use one of "
                             f"{list(CLASSES) + ['unknown']}")
        candidates = [images_root / f"{r['split']}-images" / r["file"]] if r.get("split") else []
        path = next((p for p in candidates + [images_root / r["file"]] if p.exists()), None)
        if path is None:
            res.failures.append((r["file"], f"not found under {images_root}"))
            continue
        try:
            x0, y0, x1, y1 = pixel_box(r)
            if x1 - x0 < 2 or y1 - y0 < 2:
                res.failures.append((r["file"], f"degenerate box {x0, y0, x1, y1}"))
                continue
            crop = cropper(path, normalised_box(r, *image_size(path)))
        except (OSError, ValueError) as e:  # a broken photo is a recorded failure, not a crash
            res.failures.append((r["file"], probe_file(path, "image").failure or str(e)))
            continue
        ind = (r.get("individual") or "").strip() or Path(r["file"]).stem
        dest = out / ind / flank / f"{Path(r['file']).stem}_b{r.get('box') or 0}.jpg"
        dest.parent.mkdir(parents=True, exist_ok=True)
        save_crop(crop.image, dest)
        res.by_flank[flank] = res.by_flank.get(flank, 0) + 1
    return res


def review_source(db: str | Path, workdir: str | Path, *, min_crops: int = 4, min_individuals: int = 2) -> Path:
    """The other way a biologist labels flanks: the catalog's reviewed sightings (``spotid export
    training-crops``: confirmed sightings, the flank the reviewer set) as a data folder named ``review``
    under ``workdir`` (``review/<individual>/<flank>/``), a real source for
    :func:`spotid.train.flank.train_flank`. Raises ValueError naming the fix when there are too few."""
    from spotid.catalog import Catalog
    from spotid.export.training_crops import export_training_crops

    workdir = Path(workdir)
    with Catalog(db, create=False) as cat:
        try:
            export_training_crops(cat, workdir / "export")
        except ValueError as e:
            raise ValueError(f"{e}; then retrain") from None
    ident = workdir / "export" / "identity"
    files = list(ident.rglob("*.jpg")) if ident.is_dir() else []
    inds = {f.parent.parent.name for f in files}
    if len(files) < min_crops or len(inds) < min_individuals:
        raise ValueError(f"too little review data to measure a flank model: {len(files)} confirmed crops of "
                         f"{len(inds)} individuals (at least {min_crops} of {min_individuals}): confirm more "
                         f"sightings in review (spotid review --db {db}); nothing was written")
    link = workdir / "review"
    if not link.exists():
        link.symlink_to(ident, target_is_directory=True)
    return link
