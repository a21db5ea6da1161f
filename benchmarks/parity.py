"""Same numbers before and after a refactor: run spotid at two git revisions and compare what they produce.

    python benchmarks/parity.py --before 5f28ed8 [--after HEAD] [--seeds 0 1 2 3] [--out /tmp/spotid-parity]
        [--skip census_truth,real_card,...] [--json OUT]

With --skip, each revision's outputs of the skipped checks from an earlier run (OUT/<sha>-work/outputs.json)
are kept and compared too: re-run one check without redoing the rest.

Issue 21 asks for "no behaviour change: the demo census and every benchmark give the same numbers before and
after". A refactor that moves code (the catalog SQL into ``spotid/catalog/tables``, say) must not change one
row of what a user gets. For each revision this script checks the revision out into a detached worktree
(``OUT/<sha>``), then runs, with ``PYTHONPATH`` set to that worktree and one torch thread:

1. ``spotid demo --seed S`` and, on its catalog, every read-side command a user runs: ``census --json``,
   ``media list --json``, ``deployments list --json``, ``deployments check --json``, ``export camtrapdp``,
   ``export mdjson``, ``export report`` (the census tables it writes);
2. ``spotid ingest`` of a real card (``../shared`` camera-trap frames plus a broken and a duplicate file),
   then ``media list --json --failures``;
3. ``benchmarks/census_truth.py --seeds ...`` (demo census against the synthetic truth, with its baseline);
4. ``benchmarks/real_card.py`` (real leopard photos through ``process`` and ``census``);
5. ``benchmarks/secr_reference.py`` (SECR against R's secr).

Outputs are compared value by value: JSON leaves, CSV cells (by row order), MegaDetector JSON. What may
differ between two honest runs is ignored and listed: wall-clock times (keys naming seconds/time/elapsed),
run timestamps (values dated today), absolute paths (each revision writes under its own folder) and the
spotid version string. Everything else printed side by side: "same" or each differing value, before → after.
The exit code is 1 when anything differs.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CHECKS = ("demo", "ingest", "census_truth", "real_card", "secr_reference")
# keys whose values are wall-clock figures or places on disk, not results
_VOLATILE_KEY = re.compile(r"(second|_s$|^s$|_ms$|time_|elapsed|duration|wall|cpu|path|dir$|folder|"
                           r"^out$|created|started|finished|version|^db$|^file|url|sha256)", re.I)
_TIMING_KEY = re.compile(r"(second|elapsed|duration|wall|cpu)", re.I)   # a parent key that holds timings
_TODAY = dt.date.today().isoformat()[:7]  # run timestamps: this month (the demo's photos are dated years ago)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def checkout(rev: str, out: Path) -> Path:
    """A detached worktree of ``rev`` under ``out`` (reused if present); returns its folder."""
    try:
        sha = _git("rev-parse", "--short=12", "--verify", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"parity: {rev!r} is not a commit of {ROOT}: pass a sha or branch (git log --oneline)") from None
    tree = out / sha
    if not (tree / "spotid").is_dir():
        subprocess.run(["git", "worktree", "add", "--detach", "-f", str(tree), sha], cwd=ROOT, check=True,
                       capture_output=True)
    return tree


def run(tree: Path, args: list[str], log: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python args`` with ``tree`` first on the path (the revision's spotid, not the installed one)."""
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1", SPOTID_THREADS="1")
    p = subprocess.run([sys.executable, *args], cwd=cwd or tree, env=env, capture_output=True, text=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"$ {' '.join(args)}\n# exit {p.returncode}\n{p.stdout}\n--- stderr\n{p.stderr}")
    return p


def _spotid(tree, work, name, *args, cwd=None) -> subprocess.CompletedProcess:
    return run(tree, ["-m", "spotid", *args], work / "logs" / f"{name}.txt", cwd=cwd)


