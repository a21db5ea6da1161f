"""CLI for the identify stage (see spotid/cli.py for the registration protocol).

``spotid identify --db DB``, ``spotid eval reid DIR [--verifiers sift,aliked]``, ``spotid train matcher DIR...``,
``spotid train fusion DIR...`` (the calibrated fusion of the embedding and the local verifiers).
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

log = logging.getLogger(__name__)


def _threads(threads: Optional[int]) -> None:
    from spotid.cliutil import set_threads

    set_threads(threads)


def _cfg(config: Optional[Path], **overrides):
    from spotid.config import resolve_config
    from spotid.identify.pipeline import IdentifyConfig

    if config is not None and not Path(config).is_file():
        raise typer.BadParameter(f"{config} is not a file: pass a copy of configs/identify.yaml", param_hint="--config")
    try:
        return resolve_config(IdentifyConfig, config, **overrides)
    except (ValueError, OSError) as e:
        raise typer.BadParameter(str(e)) from None


def _models(cfg, catalog=None):
    from spotid.identify.embedder import Embedder
    from spotid.identify.flank import FlankClassifier
    from spotid.modelstore import ModelError

    try:
        return (Embedder(cfg.embedder_model, catalog=catalog),
                FlankClassifier(cfg.flank_model, catalog=catalog, threshold=cfg.flank_threshold))
    except (ModelError, ValueError, OSError) as e:
        raise typer.BadParameter(f"{e} (pass --model/--flank-model or train one with `spotid train embedder`)") from None


def _calibration(path: Optional[str], descriptor: str = "rootsift"):
    from spotid.identify.calibrate import load_calibration

    try:
        return load_calibration(path, descriptor=descriptor)
    except (OSError, ValueError, KeyError) as e:
        raise typer.BadParameter(str(e), param_hint="--calibration") from None


def _extractor(cfg, catalog=None):
    from spotid.identify.verify import FeatureExtractor
    from spotid.modelstore import ModelError

    try:
        return FeatureExtractor.from_config(cfg, catalog)
    except ImportError as e:  # rootsift+vgg without OpenCV's contrib modules: the message names the fix
        raise typer.BadParameter(str(e)) from None
    except (ModelError, ValueError, OSError) as e:
        raise typer.BadParameter(f"{e} (or match on whole crops: `foreground: false` in a --config YAML for "
                                 "identify, --no-foreground for eval reid)") from None


def _verifier(cfg):
    from spotid.identify.verify import Verifier

    return Verifier.from_config(cfg)


def _locals(text: Optional[str], cfg) -> tuple[list, dict]:
    """``--verifiers sift,aliked`` -> (names, {name: LocalMatcher} for those other than sift, which
    the evaluation already runs with identify's settings)."""
    from spotid.identify.local import build_local, parse_verifiers

    try:
        names = parse_verifiers(text)
        return names, {n: build_local(n, cfg) for n in names if n != "sift"}
    except (ValueError, ImportError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e), param_hint="--verifiers") from None


