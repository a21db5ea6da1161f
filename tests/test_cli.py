"""The command line as a whole: Ctrl-C in any command, the --threads default."""
from __future__ import annotations

import os

import pytest
import typer
from typer.testing import CliRunner

from spotid.cli import app, resume_hint

runner = CliRunner()


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
