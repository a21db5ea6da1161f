"""`spotid deployments add/import/list`: Camtrap DP columns, validation that names the fix, upserts."""
from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from spotid.catalog import Catalog
from spotid.cli import app
from spotid.ingest import DeploymentError, get_deployment, import_deployments_csv, make_deployment
from test_ingest_helpers import make_jpeg, T0

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def flat(text: str) -> str:
    """Error text without rich's box drawing and line wrapping."""
    return " ".join(text.replace("│", " ").split())


ADD = ["deployments", "add", "AL-012-A", "--lat", "43.1056", "--lon", "131.5781",
       "--start", "2024-02-01T08:00:00+10:00", "--end", "2024-04-01", "--camera-id", "H550HH12223665"]


def test_add_and_list(db_path):
    r = run(*ADD, "--location-id", "AL-012", "--db", db_path)
    assert r.exit_code == 0, r.output
    assert "added deployment AL-012-A" in r.stdout
    r = run("deployments", "list", "--db", db_path, "--json")
    [d] = json.loads(r.stdout)
    assert d["id"] == "AL-012-A" and d["location_id"] == "AL-012" and d["camera_id"] == "H550HH12223665"
    assert d["start"] == "2024-02-01T08:00:00+10:00"
    assert d["end"] == "2024-04-01T23:59:59+10:00"  # a bare end date means its last second, in the start's zone
    assert d["tz"] == "+10:00" and d["n_media"] == 0 and d["auto_created"] is False
    assert "AL-012-A" in run("deployments", "list", "--db", db_path).stdout
    # Adding the same again is a no-op; different details need --replace.
    assert run(*ADD, "--location-id", "AL-012", "--db", db_path).stdout.startswith("unchanged")
    r = run(*ADD, "--location-id", "AL-099", "--db", db_path)
    assert r.exit_code == 2 and "--replace" in flat(r.output)
    r = run(*ADD, "--location-id", "AL-099", "--replace", "--db", db_path)
    assert r.exit_code == 0 and r.stdout.startswith("updated")


@pytest.mark.parametrize("args, fix", [
    (["--lat", "95"], "out of range"),
    (["--start", "2024-02-01T08:00:00"], "pass --tz"),
    (["--start", "01/02/2024"], "write it like"),
    (["--end", "2024-01-01T00:00:00+10:00"], "before start"),
    (["--tz", "Asia/Vladivostok"], "use an offset"),
])
def test_add_validation_names_the_fix(db_path, args, fix):
    cli = list(ADD)
    for k, v in zip(args[::2], args[1::2], strict=True):
        if k in cli:
            cli[cli.index(k) + 1] = v
        else:
            cli += [k, v]
    r = run(*cli, "--db", db_path)
    assert r.exit_code == 2 and fix in flat(r.output), r.output


def test_naive_start_takes_tz_option():
    d = make_deployment("X", latitude=1, longitude=2, start="2024-02-01 08:00", end="2024-03-01", tz="+10")
    assert (d.start, d.end, d.tz) == ("2024-02-01T08:00:00+10:00", "2024-03-01T23:59:59+10:00", "+10:00")
    with pytest.raises(DeploymentError, match="Camtrap DP requires"):
        make_deployment("X", latitude=1, longitude=2)


def test_ingest_auto_creates_then_add_fills_it_in(tmp_path, db_path):
    make_jpeg(tmp_path / "card" / "a.jpg", dto=T0)
    r = run("ingest", tmp_path / "card", "-d", "AL-012-A", "--db", db_path, "--tz", "+10:00", "--json")
    assert r.exit_code == 0
    with Catalog(db_path) as cat:
        d = get_deployment(cat, "AL-012-A")
    assert d.auto_created and d.tz == "+10:00" and d.latitude is None
    r = run(*ADD, "--db", db_path)  # no --replace needed for an auto-created deployment
    assert r.exit_code == 0 and r.stdout.startswith("updated")
    [d] = json.loads(run("deployments", "list", "--db", db_path, "--json").stdout)
    assert d["auto_created"] is False and d["latitude"] == 43.1056 and d["n_media"] == 1


def _write_csv(path, rows):
    cols = ["deploymentID", "locationID", "latitude", "longitude", "deploymentStart", "deploymentEnd",
            "cameraID", "cameraTilt", "baitUse", "myNotes"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow(r)


def test_import_csv_upserts_and_keeps_camtrap_fields(tmp_path, db_path):
    f = tmp_path / "deployments.csv"
    rows = [
        {"deploymentID": "A", "locationID": "S1", "latitude": "43.1", "longitude": "131.5",
         "deploymentStart": "2024-02-01T08:00:00+10:00", "deploymentEnd": "2024-04-01T08:00:00+10:00",
         "cameraTilt": "-15", "baitUse": "false", "myNotes": "x"},
        {"deploymentID": "B", "locationID": "S1", "latitude": "43.1", "longitude": "131.5",
         "deploymentStart": "2024-02-01T08:00:00+10:00", "deploymentEnd": "2024-04-01T08:00:00+10:00"},
    ]
    _write_csv(f, rows)
    r = run("deployments", "import", f, "--db", db_path, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"added": ["A", "B"], "updated": [], "unchanged": []}
    assert json.loads(run("deployments", "import", f, "--db", db_path, "--json").stdout)["unchanged"] == ["A", "B"]
    rows[1]["cameraID"] = "CAM-7"
    _write_csv(f, rows)
    assert json.loads(run("deployments", "import", f, "--db", db_path, "--json").stdout)["updated"] == ["B"]
    with Catalog(db_path) as cat:
        a = get_deployment(cat, "A")
        assert a.extra == {"cameraTilt": "-15", "baitUse": "false"} and a.location_id == "S1"
        assert get_deployment(cat, "B").camera_id == "CAM-7"
        assert cat.scalar("SELECT COUNT(*) FROM deployments") == 2


def test_import_csv_bad_rows_import_nothing(tmp_path, db_path):
    f = tmp_path / "deployments.csv"
    good = {"deploymentID": "A", "latitude": "43.1", "longitude": "131.5",
            "deploymentStart": "2024-02-01T08:00:00+10:00", "deploymentEnd": "2024-04-01T08:00:00+10:00"}
    _write_csv(f, [good, dict(good, deploymentID="B", latitude="north"), dict(good)])
    r = run("deployments", "import", f, "--db", db_path)
    out = flat(r.output)
    assert r.exit_code == 2
    assert "line 3" in out and "not a number" in out and "line 4" in out and "twice" in out
    with Catalog(db_path) as cat:
        assert cat.scalar("SELECT COUNT(*) FROM deployments") == 0
    f.write_text("id,lat\n1,2\n")
    r = run("deployments", "import", f, "--db", db_path)
    assert r.exit_code == 2 and "missing Camtrap DP column" in flat(r.output)


@pytest.mark.shared
def test_import_official_camtrap_dp_example(shared, db_path):
    path = shared / "data/camtrap-dp/example/deployments.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        src = list(csv.DictReader(fh))
    with Catalog(db_path) as cat:
        res = import_deployments_csv(cat, path)
        assert len(res.added) == len(src) and import_deployments_csv(cat, path).unchanged == res.added
        d = get_deployment(cat, src[0]["deploymentID"])
    assert d.start == src[0]["deploymentStart"] and d.end == src[0]["deploymentEnd"]
    assert d.latitude == float(src[0]["latitude"]) and d.camera_model == src[0]["cameraModel"]
    assert d.tz == src[0]["deploymentStart"][-6:]
    assert d.extra["cameraHeading"] == src[0]["cameraHeading"] and d.feature_type == src[0]["featureType"]
