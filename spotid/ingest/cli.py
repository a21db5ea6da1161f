"""CLI for the ingest stage: ``spotid ingest``, ``spotid deployments ...``, ``spotid media list|relocate``.

See spotid/cli.py for the registration protocol. Thin: the work is in spotid.ingest.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Optional

import typer

from spotid.catalog import DEFAULT_DB

DB_OPT = typer.Option(Path(DEFAULT_DB), "--db", help="Catalog file (SQLite).")
JSON_OPT = typer.Option(False, "--json", help="Print one JSON document on stdout instead of a table.")
TIME_FROM_HELP = ("Where frame times come from: 'exif' (the default) or 'filename:PATTERN' for cameras that write "
                  "the time into the file name, e.g. filename:%Y%m%d_%H%M%S (searched anywhere in the name; "
                  "directives %Y %y %m %d %H %M %S; the deployment's --tz applies; names that do not match "
                  "fall back to EXIF, then the file's modification time).")


def _console():
    import sys

    from rich.console import Console

    # Piped output (grep, less, files) gets wide rows instead of paths folded at 80 columns.
    return Console(width=None if sys.stdout.isatty() else 200)


def _table(title: str, columns: list[str], rows: list[list]) -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    _console().print(t)


# -- spotid ingest ----------------------------------------------------------------------------------
def ingest(
    card_dir: Path = typer.Argument(..., help="Folder an SD card was copied to (DCIM/100RECNX/... inside)."),
    deployment: str = typer.Option(..., "--deployment", "-d", help="Deployment ID (created if unknown)."),
    db: Path = DB_OPT,
    tz: Optional[str] = typer.Option(None, "--tz", help="Camera clock offset, e.g. +10:00 (else the deployment's)."),
    gap: Optional[float] = typer.Option(None, "--gap", help="Seconds between frames that start a new sequence [60]."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Files per committed transaction [200]."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Threads reading and hashing files [2]."),
    time_from: Optional[str] = typer.Option(None, "--time-from", help=TIME_FROM_HELP),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with IngestConfig settings "
                                          "(defaults: configs/ingest.yaml)."),
    json_out: bool = JSON_OPT,
) -> None:
    """Ingest an SD-card dump: hash, read EXIF time and camera, group bursts, record broken files.

    Re-running adds nothing (frames are keyed by content hash). Broken files are listed, never fatal.
    --json prints {files_seen, media_added, duplicates, failures, warnings, sequences, ignored,
    time_sources, time_from_unmatched, times_updated, videos_sampled, video_frames}; sequences counts the sequences holding this card's
    frames, already-present ones included; time_sources counts its frames by media.time_source.

    Frames without EXIF time get the file's modification time (time_source mtime): they are counted in
    the summary and kept out of bursts. Videos are sampled into still frames (configs/ingest.yaml: video_*); a video
    OpenCV cannot read is a failure.

    \b
    Examples:
      spotid ingest /media/card02 --deployment S02A --db season.db --tz +10:00
      spotid ingest /media/card02 -d S02A --time-from filename:%Y%m%d_%H%M%S
    """
    from spotid.config import resolve_config
    from spotid.ingest.ingester import IngestConfig, Ingester, IngestError, check_card
    from spotid.cliutil import open_catalog
    from spotid.util import print_json

    try:
        cfg = resolve_config(IngestConfig, config, gap_s=gap, tz=tz, batch_size=batch_size, workers=workers,
                             time_from=time_from)
        check_card(card_dir)
    except (ValueError, OSError) as e:   # IngestError is a ValueError
        raise typer.BadParameter(str(e)) from None
    with open_catalog(db) as cat:
        try:
            summary = Ingester(cat, cfg)(card_dir, deployment)
        except IngestError as e:
            raise typer.BadParameter(str(e)) from None
    if json_out:
        print_json(summary.to_json())
        return
    _print_summary(summary, cfg.time_from)


def _print_summary(s, time_from: str = "exif") -> None:
    con = _console()
    dup = f"{s.duplicates}"
    if s.duplicates:
        dup += (f" ({s.already_ingested} already ingested from these paths, "
                f"{s.duplicates - s.already_ingested} copies of frames ingested from elsewhere)")
    _table(f"ingest {s.card_dir} -> deployment {s.deployment_id}"
           + (" (new, auto-created)" if s.deployment_created else ""),
           ["", "count"],
           [["files seen", s.files_seen], ["media added", s.media_added], ["duplicates", dup],
            ["failures", len(s.failures)], ["warnings", len(s.warnings)], ["ignored (not image/video)", s.ignored],
            ["videos sampled / their frames", f"{s.videos_sampled} / {s.video_frames}"],
            ["sequences holding this card's frames", s.sequences], *_time_rows(s)])
    if s.failures:
        _table("failures (not ingested)", ["path", "reason"], [[f.path, f.reason] for f in s.failures])
    if s.warnings:
        by_kind = Counter(w.reason.split(":")[0] for w in s.warnings)
        shown = s.warnings[:20]
        kinds = ", ".join(f"{k} ×{n}" for k, n in by_kind.most_common(5))
        _table(f"warnings ({len(s.warnings)}; kinds: {kinds})", ["path", "reason"], [[w.path, w.reason] for w in shown])
        if len(s.warnings) > len(shown):
            con.print(f"... {len(s.warnings) - len(shown)} more warnings: see `spotid media list --json` "
                      "(media.warning) or run with --json")
    print_time_notes(con, s.deployment_id, s.to_json(), time_from)


def _time_rows(s) -> list[list]:
    rows = [["frames without camera time (file copy time used)", s.no_camera_time]]
    if s.time_sources.get("filename") or s.time_from_unmatched:
        rows.append(["frames timed by their file name / names not matching",
                     f"{s.time_sources.get('filename', 0)} / {s.time_from_unmatched}"])
    if s.times_updated:
        rows.append(["frames given a camera time on this run (were file copy time)", s.times_updated])
    return rows


def print_time_notes(con, deployment: str, summary: dict, time_from: str) -> None:
    """The lines a person must not miss about frame times, from an ingest summary's JSON
    (``summary``) and the ``--time-from`` value used; shared with ``spotid process``."""
    from rich.markup import escape

    from spotid.ingest.ingester import no_camera_time_note, time_from_unmatched_note

    n_mtime = (summary.get("time_sources") or {}).get("mtime", 0)
    if n_mtime:
        con.print(f"[yellow]time:[/yellow] {escape(no_camera_time_note(n_mtime, deployment))}")
    if summary.get("time_from_unmatched"):
        note = time_from_unmatched_note(summary["time_from_unmatched"], time_from, deployment)
        con.print(f"[yellow]time:[/yellow] {escape(note)}")


# -- spotid deployments -----------------------------------------------------------------------------
deployments_app = typer.Typer(help="Camera deployments (one camera at one station): add, import, list."
                                   "\n\n\b\nExample:\n"
                                   "  spotid deployments import deployments.csv --db season.db",
                              no_args_is_help=True)


@deployments_app.command("add")
def deployments_add(
    deployment_id: str = typer.Argument(..., help="Deployment ID (Camtrap DP deploymentID)."),
    lat: float = typer.Option(..., "--lat", help="Latitude, decimal degrees (WGS84)."),
    lon: float = typer.Option(..., "--lon", help="Longitude, decimal degrees (WGS84)."),
    start: str = typer.Option(..., "--start", help="Deployment start, e.g. 2024-03-01T08:00:00+10:00 or 2024-03-01."),
    end: str = typer.Option(..., "--end", help="Deployment end (a bare date means its last second)."),
    camera_id: Optional[str] = typer.Option(None, "--camera-id", help="Camera serial or label."),
    camera_model: Optional[str] = typer.Option(None, "--camera-model", help="e.g. Reconyx-HF2X."),
    tz: Optional[str] = typer.Option(None, "--tz", help="Camera clock offset, e.g. +10:00 (default: start's offset)."),
    location_id: Optional[str] = typer.Option(None, "--location-id", help="Station ID; paired cameras share it."),
    location_name: Optional[str] = typer.Option(None, "--location-name"),
    replace: bool = typer.Option(False, "--replace", help="Overwrite an existing deployment with other details."),
    db: Path = DB_OPT,
) -> None:
    """Add a deployment (or fill in one an ingest auto-created).

    \b
    Example:
      spotid deployments add S02A --lat 43.12 --lon 131.95 --tz +10:00 \\
          --start 2024-03-01 --end 2024-05-31 --db season.db
    """
    from spotid.ingest.deployments import (
        DeploymentError,
        add_deployment,
        make_deployment,
    )
    from spotid.cliutil import open_catalog

    try:
        dep = make_deployment(deployment_id, latitude=lat, longitude=lon, start=start, end=end, tz=tz,
                              camera_id=camera_id, camera_model=camera_model, location_id=location_id,
                              location_name=location_name)
        with open_catalog(db) as cat:
            what = add_deployment(cat, dep, replace_existing=replace)
    except DeploymentError as e:
        raise typer.BadParameter(str(e)) from None
    typer.echo(f"{what} deployment {dep.id} ({dep.latitude}, {dep.longitude}) {dep.start} to {dep.end}, tz {dep.tz}")


@deployments_app.command("import")
def deployments_import(
    csv_file: Path = typer.Argument(..., help="Camtrap DP deployments.csv."),
    tz: Optional[str] = typer.Option(None, "--tz", help="Offset for start/end times written without one."),
    db: Path = DB_OPT,
    json_out: bool = JSON_OPT,
) -> None:
    """Import (upsert) deployments from a Camtrap DP deployments.csv; all rows or none.

    \b
    Example:
      spotid deployments import deployments.csv --db season.db
    """
    from dataclasses import asdict

    from spotid.ingest.deployments import DeploymentError, import_deployments_csv, read_deployments_csv
    from spotid.cliutil import open_catalog
    from spotid.util import print_json

    try:
        read_deployments_csv(csv_file, tz=tz)   # a bad file fails before a new catalog is started
        with open_catalog(db) as cat:
            res = import_deployments_csv(cat, csv_file, tz=tz)
    except DeploymentError as e:
        raise typer.BadParameter(str(e)) from None
    if json_out:
        print_json(asdict(res))
    else:
        typer.echo(f"{csv_file}: {len(res.added)} added, {len(res.updated)} updated, {len(res.unchanged)} unchanged")


@deployments_app.command("list")
def deployments_list(db: Path = DB_OPT, json_out: bool = JSON_OPT) -> None:
    """List deployments with their number of media.

    \b
    Example:
      spotid deployments list --db season.db
    """
    from spotid.ingest.deployments import list_deployments
    from spotid.cliutil import existing_catalog
    from spotid.util import print_json

    with existing_catalog(db) as cat:
        deps = list_deployments(cat)
    if json_out:
        print_json([dict(d.to_dict(), n_media=n) for d, n in deps])
        return
    _table(f"{len(deps)} deployments", ["id", "station", "lat", "lon", "start", "end", "tz", "camera", "media", "note"],
           [[d.id, d.location_id, d.latitude, d.longitude, d.start, d.end, d.tz, d.camera_id or d.camera_model, n,
             "auto-created: add details" if d.auto_created else ""] for d, n in deps])


@deployments_app.command("check")
def deployments_check(
    db: Path = DB_OPT,
    outages: Optional[Path] = typer.Option(None, "--outages", help="CSV deployment_id,start,end[,reason] of known "
                                           "outages, added to the ones found."),
    deployment: Optional[str] = typer.Option(None, "--deployment", "-d", help="Only this deployment."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with HealthConfig thresholds "
                                          "(defaults: configs/health.yaml)."),
    json_out: bool = JSON_OPT,
) -> None:
    """Check camera operation from the images themselves: clock problems, dead battery / full card, camera
    down, vegetation or sun glare, broken infrared flash. Outages found (and --outages) are what
    `spotid census` takes out of the effort.

    Exit code 0 whether or not faults are found (they are data); 2 for bad input.

    \b
    Example:
      spotid deployments check --db season.db --outages known_outages.csv
    """
    from spotid.config import resolve_config
    from spotid.catalog.tables import deployments as deployments_table
    from spotid.ingest.health import CameraCheck, HealthConfig, OutagesError, read_outages, reports_to_json
    from spotid.cliutil import open_catalog
    from spotid.util import print_json

    try:
        cfg = resolve_config(HealthConfig, config)
    except (ValueError, OSError) as e:
        raise typer.BadParameter(str(e), param_hint="--config") from None
    with open_catalog(db, create=False) as cat:
        deps = {r["id"]: dict(r) for r in deployments_table.rows(cat)}
        if deployment is not None and deployment not in deps:
            raise typer.BadParameter(f"no deployment {deployment!r}; see `spotid deployments list`",
                                     param_hint="--deployment")
        try:
            known = read_outages(outages, deps) if outages else []
        except OutagesError as e:
            raise typer.BadParameter(str(e), param_hint="--outages") from None
        reports = CameraCheck(cfg)(cat, known)
    if deployment is not None:
        reports = [r for r in reports if r.deployment == deployment]
    if json_out:
        print_json(reports_to_json(reports, cfg))
        return
    _table(f"{len(reports)} camera(s): {sum(1 for r in reports if r.ok)} without findings",
           ["camera", "station", "span (days)", "images", "triggers", "night", "operating days", "findings"],
           [[r.deployment, r.station, r.to_dict()["span_days"], r.n_media, r.n_triggers, r.n_night_triggers,
             round(r.operating_days, 2), ", ".join(f.kind for f in r.findings) or "ok"] for r in reports])
    for r in reports:
        rows = [[f.kind, f"{f.start:%Y-%m-%d %H:%M}" if f.start else "", f"{f.end:%Y-%m-%d %H:%M}" if f.end else "",
                 "yes" if f.outage else "", ", ".join(f"{k}={v}" for k, v in f.evidence.items()), f.action]
                for f in r.findings]
        rows += [["known outage", f"{o.start:%Y-%m-%d %H:%M}", f"{o.end:%Y-%m-%d %H:%M}", "yes", o.reason, ""]
                 for o in r.outages if o.source == "outages file"]
        if rows:
            _table(f"camera {r.deployment} (station {r.station})",
                   ["finding", "from", "to", "out of effort", "evidence", "what to do"], rows)


# -- spotid media -----------------------------------------------------------------------------------
media_app = typer.Typer(help="What is in the catalog: media and ingest failures; move a card folder's place."
                             "\n\n\b\nExample:\n"
                             "  spotid media list --db season.db --failures", no_args_is_help=True)


@media_app.command("list")
def media_list(
    deployment: Optional[str] = typer.Option(None, "--deployment", "-d", help="Only this deployment."),
    failures: bool = typer.Option(False, "--failures", help="List the files that failed to ingest instead."),
    limit: int = typer.Option(0, "--limit", help="At most this many rows (0 = all)."),
    db: Path = DB_OPT,
    json_out: bool = JSON_OPT,
) -> None:
    """List media (time, time source, sequence, path) or, with --failures, recorded ingest failures.

    \b
    Examples:
      spotid media list --db season.db --deployment S02A --limit 50
      spotid media list --db season.db --failures
    """
    from spotid.cliutil import existing_catalog
    from spotid.util import print_json

    from spotid.catalog.tables import media as media_table

    with existing_catalog(db) as cat:
        listed = media_table.failures if failures else media_table.listing
        rows = [dict(r) for r in listed(cat, deployment, limit)]
    if json_out:
        print_json(rows)
    elif failures:
        _table(f"{len(rows)} ingest failures", ["deployment", "path", "reason"],
               [[r["deployment_id"], r["path"], r["reason"]] for r in rows])
    else:
        _table(f"{len(rows)} media", ["id", "deployment", "time", "source", "seq", "frame", "path", "warning"],
               [[r["id"], r["deployment_id"], r["timestamp"], r["time_source"], r["sequence_id"], r["frame_num"],
                 r["rel_path"], "yes" if r["warning"] else ""] for r in rows])


@media_app.command("relocate")
def media_relocate(
    new_root: Path = typer.Argument(..., help="The folder the deployment's card folder was moved or copied to."),
    deployment: str = typer.Option(..., "--deployment", "-d", help="Deployment whose files moved."),
    sample: int = typer.Option(20, "--sample", help="Files checked by content hash (spread over the deployment); "
                               "every file's size is checked."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check only; change nothing."),
    db: Path = DB_OPT,
    json_out: bool = JSON_OPT,
) -> None:
    """Point a deployment at its card folder's new place, after checking that the files there are the ones
    ingested (content hash of a sample, size of all). Refuses, changing nothing, when they are not.

    Exit code 2 when NEW_ROOT does not hold the deployment's files (or no such deployment).

    \b
    Example:
      spotid media relocate -d AL-012-A /mnt/archive/AL-012-A --db season.db
    """
    from spotid.cliutil import existing_catalog
    from spotid.ingest.media_root import MediaRelocator, RelocateError
    from spotid.util import print_json

    with existing_catalog(db) as cat:
        try:
            res = MediaRelocator(cat, sample=sample, dry_run=dry_run)(deployment, new_root)
        except RelocateError as e:
            raise typer.BadParameter(str(e), param_hint="NEW_ROOT") from None
    if json_out:
        print_json(res.to_json())
        return
    checked = (f"{res.checked_hashes} files checked by content hash, {res.checked_sizes} of {res.n_media} by size"
               + (f"; {len(res.missing)} not found there" if res.missing else ""))
    if res.moved:
        typer.echo(f"deployment {res.deployment_id}: media root {res.old_root} -> {res.new_root} ({checked})")
        if res.detect_cleared:
            typer.echo(f"{res.detect_cleared} frames detect could not find at the old place: run "
                       f"`spotid detect --db {db}` to detect them")
    elif res.old_root == res.new_root:
        typer.echo(f"deployment {res.deployment_id}: media root is already {res.new_root} ({checked})")
    else:
        typer.echo(f"dry run: {res.new_root} holds deployment {res.deployment_id}'s files ({checked}); "
                   "run again without --dry-run to move the media root")


commands = {"ingest": ingest}
groups = {"deployments": deployments_app, "media": media_app}
