"""The ingest stage: an SD-card dump -> media, sequences and recorded failures in the catalog.

    ingester = Ingester(catalog, IngestConfig(gap_s=60, tz="+10:00"))
    summary = ingester("/data/cards/AL-012-A_2024-03", "AL-012-A")

Guarantees:
- Each frame is in the catalog once (keyed by its BLAKE2b-160 content hash), whichever card or
  path it came from; re-running adds nothing.
- Work is committed in transactions of ``batch_size`` files, so a kill loses at most one batch and
  a re-run completes it. Sequences are recomputed for the deployment at the end of every run.
- A bad file never stops the run: it becomes an ``ingest_failures`` row with a reason; so does a video
  OpenCV cannot read.
- Photo pixels are never decoded, except for a JPEG without end marker (at 1/8 scale). Videos are decoded
  once, to sample still frames into the frame cache beside the catalog (spotid/ingest/video.py); each
  frame becomes a media row with ``parent_id`` = the video.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from spotid.catalog import Catalog
from spotid.catalog.tables import media
from spotid.ingest.deployments import Deployment, ensure_deployment, set_deployment_tz
from spotid.ingest.media_root import RelocateError, attach_card
from spotid.ingest.probe import Probe, file_kind, probe_file
from spotid.ingest.sequences import recompute_sequences
from spotid.ingest.timefrom import TimeFromError, parse_time_from
from spotid.ingest.video import FrameSampler, VideoError, frames_dir, insert_frames, sample_probe, sampled_video_shas
from spotid.types import MediaRow
from spotid.util import batched, format_tz, parse_tz, progress

log = logging.getLogger(__name__)


class IngestError(ValueError):
    """Ingest cannot start (no such folder, bad time zone); the message names the fix."""


def no_camera_time_note(n: int, deployment: str) -> str:
    """What the human summaries of ingest and process say about frames timed by the file's mtime."""
    return (f"{n} frames have no camera time (no EXIF time): they got the file's copy time, so they are kept "
            f"out of bursts and of the static-false-positive filter. If the names carry the time, re-run with "
            f"--time-from filename:PATTERN (e.g. filename:%Y%m%d_%H%M%S); otherwise set the camera's clock and "
            f"ingest its original files (see `spotid media list -d {deployment}`)")


def time_from_unmatched_note(n: int, spec: str, deployment: str) -> str:
    return (f"{n} file names do not match --time-from {spec}: their time came from EXIF or the file's "
            f"modification time; compare the pattern with the names in `spotid media list -d {deployment}`")


@dataclass(frozen=True)
class IngestConfig:
    """Ingest settings; defaults mirrored in configs/ingest.yaml.

    gap_s: a new sequence starts where consecutive frames are more than this many seconds apart.
    tz: offset ("+10:00") of the camera clock; overrides the deployment's for this card and is
        stored on a deployment that has none. EXIF offsets (OffsetTimeOriginal) win over both.
    batch_size: files per committed transaction (a kill loses at most one batch of work).
    workers: threads reading and hashing files (hashlib and file reads release the GIL).
    min_decoded_fraction: a JPEG cut short is kept (with a warning) when at least this fraction
        of its rows decodes; below it the frame is a failure, since an animal may sit in the
        missing part and counting the frame as seen-and-empty would bias detection rates.
    time_from: "exif" (EXIF, then the file's mtime) or "filename:PATTERN" (the time written in the
        file name, then EXIF, then mtime; PATTERN as in spotid.ingest.timefrom, e.g. %Y%m%d_%H%M%S).
    video_every_s / video_max_frames / video_motion: frames sampled from each video (see
        spotid.ingest.video.FrameSampler): one every this many seconds, plus frames where this fraction
        of the pixels changed (0 = no motion frames), at most video_max_frames per video.
    """

    gap_s: float = 60.0
    tz: str | None = None
    batch_size: int = 200
    workers: int = 2
    min_decoded_fraction: float = 0.5
    time_from: str = "exif"
    video_every_s: float = 1.0
    video_max_frames: int = 12
    video_motion: float = 0.01

    def __post_init__(self):
        if self.gap_s < 0:
            raise IngestError(f"gap {self.gap_s} s is negative: pass --gap 60 (seconds) or another value >= 0")
        if self.batch_size < 1 or self.workers < 1:
            raise IngestError("batch_size and workers must be at least 1")
        if not 0.0 <= self.min_decoded_fraction <= 1.0:
            raise IngestError("min_decoded_fraction must lie in [0, 1]")
        try:
            self.sampler()
        except VideoError as e:
            raise IngestError(str(e)) from None
        if self.tz is not None:
            try:
                parse_tz(self.tz)
            except ValueError as e:
                raise IngestError(str(e)) from None
        try:
            parse_time_from(self.time_from)
        except TimeFromError as e:
            raise IngestError(str(e)) from None

    def sampler(self) -> FrameSampler:
        return FrameSampler(every_s=self.video_every_s, max_frames=self.video_max_frames, motion=self.video_motion)


