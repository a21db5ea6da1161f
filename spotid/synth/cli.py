"""CLI for the synth stage: ``spotid synth card|crops|sheet|world``."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Synthetic camera-trap world: SD cards with known leopards, re-ID crops."
                       "\n\n\b\nExample:\n"
                       "  spotid synth card card/ --stations 6 --days 20 --individuals 10 --seed 7",
                  no_args_is_help=True)


def _cfg(config: Optional[Path], **over):
    from spotid.config import resolve_config
    from spotid.synth.config import SynthConfig

    try:
        return resolve_config(SynthConfig, config, **over)
    except (ValueError, TypeError) as e:
        raise typer.BadParameter(str(e)) from e


@app.command("card")
def card(
    out: Path = typer.Argument(..., help="Output folder: OUT/<deployment>/DCIM/100RECNX/*.JPG, deployments.csv, truth.json."),
    stations: Optional[int] = typer.Option(None, help="Camera stations on a grid."),
    days: Optional[int] = typer.Option(None, help="Survey days (occasions)."),
    individuals: Optional[int] = typer.Option(None, help="Leopards in the population (some never photographed)."),
    seed: Optional[int] = typer.Option(None, help="World seed: same arguments + seed = identical card."),
    night_fraction: Optional[float] = typer.Option(None, help="Share of animal passes at night (infrared)."),
    empty_fraction: Optional[float] = typer.Option(None, help="Share of triggers that are wind/light false triggers."),
    paired: Optional[bool] = typer.Option(None, "--paired/--no-paired", help="Two facing cameras per station."),
    g0: Optional[float] = typer.Option(None, help="Daily detection probability at a home-range centre."),
    sigma: Optional[float] = typer.Option(None, help="Half-normal sigma in metres."),
    width: Optional[int] = typer.Option(None, help="Frame width in pixels."),
    height: Optional[int] = typer.Option(None, help="Frame height in pixels."),
    backgrounds: Optional[Path] = typer.Option(None, help="Folder of real empty frames to use as station backgrounds."),
    workers: Optional[int] = typer.Option(None, help="Render deployments in this many processes."),
    fault: Optional[list[str]] = typer.Option(None, "--fault", help="Camera fault (repeatable): down:DEP:DAY:DAYS "
                                              "(no pictures from day DAY for DAYS days), clock:DEP:DAY (clock reset on "
                                              "day DAY: times restart from the deployment start), noir:DEP (no night "
                                              "pictures). Listed in truth.json 'faults'."),
    config: Optional[Path] = typer.Option(None, help="YAML with SynthConfig settings (configs/synth.yaml)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Render a synthetic SD-card dump with COCO Camera Traps truth (leopard ids and flanks).

    \b
    Example, a card with one camera down for 10 days and one clock reset:
      spotid synth card card/ --stations 4 --days 20 --fault down:S02A:5:10 \\
          --fault clock:S03B:8
    """
    from spotid.synth.card import CardWriter
    from spotid.util import print_json

    cfg = _cfg(config, stations=stations, days=days, individuals=individuals, seed=seed,
               night_fraction=night_fraction, empty_fraction=empty_fraction, paired=paired, g0=g0, sigma_m=sigma,
               width=width, height=height, backgrounds=str(backgrounds) if backgrounds else None, workers=workers,
               faults=tuple(fault) if fault else None)
    try:
        summary = CardWriter(cfg)(out)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    d = dataclasses.asdict(summary)
    if json_out:
        print_json(d)
    else:
        typer.echo(f"{summary.frames} frames ({summary.empty_frames} empty) on {summary.deployments} cameras, "
                   f"{summary.leopard_boxes} leopard boxes of {summary.individuals_photographed}/{summary.individuals} "
                   f"individuals; {summary.seconds:.1f} s = {summary.frames_per_second:.1f} frames/s "
                   f"({summary.frames_per_cpu_second:.1f} per CPU second) -> {out}")


