"""CLI for the export stage (see spotid/cli.py for the registration protocol)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from spotid.cliutil import existing_catalog, require

export_app = typer.Typer(help="Export the catalog: Camtrap DP, MegaDetector JSON, census report."
                              "\n\n\b\nExample:\n"
                              "  spotid export camtrapdp --db season.db --out package/",
                         no_args_is_help=True)


@export_app.command("camtrapdp")
def camtrapdp(
    db: Path = typer.Option(Path("spotid.db"), "--db", help="Catalog file."),
    out: Path = typer.Option(..., "--out", help="Folder for datapackage.json and the three CSV tables."),
    min_conf: Optional[float] = typer.Option(None, "--min-conf", help="Keep non-leopard detections at least this confident (default 0.2)."),
    title: Optional[str] = typer.Option(None, "--title", help="Package title."),
    contributor: Optional[str] = typer.Option(None, "--contributor", help="Contact person or organisation."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML package metadata (configs/export.yaml)."),
    validate_with: Optional[Path] = typer.Option(None, "--validate-with",
                                                 help="Folder with the Camtrap DP 1.0.2 profile and table schemas: validate offline."),
    census: bool = typer.Option(True, "--census/--no-census",
                                help="Store the census summary (MNA, N̂, and with --secr the density) in datapackage.json."),
    secr: bool = typer.Option(False, "--secr/--no-secr", help="Fit SECR for the stored census (density per 100 km²)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Camtrap DP 1.0.2 package (deployments, media, observations with individuals and boxes).

    \b
    Example:
      spotid export camtrapdp --db season.db --out package/ --secr \\
          --validate-with ../camtrap-dp
    """
    from spotid.config import resolve_config
    from spotid.export.camtrapdp import CamtrapDPConfig, ExportError, export_camtrapdp

    try:
        cfg = resolve_config(CamtrapDPConfig, config, min_conf=min_conf, title=title, contributor=contributor)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    with existing_catalog(db) as cat:
        summary = None
        if census:
            from spotid.census.census import Census
            from spotid.census.config import CensusConfig

            try:
                ccfg = resolve_config(CensusConfig, None, secr=secr or None, write_flank_links=False)
                summary = Census(ccfg)(cat).summary()
            except ValueError as e:
                raise typer.BadParameter(f"the census for the package failed: {e} (or pass --no-census)") from None
        try:
            res = export_camtrapdp(cat, out, cfg, census=summary)
        except ExportError as e:
            raise typer.BadParameter(str(e)) from None
    doc = res.to_dict()
    if validate_with is not None:
        from spotid.export.validate import validate_package

        try:
            errs = validate_package(out, validate_with)
        except ImportError as e:
            raise typer.BadParameter(f"--validate-with needs frictionless ({e}): pip install 'spotid[test]' "
                                     "or pip install frictionless") from None
        except FileNotFoundError as e:
            raise typer.BadParameter(f"{e}: pass the folder holding camtrap-dp-profile.json and the three "
                                     "*-table-schema.json files", param_hint="--validate-with") from None
        doc["valid"], doc["validation_errors"] = not errs, errs[:50]
    if as_json:
        from spotid.util import print_json

        print_json(doc)
    else:
        typer.echo(f"Camtrap DP {out}: {res.n_deployments} deployments, {res.n_media} media, "
                   f"{res.n_observations} observations ({res.n_leopard_observations} leopard, "
                   f"{res.n_individual_observations} with an individual)")
        for w in res.warnings:
            typer.echo(f"warning: {w}", err=True)
        if validate_with is not None:
            typer.echo("valid against Camtrap DP 1.0.2" if doc["valid"] else
                       "INVALID:\n  " + "\n  ".join(doc["validation_errors"]))
    if validate_with is not None and not doc["valid"]:
        raise typer.Exit(1)


@export_app.command("mdjson")
def mdjson(
    db: Path = typer.Option(Path("spotid.db"), "--db", help="Catalog file."),
    out: Path = typer.Option(..., "--out", help="MegaDetector batch JSON file to write."),
    deployment: Optional[str] = typer.Option(None, "--deployment", help="Only this deployment."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """MegaDetector batch JSON (format 1.6) of the catalog's detections, for Timelapse and MD tools.

    \b
    Example:
      spotid export mdjson --db season.db --out season-md.json
    """
    from spotid.export.mdjson_export import export_mdjson

    with existing_catalog(db) as cat:
        n = export_mdjson(cat, out, deployment=deployment)
    if as_json:
        from spotid.util import print_json

        print_json({"out": str(out), "images": n})
    else:
        typer.echo(f"wrote {n} images to {out}")


@export_app.command("report")
def report(
    db: Path = typer.Option(Path("spotid.db"), "--db", help="Catalog file."),
    out: Path = typer.Option(..., "--out", help="Folder for report.html, the PNG plots and the tables."),
    start: Optional[str] = typer.Option(None, "--start", help="Census period start."),
    end: Optional[str] = typer.Option(None, "--end", help="Census period end."),
    occasion_days: Optional[float] = typer.Option(None, "--occasion-days", help="Occasion length in days."),
    config: Optional[Path] = typer.Option(None, "--config", help="Census YAML settings."),
    secr: Optional[bool] = typer.Option(None, "--secr/--no-secr", help="Include SECR density (census setting secr)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Census report: one self-contained HTML page (station map in latitude/longitude, capture-history heatmap,
    sightings over time, estimates, a photo of each counted individual), its PNG plots and the census tables.

    \b
    Example:
      spotid export report --db season.db --out report/ --secr
    """
    from spotid.census.census import Census
    from spotid.census.config import CensusConfig
    from spotid.config import resolve_config
    from spotid.export.report import write_report

    try:
        cfg = resolve_config(CensusConfig, config, start=start, end=end, occasion_days=occasion_days,
                          write_flank_links=False, secr=secr)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    with existing_catalog(db) as cat:
        require(cat, "census")   # an empty catalog: say what to run first, not a report of an invented period
        try:
            res = Census(cfg)(cat)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None
        path = write_report(res, out, cat=cat)
    if as_json:
        from spotid.util import print_json

        print_json({"report": str(path), "summary": res.summary()})
    else:
        typer.echo(f"report written to {path}")


@export_app.command("training-crops")
def training_crops(
    db: Path = typer.Option(Path("spotid.db"), "--db", help="Catalog whose review decisions to export."),
    out: Path = typer.Option(..., "--out", help="Folder for leopard-other/, flank/, identity/ and manifest.csv."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Crops people labelled on the review page, as training folders: leopard-other/{leopard,other}
    (confirmed and unusable = leopard, "not a leopard" = other), flank/{left,right} and
    identity/<individual>/<flank> (confirmed sightings), and manifest.csv (decision, reviewer, time).

    \b
    Example:
      spotid export training-crops --db season.db --out reviewed/
    """
    from spotid.export.training_crops import export_training_crops

    with existing_catalog(db) as cat:
        try:
            res = export_training_crops(cat, out)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--db") from None
    summary = {"out": str(res.out), "crops": res.crops, "by_folder": res.by_folder,
               "identities": res.individuals, "missing_crops": res.missing}
    if as_json:
        from spotid.util import print_json

        print_json(summary)
        return
    folders = ", ".join(f"{k} {v}" for k, v in sorted(res.by_folder.items()))
    typer.echo(f"{res.crops} reviewed crops written to {out} ({folders}; {res.individuals} identities)")
    if res.missing:
        typer.echo(f"{len(res.missing)} reviewed crops have no crop JPEG: re-run spotid identify --db {db} "
                   "to cut them again", err=True)


commands: dict = {}
groups: dict = {"export": export_app}
