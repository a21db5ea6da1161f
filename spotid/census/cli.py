"""CLI for the census stage (see spotid/cli.py for the registration protocol).

``spotid census --db DB [...]`` counts the catalog (group callback); ``spotid census estimate FILE``
runs the capture-recapture estimators on a capture-history CSV.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

log = logging.getLogger(__name__)

census_app = typer.Typer(
    help="Count leopards: events, capture histories, MNA, two-flank bounds, capture-recapture estimates."
         "\n\n\b\nExamples:\n"
         "  spotid census --db season.db --out census/ --model secr\n"
         "  spotid census --db season.db --outages known_outages.csv\n"
         "  spotid census estimate capture_history.csv   # any 0/1 history file",
    invoke_without_command=True,
)


def _parse_minutes(text: str) -> float:
    """'30m', '2h', '90s', '45' (minutes) -> minutes."""
    s = str(text).strip().lower()
    try:
        if s.endswith("min"):
            return float(s[:-3])
        if s.endswith("m"):
            return float(s[:-1])
        if s.endswith("h"):
            return float(s[:-1]) * 60
        if s.endswith("s"):
            return float(s[:-1]) / 60
        return float(s)
    except ValueError:
        raise typer.BadParameter(f"bad duration {text!r}: use e.g. 30m, 2h, 90s or a number of minutes") from None


@census_app.callback()
def census(
    ctx: typer.Context,
    db: Path = typer.Option(Path("spotid.db"), "--db", help="Catalog file."),
    start: Optional[str] = typer.Option(None, "--start", help="Period start (ISO date/datetime, local camera time)."),
    end: Optional[str] = typer.Option(None, "--end", help="Period end (a date-only end is inclusive)."),
    occasion_days: Optional[float] = typer.Option(None, "--occasion-days", help="Occasion length in days (default 1)."),
    independence: Optional[str] = typer.Option(None, "--independence", help="Event independence gap, e.g. 30m (default 30m)."),
    link_seconds: Optional[float] = typer.Option(None, "--link-seconds",
                                                 help="Flank-link window at paired stations, seconds (default 10)."),
    flank: Optional[str] = typer.Option(None, "--flank", help="Flank for the estimates: auto|left|right (default auto)."),
    include_pending: bool = typer.Option(False, "--include-pending",
                                         help="Also count sightings still pending review."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the census tables and secr files here."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML settings (configs/census.yaml)."),
    model: Optional[list[str]] = typer.Option(None, "--model",
                                              help="Estimators to run (repeatable): M0, Mt, Mb, Mh-chao, ... or "
                                                   "secr for SECR density from the stations' coordinates."),
    outages: Optional[Path] = typer.Option(None, "--outages", help="CSV deployment_id,start,end[,reason] of known "
                                           "camera outages, taken out of the effort."),
    camera_check: Optional[bool] = typer.Option(None, "--camera-check/--no-camera-check",
                                                help="Take the outages `spotid deployments check` finds out of the "
                                                     "effort (default on; changes nothing on cameras without faults)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Census of the catalog: MNA with two-flank bounds, events, effort and estimates (the examples of
    ``spotid census --help`` are in ``census_app``'s help, which typer shows instead of this docstring).

    Run ``spotid census estimate FILE.csv`` for a capture-history file instead.
    """
    if ctx.invoked_subcommand is not None:
        return
    from spotid.census.census import Census
    from spotid.census.config import CensusConfig
    from spotid.config import resolve_config
    from spotid.cliutil import existing_catalog, require

    overrides = dict(start=start, end=end, occasion_days=occasion_days,
                     independence_minutes=_parse_minutes(independence) if independence else None,
                     flank_link_seconds=link_seconds, estimate_flank=flank,
                     outages=str(outages) if outages else None, camera_check=camera_check)
    if model:
        from spotid.census.registry import MODELS

        chosen = [m.strip() for m in model if m.strip()]
        spatial = [m for m in chosen if m.lower() == "secr"]
        unknown = [m for m in chosen if m not in MODELS and m.lower() != "secr"]
        if unknown:
            raise typer.BadParameter(f"unknown model(s) {unknown}: choose from {list(MODELS)} or secr",
                                     param_hint="--model")
        overrides["secr"] = bool(spatial) or None
        rest = tuple(m for m in chosen if m in MODELS)
        if rest:
            overrides["models"] = rest
    try:
        cfg = resolve_config(CensusConfig, config, **overrides)
        if include_pending and "pending" not in cfg.statuses:
            import dataclasses
            cfg = dataclasses.replace(cfg, statuses=tuple(cfg.statuses) + ("pending",))
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    with existing_catalog(db) as cat:
        require(cat, "census")
        if cfg.outages:
            from spotid.catalog.tables import deployments
            from spotid.ingest.health import OutagesError, read_outages
            try:        # a bad file is a usage error before any run is recorded
                read_outages(cfg.outages, {r["id"]: dict(r) for r in deployments.rows(cat)})
            except OutagesError as e:
                raise typer.BadParameter(str(e), param_hint="--outages") from None
        try:
            with cat.run("census", cfg) as run_id:
                res = Census(cfg)(cat)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None
        cat.finish_run(run_id, "done", res.summary())  # keep the figures with the run record
    paths = {}
    if out is not None:
        from spotid.census.outputs import write_census
        paths = write_census(res, out)
    if as_json:
        from spotid.util import print_json
        doc = res.to_dict()
        doc["summary"]["run_id"] = run_id
        doc["files"] = {k: str(v) for k, v in paths.items()}
        print_json(doc)
        return
    print_census(res, out)