def demo_outputs(tree: Path, work: Path, seed: int) -> dict[str, Path]:
    """The demo catalog of ``seed`` and every read-side output a user gets from it: name -> file."""
    d = work / f"demo{seed}"
    shutil.rmtree(d, ignore_errors=True)
    outs: dict[str, Path] = {}
    p = _spotid(tree, work, f"demo{seed}", "demo", "--seed", str(seed), "--out", str(d), "--json")
    (work / f"demo{seed}.json").write_text(p.stdout)
    outs[f"demo {seed} --json"] = work / f"demo{seed}.json"
    db = d / "demo.db"
    for name, args in (("census", ["census", "--db", str(db), "--json", "--out", str(d / "census2")]),
                       ("media list", ["media", "list", "--db", str(db), "--json"]),
                       ("deployments list", ["deployments", "list", "--db", str(db), "--json"]),
                       ("deployments check", ["deployments", "check", "--db", str(db), "--json"])):
        p = _spotid(tree, work, f"{name.replace(' ', '_')}{seed}", *args)
        f = work / f"{name.replace(' ', '_')}{seed}.json"
        f.write_text(p.stdout if p.returncode == 0 else json.dumps({"exit": p.returncode}))
        outs[f"demo {seed}: {name}"] = f
    _spotid(tree, work, f"camtrapdp{seed}", "export", "camtrapdp", "--db", str(db), "--out", str(d / "dp"))
    for f in sorted((d / "dp").glob("*.csv")):
        outs[f"demo {seed}: camtrapdp {f.name}"] = f
    _spotid(tree, work, f"mdjson{seed}", "export", "mdjson", "--db", str(db), "--out", str(d / "md.json"))
    outs[f"demo {seed}: mdjson"] = d / "md.json"
    _spotid(tree, work, f"report{seed}", "export", "report", "--db", str(db), "--out", str(d / "report"))
    for f in sorted((d / "report").rglob("*.csv")):
        outs[f"demo {seed}: report {f.relative_to(d / 'report')}"] = f
    return outs


def ingest_outputs(tree: Path, work: Path) -> dict[str, Path]:
    """A real card (../shared camera-trap frames, one broken file, one duplicate) ingested, then listed."""
    card = work / "card" / "DCIM" / "100RECNX"
    shutil.rmtree(work / "card", ignore_errors=True)
    card.mkdir(parents=True)
    frames = sorted((SHARED / "data" / "camera-traps" / "megadetector-test").rglob("*.jpg"))[:20]
    for i, f in enumerate(frames):
        shutil.copyfile(f, card / f"IMG_{i:04d}.JPG")
    if frames:
        shutil.copyfile(frames[0], card / "IMG_DUP.JPG")
    (card / "IMG_BROKEN.JPG").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    db = work / "card.db"
    db.unlink(missing_ok=True)
    _spotid(tree, work, "ingest", "ingest", str(work / "card"), "--db", str(db), "--deployment", "P01",
            "--tz", "+10:00")
    outs = {}
    for name, extra in (("media", []), ("failures", ["--failures"])):
        p = _spotid(tree, work, f"ingest_{name}", "media", "list", "--db", str(db), "--json", *extra)
        f = work / f"ingest_{name}.json"
        f.write_text(p.stdout if p.returncode == 0 else json.dumps({"exit": p.returncode}))
        outs[f"real card ingest: media list {' '.join(extra)}".strip()] = f
    return outs


def bench_outputs(tree: Path, work: Path, name: str, seeds: list[int]) -> dict[str, Path]:
    f = work / f"{name}.json"
    args = {"census_truth": ["--seeds", *map(str, seeds), "--out", str(work / "census_truth"), "--json", str(f)],
            "real_card": ["--out", str(work / "real_card"), "--json", str(f)],
            "secr_reference": ["--shared", str(SHARED), "--json", str(f)]}[name]
    p = run(tree, [str(tree / "benchmarks" / f"{name}.py"), *args], work / "logs" / f"{name}.txt")
    if p.returncode != 0 or not f.is_file():
        f.write_text(json.dumps({"exit": p.returncode}))
    return {f"benchmarks/{name}.py": f}


def _leaves(x, key="") -> dict[str, object]:
    if isinstance(x, dict):
        return {k: v for kk, vv in x.items() for k, v in _leaves(vv, f"{key}.{kk}" if key else str(kk)).items()}
    if isinstance(x, list):
        return {k: v for i, vv in enumerate(x) for k, v in _leaves(vv, f"{key}[{i}]").items()}
    return {key: x}


def _load(f: Path) -> dict[str, object]:
    if not f.is_file():
        return {"<missing>": True}
    if f.suffix == ".csv":
        with f.open(newline="", encoding="utf-8") as fh:
            return {f"row{i}.{k}": v for i, row in enumerate(csv.DictReader(fh)) for k, v in row.items()}
    text = f.read_text(encoding="utf-8")
    try:
        return _leaves(json.loads(text))
    except json.JSONDecodeError:
        return {"<text>": text}


