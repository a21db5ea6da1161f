"""The ``spotid`` command line. Thin: each stage's ``<stage>/cli.py`` owns its commands.

A stage module may export:
- ``commands``: {name: function} registered as top-level commands (``spotid ingest``);
- ``groups``: {name: typer.Typer} added with ``add_typer`` (``spotid deployments add``);
- ``eval_commands`` / ``train_commands``: {name: function} for the shared ``spotid eval`` and
  ``spotid train`` groups.
Heavy imports (torch, cv2) belong inside command functions so ``spotid --help`` stays fast.
"""
from __future__ import annotations

import importlib
import logging
from typing import List, Sequence

import typer
from typer.core import TyperGroup

from spotid import __version__
from spotid.util import print_json, setup_logging

STAGES = ("ingest", "synth", "detect", "identify", "census", "export", "review", "train", "workflow")

def resume_hint(command: str, args: Sequence[str]) -> str | None:
    """What re-running ``spotid COMMAND ARGS`` does after Ctrl-C: how to resume, or None when it starts
    over. The catalog stages skip the work an earlier run committed (ingest keys frames by hash; detect,
    identify and process take what has no detections / sightings yet); folder-mode detect continues
    from its checkpoint only with --resume; the detector recipe resumes from its checkpoints by default.
    (train embedder/foreground catch Ctrl-C themselves and name their checkpoint.)"""
    again = "re-run the same command"
    if command in ("ingest", "identify", "process") or (command == "detect" and "--db" in args):
        return f"{again} to resume"
    if command == "detect":
        return f"{again} to resume" if "--resume" in args else f"{again} with --resume to resume"
    if command == "train detector":
        return f"{again} without --no-resume to resume" if "--no-resume" in args else f"{again} to resume"
    return None