@app.command("crops")
def crops(
    out: Path = typer.Argument(..., help="Output folder: OUT/<individual_id>/<flank>/e<encounter>_<k>.jpg + crops.csv."),
    individuals: int = typer.Option(20, help="Individuals."),
    per_flank: int = typer.Option(8, help="Encounters per individual and flank (view)."),
    frames: int = typer.Option(1, help="Frames per encounter (burst frames, k = 1..frames)."),
    seed: int = typer.Option(0, help="Seed: individuals of different seeds have different coats."),
    first_id: int = typer.Option(1, help="Number of the first individual (ind{first_id:03d})."),
    size: int = typer.Option(256, help="Crop side in pixels."),
    views: str = typer.Option("flanks", help="'flanks' (left, right) or 'all' (+ front, back for the flank classifier)."),
    night_fraction: float = typer.Option(0.5, help="Share of night (infrared) encounters."),
    shape: str = typer.Option("square", help="'square' (box squared with scene context, rotated) or 'box' (padded "
                                              "box, aspect kept, as `spotid identify` cuts detections)."),
    masks: bool = typer.Option(False, "--masks", help="Also write OUT/masks/<path>.png, the animal's visible alpha "
                                                      "(foreground model training)."),
    backgrounds: Optional[Path] = typer.Option(None, help="Folder of real empty frames: extra scenes beside the "
                                                          "procedural ones."),
    species: str = typer.Option("leopard", help="leopard, or tiger/deer/boar/badger (other animals for the "
                                                "foreground model; their coats do not follow the individual)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Write re-identification crops, one folder per individual and flank.

    \b
    Example:
      spotid synth crops crops/ --individuals 40 --per-flank 3 --views all
    """
    from spotid.synth.crops import CropConfig, CropWriter
    from spotid.util import print_json

    try:
        cfg = CropConfig(seed=seed, individuals=individuals, first_id=first_id, per_flank=per_flank, frames=frames,
                         size=size, views=views, night_fraction=night_fraction, shape=shape, masks=masks,
                         backgrounds=str(backgrounds) if backgrounds else None, species=species)
        summary = CropWriter(cfg)(out)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if json_out:
        print_json(dataclasses.asdict(summary))
    else:
        typer.echo(f"{summary.crops} crops of {summary.individuals} individuals ({summary.encounters} encounters) -> {out}")


@app.command("sheet")
def sheet(
    card_dir: Path = typer.Argument(..., help="A card written by `spotid synth card`."),
    out: Path = typer.Option(Path("contact.png"), help="PNG to write."),
    n: int = typer.Option(12, help="Frames on the sheet."),
    cols: int = typer.Option(4, help="Columns."),
    select: str = typer.Option("leopard", help="'leopard', 'all' or a species name."),
) -> None:
    """Contact sheet of sample frames with their truth boxes.

    \b
    Example:
      spotid synth sheet card/ --out contact.png --n 16
    """
    import cv2

    from spotid.synth.sheet import contact_sheet

    if not (card_dir / "truth.json").is_file():
        raise typer.BadParameter(f"no truth.json in {card_dir}: write a card with `spotid synth card {card_dir}` first")
    img = contact_sheet(card_dir, n=n, cols=cols, select=select)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    typer.echo(str(out))


@app.command("world")
def world(
    stations: Optional[int] = typer.Option(None), days: Optional[int] = typer.Option(None),
    individuals: Optional[int] = typer.Option(None), seed: Optional[int] = typer.Option(None),
    paired: Optional[bool] = typer.Option(None, "--paired/--no-paired"),
    config: Optional[Path] = typer.Option(None, help="YAML with SynthConfig settings."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Simulate the survey without rendering: who passes which station on which day.

    \b
    Example:
      spotid synth world --stations 6 --days 30 --json
    """
    from collections import Counter

    from spotid.synth.world import World
    from spotid.util import print_json

    w = World.from_config(_cfg(config, stations=stations, days=days, individuals=individuals, seed=seed, paired=paired))
    visits = w.visits()
    trig = w.triggers()
    per_ind = Counter(v.individual for v in visits)
    stations_per_ind = {i: len({v.station for v in visits if v.individual == i}) for i in per_ind}
    res = {"population": len(w.population), "photographed": len(per_ind), "visits": len(visits),
           "triggers": len(trig), "frames": len(trig) * w.cfg.burst,
           "triggers_by_species": dict(Counter(t.species for t in trig)),
           "visits_per_individual": dict(sorted(per_ind.items())), "stations_per_individual": stations_per_ind}
    if json_out:
        print_json(res)
    else:
        for k, v in res.items():
            typer.echo(f"{k}: {v}")


groups = {"synth": app}
commands: dict = {}