def _fusion(path: Optional[Path]):
    from spotid.identify.fusion import load_fusion

    try:
        return load_fusion(path)
    except (OSError, ValueError, KeyError) as e:
        raise typer.BadParameter(str(e), param_hint="--fusion") from None


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
    """
    from spotid.identify.pipeline import Identifier
    from spotid.cliutil import existing_catalog, require

    cfg = _cfg(config, auto_accept=auto_accept, threshold=threshold, embedder_model=str(model) if model else None,
               flank_model=str(flank_model) if flank_model else None, flank_threshold=flank_threshold,
               calibration=str(calibration) if calibration else None)
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
              "flank_outvoted", "flank_from_match", "retried"):
        t.add_row(k.replace("_", " "), str(getattr(res, k)))
    t.add_row("unusable", res.unusable_text())
    t.add_row("new individuals", ", ".join(res.new_individuals) or "-")
    # which scorer turned the evidence into P: the figures a reviewer sees are on its scale
    t.add_row("scored with", f"{cfg.scorer} ({'fusion of embedding, RootSIFT, ALIKED' if cfg.scorer == 'fusion' else 'embedding + RootSIFT calibration'})")
    Console().print(t)
    aside = (f" --include-set-aside    (also the {res.unusable} sighting(s) set aside as unusable, with the reasons; "
             "the census counts them only once a person assigns them)") if res.unusable else ""
    typer.echo(f"next: spotid review --db {db}{aside}")


def _counts(d: dict) -> str:
    """{'left': 64, 'unknown': 49} -> '64 left, 49 not placed on a flank'."""
    return ", ".join(f"{n} {'not placed on a flank' if f not in ('left', 'right') else f}" for f, n in d.items())


def _print_reid_report(rep: dict) -> None:
    """``eval reid`` for people: the table, what its columns mean, and the counts behind them."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"re-ID {rep['dir']} ({rep['queries']} queries, {rep['individuals']} individuals)")
    for c in ("scorer", "top-1", "top-5", "mAP", "BAKS", "BAUS"):
        t.add_column(c, justify="right")
    for k, m in rep["scorers"].items():
        v = [m.get(x, float("nan")) for x in ("top1", "top5", "mAP", "BAKS", "BAUS")]
        t.add_row(k, *("–" if x != x else f"{x:.3f}" for x in v))
    con = Console()
    con.print(t)
    if rep["individuals"] < 2:
        con.print("[bold]only one individual could be read: every query is trivially right and no unknown "
                  "individual can be measured (BAUS –); these figures say nothing about the matcher[/bold]")
    con.print(f"top-1/top-5: share of queries whose individual is ranked first / in the first five, photos of "
              f"the query's own encounter left out; BAKS/BAUS: share right on known / unknown individuals at "
              f"P >= {rep['threshold']:g}; 'fused' is how identify matches.")
    unplaced = ("compared with both flanks, as identify does" if rep["unknown_flank"] == "both" else "left out")
    by = rep["scorers"].get("fused", {}).get("top1_by_query_flank", {})
    con.print(f"images: {_counts(rep['flanks'])} (not placed: {unplaced}); queries: {_counts(rep['queries_by_flank'])}"
              + ("; fused top-1 " + ", ".join(f"{g.replace('unplaced', 'not placed')} {v:.3f}" for g, v in by.items())
                 if by else ""))
    con.print(f"speed: {rep['seconds_per_query']:.3f} s per query against ~{rep['gallery_mean_size']:.0f} gallery "
              f"images, {rep['ms_per_features']:.0f} ms of features and {rep['ms_per_embedding']:.1f} ms of "
              f"embedding per image")
    typer.echo(f"features {rep['features']}, calibration {rep['calibration']}"
               + ("" if rep["calibration_fits_features"] else " (fitted on other features: refit it)"))
    if rep.get("fusion"):
        sq = rep["timing"]["seconds_per_query"]
        con.print(f"'calibrated' = average of the calibrated P(same) of {', '.join(rep['scorers']['calibrated']['scorers'])} "
                  f"({rep['fusion']}), local matchers on the Matcher's shortlist; {', '.join(rep['verifiers'])} rows: "
                  f"each verifier alone, scored on {rep['timing']['verifiers_scored_on']}. Query time: "
                  + " + ".join(f"{k} {v:.3f} s" for k, v in sq.items()))