class _Root(TyperGroup):
    """The ``spotid`` group: Ctrl-C in any command ends here, with one line saying whether re-running
    resumes, and exit code 130 (128 + SIGINT, as shells report it). One place instead of every command:
    the root's own callback runs before the command, so it cannot catch what the command raises."""

    def invoke(self, ctx):
        words, cmd = [], self   # 'train embedder' from the arguments left after the root's options
        args = [*ctx._protected_args, *ctx.args]
        for a in args:
            cmd = getattr(cmd, "commands", {}).get(a)
            if cmd is None:
                break
            words.append(a)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            hint = resume_hint(" ".join(words), args)
            typer.echo(f"interrupted: {hint}" if hint else "interrupted", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Root,
    name="spotid",
    help="Camera-trap SD cards to an Amur leopard census: ingest, detect, identify, review, count, export."
         "\n\nThe stages that run models (detect, identify, process) use all CPU cores unless --threads N says"
         " fewer. Ctrl-C stops any command (exit 130); it says whether re-running resumes."
         "\n\n\b\nExample, one card from SD card to census:\n"
         "  spotid process /media/card02 --deployment S02A --db season.db --tz +10:00\n"
         "  spotid review --db season.db\n"
         "  spotid census --db season.db --out census/",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
eval_app = typer.Typer(help="Evaluate models on labelled data."
                       "\n\n\b\nExample:\n"
                       "  spotid eval detect voc/test-images --truth voc/test-annotations", no_args_is_help=True)
train_app = typer.Typer(help="Train or fine-tune models on the CPU."
                        "\n\n\b\nExample:\n"
                        "  spotid train embedder --db season.db --out my-embedder", no_args_is_help=True)
models_app = typer.Typer(help="List the available models and choose the active one per kind."
                         "\n\n\b\nExamples:\n"
                         "  spotid models list --db season.db\n"
                         "  spotid models use my-embedder --db season.db",
                         no_args_is_help=True)


@models_app.command("list")
def models_list(
    db: str = typer.Option("spotid.db", "--db", help="Catalog whose active-model settings to show."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Show each model kind's active model (version, where it comes from) and the shipped ones.

    \b
    Example:
      spotid models list --db season.db
    """
    from spotid.cliutil import catalog_errors
    from spotid.modelstore import available

    with catalog_errors():
        rows = available(db)
    if json_out:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("kind", "active", "version", "source", "path", title="spotid models")
    for r in rows:
        t.add_row(r["kind"], "*" if r["active"] else "", r.get("version") or "-", r["source"], r["path"])
    Console().print(t)


@models_app.command("use")
def models_use(
    args: List[str] = typer.Argument(..., metavar="[KIND] PATH",
                                     help="A model folder (with card.json), e.g. one written by `spotid train "
                                          "classifier --db`; KIND (classifier, embedder, ...) checks its card."),
    db: str = typer.Option("spotid.db", "--db", help="Catalog in which to record the choice."),
    force: bool = typer.Option(False, "--force", help="Adopt it even when it measures worse than the active one."),
    json_out: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Make the model at PATH the active one of its kind for this catalog. It is first measured against the
    active one on the same held-out data of the catalog (classifier: reviewed crops neither trained on;
    embedder: confirmed sightings of individuals neither trained on); a worse one, or one whose card holds
    NaN metrics, is adopted only after a yes (or with --force; without a terminal: refused, exit 2).

    \b
    Examples:
      spotid models use classifier season-classifier --db season.db
      spotid models use my-embedder --db season.db
    """
    import sys

    from spotid.cliutil import catalog_errors, open_catalog
    from spotid.modelstore import KINDS, ModelError, load_card, resolve, use

    if len(args) > 2 or (len(args) == 2 and args[0] not in KINDS):
        raise typer.BadParameter(f"give [KIND] PATH, KIND one of {', '.join(KINDS)}", param_hint="[KIND] PATH")
    kind, path = (args[0], args[1]) if len(args) == 2 else (None, args[0])
    try:
        new = load_card(path, verify=True)
    except ModelError as e:
        raise typer.BadParameter(str(e), param_hint="PATH") from e
    if kind is not None and new.kind != kind:
        raise typer.BadParameter(f"{path} is a {new.kind} model, not a {kind}", param_hint="PATH")
    with open_catalog(db) as cat:   # the model checked first: a wrong PATH leaves no new catalog behind
        try:
            current = resolve(new.kind, catalog=cat)
        except ModelError:
            current = None
    cmp = None
    if current is not None:
        from spotid.train.compare import compare_models

        cmp = compare_models(new, current, db)
        _show_comparison(cmp, json_out)
    if cmp is not None and cmp.worse:
        if not force:
            hint = ("pass --force to adopt it anyway, or retrain (spotid train "
                    f"{new.kind} --db {db}) after reviewing more sightings")
            if not sys.stdin.isatty():
                raise typer.BadParameter(f"{new.version} measures worse than the active {current.version}: {hint}",
                                         param_hint="PATH")
            if not typer.confirm(f"{new.version} measures worse than the active model. Adopt it anyway?", default=False):
                typer.echo(f"kept {current.version}")
                raise typer.Exit(1)
    try:
        with catalog_errors():
            card = use(path, db)
    except ModelError as e:
        raise typer.BadParameter(str(e), param_hint="PATH") from e
    if not json_out:
        typer.echo(f"active {card.kind} model for {db}: {card.version} ({card.folder})")


def _show_comparison(cmp, json_out: bool) -> None:
    """The candidate's and the active model's figures on the same data, for people (or JSON)."""
    if json_out:
        print_json(cmp.to_json())
        return
    if cmp.new is not None:
        typer.echo(f"on {cmp.data}:")
        for name, version, m in (("active", cmp.current_version, cmp.current), ("new", cmp.new_version, cmp.new)):
            typer.echo(f"  {name:6s} {version}: {_figures(m)}")
        verdict = {True: "worse", False: "not worse", None: "not comparable"}[cmp.worse]
        typer.echo(f"  the new model is {verdict} ({cmp.score})")
    for n in cmp.notes:
        typer.echo(f"note: {n}")


def _figures(m: dict) -> str:
    def f(v):
        return "n/a" if v is None else f"{v:.3f}"
    if "balanced_accuracy" in m:
        return (f"leopards labelled leopard {m['leopard']['labelled_leopard']}/{m['leopard']['n']} "
                f"(mean P {f(m['leopard']['mean_p_leopard'])}), 'not a leopard' labelled leopard "
                f"{m['other']['labelled_leopard']}/{m['other']['n']} (mean P {f(m['other']['mean_p_leopard'])}), "
                f"balanced accuracy {f(m['balanced_accuracy'])}")
    return f"top-1 {f(m.get('top1'))}, top-5 {f(m.get('top5'))}, mAP {f(m.get('mAP'))} ({m.get('queries')} queries)"


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging on stderr."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()
    setup_logging(verbose)


def _register() -> None:
    for stage in STAGES:
        mod = importlib.import_module(f"spotid.{stage}.cli")
        for name, fn in getattr(mod, "commands", {}).items():
            app.command(name)(fn)
        for name, group in getattr(mod, "groups", {}).items():
            app.add_typer(group, name=name)
        for name, fn in getattr(mod, "eval_commands", {}).items():
            eval_app.command(name)(fn)
        for name, fn in getattr(mod, "train_commands", {}).items():
            train_app.command(name)(fn)
    app.add_typer(models_app, name="models")
    app.add_typer(eval_app, name="eval")
    app.add_typer(train_app, name="train")


_register()


def main() -> None:  # console-script entry point
    logging.captureWarnings(True)
    app()


if __name__ == "__main__":
    main()