def _volatile(key: str, before, after) -> bool:
    parts = [re.sub(r"\[\d+\]", "", s) for s in key.split(".")]
    if _VOLATILE_KEY.search(parts[-1]):
        return True
    if any(_TIMING_KEY.search(s) for s in parts[:-1]):   # seconds.detect, cpu_seconds.total
        return True
    return all(isinstance(v, str) and (v.startswith(_TODAY) or v.startswith("/")) for v in (before, after))


def compare(a: dict[str, object], b: dict[str, object]) -> tuple[list[str], int, int]:
    """(differences as 'key: before -> after', values compared, volatile values ignored)."""
    diffs, same, ignored = [], 0, 0
    for k in sorted(set(a) | set(b), key=str):
        va, vb = a.get(k, "<absent>"), b.get(k, "<absent>")
        if va == vb:
            same += 1
        elif _volatile(k, va, vb):
            ignored += 1
        else:
            diffs.append(f"{k}: {va!r} -> {vb!r}")
    return diffs, same, ignored


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="the revision before the refactor (e.g. 5f28ed8)")
    ap.add_argument("--after", default="HEAD")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--out", type=Path, default=Path("/tmp/spotid-parity"))
    ap.add_argument("--skip", default="", help=f"comma-separated checks to leave out, of {','.join(CHECKS)}")
    ap.add_argument("--only", choices=("before", "after"), help="run one side only (outputs kept for later)")
    ap.add_argument("--json", type=Path, help="write the comparison here")
    args = ap.parse_args()
    skip = {s for s in args.skip.split(",") if s}
    if bad := skip - set(CHECKS):
        ap.error(f"--skip: unknown {sorted(bad)}; the checks are {', '.join(CHECKS)}")
    if not SHARED.is_dir():
        skip |= {"ingest", "real_card", "secr_reference"}
    sides = {}
    for side, rev in (("before", args.before), ("after", args.after)):
        tree = checkout(rev, args.out)
        work = args.out / f"{tree.name}-work"
        outs: dict[str, Path] = {}
        if args.only in (None, side):
            print(f"{side}: {rev} = {tree.name}, running in {work}", flush=True)
        if args.only in (None, side):
            for check in (c for c in CHECKS if c not in skip):
                if check == "demo":
                    outs.update(demo_outputs(tree, work, args.seeds[0]))
                elif check == "ingest":
                    outs.update(ingest_outputs(tree, work))
                else:
                    outs.update(bench_outputs(tree, work, check, args.seeds))
        if outs and skip:   # a partial re-run (--skip) keeps the other checks' earlier outputs of this revision
            outs = {**_known(work), **outs}
        sides[side] = (rev, tree.name, outs)
        if args.only in (None, side):
            (work / "outputs.json").write_text(json.dumps({k: str(v) for k, v in outs.items()}, indent=1))
    if args.only:
        return 0
    (rb, sb, ob), (ra, sa, oa) = sides["before"], sides["after"]
    ob = ob or _known(args.out / f"{sb}-work")
    oa = oa or _known(args.out / f"{sa}-work")
    report, n_diff = {}, 0
    print(f"\n{'output':<52} {'values':>7} {'ignored':>7}  before {sb} vs after {sa}")
    for name in sorted(set(ob) | set(oa)):
        diffs, same, ignored = compare(_load(ob.get(name, Path("/nonexistent"))),
                                       _load(oa.get(name, Path("/nonexistent"))))
        n_diff += bool(diffs)
        report[name] = {"same_values": same, "ignored": ignored, "differences": diffs}
        print(f"{name:<52} {same + len(diffs):>7} {ignored:>7}  {'same' if not diffs else f'{len(diffs)} differ'}")
        for d in diffs[:10]:
            print(f"    {d}")
    print(f"\n{len(report) - n_diff} of {len(report)} outputs identical (volatile values ignored: times, paths, "
          "run timestamps, versions)")
    if args.json:
        args.json.write_text(json.dumps({"before": rb, "after": ra, "outputs": report}, indent=1))
    return 1 if n_diff else 0


def _known(work: Path) -> dict[str, Path]:
    """Outputs of an earlier ``--only`` run of one side (its outputs.json)."""
    f = work / "outputs.json"
    if not f.is_file():
        return {}
    return {k: Path(v) for k, v in json.loads(f.read_text()).items()}


if __name__ == "__main__":
    sys.exit(main())
