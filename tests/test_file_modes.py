"""Files spotid writes get the user's umask (0644 under 022), not the 0600 of a private temp file."""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from test_census_fixtures import simulated_catalog  # noqa: E402

from spotid.util import atomic_write_bytes, atomic_write_json, atomic_write_text  # noqa: E402

# umask -> the mode of a new file (0o666 less the umask, as open() gives)
MODES = {0o022: 0o644, 0o077: 0o600, 0o002: 0o664}


@pytest.fixture(params=sorted(MODES), ids=lambda u: f"umask{u:03o}")
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_follow_the_umask(tmp_path, umask):
    a = atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    t = atomic_write_text(tmp_path / "sub" / "t.csv", "x,y\n")
    j = atomic_write_json(tmp_path / "j.json", {"k": 1})
    assert [_mode(p) for p in (a, t, j)] == [MODES[umask]] * 3
    assert a.read_bytes() == b"\x00\x01" and j.read_text() == '{\n "k": 1\n}\n'
    # a file an earlier version left at 0600 gets the umask's mode when it is written again
    os.chmod(t, 0o600)
    atomic_write_text(t, "x,y\n1,2\n")
    assert _mode(t) == MODES[umask] and t.read_text() == "x,y\n1,2\n"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.bin", "j.json", "t.csv"]  # no temp left


def test_a_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(tmp_path / "x.json", b"abc")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o077], indirect=True, ids=["umask022", "umask077"])
def test_census_and_export_outputs_follow_the_umask(tmp_path, umask):
    """Census tables, report.html and its images, Camtrap DP CSVs and datapackage.json, MegaDetector JSON."""
    from spotid.cli import app

    cat, _ = simulated_catalog(tmp_path / "sim.db", n_animals=5, n_stations=4, days=8, p=0.3, seed=2)
    cat.close()
    db, out = str(tmp_path / "sim.db"), tmp_path / "out"
    runner = CliRunner()
    for args in (["census", "--db", db, "--out", str(out / "census")],
                 ["export", "camtrapdp", "--db", db, "--out", str(out / "dp"), "--no-secr"],
                 ["export", "mdjson", "--db", db, "--out", str(out / "md.json")],
                 ["export", "report", "--db", db, "--out", str(out / "report"), "--no-secr"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0, (args, r.output)
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"capture_history.csv", "report.html", "media.csv", "observations.csv", "datapackage.json",
            "md.json"} <= names
    assert {p.relative_to(out).as_posix(): oct(_mode(p)) for p in files if _mode(p) != MODES[umask]} == {}


def test_model_card_follows_the_umask(tmp_path, umask):
    from spotid.modelstore import write_card

    (tmp_path / "w.pt").write_bytes(b"weights")
    write_card(tmp_path, name="m", kind="embedder", weights="w.pt")
    assert _mode(tmp_path / "card.json") == MODES[umask]