@dataclass(frozen=True)
class FileIssue:
    path: str
    reason: str


@dataclass
class IngestSummary:
    """Result of one ingest. ``to_json()`` is the documented machine summary:

    files_seen  = media_added + duplicates + len(failures) + ignored (every regular file walked;
                  truncated-but-kept frames count as added, with a warning);
    duplicates  = images/videos whose content was already in the catalog (from any card, an earlier
                  run of this card, or earlier in this card);
    sequences   = number of sequences holding this card's frames, already-present ones included,
                  so a re-run reports the same number as the first run.
    time_sources = {media.time_source: frames of this card}, as stored (a re-run reports the same);
                  'mtime' frames have no camera time (the file's copy time): they are kept out of
                  bursts and the static filter and need --time-from or the camera's clock fixed;
    time_from_unmatched = frames whose name did not match --time-from filename:PATTERN (they took
                  EXIF or mtime instead);
    times_updated = frames ingested earlier with mtime that this run gave a camera time (a re-run
                  with --time-from);
    videos_sampled / video_frames = videos sampled into still frames in this run and the frames they
                  gave (frames are extra media rows, not files of the card: not in media_added).
    """

    card_dir: str
    deployment_id: str
    run_id: int
    deployment_created: bool = False
    files_seen: int = 0
    media_added: int = 0
    duplicates: int = 0
    already_ingested: int = 0  # duplicates that were this very path (a re-run), for the human table
    elsewhere: dict[str, int] = field(default_factory=dict)  # duplicates held by other deployments
    failures: list[FileIssue] = field(default_factory=list)
    warnings: list[FileIssue] = field(default_factory=list)
    sequences: int = 0
    ignored: int = 0
    time_sources: dict[str, int] = field(default_factory=dict)
    time_from_unmatched: int = 0
    times_updated: int = 0
    videos_sampled: int = 0
    video_frames: int = 0
    media_root: str = ""  # the deployment's media root, which this card's rel_paths are relative to

    @property
    def no_camera_time(self) -> int:
        """Frames of this card timed by the file's modification time (no EXIF/name time)."""
        return self.time_sources.get("mtime", 0)

    def to_json(self) -> dict:
        return {
            "files_seen": self.files_seen,
            "media_added": self.media_added,
            "duplicates": self.duplicates,
            "failures": [asdict(f) for f in self.failures],
            "warnings": [asdict(w) for w in self.warnings],
            "sequences": self.sequences,
            "ignored": self.ignored,
            "time_sources": dict(self.time_sources),
            "time_from_unmatched": self.time_from_unmatched,
            "times_updated": self.times_updated,
            "videos_sampled": self.videos_sampled,
            "video_frames": self.video_frames,
        }


def walk_card(card: Path) -> tuple[list[tuple[Path, str]], int]:
    """All images/videos under ``card`` in path order, and the number of other files (ignored).

    Hidden files (.DS_Store, ._IMG_0001.JPG) count as ignored; hidden folders (.Trashes,
    .Spotlight-V100) are not entered. Symlinked folders are not followed (no loops).
    """
    media: list[tuple[Path, str]] = []
    ignored = 0
    stack = [card]
    while stack:
        d = stack.pop()
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as e:
            log.warning("cannot list %s (%s): skipped; check the folder's permissions", d, e.strerror)
            continue
        subdirs = []
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                if not e.name.startswith("."):
                    subdirs.append(Path(e.path))
            elif e.is_file():
                kind = file_kind(e.name)
                if kind is None:
                    ignored += 1
                else:
                    media.append((Path(e.path), kind))
            else:
                ignored += 1  # sockets, fifos, broken links: never opened
        stack.extend(reversed(subdirs))
    media.sort(key=lambda m: str(m[0]))
    return media, ignored


def check_card(card_dir: str | Path) -> None:
    """Raise :class:`IngestError` when ``card_dir`` is no folder or holds no image or video: the command line
    checks this before it opens (and maybe creates) the catalog, so a mistyped card path leaves nothing behind."""
    card = Path(card_dir).expanduser()
    if not card.is_dir():
        raise IngestError(f"card folder {card_dir} does not exist: pass the folder the SD card was copied to")
    files, ignored = walk_card(card)
    if not files:
        raise IngestError(f"no image or video files in {card_dir}" + (f" ({ignored} other files)" if ignored else "")
                          + ": pass the folder the SD card was copied to (the one holding DCIM)")


# the media columns of the row tuples ingest builds for _write, in their order
_ROW_COLUMNS = ("deployment_id", "sha", "path", "rel_path", "kind", "timestamp", "time_source", "width", "height",
                "size_bytes", "make", "model", "serial", "warning", "run_id")


