"""CLI for fitting identify's scorers: ``spotid train matcher DIR...`` (the calibration of the embedding and
the SIFT verifier into P(same individual)) and ``spotid train fusion DIR...`` (the calibrated fusion of the
embedding and the local verifiers). Registered through :mod:`spotid.identify.cli`'s ``train_commands``."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import List, Optional

import typer

from spotid.identify.cli_common import (_calibration, _cfg, _check_encounters, _extractor, _locals, _models, _threads,
                                        _verifier)

log = logging.getLogger(__name__)


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
    _check_encounters(*encounter, holdout_encounter)
    if decisions_from not in ("all", "cards"):
        raise typer.BadParameter(f"--decisions-from {decisions_from!r}: use all or cards")
    if decisions_from == "cards" and not card:
        raise typer.BadParameter("--decisions-from cards needs at least one --card (a `spotid synth card` folder)")
    for c in card:  # before the slow part: a wrong folder should fail now, not after the fit
        if not (Path(c) / "truth.json").is_file():
            raise typer.BadParameter(f"{c} has no truth.json: pass a folder made by `spotid synth card`",
                                     param_hint="--card")
    # this fits the calibration scorer, so cards are matched as that scorer matches them (not the fusion)
    cfg = _cfg(None, embedder_model=str(model) if model else None, flank_model=str(flank_model) if flank_model else None,
               descriptor=descriptor, scorer="calibration")
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


MIN_CATALOG_IDENTITIES = 5   # flanks confirmed on >= 2 days a catalog needs to be fitted on alone


def _catalog_items(db: Path, *, alone: bool) -> list:
    """The confirmed sightings of catalog ``db`` as labelled crops (:func:`~spotid.identify.evaluate.catalog_items`);
    BadParameter naming the fix when they hold no same-animal pair across days (nothing to calibrate), or, fitted
    ``alone`` (no labelled folders beside it), fewer than :data:`MIN_CATALOG_IDENTITIES` such flanks."""
    from spotid.catalog import CatalogError
    from spotid.identify.evaluate import catalog_items

    try:
        items = catalog_items(db)
    except CatalogError as e:
        raise typer.BadParameter(str(e), param_hint="--db") from None
    days: dict = {}
    for it in items:
        if it.flank in ("left", "right"):
            days.setdefault((it.individual, it.flank), set()).add(it.encounter)
    seen_twice = sum(len(v) >= 2 for v in days.values())
    need = MIN_CATALOG_IDENTITIES if alone else 1
    if seen_twice < need:
        raise typer.BadParameter(
            f"{db} has {len(items)} confirmed crops, {seen_twice} flanks of them confirmed on two or more camera-days; "
            f"fitting needs {need}{' on a catalog alone' if alone else ''}: confirm more sightings in `spotid review "
            f"--db {db}`, or fit on labelled folders beside it (spotid train fusion DIR --db {db})", param_hint="--db")
    return items


def train_fusion(
    directories: List[Path] = typer.Argument(None, help="Labelled folders (one sub-folder per individual), disjoint "
                                                        "from every folder you evaluate on."),
    db: List[Path] = typer.Option([], "--db", help="Also fit on this catalog's confirmed sightings (repeat): the "
                                                   "review decisions, one encounter per camera and day."),
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
    a new embedder or verifier (models/matcher/fusion/reproduce.sh). With --db, the crops people confirmed
    in review join the fit, so the probabilities come to describe your own animals.

    \b
    Example:
      spotid train fusion nyala-cal30/ --out models/matcher/fusion --weights auto
      spotid train fusion cal/ --db season.db --out my-fusion --combine max
    """
    import numpy as np

    from spotid.identify.evaluate import compute_scores, list_items, prepare
    from spotid.identify.fusion import fit_decision, fit_fusion, save_fusion
    from spotid.identify.multiscore import (fusion_decision_rows, fusion_pairs, raw_scores, select_fusion,
                                             weight_grid)

    directories = list(directories or [])
    if not directories and not db:
        raise typer.BadParameter("give labelled folders (DIRS), a catalog with review decisions (--db), or both")
    if encounter and len(encounter) != len(directories):
        raise typer.BadParameter("give one --encounter per DIR (use '' for one encounter per file)")
    _check_encounters(*encounter, *select_encounter)
    catalogs = [(str(d), _catalog_items(d, alone=not directories)) for d in db]
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

    def scored(items, rx, full: bool):
        """One labelled set's data, scores, raw matrices and what to record of it."""
        data = prepare(items, embedder=emb, flank=fl, extractor=fx, max_side=cfg.crop_max_side, cache=cache)
        s = compute_scores(data, ver, cal, shortlist=cfg.shortlist, limit=limit, full_verifier=full,
                           verify_all=cfg.verify_all)
        brute, short, _ = raw_scores(data, s, names, matchers=matchers, max_side=cfg.crop_max_side, cache=cache,
                                     full_verifier=full)
        meta = {"encounter_regex": rx, "images": len(data.items), "queries": int(len(s.queries)),
                "individuals": len({it.individual for it in data.items})}
        return data, s, brute, short, meta

    raw, same, runs, data_meta = {}, [], [], {}
    sets = [(str(d), None, (encounter[k] or None) if encounter else None) for k, d in enumerate(directories)]
    sets += [(f"catalog:{d}", items, None) for d, items in catalogs]
    for name, items, rx in sets:
        data, s, brute, short, meta = scored(items if items is not None else list_items(name, rx), rx, full_verifier)
        if items is not None:
            meta["encounter"] = "camera and day"
        r, y = fusion_pairs(s, data, brute, shortlist_only=not full_verifier)
        for key, v in r.items():
            raw.setdefault(key, []).append(v)
        same.append(y)
        runs.append((data, s, short))
        data_meta[name] = {**meta, "pairs": int(len(y)), "positives": int(y.sum())}
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
            data, s, _, short, sel_meta[str(d)] = scored(list_items(d, rx), rx, False)
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