def _num(v, digits: int = 2) -> str:
    """A figure for a table, '–' when it does not exist (an interval the data cannot bound)."""
    return "–" if v is None else f"{v:.{digits}f}"


def print_census(res, out: Path | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    from spotid.census.report import print_estimates

    con = Console()
    s = res.summary()
    t = Table(title="Census", title_justify="left", show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    t.add_row("period", f"{s['period_start']} – {s['period_end']} ({s['n_occasions']} occasions of "
                        f"{s['occasion_days']:g} d)")
    t.add_row("stations / trap-nights", f"{s['n_stations']} / {s['trap_nights']:.1f}")
    t.add_row("sightings / events", f"{s['n_sightings']} / {s['n_events']}")
    t.add_row("leopard sightings not identifiable (not counted)", str(s.get("n_unusable_sightings", 0)))
    t.add_row("identities (left, right)", f"{s['identities_left']}, {s['identities_right']}")
    t.add_row("linked / left-only / right-only", f"{s['linked']} / {s['left_only']} / {s['right_only']}")
    t.add_row("MNA (two-flank bounds)", f"[bold]{s['mna']}[/bold] ({s['mna_min']}–{s['mna_max']})")
    t.add_row("new / resighted animals", f"{s['new_animals']} / {s['resighted_animals']}")
    con.print(t)
    for why, n in sorted(res.unusable_reasons.items(), key=lambda kv: -kv[1]):
        con.print(f"  not identifiable: {n} × {why}")
    if res.estimates is not None:
        print_estimates(res.estimates, con, title=f"Estimates from the {res.estimate_flank}-flank histories")
    for fl, e in res.spatial.items():
        d = (e.details or {}).get("D_per_100km2") or {}
        if d.get("estimate") is None:
            continue   # the census's warnings say why this flank could not be fitted
        pars = (e.details or {}).get("params") or {}
        sig = (pars.get("sigma") or {}).get("estimate")
        con.print(f"SECR density ({fl} flank{', the one reported' if e is res.density() else ''}, "
                  f"{e.details.get('detector')} detectors): [bold]{d['estimate']:.2f}[/bold] per 100 km² "
                  f"(95% CI {_num(d['lcl'])}–{_num(d['ucl'])}); σ {_num(sig / 1000 if sig else None)} km; "
                  f"N in the mask {_num(e.N, 1)}")
    for w in res.warnings:
        con.print(f"[yellow]warning:[/yellow] {w}")
    if out is not None:
        con.print(f"tables written to {out}")


@census_app.command("estimate")
def estimate(
    history: Path = typer.Argument(..., help="CSV: id column, then one 0/1 column per occasion "
                                             "(two-flank data: 1 = left, 2 = right, 3 = both)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Capture-recapture estimates (M0, Mt, Mb, Mh-chao, Mh-jackknife) from a capture-history CSV.

    \b
    Example:
      spotid census estimate census/capture_history.csv
    """
    from spotid.census.history import estimate_file

    try:
        res = estimate_file(history)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="HISTORY") from None
    if as_json:
        from spotid.util import print_json
        print_json(res.to_dict())
        return
    from rich.console import Console

    from spotid.census.report import print_estimates

    con = Console()
    if res.two_flank:
        b = res.bounds
        con.print(f"two-flank data: {b.linked} both flanks, {b.left_only} left-only, {b.right_only} right-only; "
                  f"MNA [bold]{b.mna_min}[/bold] (bounds {b.mna_min}–{b.mna_max})")
        for fl, r in res.per_flank.items():
            mark = " (headline)" if fl == res.estimated_flank else ""
            print_estimates(r, con, title=f"{fl} flank: {r.mna} animals, {r.n_occasions} occasions{mark}")
    else:
        con.print(f"{res.mna} animals, {res.n_occasions} occasions")
        print_estimates(res.overall, con)


@census_app.command("secr")
def secr_fit(
    captures: Path = typer.Argument(..., help="CSV \\[session,]id,occasion,trap\\[,count]: one row per detection."),
    traps: Path = typer.Argument(..., help="CSV trap,x,y\\[,usage]: one row per station (x/y projected)."),
    usage: Optional[Path] = typer.Option(None, "--usage", help="CSV trap,<occ1>,<occ2>,...: effort per occasion."),
    buffer: float = typer.Option(100.0, "--buffer", help="Mask buffer around the traps, metres whatever --unit (about 4σ)."),
    detector: str = typer.Option("multi", "--detector", help="multi | proximity | count (cameras: proximity/count)."),
    detectfn: str = typer.Option("HN", "--detectfn", help="HN | HR (g0) or HHN | HHR (λ0)."),
    nx: int = typer.Option(64, "--nx", help="Mask cells across the buffered trap box (secr's nx)."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="Habitat polygon (CSV x,y vertices or GeoJSON) "
                                                             "clipping the buffer mask."),
    mask_points: Optional[Path] = typer.Option(None, "--mask-points", help="Ready mask: CSV x,y\\[,avail] of "
                                                                           "cell centres on a regular grid."),
    unit: str = typer.Option("m", "--unit", help="Unit of all input coordinates: m | km."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Density by spatially explicit capture-recapture (SECR, maximum likelihood, as R's secr.fit).

    \b
    Example (secr's secrdemo data, multi-catch traps, half-normal, 100 m buffer):
      spotid census secr captures.csv traps.csv --buffer 100 --detector multi

    Camera stations: --detector count (events per station and occasion) or proximity (0/1), with --usage from the stations' operating days.

    \b
    Tigers with coordinates in km on a SPACECAP state space:
      spotid census secr caps.csv traps.csv --unit km --detector proximity \\
          --mask-points statespace.csv
    """
    from spotid.census.secr import DETECTFNS, DETECTORS, SECR, SECRDataError
    from spotid.census.secr_io import load_secr_inputs
    from spotid.census.secr_mask import read_mask_points, read_polygon

    if detector not in DETECTORS:
        raise typer.BadParameter(f"{detector!r}: choose from {', '.join(DETECTORS)}", param_hint="--detector")
    if detectfn.upper() not in DETECTFNS:
        raise typer.BadParameter(f"{detectfn!r}: choose from {', '.join(DETECTFNS)}", param_hint="--detectfn")
    scale = {"m": 1.0, "km": 1000.0}.get(unit)
    if scale is None:
        raise typer.BadParameter(f"{unit!r}: choose m or km", param_hint="--unit")
    if mask is not None and mask_points is not None:
        raise typer.BadParameter("give --mask (a polygon) or --mask-points (a grid), not both")
    try:
        data, _ = load_secr_inputs(captures, traps, usage, scale=scale)
        est = SECR(buffer=buffer, nx=nx, detector=detector, detectfn=detectfn.upper(),
                   mask=read_mask_points(mask_points, scale) if mask_points else None,
                   polygon=tuple(read_polygon(mask, scale)) if mask else None)
        fit = est.fit(data)
    except (SECRDataError, ValueError) as e:
        raise typer.BadParameter(str(e)) from None
    if as_json:
        from spotid.util import print_json
        print_json(fit.to_dict())
        return
    _print_secr(fit)


def _print_secr(fit) -> None:
    from rich.console import Console
    from rich.table import Table

    def row(t, label, est, se, lcl, ucl, fmt="{:.4g}"):
        def f(v):
            return "—" if v is None else (f"{v:,.0f}" if abs(v) >= 1000 else fmt.format(v))
        t.add_row(label, f(est), f(se), f"{f(lcl)} – {f(ucl)}")

    con = Console()
    m = fit.mask
    con.print(f"SECR: {fit.n_animals} animals, {fit.n_detections} detections, {fit.n_occasions} occasions, "
              f"{fit.n_traps} traps; detector {fit.detector}, detection function {fit.detectfn}")
    t = Table(title="Estimates (95% CI on the link scale, as secr)", title_justify="left")
    for c in ("", "estimate", "SE", "95% CI"):
        t.add_column(c, justify="left" if not c else "right")
    d = fit.to_dict()
    row(t, "D per 100 km²", *d["D_per_100km2"].values())
    row(t, "D per ha", fit.D, fit.D_se, fit.D_lcl, fit.D_ucl)
    for name, p in fit.params.items():
        if name != "D":
            row(t, {"sigma": "σ (m)", "lambda0": "λ0"}.get(name, name), p["estimate"], p["se"], p["lcl"], p["ucl"])
    row(t, "N in the mask (D × area)", fit.N, fit.N_se, fit.N_lcl, fit.N_ucl, "{:.1f}")
    con.print(t)
    ll = "—" if fit.loglik is None else f"{fit.loglik:.4f}"
    aicc = "—" if fit.aicc is None else f"{fit.aicc:.2f}"
    aic = "—" if fit.aic is None else f"{fit.aic:.2f}"
    esa = "—" if fit.esa_ha is None else f"{fit.esa_ha:.4g} ha"
    con.print(f"effective sampling area a(θ̂) {esa}; logLik {ll}, AIC {aic}, AICc {aicc} ({fit.npar} parameters)")
    con.print(f"mask: {m['points']} points of {m['spacing_m']:.4g} m, {m['area_ha']:.4g} ha ({m['source']}); "
              f"fitted in {fit.seconds:.1f} s ({fit.evaluations} likelihood evaluations)")
    for n in fit.notes:
        con.print(f"[yellow]note:[/yellow] {n}")


groups: dict = {"census": census_app}
