"""CLI for the identify stage (see spotid/cli.py for the registration protocol).

``spotid identify --db DB``, ``spotid eval reid DIR [--verifiers sift,aliked]``, ``spotid train matcher DIR...``,
``spotid train fusion DIR...`` (the calibrated fusion of the embedding and the local verifiers).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import typer

# imported into this module's namespace: identify and eval reid look them up here, where tests replace them
from spotid.identify.cli_common import (  # noqa: F401
    _calibration, _cfg, _check_encounters, _extractor, _fusion, _locals, _models, _threads, _verifier)
from spotid.identify.cli_train import train_fusion, train_matcher

log = logging.getLogger(__name__)


def identify(
    db: Path = typer.Option(Path("spotid.db"), "--db", help="Catalog file (after ingest and detect)."),
    auto_accept: Optional[bool] = typer.Option(None, "--auto-accept/--no-auto-accept",
                                               help="Auto-accept matches with P(same) >= auto_accept_threshold (default off)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="P(same) to propose a known individual (default 0.5)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Embedder model folder (default: the active one)."),
    flank_model: Optional[Path] = typer.Option(None, "--flank-model", help="Flank classifier folder."),
    flank_threshold: Optional[float] = typer.Option(None, "--flank-threshold",
                                                    help="Flank confidence below which a crop is 'unknown' (default: the model card's)."),
    calibration: Optional[Path] = typer.Option(None, "--calibration", help="Matcher calibration (models/matcher)."),
    scorer: Optional[str] = typer.Option(
        None, "--scorer", help="What turns evidence into P(same individual): fusion (default: embedding, RootSIFT "
                               "and ALIKED, models/matcher/fusion; ~1 s CPU per new crop for ALIKED) or "
                               "calibration (embedding + RootSIFT, models/matcher/calibration.json; fast, far "
                               "weaker on real coats)."),
    deployment: Optional[str] = typer.Option(None, "--deployment", help="Only this deployment's detections."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML of IdentifyConfig (configs/identify.yaml)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (default: all cores, as detect; "
                                                                  "N to leave cores free)."),
    retry_set_aside: bool = typer.Option(False, "--retry-set-aside",
                                         help="Match again the sightings earlier runs set aside that no person has "
                                              "decided (e.g. after creating individuals in review)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Match every leopard detection to a known individual, flank by flank, or propose new individuals.

    \b
    Example:
      spotid identify --db season.db --threads 2
      spotid identify --db season.db --scorer calibration
    """
    from spotid.identify.pipeline import Identifier
    from spotid.cliutil import existing_catalog, require

    cfg = _cfg(config, auto_accept=auto_accept, threshold=threshold, embedder_model=str(model) if model else None,
               flank_model=str(flank_model) if flank_model else None, flank_threshold=flank_threshold,
               calibration=str(calibration) if calibration else None, scorer=scorer)
    _threads(threads)
    with existing_catalog(db) as cat:
        emb, fl = _models(cfg, cat)
        fx = _extractor(cfg, cat)  # a missing or broken foreground model is a usage error before any work
        require(cat, "identify", deployment)
        try:  # scorer: fusion names a fusion file that is missing or fitted on other matchers
            ident = Identifier(cfg, embedder=emb, flank=fl, calibration=_calibration(cfg.calibration, cfg.descriptor),
                               extractor=fx, catalog=cat)
        except (FileNotFoundError, ValueError) as e:
            raise typer.BadParameter(str(e), param_hint="--config (identify: fusion)") from None
        res = ident(cat, deployment=deployment, retry_set_aside=retry_set_aside)
    if json_out:
        from spotid.util import print_json
        print_json(res.to_json())
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"identify run {res.run_id}")
    t.add_column("what")
    t.add_column("count", justify="right")
    for k in ("detections", "crops_computed", "crop_failures", "matched", "auto", "new_sightings", "paired_merges",
              "flank_outvoted", "flank_from_match", "flank_from_coat", "retried"):
        t.add_row(k.replace("_", " "), str(getattr(res, k)))
    t.add_row("unusable", res.unusable_text())
    t.add_row("new individuals", ", ".join(res.new_individuals) or "-")
    # which scorer turned the evidence into P: the figures a reviewer sees are on its scale
    t.add_row("scored with", f"{cfg.scorer} ({'embedding, RootSIFT and ALIKED, each calibrated' if cfg.scorer == 'fusion' else 'embedding + RootSIFT; --scorer fusion adds ALIKED'})")
    Console().print(t)
    aside = (f" --include-set-aside    (also the {res.unusable} sighting(s) set aside as unusable, with the reasons; "
             "the census counts them only once a person assigns them)") if res.unusable else ""
    typer.echo(f"next: spotid review --db {db}{aside}")


