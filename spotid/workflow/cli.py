"""CLI of the orchestration floor: ``spotid demo`` and ``spotid process`` (see spotid/cli.py for the
registration protocol)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

from spotid.census.cli import _num, print_census
from spotid.ingest.cli import print_time_notes

log = logging.getLogger(__name__)


def demo(
    db: Optional[Path] = typer.Option(None, "--db", help="New catalog file (default OUT/demo.db, replaced on each run)."),
    out: Path = typer.Option(Path("spotid-demo"), "--out", help="Folder for the synthetic card, catalog and census."),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic world."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (truth vs census) instead of tables."),
) -> None:
    """Run the whole pipeline on a small synthetic survey: card -> ingest -> detect -> identify -> census.

    \b
    Example:
      spotid demo --out spotid-demo --seed 1
    """
    import dataclasses

    from spotid.workflow.demo import Demo, DemoConfig, PipelineError

    out.mkdir(parents=True, exist_ok=True)
    if db is not None and db.exists():
        raise typer.BadParameter(f"{db} exists: the demo writes a fresh catalog; pass a new path or omit --db",
                                 param_hint="--db")
    db = db or out / "demo.db"
    for suffix in ("", "-wal", "-shm"):  # our own demo catalog from an earlier run
        p = Path(str(db) + suffix)
        if p.exists():
            p.unlink()
    try:
        res = Demo(dataclasses.replace(DemoConfig(), seed=seed))(db, out)
    except PipelineError as e:
        raise typer.BadParameter(str(e)) from None
    if as_json:
        from spotid.util import print_json

        print_json(res.to_json())
        return
    census = res.result   # the demo's own census (SECR included): printed, not computed again
    print_census(census, out / "census")
    _print_truth(res, db, census.n_unusable_sightings)
    for n in res.notes:
        log.info("note: %s", n)


def _print_truth(res, db: Path, set_aside: int = 0) -> None:
    """The demo's check against the simulated truth, for people (``--json`` has all of it)."""
    from rich.console import Console
    from rich.table import Table

    c, t = res.census, res.truth_check
    tab = Table(title="Census vs the simulated truth", show_header=True)
    tab.add_column("")
    tab.add_column("counted", justify="right")
    tab.add_column("truth", justify="right")
    tab.add_column("holds", justify="center")

    def yes(v):
        return "—" if v is None else ("yes" if v else "[red]no[/red]")

    tab.add_row("individuals (MNA) vs photographed", str(c["mna"]), str(res.true_detected_individuals),
                yes(t.get("counted_within_10pct_of_photographed")) + " (±10%)")
    ci = f"{c['N']:.1f} ({c['lcl']:.1f}–{c['ucl']:.1f}) {c['model']}" if c.get("N") is not None else "—"
    tab.add_row("N̂ (95% CI) vs population", ci, str(res.true_individuals), yes(t.get("ci_contains_true_N")))
    if c.get("D_per_100km2") is not None:
        tab.add_row(f"density per 100 km² (95% CI, SECR {c.get('density_flank')} flank) vs truth",
                    f"{_num(c['D_per_100km2'], 1)} ({_num(c['D_lcl_per_100km2'], 1)}–{_num(c['D_ucl_per_100km2'], 1)})",
                    f"{c['true_D_per_100km2']:.1f}" if c.get("true_D_per_100km2") is not None else "—",
                    yes(t.get("ci_contains_true_D")))
    tab.add_row("identities split / merged", f"{t.get('split_individual_flanks')} / {t.get('merged_identities')}",
                "0 / 0", yes(not t.get("split_individual_flanks") and not t.get("merged_identities")))
    if t.get("identities_not_leopard") is not None:   # another species or scenery called leopard
        tab.add_row("identities on no leopard (another animal or scenery)", str(t["identities_not_leopard"]), "0",
                    yes(not t["identities_not_leopard"]))
    tab.add_row("sighting purity", str(t.get("sighting_purity")), "1.0", "")
    Console().print(tab)
    secs = res.seconds
    typer.echo("seconds: " + ", ".join(f"{k} {v}" for k, v in secs.items()))
    aside = " --include-set-aside" if set_aside else ""   # then the sightings identify could not use
    typer.echo(f"next: spotid review --db {db} --include-auto{aside}    (vouch for or correct the machine's identities)")


