"""Where a deployment's files are: its media root, and moving it (``spotid media relocate``).

Convention (catalog migration 0012): ``deployments.media_root`` is the absolute folder that every
``media.rel_path`` of the deployment is relative to ('/' separators), and ``media.path`` is
``media_root / rel_path``, the file the stages open. The first ingest of a deployment makes its card
folder the root. A later card of the same deployment inside the root keeps it; a card elsewhere
widens the root to the deepest folder holding both, and the rel_paths already stored get the
difference in front, so two cards of one deployment never share a rel_path. Exports name a file
``<deployment>/<rel_path>`` (spotid.export.paths), unique across the catalog.

    root = attach_card(cat, "AL-012-A", Path("/data/cards/AL-012-A_2024-03"))
    result = MediaRelocator(cat, sample=20)("AL-012-A", "/mnt/archive/AL-012-A_2024-03")
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from spotid.catalog import Catalog
from spotid.catalog.tables import deployments, detections, media
from spotid.ingest.probe import CHUNK, DIGEST_BYTES

log = logging.getLogger(__name__)


class RelocateError(ValueError):
    """The media root cannot be moved as asked; the message names the fix."""


def media_root(cat: Catalog, deployment_id: str) -> Path | None:
    """The deployment's media root, or None (no ingest yet, or media written by something else)."""
    root = deployments.media_root(cat, deployment_id)
    return Path(root) if root else None


def attach_card(cat: Catalog, deployment_id: str, card: Path) -> Path:
    """Make ``card`` (an absolute, resolved folder) part of the deployment's media root; returns the root
    the card's rel_paths are to be taken from. Widening the root rewrites the stored rel_paths in the
    same transaction."""
    with cat.transaction() as conn:
        old = media_root(cat, deployment_id)
        if old is None:
            deployments.set_media_root(conn, deployment_id, str(card))
            return card
        if card == old or card.is_relative_to(old):
            return old
        if not old.exists() and _holds_ingested_files(cat, deployment_id, card):
            raise RelocateError(
                f"deployment {deployment_id}'s media root {old} is gone and {card} holds its files: the card folder "
                f"was moved. Run `spotid media relocate --deployment {deployment_id} {card} --db {cat.path}` "
                "instead of ingesting it again (a new card of this deployment ingests as usual)")
        new = Path(os.path.commonpath([old, card]))
        prefix = old.relative_to(new).as_posix() + "/"
        deployments.set_media_root(conn, deployment_id, str(new))
        media.prefix_rel_paths(conn, deployment_id, prefix)
    if new == Path(new.anchor):
        log.warning("deployment %s: its cards %s and %s share no folder but %s, which is now its media root; "
                    "ingest each camera's cards under one folder (e.g. cards/%s/) so paths stay short",
                    deployment_id, old, card, new, deployment_id)
    else:
        log.info("deployment %s: media root widened from %s to %s to hold card %s", deployment_id, old, new, card)
    return new


def _holds_ingested_files(cat: Catalog, deployment_id: str, folder: Path, probes: int = 5) -> bool:
    """True when ``folder`` has, at their stored rel_paths and sizes, some of the deployment's files
    (a few spread over the deployment): the card folder moved, rather than a new card."""
    rows = media.files_of_deployment(cat, deployment_id)
    for i in _spread(len(rows), probes):
        f = folder.joinpath(*PurePosixPath(rows[i].rel_path).parts)
        if f.is_file() and f.stat().st_size == rows[i].size_bytes:
            return True
    return False


def content_hash(path: Path) -> str:
    """The catalog's ``media.sha`` of a file: BLAKE2b-160 of its bytes, hex (as ingest computes it)."""
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Mismatch:
    rel_path: str
    reason: str


@dataclass
class RelocateResult:
    """What ``MediaRelocator`` found and did. ``moved`` is False on a dry run or when nothing changed.

    checked_sizes: files of the deployment found under the new root whose size was compared (all of them);
    checked_hashes: files hashed and compared with ``media.sha`` (the sample);
    missing: files of the deployment not under the new root (their images stay unavailable).
    """

    deployment_id: str
    old_root: str | None
    new_root: str
    n_media: int
    checked_sizes: int = 0
    checked_hashes: int = 0
    missing: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    moved: bool = False
    failures_moved: int = 0
    detect_cleared: int = 0  # frames detect recorded as "file not found" at the old place: detected again

    def to_json(self) -> dict:
        d = asdict(self)
        d["missing"] = self.missing[:50]
        d["n_missing"] = len(self.missing)
        return d


