"""The command line as a whole: an example in every --help, Ctrl-C in any command, the --threads default."""
from __future__ import annotations

import os

import pytest
import typer
from typer.testing import CliRunner

from spotid.cli import app, resume_hint

runner = CliRunner()


def _commands(cmd=None, path=("spotid",)):
    """Every (path, click command) of the app, groups included, the root first."""
    cmd = cmd or typer.main.get_command(app)
    yield path, cmd
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


ALL = list(_commands())


def test_the_walk_reaches_every_level():
    names = {" ".join(p) for p, _ in ALL}
    assert {"spotid", "spotid ingest", "spotid census", "spotid census secr", "spotid train embedder",
            "spotid models use", "spotid eval reid"} <= names
    assert len(ALL) >= 40


@pytest.mark.parametrize("path,cmd", ALL, ids=[" ".join(p) for p, _ in ALL])
def test_every_help_has_an_example_naming_its_command(path, cmd):
    r = runner.invoke(app, [*path[1:], "--help"])
    assert r.exit_code == 0, r.output
    shown = [line.strip(" │") for line in r.output.splitlines()]
    name = " ".join(path)
    examples = [line for line in shown if line == name or line.startswith(name + " ")]
    assert examples, f"`{name} --help` has no example line starting with '{name}':\n{r.output}"
    # each example written in the help is shown whole: not re-wrapped by click or folded at 80 columns
    written = [line.strip() for line in (cmd.help or "").splitlines() if line.strip().startswith("spotid ")]
    assert written and all(w in shown for w in written), (written, r.output)


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_in_a_resumable_command_says_rerun_and_exits_130(tmp_path, monkeypatch):
    import spotid.ingest.ingester as ingester

    card = tmp_path / "card" / "DCIM"
    card.mkdir(parents=True)
    (card / "PICT0001.JPG").write_bytes(b"not really a jpeg")
    monkeypatch.setattr(ingester.Ingester, "__call__", _interrupt)
    r = runner.invoke(app, ["-v", "ingest", str(card.parent), "-d", "B1", "--db", str(tmp_path / "c.db")])
    assert r.exit_code == 130
    assert r.output.strip().splitlines()[-1] == "interrupted: re-run the same command to resume"


def test_ctrl_c_in_another_command_says_interrupted_and_exits_130(tmp_path, monkeypatch):
    import spotid.ingest.deployments as deployments

    monkeypatch.setattr(deployments, "make_deployment", _interrupt)
    r = runner.invoke(app, ["deployments", "add", "S01A", "--lat", "43.1", "--lon", "131.9", "--start", "2024-03-01",
                            "--end", "2024-04-01", "--db", str(tmp_path / "c.db")])
    assert r.exit_code == 130
    assert r.output.strip().splitlines()[-1] == "interrupted"


@pytest.mark.parametrize("command,args,hint", [
    ("ingest", ["card", "-d", "S01A"], "re-run the same command to resume"),
    ("process", ["card", "--deployment", "S01A"], "re-run the same command to resume"),
    ("identify", ["--db", "x.db"], "re-run the same command to resume"),
    ("detect", ["--db", "x.db"], "re-run the same command to resume"),            # catalog mode
    ("detect", ["card", "-o", "md.json"], "re-run the same command with --resume to resume"),   # folder mode
    ("detect", ["card", "--resume"], "re-run the same command to resume"),
    ("train detector", ["--out", "m"], "re-run the same command to resume"),
    ("train detector", ["--no-resume"], "re-run the same command without --no-resume to resume"),
    ("census", ["--db", "x.db"], None),
    ("export camtrapdp", ["--db", "x.db", "--out", "p"], None),
])
def test_resume_hint(command, args, hint):
    assert resume_hint(command, [*command.split(), *args]) == hint


def test_threads_default_to_all_cores_in_detect_identify_and_process(monkeypatch):
    from spotid.cliutil import set_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import torch

    before = torch.get_num_threads()
    try:
        assert set_threads(None) == set_threads(0) == cores == torch.get_num_threads()
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_threads(None) == 1
        assert set_threads(3) == 3 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    for name in ("detect", "identify", "process"):
        opt = next(p for p in typer.main.get_command(app).commands[name].params if p.name == "threads")
        assert opt.default is None, name   # None = all cores (set_threads)


def test_process_takes_detects_backend_options(tmp_path, monkeypatch):
    """`process` has detect's --detector / --megadetector-weights / --no-static-fp and ingest's -d."""
    import json

    import spotid.workflow.process as process
    from spotid.catalog import Catalog
    from spotid.detect import mdjson
    from spotid.types import Detection, ImageResult
    from test_detect import _jpeg

    card = tmp_path / "card"
    for i in range(2):
        _jpeg(card / "DCIM/100RECNX" / f"IMG_{i:04d}.JPG", seed=i)
    md = tmp_path / "md.json"
    mdjson.write_batch(md, [ImageResult("DCIM/100RECNX/IMG_0000.JPG", (Detection(1, 0.9, (0.1, 0.1, 0.3, 0.3)),)),
                            ImageResult("DCIM/100RECNX/IMG_0001.JPG", ())],
                       detector="MDv5a", typical_threshold=0.2, conservative_threshold=0.05)
    monkeypatch.setattr(process, "run_identify", lambda cat, **kw: {})   # identify is not what is tested here
    db = tmp_path / "c.db"
    r = runner.invoke(app, ["process", str(card), "-d", "D1", "--db", str(db), "--detector", f"mdjson:{md}",
                            "--no-static-fp", "--threads", "1", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["detect"]["detector"] == "mdjson:MDv5a"
    with Catalog(db) as cat:
        run = json.loads(cat.scalar("SELECT config_json FROM runs WHERE stage = 'detect'"))
        assert run["detector"] == f"mdjson:{md}" and run["static_fp"] is False
        assert cat.scalar("SELECT COUNT(*) FROM detections") == 1
    r = runner.invoke(app, ["process", str(card), "-d", "D1", "--db", str(db), "--detector", "yolo", "--threads", "1"])
    assert r.exit_code == 2 and "use builtin, megadetector or mdjson" in " ".join(r.output.replace("│", " ").split())


@pytest.mark.parametrize("detector, says", [("yolo", "use builtin, megadetector or mdjson"),
                                            ("mdjson:{tmp}/missing.json", "no such MegaDetector results file"),
                                            ("megadetector", "needs a weights file")])
def test_process_refuses_a_bad_detector_before_it_creates_a_catalog(tmp_path, detector, says):
    """A misspelt --detector, a missing MD JSON or MegaDetector without weights: exit 2, and no new catalog."""
    from test_detect import _jpeg

    card = tmp_path / "card"
    _jpeg(card / "DCIM/100RECNX" / "IMG_0000.JPG", seed=0)
    db = tmp_path / "new.db"
    r = runner.invoke(app, ["process", str(card), "-d", "D1", "--db", str(db), "--threads", "1",
                            "--detector", detector.format(tmp=tmp_path)])
    assert r.exit_code == 2, r.output
    assert says in " ".join(r.output.replace("│", " ").split())
    assert not db.exists()