def process(
    card: Path = typer.Argument(..., help="SD-card folder (the one holding DCIM)."),
    deployment: str = typer.Option(..., "--deployment", "-d", help="Deployment ID of this card (see `spotid deployments`)."),
    db: Path = typer.Option(Path("spotid.db"), "--db", help="Catalog file."),
    tz: Optional[str] = typer.Option(None, "--tz", help="Camera clock offset, e.g. +10:00."),
    gap: Optional[float] = typer.Option(None, "--gap", help="Seconds between frames that start a new sequence (default 60)."),
    time_from: Optional[str] = typer.Option(None, "--time-from", help="As for `spotid ingest`: 'exif' (the default) "
                                            "or 'filename:PATTERN', e.g. filename:%Y%m%d_%H%M%S."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for every stage (default: all cores; N to leave cores free)."),
    config: Optional[Path] = typer.Option(None, "--config",
                                          help="YAML settings: flat, or with ingest:/detect:/identify: sections."),
    detector: Optional[str] = typer.Option(None, "--detector", help="As detect's: builtin | megadetector | mdjson:FILE.json"),
    megadetector_weights: Optional[str] = typer.Option(None, "--megadetector-weights",
                                                       help="MegaDetector .pt file (megadetector backend)."),
    no_static_fp: bool = typer.Option(False, "--no-static-fp", help="Do not flag repeated static detections."),
    auto_accept: bool = typer.Option(False, "--auto-accept", help="Accept matches above the re-ID model's threshold."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Ingest + detect + identify one card, the way a field team runs a new card.

    \b
    Example:
      spotid process /media/card02 --deployment S02A --db season.db --tz +10:00
    """
    from spotid.config import resolve_config
    from spotid.detect.config import DetectConfig
    from spotid.identify.config import IdentifyConfig
    from spotid.ingest.ingester import IngestConfig, IngestError, check_card
    from spotid.cliutil import open_catalog
    from spotid.detect.detector import DetectorError, check_detector
    from spotid.modelstore import ModelError
    from spotid.workflow.process import PipelineError, check_models, process_card

    try:
        ingest_cfg = resolve_config(IngestConfig, config, tz=tz, gap_s=gap, time_from=time_from)
        detect_cfg = resolve_config(DetectConfig, config, threads=threads, detector=detector,
                                    megadetector_weights=megadetector_weights, static_fp=False if no_static_fp else None)
        # resolved before any work, so a mistyped identify setting is not found only after ingest and
        # detection have run over the whole card
        identify_cfg = resolve_config(IdentifyConfig, config, auto_accept=auto_accept)
    except ValueError as e:  # the message names the option (--tz, --time-from) or the file
        raise typer.BadParameter(str(e), param_hint="--config" if config else None) from None
    try:
        check_card(card)   # before the catalog: a wrong or empty folder leaves no new catalog behind
    except IngestError as e:
        raise typer.BadParameter(str(e), param_hint="CARD") from None
    try:
        check_detector(detect_cfg)   # likewise a misspelt --detector, a missing MD JSON file, a broken model
    except DetectorError as e:   # process has no --model/--classifier: those come from --config
        hint = e.option if e.option in ("--detector", "--megadetector-weights") else "--config"
        raise typer.BadParameter(str(e), param_hint=hint) from None
    try:
        check_models(identify_cfg)   # and a model path in --config that holds no model
    except ModelError as e:
        raise typer.BadParameter(str(e), param_hint="--config") from None
    from spotid.cliutil import set_threads

    set_threads(detect_cfg.threads)   # --threads, else the config's (0 = all cores): every stage runs with it
    with open_catalog(db) as cat:
        try:
            res = process_card(cat, card, deployment, tz=tz, ingest_cfg=ingest_cfg, detect_cfg=detect_cfg,
                               identify_cfg=identify_cfg)
        except (PipelineError, ValueError, DetectorError, ModelError) as e:
            raise typer.BadParameter(str(e)) from None
    if as_json:
        from spotid.util import print_json

        print_json(res.to_json())
        return
    _print_process(res, db, ingest_cfg.time_from)


def _print_process(res, db: Path, time_from: str = "exif") -> None:
    """What a field team needs after a card: what went in, what failed, what was seen, what to do next."""
    from rich.console import Console
    from rich.table import Table

    from spotid.identify.pipeline import IdentifyResult

    ing, det, ide = res.ingest, res.detect, res.identify or {}
    tab = Table(title=f"card -> deployment {res.deployment}", show_header=False)
    tab.add_column("")
    tab.add_column("", justify="right")
    tab.add_row("files seen / frames added", f"{ing.get('files_seen')} / {ing.get('media_added')}")
    tab.add_row("duplicates / ignored", f"{ing.get('duplicates')} / {ing.get('ignored')}")
    tab.add_row("failures (not ingested)", str(len(ing.get("failures") or [])))
    tab.add_row("warnings (e.g. clock, no EXIF time)", str(len(ing.get("warnings") or [])))
    tab.add_row("frames without camera time (file copy time used)", str((ing.get("time_sources") or {}).get("mtime", 0)))
    tab.add_row("videos sampled / their frames", f"{ing.get('videos_sampled', 0)} / {ing.get('video_frames', 0)}")
    tab.add_row("frames detected / with animals", f"{det.get('frames')} / {det.get('animal_frames')}")
    tab.add_row("frames not analysed (detect failures)", str(len(det.get("failures") or [])))
    tab.add_row("confident leopard boxes (static false positives)", f"{det.get('leopard_detections')} "
                                                               f"({det.get('static_fp')})")
    tab.add_row("sightings: known individual / new",
                f"{(ide.get('matched') or 0) + (ide.get('auto') or 0)} / {ide.get('new_sightings')}")
    tab.add_row("sightings unusable (why)", IdentifyResult(**ide).unusable_text() if ide else "-")
    tab.add_row("proposed new individuals", ", ".join(ide.get("new_individuals") or []) or "-")
    tab.add_row("seconds", ", ".join(f"{k} {v}" for k, v in res.seconds.items()))
    con = Console()
    con.print(tab)
    for f in (ing.get("failures") or [])[:20]:
        con.print(f"[red]failed[/red] {f.get('path')}: {f.get('reason')}", highlight=False)
    print_time_notes(con, res.deployment, ing, time_from)
    for f in (det.get("failures") or [])[:20]:
        con.print(f"[red]not analysed[/red] {f.get('file')}: {f.get('reason')}", highlight=False)
    aside = " --include-set-aside" if ide.get("unusable") else ""   # the set-aside ones, with identify's reasons
    typer.echo(f"next: spotid review --db {db}{aside}   then   spotid census --db {db} --out census/")


commands: dict = {"demo": demo, "process": process}