class Ingester:
    """Ingest SD-card dumps into ``catalog`` with ``config``; call with (card_dir, deployment_id)."""

    def __init__(self, catalog: Catalog, config: IngestConfig = IngestConfig()):
        self.cat = catalog
        self.config = config
        self.time_from = parse_time_from(config.time_from)

    def __call__(self, card_dir: str | Path, deployment_id: str) -> IngestSummary:
        cfg = self.config
        card = Path(card_dir).expanduser().resolve()
        if not card.is_dir():
            raise IngestError(f"card folder {card_dir} does not exist: pass the folder the SD card was copied to")
        dep, created = ensure_deployment(self.cat, deployment_id, tz=cfg.tz)
        if created:
            log.warning("deployment %s was unknown: created it (auto_created). Add its coordinates and dates with "
                        "`spotid deployments add %s --lat .. --lon .. --start .. --end ..` or `deployments import`",
                        deployment_id, deployment_id)
        zone, tz_note = self._zone(dep)
        if cfg.tz and dep.tz is None:
            dep = set_deployment_tz(self.cat, dep, format_tz(parse_tz(cfg.tz)))
            log.info("deployment %s: stored time zone %s", dep.id, dep.tz)
        try:
            root = attach_card(self.cat, dep.id, card)
        except RelocateError as e:
            raise IngestError(str(e)) from None
        resolved = dict(asdict(cfg), card_dir=str(card), deployment=dep.id, tz_applied=format_tz(zone))
        run_id = self.cat.start_run("ingest", resolved)
        summary = IngestSummary(card_dir=str(card), deployment_id=dep.id, run_id=run_id, deployment_created=created,
                                media_root=str(root))
        try:
            self._run(card, dep, zone, tz_note, summary)
        except KeyboardInterrupt:
            self.cat.finish_run(run_id, "interrupted", summary.to_json())
            raise
        except BaseException:
            self.cat.finish_run(run_id, "failed", summary.to_json())
            raise
        self.cat.finish_run(run_id, "done", summary.to_json())
        return summary

    def _zone(self, dep: Deployment) -> tuple[timezone, str | None]:
        """The offset applied to EXIF times without their own, and a warning when it is a guess."""
        cfg = self.config
        if cfg.tz:
            zone = parse_tz(cfg.tz)
            if dep.tz and format_tz(zone) != dep.tz:
                log.warning("--tz %s differs from deployment %s's tz %s: using %s for this card",
                            format_tz(zone), dep.id, dep.tz, format_tz(zone))
            return zone, None
        if dep.tz:
            return parse_tz(dep.tz), None
        return timezone.utc, (f"no time zone for deployment {dep.id}: EXIF times without offset were stored "
                              f"as UTC; pass --tz (e.g. --tz +10:00) or set the deployment's tz")

    def _run(self, card: Path, dep: Deployment, zone: timezone, tz_note: str | None, s: IngestSummary) -> None:
        cfg = self.config
        files, s.ignored = walk_card(card)
        s.files_seen = len(files) + s.ignored
        log.info("%s: %d image/video files, %d other files ignored", card, len(files), s.ignored)
        start, end = dep.start_dt, dep.end_dt
        shas: list[str] = []
        used_default_zone = False
        sampler, cache, sampled = cfg.sampler(), frames_dir(self.cat.path), sampled_video_shas(self.cat)

        def probe(item: tuple[Path, str]) -> Probe:
            try:
                p = probe_file(item[0], item[1], min_decoded_fraction=cfg.min_decoded_fraction)
                if p.kind == "video" and not p.failure and p.sha not in sampled:
                    sample_probe(p, sampler, cache)   # a video OpenCV cannot read becomes a failure
                return p
            except Exception as e:  # a file we did not foresee must not stop the card
                log.exception("unexpected error reading %s", item[0])
                return Probe(path=item[0], kind=item[1],
                             failure=f"could not be read ({type(e).__name__}: {e}); please report this file")

        pool = ThreadPoolExecutor(max_workers=cfg.workers)

        def probes():  # the next batch is read while this one is written: two batches in flight
            pending: list = []
            for chunk in batched(files, cfg.batch_size):
                submitted = [pool.submit(probe, item) for item in chunk]
                yield from (f.result() for f in pending)
                pending = submitted
            yield from (f.result() for f in pending)

        try:
            for batch in batched(progress(probes(), total=len(files), description=f"ingest {dep.id}"),
                                 cfg.batch_size):
                rows, failures, videos = [], [], []
                for p in batch:
                    rel = p.path.relative_to(s.media_root).as_posix()
                    if p.failure:
                        failures.append(p)
                        s.failures.append(FileIssue(str(p.path), p.failure))
                        continue
                    ts, source, warns = self._time(p, zone, start, end, dep.id)
                    s.time_from_unmatched += self.time_from.from_filename and source != "filename"
                    used_default_zone |= tz_note is not None and source != "mtime" and (
                        source == "filename" or p.exif_offset is None)
                    if warns:  # one entry per file, its reasons joined
                        s.warnings.append(FileIssue(str(p.path), "; ".join(warns)))
                    rows.append((dep.id, p.sha, str(p.path), rel, p.kind, ts.isoformat(), source, p.width, p.height,
                                 p.size, p.make, p.model, p.serial, "; ".join(warns) or None, s.run_id))
                    shas.append(p.sha)  # type: ignore[arg-type]
                    if p.frames:
                        videos.append(p)
                self._write(rows, failures, dep.id, s, videos)
        finally:  # on Ctrl-C, drop the queued files instead of probing them first
            pool.shutdown(wait=True, cancel_futures=True)
        if s.elsewhere:
            note = (f"{sum(s.elsewhere.values())} frames of this card were already in the catalog under other "
                    f"deployment(s) ({', '.join(f'{k}: {v}' for k, v in sorted(s.elsewhere.items()))}) and stay "
                    f"there; if that is wrong, check the deployment IDs of the earlier ingests")
            log.warning(note)
            s.warnings.append(FileIssue(str(card), note))
        if used_default_zone and tz_note:
            log.warning(tz_note)
            s.warnings.append(FileIssue(str(card), tz_note))
        n_seq = recompute_sequences(self.cat, dep.id, cfg.gap_s)
        s.sequences = self._count_sequences(shas)
        s.time_sources = self._count_time_sources(shas)
        # frames without camera time and unmatched names are said by the human summaries (ingest, process)
        log.info("deployment %s now has %d sequences; this card's frames are in %d", dep.id, n_seq, s.sequences)

    def _time(self, p: Probe, zone: timezone, start: datetime | None, end: datetime | None, dep_id: str):
        """(aware timestamp, media.time_source, warnings) of one probed file."""
        warns = list(p.warnings)
        named = self.time_from.parse(p.path.name) if self.time_from.from_filename else None
        if self.time_from.from_filename and named is None:
            warns.append(f"name does not match --time-from {self.time_from.spec}")
        if named is not None:
            ts, source = named.replace(tzinfo=zone), "filename"
        elif p.naive_time is not None:
            tz = parse_tz(p.exif_offset) if p.exif_offset else zone
            ts, source = p.naive_time.replace(tzinfo=tz), p.time_source
        else:
            ts = datetime.fromtimestamp(int(p.mtime), zone)
            source = "mtime"
            where = "EXIF" if p.kind == "image" else "video header"
            warns.append(f"no {where} time: used the file's modification time, which copying may have changed; "
                         "kept out of bursts")
        if (start and ts < start) or (end and ts > end):
            warns.append(f"time {ts.isoformat()} is outside deployment {dep_id} ({start.isoformat() if start else '…'} "
                         f"to {end.isoformat() if end else '…'}): camera clock reset? fix the clock offset or the "
                         "deployment dates")
        return ts, source, warns

    def _write(self, rows: list[tuple], failures: list[Probe], dep_id: str, s: IngestSummary,
               videos: list[Probe] = ()) -> None:
        """One transaction per batch: INSERT OR IGNORE on the content hash makes duplicates (and a
        resumed batch) no-ops. ``videos``: probes whose sampled frames become the videos' child rows."""
        with self.cat.transaction():
            for r in rows:
                row = MediaRow(**dict(zip(_ROW_COLUMNS, r)))
                if media.insert_if_new(self.cat, row):
                    s.media_added += 1
                    continue
                s.duplicates += 1
                old = media.by_sha(self.cat, row.sha)
                s.already_ingested += old.path == row.path
                if old.path == row.path and old.time_source == "mtime" and row.time_source != "mtime":
                    # a re-run that found the camera time
                    media.set_time(self.cat, row.sha, row.timestamp, row.time_source, row.warning)
                    s.times_updated += 1
                if old.deployment_id != dep_id:
                    s.elsewhere[old.deployment_id] = s.elsewhere.get(old.deployment_id, 0) + 1
            for p in videos:
                n = insert_frames(self.cat, p.sha, p.frames, s.run_id)
                s.videos_sampled += n > 0
                s.video_frames += n
            # A file that ingests now is no longer a failure (it was re-copied).
            media.clear_failures(self.cat, [r[2] for r in rows])
            media.record_failures(self.cat, s.run_id, dep_id, [(str(p.path), p.failure) for p in failures])

    def _count_time_sources(self, shas: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for source, n in media.count_by_time_source(self.cat, shas).items():
            counts[source or "none"] = counts.get(source or "none", 0) + n
        return dict(sorted(counts.items()))

    def _count_sequences(self, shas: list[str]) -> int:
        return len(media.sequence_ids_of(self.cat, shas))