def eval_reid(
    directory: Path = typer.Argument(..., help="One folder per individual, images (or crops) below it."),
    model: Optional[Path] = typer.Option(None, "--model", help="Embedder model folder (default: models/embedder)."),
    flank_model: Optional[Path] = typer.Option(None, "--flank-model", help="Flank classifier folder."),
    flank_threshold: Optional[float] = typer.Option(None, "--flank-threshold",
                                                    help="Flank confidence below which a crop is 'unknown' (default: the model card's)."),
    calibration: Optional[Path] = typer.Option(None, "--calibration", help="Matcher calibration (models/matcher)."),
    encounter: Optional[str] = typer.Option(
        None, "--encounter",
        help="Regex on the file name whose group 1 is the encounter (nyala: '^(\\d+)_'; `spotid synth crops`: "
             "'^(e\\d+)_'). Default: every file is its own encounter."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate a seeded random subset of N queries."),
    shortlist: Optional[int] = typer.Option(None, "--shortlist", help="Gallery images verified per query (fused)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Operating P(same) for BAKS/BAUS."),
    full_verifier: bool = typer.Option(True, "--full-verifier/--no-full-verifier",
                                       help="Also score verifier-only by brute force over the whole gallery (slow)."),
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
        None, "--verifiers", help="Local verifiers to score alone and fuse with the embedding by calibrated "
                                  "averaging, comma-separated: sift, aliked (e.g. sift,aliked). Off: the legacy fused scorer only."),
    fusion: Optional[Path] = typer.Option(None, "--fusion", help="Fusion calibration (default models/matcher/fusion)."),
    threads: int = typer.Option(1, "--threads", help="Torch/OpenCV threads (0 = all cores)."),
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
          --individuals models/embedder/split.json --verifiers sift,aliked
    """
    import tempfile

    if not directory.is_dir():
        raise typer.BadParameter(f"{directory} is not a folder of per-individual folders", param_hint="DIR")
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
    _threads(threads)
    names, matchers = _locals(verifiers, cfg)
    fus = _fusion(fusion) if names else None
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
    if json_out:
        from spotid.util import print_json
        print_json(rep)
        return
    _print_reid_report(rep)
    for u in rep["unreadable"]:
        typer.echo(f"not evaluated (cannot decode; re-copy or remove it): {u['path']}: {u['reason']}")


def train_matcher(
    directories: List[Path] = typer.Argument(..., help="Labelled folders (one sub-folder per individual)."),
    out: Path = typer.Option(Path("models/matcher"), "--out", help="Folder for calibration.json + README.md."),
    encounter: List[str] = typer.Option([], "--encounter", help="Encounter regex per DIR (repeat; '' = per file)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Embedder model folder."),
    flank_model: Optional[Path] = typer.Option(None, "--flank-model", help="Flank classifier folder."),
    holdout: Optional[Path] = typer.Option(None, "--holdout", help="Labelled folder to check the fitted calibration on."),
    holdout_encounter: Optional[str] = typer.Option(None, "--holdout-encounter", help="Encounter regex of --holdout."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Queries per DIR (seeded subset)."),
    flank_from_path: Optional[str] = typer.Option(
        None, "--flank-from-path",
        help="Training only: regex whose group 1 is left|right in each image path (e.g. '/(left|right)/'), "
             "instead of the flank classifier."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Folder to cache flank/embedding/features between runs."),
    note: Optional[str] = typer.Option(None, "--note", help="How the data was made (stored in the card)."),
    card: List[Path] = typer.Option(
        [], "--card",
        help="Synthetic card (`spotid synth card`, repeat): adds decision rows matched the way identify matches "
             "(detector boxes, box-only keypoints, scenery filter, bursts)."),
    decisions_from: str = typer.Option(
        "all", "--decisions-from",
        help="Rows the decision model is fitted on: all (folders and cards) | cards (what identify sees; "
             "the folders then fit only the pairwise model)."),
    card_work: Optional[Path] = typer.Option(None, "--card-work",
                                             help="Folder for the cards' scratch catalogs and crops (default: "
                                                  "CACHE/cards, else a temporary folder)."),
    threads: int = typer.Option(1, "--threads", help="Torch/OpenCV threads."),
    descriptor: Optional[str] = typer.Option(None, "--descriptor",
                                             help="Keypoint descriptor to fit for: rootsift | rootsift+vgg "
                                                  "(default: configs/identify.yaml)."),
    other_floor: List[float] = typer.Option(
        [], "--other-floor",
        help="Candidate floors for the competing individual's inliers in the decision model (repeat; the "
             "best log-loss wins; none = no floor)."),
    json_out: bool = typer.Option(False, "--json", help="Print the fit summary as JSON."),
) -> None:
    """Fit the matcher's calibration: pairwise P(same) on the verified (query, gallery) pairs, then the
    decision P(right individual) on leave-one-out queries with open-set splits.

    \b
    Example:
      spotid train matcher calA/ calB/ --out models/matcher --threads 1
    """
    import numpy as np

    from spotid.identify.calibrate import DEFAULT, Calibration, fit_calibration, fit_decisions, save_calibration
    from spotid.identify.evaluate import (calibration_pairs, compute_scores, decision_training, evaluate, list_items,
                                          prepare)

    if encounter and len(encounter) != len(directories):
        raise typer.BadParameter("give one --encounter per DIR (use '' for one encounter per file)")
    if decisions_from not in ("all", "cards"):
        raise typer.BadParameter(f"--decisions-from {decisions_from!r}: use all or cards")
    if decisions_from == "cards" and not card:
        raise typer.BadParameter("--decisions-from cards needs at least one --card (a `spotid synth card` folder)")
    for c in card:  # before the slow part: a wrong folder should fail now, not after the fit
        if not (Path(c) / "truth.json").is_file():
            raise typer.BadParameter(f"{c} has no truth.json: pass a folder made by `spotid synth card`",
                                     param_hint="--card")
    cfg = _cfg(None, embedder_model=str(model) if model else None, flank_model=str(flank_model) if flank_model else None,
               descriptor=descriptor)
    _threads(threads)
    emb, fl = _models(cfg)
    fx, ver = _extractor(cfg), _verifier(cfg)
    cos, inl, same, data_meta, runs = [], [], [], {}, []
    for k, d in enumerate(directories):
        rx = (encounter[k] or None) if encounter else None
        data = prepare(list_items(d, rx), embedder=emb, flank=fl, extractor=fx, max_side=cfg.crop_max_side, cache=cache,
                       flank_from_path=flank_from_path)
        # same-flank pairs only, as every shipped calibration was fitted (training folders name the flank)
        s = compute_scores(data, ver, DEFAULT, shortlist=cfg.shortlist, limit=limit, full_verifier=True,
                           verify_all=cfg.verify_all, unknown_flank="skip")
        runs.append((data, s))
        c, i, y = calibration_pairs(data, s)
        cos.append(c), inl.append(i), same.append(y)
        data_meta[str(d)] = {"encounter_regex": rx, "flank_from_path": flank_from_path, "images": len(data.items), "queries": int(len(s.queries)),
                             "pairs": int(len(y)), "positives": int(y.sum())}
    pairwise = fit_calibration(np.concatenate(cos), np.concatenate(inl), np.concatenate(same))
    rows: dict = {}
    for data, s in runs:  # the decision rows depend on the pairwise model (it ranks the crops)
        for kind, (x, y) in decision_training(data, s, pairwise).items():
            rows.setdefault(kind, []).append((x, y))
    for k, v in rows.items():
        for (d, _), (x, y) in zip(data_meta.items(), v):
            data_meta[d].setdefault("decision_rows", {})[k] = {"rows": int(len(y)), "correct": int(y.sum())}
    if decisions_from == "cards":  # the folder rows only fit the pairwise model
        rows = {k: [] for k in rows if k != "embedding"} | {"embedding": rows.get("embedding", [])}
    if card:
        from spotid.identify.calibrate_cards import cards_decision_rows
        from spotid.identify.pipeline import Identifier

        ident = Identifier(cfg, embedder=emb, flank=fl, calibration=pairwise)
        for c, cr in cards_decision_rows(ident, card, card_work or (cache / "cards" if cache else None)):
            for kind in ("fused", "verifier"):  # same rows: the pairwise ranking uses inliers only when w_cos = 0
                if kind in rows:
                    rows[kind].append((cr.x, cr.y))
            data_meta[f"card:{c}"] = {"decision_rows": {"fused": cr.meta()}}
    decisions = fit_decisions({k: (np.concatenate([x for x, _ in v]), np.concatenate([y for _, y in v]))
                               for k, v in rows.items()}, other_floors=[0.0, *other_floor])
    cal = Calibration(pairwise.models, {}, decisions)
    meta = {"data": data_meta, "data_recipe": note, "decisions_from": decisions_from, "embedder": emb.version,
            "verifier": ver.version, "features": fx.version, "shortlist": cfg.shortlist, "verify_all": cfg.verify_all,
            "command": "spotid train matcher " + " ".join(sys.argv[3:]) if len(sys.argv) > 3 else "spotid train matcher"}
    if holdout is not None:
        data = prepare(list_items(holdout, holdout_encounter), embedder=emb, flank=fl, extractor=fx,
                       max_side=cfg.crop_max_side, cache=cache)
        s = compute_scores(data, ver, cal, shortlist=cfg.shortlist, limit=limit, full_verifier=True,
                           verify_all=cfg.verify_all, unknown_flank="skip")
        rep = evaluate(data, s, cal, threshold=cfg.threshold)
        meta["metrics"] = {"holdout": str(holdout), **{k: v for k, v in rep.items()}}
    final = Calibration(cal.models, meta, cal.decisions)
    path = save_calibration(final, out)
    summary = {"path": str(path), **final.to_json()}
    if json_out:
        from spotid.util import print_json
        print_json(summary)
    else:
        typer.echo(f"wrote {path}")


def train_fusion(
    directories: List[Path] = typer.Argument(..., help="Labelled folders (one sub-folder per individual), disjoint "
                                                       "from every folder you evaluate on."),
    out: Path = typer.Option(Path("models/matcher/fusion"), "--out", help="Folder for fusion.json."),
    encounter: List[str] = typer.Option([], "--encounter", help="Encounter regex per DIR (repeat; '' = per file)."),
    verifiers: str = typer.Option("sift,aliked", "--verifiers", help="Local verifiers to calibrate beside the embedding."),
    weights: str = typer.Option("equal", "--weights", help="equal; given, e.g. embedding=2,sift=1,aliked=1 (chosen by "
                                                          "cross-validation elsewhere); or auto: the simplex grid (step 0.25) weighting "
                                                          "with the best mAP on these folders' queries (with "
                                                          "--select: the best (top-1 + mAP) / 2 on the --select folders')."),
    select: List[Path] = typer.Option([], "--select", help="Validation folders (repeat; individuals disjoint from "
                                                            "DIRS and from every folder you evaluate on) on which "
                                                            "--weights auto and --combine choose; nothing is fitted on them."),
    select_encounter: List[str] = typer.Option([], "--select-encounter", help="Encounter regex per --select folder."),
    combine: str = typer.Option("mean", "--combine", help="How the calibrated P are combined: mean, noisy_or, max, "
                                                          "or several comma-separated for --select to choose from."),
    drop: bool = typer.Option(False, "--drop/--no-drop", help="With --weights auto: a scorer may get weight 0."),
    model: Optional[Path] = typer.Option(None, "--model", help="Embedder model folder."),
    for_model: Optional[Path] = typer.Option(
        None, "--for-model", help="The embedder this fusion is for, when --model is a stand-in that never trained "
                                  "on DIRS (the same recipe without them): its cosines there are as honest as the "
                                  "shipped embedder's on new animals (models/matcher/fusion/reproduce.sh)."),
    flank_model: Optional[Path] = typer.Option(None, "--flank-model", help="Flank classifier folder."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Queries per DIR (seeded subset)."),
    other_floor: List[float] = typer.Option([0.02, 0.05, 0.1], "--other-floor",
                                            help="Candidate floors under the competitor's fused P (repeat)."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Folder to cache flank/embedding/features between runs."),
    note: Optional[str] = typer.Option(None, "--note", help="How the data was chosen (stored in fusion.json)."),
    full_verifier: bool = typer.Option(False, "--full-verifier/--no-full-verifier",
                                       help="Fit on every gallery pair (brute force, slow) instead of the pairs the "
                                            "Matcher's shortlist verifies (what the fusion scores in use)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML of IdentifyConfig (shortlist, verify_all, ...)."),
    threads: int = typer.Option(1, "--threads", help="Torch/OpenCV threads."),
    json_out: bool = typer.Option(False, "--json", help="Print the fit summary as JSON."),
) -> None:
    """Fit the calibrated fusion: one P(same) calibration per scorer (embedding cosine, each verifier's
    inliers) on every (query, gallery) pair, averaged; then its competitor-aware decision. Refit after
    a new embedder or verifier (models/matcher/fusion/reproduce.sh).

    \b
    Example:
      spotid train fusion nyala-cal30/ --out models/matcher/fusion --weights auto
    """
    import numpy as np

    from spotid.identify.evaluate import compute_scores, list_items, prepare
    from spotid.identify.fusion import fit_decision, fit_fusion, save_fusion
    from spotid.identify.multiscore import (fusion_decision_rows, fusion_pairs, raw_scores, select_fusion,
                                             weight_grid)

    if encounter and len(encounter) != len(directories):
        raise typer.BadParameter("give one --encounter per DIR (use '' for one encounter per file)")
    given = None
    if weights not in ("equal", "auto"):
        try:
            given = {k.strip(): float(v) for k, v in (x.split("=") for x in weights.split(",") if x.strip())}
        except ValueError:
            given = None
        if not given or any(v < 0 for v in given.values()) or not any(v > 0 for v in given.values()):
            raise typer.BadParameter(f"--weights {weights!r}: use equal, auto, or scorer=weight pairs such as "
                                     "embedding=2,sift=1,aliked=1 (weights >= 0, one > 0)", param_hint="--weights")
    from spotid.identify.fusion import COMBINES

    combines = [c.strip() for c in combine.split(",") if c.strip()]
    bad = [c for c in combines if c not in COMBINES]
    if bad or not combines:
        raise typer.BadParameter(f"--combine {combine!r}: use one or more of {', '.join(COMBINES)}, comma-separated",
                                 param_hint="--combine")
    if len(combines) > 1 and not select:
        raise typer.BadParameter("several --combine rules need --select folders to choose among them", param_hint="--combine")
    if select_encounter and len(select_encounter) != len(select):
        raise typer.BadParameter("give one --select-encounter per --select folder (use '' for one encounter per file)")
    cfg = _cfg(config, embedder_model=str(model) if model else None, flank_model=str(flank_model) if flank_model else None)
    _threads(threads)
    names, matchers = _locals(verifiers, cfg)
    emb, fl = _models(cfg)
    fx, ver, cal = _extractor(cfg), _verifier(cfg), _calibration(cfg.calibration, cfg.descriptor)

    def scored(d, rx, full: bool):
        """One labelled folder's data, scores, raw matrices and what to record of it."""
        data = prepare(list_items(d, rx), embedder=emb, flank=fl, extractor=fx, max_side=cfg.crop_max_side, cache=cache)
        s = compute_scores(data, ver, cal, shortlist=cfg.shortlist, limit=limit, full_verifier=full,
                           verify_all=cfg.verify_all)
        brute, short, _ = raw_scores(data, s, names, matchers=matchers, max_side=cfg.crop_max_side, cache=cache,
                                     full_verifier=full)
        meta = {"encounter_regex": rx, "images": len(data.items), "queries": int(len(s.queries)),
                "individuals": len({it.individual for it in data.items})}
        return data, s, brute, short, meta

    raw, same, runs, data_meta = {}, [], [], {}
    for k, d in enumerate(directories):
        rx = (encounter[k] or None) if encounter else None
        data, s, brute, short, meta = scored(d, rx, full_verifier)
        r, y = fusion_pairs(s, data, brute, shortlist_only=not full_verifier)
        for key, v in r.items():
            raw.setdefault(key, []).append(v)
        same.append(y)
        runs.append((data, s, short))
        data_meta[str(d)] = {**meta, "pairs": int(len(y)), "positives": int(y.sum())}
    raw = {key: np.concatenate(v) for key, v in raw.items()}
    same = np.concatenate(same)
    unknown = sorted(set(given or {}) - set(raw))
    if unknown:
        raise typer.BadParameter(f"--weights names {unknown}, not scorers here ({', '.join(raw)})", param_hint="--weights")
    fusion = fit_fusion(raw, same, weights=given)
    if select:
        sel_runs, sel_meta = [], {}
        for k, d in enumerate(select):
            rx = (select_encounter[k] or None) if select_encounter else None
            data, s, _, short, sel_meta[str(d)] = scored(d, rx, False)
            sel_runs.append((data, s, short))
        fusion = select_fusion(fusion, sel_runs, names, combines=combines, step=0.25 if weights == "auto" else 1.0,
                               drop=drop)
        fusion.meta["selection"]["data"] = sel_meta
    elif weights == "auto":
        fusion = weight_grid(fusion, runs, names)
    if combines != [fusion.combine] and len(combines) == 1:   # one rule asked for, no selection
        from spotid.identify.fusion import Fusion
        fusion = Fusion(fusion.calibrations, fusion.weights, fusion.decision, fusion.floor, fusion.meta, combines[0])
    rows = [fusion_decision_rows(s, data, fusion, short, names) for data, s, short in runs]
    fusion = fit_decision(fusion, *(np.concatenate([r[i] for r in rows]) for i in range(3)),
                          floors=[0.0, *other_floor])
    fusion.meta.update({
        "data": data_meta, "data_recipe": note, "verifiers": names,
        "embedder": _models(_cfg(None, embedder_model=str(for_model)))[0].version if for_model else emb.version,
        **({"cosines_from": emb.version} if for_model else {}),
        "versions": {"sift": f"{fx.version}+{ver.version}", **{n: m.version for n, m in matchers.items()}},
        "weights_from": weights + (" (chosen on the --select folders)" if select else ""), "pairs_from": "every gallery pair" if full_verifier else "the Matcher's shortlist",
        "shortlist": cfg.shortlist, "verify_all": cfg.verify_all, "decision_rows": int(sum(len(r[2]) for r in rows)),
        "command": "spotid train fusion " + " ".join(sys.argv[3:]) if len(sys.argv) > 3 else "spotid train fusion"})
    path = save_fusion(fusion, out)
    if json_out:
        from spotid.util import print_json
        print_json({"path": str(path), **fusion.to_json()})
    else:
        typer.echo(f"wrote {path}")


commands: dict = {"identify": identify}
groups: dict = {}
eval_commands: dict = {"reid": eval_reid}
train_commands: dict = {"matcher": train_matcher, "fusion": train_fusion}
