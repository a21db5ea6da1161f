"""The house has floors: nothing imports upward, and no two modules import each other in a circle.

Floors, bottom up (a module may import its own package and anything on a lower floor, and, on the stage
floor, another stage as long as no circle forms):
  0 base:   types, util, config, catalog, modelstore, backbone (no typer here)
  1 stages: ingest, detect, identify, census, synth
  2 users of the stages: export, review, train
  3 orchestration: workflow, and the command line (spotid/cli.py, __main__)
Each package's ``cli.py`` (with the ``cli_*.py`` modules split off a long one) and ``spotid/cliutil.py``
form the command-line skin of their floor: they may import typer; nothing but command-line modules imports them. Every import counts, also those inside
functions (they hide circles, they do not remove them).
"""
from __future__ import annotations

import ast
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent / "spotid"
FLOORS = {"types": 0, "util": 0, "config": 0, "catalog": 0, "modelstore": 0, "backbone": 0, "cliutil": 0,
          "ingest": 1, "detect": 1, "identify": 1, "census": 1, "synth": 1,
          "export": 2, "review": 2, "train": 2,
          "workflow": 3, "cli": 3, "__main__": 3, "__init__": 0}


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        rel = p.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts)
        out[name.removesuffix(".__init__")] = p
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for n in names:
            while n and n not in modules:
                n = n.rpartition(".")[0]
            if n.startswith("spotid") and n != "spotid":
                found.add(n)
    return found


def _top(mod: str) -> str:
    return mod.split(".")[1] if mod.count(".") else "__init__"


def _graph():
    modules = _modules()
    return modules, {m: _imports(p, modules) - {m} for m, p in modules.items()}


def _is_cli(module: str) -> bool:
    """``spotid.x.cli``, ``spotid.x.cli_train`` (split off a long cli.py), ``spotid.cli``, ``spotid.cliutil``."""
    last = module.rsplit(".", 1)[-1]
    return last == "cli" or last.startswith("cli_") or module == "spotid.cliutil"


def test_no_import_runs_upward_and_the_cli_skin_stays_outside():
    modules, graph = _graph()
    bad = []
    for m, deps in graph.items():
        for d in deps:
            a, b = _top(m), _top(d)
            if a == b:
                continue
            if FLOORS[b] > FLOORS[a]:
                bad.append(f"{m} (floor {FLOORS[a]}) imports {d} (floor {FLOORS[b]})")
            is_cli = _is_cli(m) or m == "spotid.__main__"
            if _is_cli(d) and not is_cli:
                bad.append(f"{m} imports the command-line module {d}")
    assert not bad, "\n".join(sorted(bad))


def test_base_floor_has_no_typer():
    for name in ("types", "util", "config", "modelstore", "backbone", "catalog/__init__"):
        src = (ROOT / f"{name}.py").read_text(encoding="utf-8")
        assert "import typer" not in src, f"spotid/{name}.py imports typer: keep the command line out of the base"


def test_no_import_circles():
    _, graph = _graph()
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "\n".join(cycles)