def _counts(d: dict) -> str:
    """{'left': 64, 'unknown': 49} -> '64 left, 49 not placed on a flank'."""
    return ", ".join(f"{n} {'not placed on a flank' if f not in ('left', 'right') else f}" for f, n in d.items())


#: report rows as people read them (the JSON keeps the keys)
_ROW_NAMES = {"fused": "calibration", "calibrated": "fusion", "verifier": "RootSIFT, whole gallery",
              "sift": "RootSIFT", "aliked": "ALIKED"}


def _print_reid_report(rep: dict) -> None:
    """``eval reid`` for people: the table, what its columns mean, and the counts behind them."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"re-ID {rep['dir']} ({rep['queries']} queries, {rep['individuals']} individuals)")
    for c in ("scorer", "top-1", "top-5", "mAP", "BAKS", "BAUS"):
        t.add_column(c, justify="right")
    for k, m in rep["scorers"].items():
        v = [m.get(x, float("nan")) for x in ("top1", "top5", "mAP", "BAKS", "BAUS")]
        t.add_row(_ROW_NAMES.get(k, k), *("–" if x != x else f"{x:.3f}" for x in v))
    con = Console()
    con.print(t)
    # the row of the scorer identify runs with under this config: 'fused' = calibration, 'calibrated' = fusion
    ident = "calibrated" if rep.get("identify_scorer") == "fusion" else "fused"
    head, default = rep["scorers"].get(rep["headline"], {}), rep["scorers"].get(ident, {})
    if head.get("top1") is not None:
        con.print(f"[bold]{_ROW_NAMES.get(rep['headline'], rep['headline'])}: the right individual ranked first for "
                  f"{head['top1']:.0%} of {rep['queries']} queries, among the first five for {head['top5']:.0%}"
                  f"[/bold]" + (f" (identify's scorer, {_ROW_NAMES[ident]}: {default['top1']:.0%})"
                                if rep["headline"] != ident and default.get("top1") is not None else ""))
    if rep["individuals"] < 2:
        con.print("[bold]only one individual could be read: every query is trivially right and no unknown "
                  "individual can be measured (BAUS –); these figures say nothing about the matcher[/bold]")
    con.print(f"top-1/top-5: share of queries whose individual is ranked first / in the first five, photos of "
              f"the query's own encounter left out; BAKS/BAUS: share right on known / unknown individuals at "
              f"P >= {rep['threshold']:g}. Rows: 'calibration' is identify's scorer: calibration (embedding + RootSIFT); "
              "'fusion' its scorer: fusion (the embedding, RootSIFT and ALIKED, each calibrated, then combined); "
              f"identify runs with scorer: {rep.get('identify_scorer', 'calibration')} here.")
    unplaced = ("compared with both flanks, as identify does" if rep["unknown_flank"] == "both" else "left out")
    by = rep["scorers"].get("fused", {}).get("top1_by_query_flank", {})
    con.print(f"images: {_counts(rep['flanks'])} (not placed: {unplaced}); queries: {_counts(rep['queries_by_flank'])}"
              + ("; calibration top-1 " + ", ".join(f"{g.replace('unplaced', 'not placed')} {v:.3f}" for g, v in by.items())
                 if by else ""))
    con.print(f"speed: {rep['seconds_per_query']:.3f} s per query against ~{rep['gallery_mean_size']:.0f} gallery "
              f"images, {rep['ms_per_features']:.0f} ms of features and {rep['ms_per_embedding']:.1f} ms of "
              f"embedding per image, on {rep['threads']} CPU thread{'s' if rep['threads'] != 1 else ''}"
              + (f"; galleries of up to {rep['verify_all']} images are verified whole, larger ones only on the "
                 "shortlist (a field-size gallery: measure it with verify_all: 0 in a --config YAML)"
                 if rep["gallery_mean_size"] <= rep["verify_all"] else ""))
    typer.echo(f"features {rep['features']}, calibration {rep['calibration']}"
               + ("" if rep["calibration_fits_features"] else " (fitted on other features: refit it)"))
    if rep.get("fusion"):
        sq = rep["timing"]["seconds_per_query"]
        cal = rep["scorers"]["calibrated"]
        con.print(f"'fusion' = the calibrated P(same) of {', '.join(cal['scorers'])}, combined by "
                  f"{cal.get('combine', 'mean')} ({rep['fusion']}), local matchers on the Matcher's shortlist; "
                  f"{', '.join(rep['verifiers'])} rows: each verifier alone, scored on "
                  f"{rep['timing']['verifiers_scored_on']}. Query time: "
                  + " + ".join(f"{k} {v:.3f} s" for k, v in sq.items()) + "; identify scores so with scorer: fusion.")
    else:
        con.print("--verifiers none: the embedding + RootSIFT calibration only (fast). Without it the report heads "
                  "with the calibrated fusion of the embedding, RootSIFT and ALIKED (the best on real coats so far).")


def eval_reid(
    directory: Path = typer.Argument(..., help="One folder per individual, images (or crops) below it."),
    model: Optional[Path] = typer.Option(None, "--model", help="Embedder model folder (default: models/embedder)."),
    flank_model: Optional[Path] = typer.Option(None, "--flank-model", help="Flank classifier folder."),
    flank_threshold: Optional[float] = typer.Option(None, "--flank-threshold",
                                                    help="Flank confidence below which a crop is 'unknown' (default: the model card's)."),
    calibration: Optional[Path] = typer.Option(None, "--calibration", help="Matcher calibration (models/matcher)."),
    encounter: Optional[str] = typer.Option(
        None, "--encounter",
        help="Regex whose group 1 is the encounter, searched in the file name, else in the path below the "
             "individual's folder (nyala: '^(\\d+)_'; `spotid synth crops`: '^(e\\d+)_'; a folder per encounter: "
             "'^([^/]+)/'). Default: every file is its own encounter."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate a seeded random subset of N queries."),
    shortlist: Optional[int] = typer.Option(None, "--shortlist", help="Gallery images verified per query (fused)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Operating P(same) for BAKS/BAUS."),
    full_verifier: Optional[bool] = typer.Option(
        None, "--full-verifier/--no-full-verifier",
        help="Also score each verifier alone by brute force over the whole gallery (slow; default: only with "
             "--verifiers none, for RootSIFT)."),
    unknown_flank: str = typer.Option("both", "--unknown-flank",
                                      help="Images the flank classifier cannot place: 'both' compares them with "
                                           "either flank, as identify does; 'skip' leaves them out."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Folder to cache flank/embedding/features between runs."),
    foreground: Optional[bool] = typer.Option(None, "--foreground/--no-foreground",
                                              help="Keypoints only where the foreground model sees the animal "
                                                   "(default: configs/identify.yaml)."),
    foreground_model: Optional[Path] = typer.Option(None, "--foreground-model",
                                                    help="Foreground model folder (default: models/foreground)."),
    descriptor: Optional[str] = typer.Option(None, "--descriptor",
                                             help="Keypoint descriptor: rootsift | rootsift+vgg (each with its own "
                                                  "shipped calibration)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML of IdentifyConfig (configs/identify.yaml)."),
    verifiers: Optional[str] = typer.Option(
        None, "--verifiers", help="Local verifiers joined with the embedding by the calibrated fusion, comma-separated: "
                                  "sift, aliked. Default: the fusion's own (sift,aliked; ALIKED features take ~1 s "
                                  "CPU per image, cached with --cache). 'none': the embedding + RootSIFT calibration "
                                  "only (fast)."),
    fusion: Optional[Path] = typer.Option(None, "--fusion", help="Fusion calibration (default models/matcher/fusion)."),
    threads: int = typer.Option(1, "--threads", help="CPU threads; 0 = all cores. One by default: the speed line is "
                                                  "then a per-core figure, and on nyala two threads made each "
                                                  "query slower (0.43 -> 0.56 s) and the whole run only 4% "
                                                  "shorter."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    individuals: Optional[Path] = typer.Option(
        None, "--individuals",
        help="Evaluate only these individuals: a text file (one folder name a line) or a model's split.json "
             "(its 'test' individuals, e.g. models/embedder/split.json: those the embedder never trained on)."),
) -> None:
    """Leave-one-out re-ID across encounters: top-1/top-5/mAP, s/query and open-set BAKS/BAUS.

    \b
    Example:
      spotid eval reid ../shared/data/reid/nyala-train --encounter '^(\\d+)_' \\
          --individuals models/embedder/split.json
      spotid eval reid DIR --encounter '^(\\d+)_' --verifiers none   # quick
    """
    import tempfile

    if not directory.is_dir():
        raise typer.BadParameter(f"{directory} is not a folder of per-individual folders", param_hint="DIR")
    _check_encounters(encounter)
    if individuals is None:
        return _eval_reid(directory, model, flank_model, flank_threshold, calibration, encounter, limit, shortlist,
                          threshold, full_verifier, unknown_flank, cache, foreground, foreground_model, descriptor,
                          config, threads, json_out, verifiers, fusion)
    import hashlib

    names = _individual_names(individuals, directory)
    with tempfile.TemporaryDirectory(prefix="spotid-individuals-") as tmp:
        # a folder of links, so the evaluation itself is unchanged; under --cache it keeps its path, so the
        # cached features of a second model's run are found again
        key = hashlib.sha1("|".join([str(directory.resolve()), *names]).encode()).hexdigest()[:12]
        sub = (cache / f"individuals-{key}" if cache is not None else Path(tmp)) / directory.name
        sub.mkdir(parents=True, exist_ok=True)
        for n in names:
            if not (sub / n).exists():
                os.symlink((directory / n).resolve(), sub / n)
        _eval_reid(sub, model, flank_model, flank_threshold, calibration, encounter, limit, shortlist, threshold,
                   full_verifier, unknown_flank, cache, foreground, foreground_model, descriptor, config, threads,
                   json_out, verifiers, fusion)


def _individual_names(path: Path, directory: Path) -> list[str]:
    """Folder names under ``directory`` listed in ``path`` (text, one a line, or split.json's 'test')."""
    import json

    if not path.is_file():
        raise typer.BadParameter(f"no file {path}: pass a text file of folder names or a model's split.json",
                                 param_hint="--individuals")
    text = path.read_text()
    if path.suffix == ".json":
        raw = json.loads(text).get("test", [])
    else:
        raw = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    # split.json names individuals "<data set>/<folder>": keep those of this data set
    names = sorted({r.split("/", 1)[1] if "/" in r and r.split("/", 1)[0] == directory.name else r for r in raw
                    if "/" not in r or r.split("/", 1)[0] == directory.name})
    missing = [n for n in names if not (directory / n).is_dir()]
    if missing or not names:
        raise typer.BadParameter(f"{path} names {len(names)} individuals of {directory.name}, "
                                 f"{len(missing)} of them not folders under {directory} (e.g. {missing[:3]}): "
                                 "pass the data folder the list was made for", param_hint="--individuals")
    return names


def _eval_reid(directory, model, flank_model, flank_threshold, calibration, encounter, limit, shortlist, threshold,
               full_verifier, unknown_flank, cache, foreground, foreground_model, descriptor, config, threads,
               json_out, verifiers=None, fusion=None) -> None:
    from spotid.identify.evaluate import run_eval

    cfg = _cfg(config, embedder_model=str(model) if model else None, flank_model=str(flank_model) if flank_model else None,
               flank_threshold=flank_threshold, descriptor=descriptor, calibration=str(calibration) if calibration else None,
               shortlist=shortlist, threshold=threshold, foreground=foreground,
               foreground_model=str(foreground_model) if foreground_model else None)
    n_threads = _threads(threads)
    choice = "" if verifiers is not None and verifiers.strip().lower() == "none" else verifiers
    fus = _fusion(fusion) if choice != "" else None
    if choice is None:   # the fusion's own verifiers: what the report heads with
        choice = ",".join(k for k in fus.scorers if k != "embedding")
    names, matchers = _locals(choice, cfg)
    if full_verifier is None:   # brute force over the whole gallery only where it is cheap: RootSIFT alone
        full_verifier = not matchers
    if fus is not None:
        try:  # refuse before minutes of feature extraction, not after
            fus.require(names)
        except ValueError as e:
            raise typer.BadParameter(f"{e}, then pass --fusion FOLDER", param_hint="--verifiers") from None
        # evaluating other settings is allowed (identify refuses them): say the calibrated figure is off-fit
        for off in fus.off_fit({name: m.version for name, m in matchers.items()}):
            log.warning("fusion %s %s: its calibrated figures are for other features; refit it "
                        "(models/matcher/fusion/reproduce.sh)", fus.version, off)
    emb, fl = _models(cfg)
    try:
        rep = run_eval(directory, embedder=emb, flank=fl, calibration=_calibration(cfg.calibration, cfg.descriptor),
                       extractor=_extractor(cfg), verifier=_verifier(cfg),
                       encounter=encounter, limit=limit, shortlist=cfg.shortlist, threshold=cfg.threshold,
                       full_verifier=full_verifier, max_side=cfg.crop_max_side, cache=cache,
                       verify_all=cfg.verify_all, unknown_flank=unknown_flank,
                       verifiers=names or None, fusion=fus, matchers=matchers)
    except (ValueError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e)) from None
    rep["identify_scorer"] = cfg.scorer
    rep["threads"] = n_threads
    if json_out:
        from spotid.util import print_json
        print_json(rep)
        return
    _print_reid_report(rep)
    for u in rep["unreadable"]:
        typer.echo(f"not evaluated (cannot decode; re-copy or remove it): {u['path']}: {u['reason']}")


commands: dict = {"identify": identify}
groups: dict = {}
eval_commands: dict = {"reid": eval_reid}
train_commands: dict = {"matcher": train_matcher, "fusion": train_fusion}
