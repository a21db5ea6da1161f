"""Human-readable tables (rich) for census results. JSON output lives in the to_dict() methods."""
from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from spotid.census.estimators import Estimate, EstimationResult


def _f(v, nd=1):
    return "—" if v is None else f"{v:.{nd}f}"


def estimates_table(res: EstimationResult, title: str = "Population size estimates") -> tuple[Table, list[str]]:
    """The estimates as a rich table; notes (boundary cases, undefined models) come back as footnotes."""
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    notes, rows = [], []
    short = {"at_boundary": "N̂=seen", "undefined": "undefined", "not_estimable": "not estimable",
             "bias_corrected": "bias-corr.", "reduces_to_M0": "= M0"}
    for e in res.estimates:
        ci = "—" if e.lcl is None else f"{e.lcl:.1f}–{_f(e.ucl)}"
        mark = "*" if e.model == res.best else ""
        status = short.get(e.status, e.status) if e.status != "ok" else ""
        if e.note:
            texts = [n for _, n in notes]
            if e.note in texts:
                k = texts.index(e.note)
                notes[k] = (notes[k][0] + [e.model], e.note)
            else:
                notes.append(([e.model], e.note))
                k = len(notes) - 1
            status += f" [{k + 1}]"
        # logLik stays in --json: with it the table no longer fits 80 columns and rich truncates the status
        rows.append([e.model + mark, _f(e.N), _f(e.se, 2), ci, _f(e.aicc, 2), _f(e.daicc, 2), status.strip()])
    heads = ("model", "N̂", "SE", "95% CI", "AICc", "ΔAICc", "status")
    for k, col in enumerate(heads):
        width = max([len(col)] + [len(r[k]) for r in rows])
        t.add_column(col, justify="left" if col in ("model", "status") else "right", no_wrap=True, min_width=width)
    for r in rows:
        t.add_row(*r)
    return t, [f"{', '.join(models)}: {text}" for models, text in notes]


def print_estimates(res: EstimationResult, console: Console | None = None, title: str | None = None) -> None:
    console = console or Console()
    table, notes = estimates_table(res, title or "Population size estimates")
    console.print(table)
    for k, n in enumerate(notes, 1):
        console.print(f"  [{k}] {n}", markup=False, highlight=False)
    if res.best:
        console.print(f"* best: {res.best} ({res.best_reason})", markup=False, highlight=False)


def headline(e: Estimate | None) -> str:
    if e is None or e.N is None:
        return "no estimate"
    ci = "" if e.lcl is None else f" (95% CI {e.lcl:.1f}–{_f(e.ucl)})"
    return f"N̂ = {e.N:.1f}{ci}, model {e.model}"