class MediaRelocator:
    """Move a deployment's media root after its card folder was moved or copied elsewhere.

    Every file of the deployment is looked up under the new root and its size compared with the catalog;
    ``sample`` of them, spread evenly over the deployment in path order, are hashed and compared with
    ``media.sha``. Any sampled file that is missing or differs, or any file whose size differs, refuses
    the move. Files missing outside the sample are reported, not refused (a card copy may leave out a
    folder on purpose). The move itself is one transaction: ``deployments.media_root``, ``media.path``, the
    paths of the deployment's recorded ingest failures, and the ``detection_status`` rows detect wrote as
    ``file not found: <old path>`` (deleted, so the next ``spotid detect`` processes those frames).
    """

    def __init__(self, cat: Catalog, *, sample: int = 20, dry_run: bool = False):
        if sample < 1:
            raise RelocateError(f"--sample {sample}: at least 1 file must be checked by content")
        self.cat = cat
        self.sample = sample
        self.dry_run = dry_run

    def __call__(self, deployment_id: str, new_root: str | Path) -> RelocateResult:
        cat = self.cat
        if deployments.get(cat, deployment_id) is None:
            raise RelocateError(f"no deployment {deployment_id!r} in {cat.path}: see `spotid deployments list`")
        new = Path(new_root).expanduser().resolve()
        if not new.is_dir():
            raise RelocateError(f"{new_root} is not a folder: pass the folder the card was moved to")
        old = media_root(cat, deployment_id)
        # a video's sampled frames live in the frame cache beside the catalog, not under the media root
        rows = media.files_of_deployment(cat, deployment_id)
        if not rows:
            raise RelocateError(f"deployment {deployment_id} has no media: nothing to relocate (ingest its card with "
                                f"`spotid ingest CARD --deployment {deployment_id}`)")
        if old is None:
            raise RelocateError(f"deployment {deployment_id} has no media root: its media were not written by "
                                "`spotid ingest`, so their paths cannot be moved; re-ingest the card into a new "
                                "catalog")
        res = RelocateResult(deployment_id, str(old), str(new), len(rows))
        picked = set(_spread(len(rows), self.sample))
        for i, r in enumerate(rows):
            f = new.joinpath(*PurePosixPath(r.rel_path).parts)
            try:
                size = f.stat().st_size
            except OSError:
                res.missing.append(r.rel_path)
                if i in picked:
                    res.mismatches.append(Mismatch(r.rel_path, "missing"))
                continue
            res.checked_sizes += 1
            if size != r.size_bytes:
                res.mismatches.append(Mismatch(r.rel_path, f"{size} bytes, the catalog has {r.size_bytes}"))
                continue
            if i in picked:
                res.checked_hashes += 1
                try:
                    same = content_hash(f) == r.sha
                except OSError as e:
                    res.mismatches.append(Mismatch(r.rel_path, f"unreadable ({e.strerror or e})"))
                    continue
                if not same:
                    res.mismatches.append(Mismatch(r.rel_path, "different content (hash)"))
        if res.mismatches:
            raise RelocateError(self._refusal(res))
        if res.missing:
            log.warning("%d of %d files of deployment %s are not under %s (e.g. %s): their images stay unavailable",
                        len(res.missing), len(rows), deployment_id, new, res.missing[0])
        if self.dry_run or new == old:
            return res
        self._move(res, old, new)
        return res

    def _refusal(self, res: RelocateResult) -> str:
        shown = "; ".join(f"{m.rel_path}: {m.reason}" for m in res.mismatches[:5])
        more = f" (and {len(res.mismatches) - 5} more)" if len(res.mismatches) > 5 else ""
        inner = Path(res.new_root) / Path(res.old_root or "").name
        guess = f"did you mean {inner}? " if inner.is_dir() and not res.checked_sizes else ""
        return (f"{guess}{res.new_root} does not hold deployment {res.deployment_id}'s files ({len(res.mismatches)} of the "
                f"checked files missing or different: {shown}{more}); nothing was changed. Pass the folder that "
                f"holds what was ingested from {res.old_root} (the folder with the same sub-folders, "
                "e.g. DCIM/100RECNX), or check that the copy is complete")

    def _move(self, res: RelocateResult, old: Path, new: Path) -> None:
        cat, dep = self.cat, res.deployment_id
        with cat.transaction() as conn:
            deployments.set_media_root(conn, dep, str(new))
            # detect/run.py's failure text for a frame it could not find, at the path being replaced
            cleared = detections.clear_file_not_found(conn, dep)
            rows = media.files_of_deployment(conn, dep)
            media.set_paths(conn, {r.id: str(new.joinpath(*PurePosixPath(r.rel_path).parts)) for r in rows})
            moved = {}
            for r in media.failures(conn, dep):
                p = Path(r["path"])
                if p.is_relative_to(old):
                    moved[r["id"]] = str(new / p.relative_to(old))
            # a failure already recorded at the new place (ingested there before) keeps its own row
            taken = media.failure_paths(conn)
            moved = {i: p for i, p in moved.items() if p not in taken}
            media.set_failure_paths(conn, moved)
        res.moved, res.failures_moved, res.detect_cleared = True, len(moved), cleared
        log.debug("deployment %s: media root %s -> %s (%d media)", dep, old, new, len(rows))


def _spread(n: int, k: int) -> list[int]:
    """``min(n, k)`` indices spread evenly over ``range(n)``, first and last included."""
    if k >= n:
        return list(range(n))
    if k == 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})
