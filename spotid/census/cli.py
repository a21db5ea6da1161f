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
    help="Count leopards: events, capture histories, MNA, two-flank bounds, capture-recapture estimates.",
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
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Census of the catalog: MNA with two-flank bounds, events, effort and estimates.

    Run ``spotid census estimate FILE.csv`` for a capture-history file instead.
    """
    if ctx.invoked_subcommand is not None:
        return
    from spotid.census.census import Census
    from spotid.census.config import CensusConfig
    from spotid.config import resolve_config
    from spotid.util import existing_catalog

    overrides = dict(start=start, end=end, occasion_days=occasion_days,
                     independence_minutes=_parse_minutes(independence) if independence else None,
                     flank_link_seconds=link_seconds, estimate_flank=flank)
    try:
        cfg = resolve_config(CensusConfig, config, **overrides)
        if include_pending and "pending" not in cfg.statuses:
            import dataclasses
            cfg = dataclasses.replace(cfg, statuses=tuple(cfg.statuses) + ("pending",))
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    with existing_catalog(db) as cat:
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
    """Capture-recapture estimates (M0, Mt, Mb, Mh-chao, Mh-jackknife) from a capture-history CSV."""
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


groups: dict = {"census": census_app}
