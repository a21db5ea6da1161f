"""Exports: Camtrap DP 1.0.2 (validated offline), MegaDetector JSON, census report."""
from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from test_census_fixtures import Builder, simulated_catalog  # noqa: E402

from spotid.catalog import Catalog  # noqa: E402
from spotid.export.camtrapdp import LEOPARD, ExportError, export_camtrapdp  # noqa: E402
from spotid.export.paths import safe_rel_path  # noqa: E402


@pytest.fixture
def sim(tmp_path):
    cat, truth = simulated_catalog(tmp_path / "sim.db", n_animals=6, n_stations=4, days=10, p=0.3, seed=1)
    # one flank link stored, one reviewer confirmation recorded
    yield cat, truth
    cat.close()


def _rows(path):
    return list(csv.DictReader(path.open(encoding="utf-8")))


def test_camtrapdp_content(sim, tmp_path):
    cat, _ = sim
    res = export_camtrapdp(cat, tmp_path / "dp")
    out = tmp_path / "dp"
    pkg = json.loads((out / "datapackage.json").read_text())
    assert pkg["project"]["individualAnimals"] is True
    assert pkg["taxonomic"][0]["scientificName"] == LEOPARD
    assert {r["name"] for r in pkg["resources"]} == {"deployments", "media", "observations"}
    media = _rows(out / "media.csv")
    assert media and all(not m["filePath"].startswith(("/", ".", "~")) and ".." not in m["filePath"] for m in media)
    assert all(re.search(r"[+-]\d\d:\d\d$", m["timestamp"]) for m in media)
    obs = _rows(out / "observations.csv")
    leo = [o for o in obs if o["scientificName"] == LEOPARD]
    assert len(leo) == res.n_leopard_observations > 0
    assert all(o["individualID"] for o in leo)  # every counted sighting carries its individual
    assert {o["classificationMethod"] for o in leo} == {"human", "machine"}
    for o in leo:
        for k in ("bboxX", "bboxY", "bboxWidth", "bboxHeight"):
            assert 0 <= float(o[k]) <= 1
        if o["classificationMethod"] == "machine":
            assert 0 <= float(o["classificationProbability"]) <= 1
    assert any(o["observationType"] == "blank" for o in obs)
    assert any(o["observationType"] == "animal" and not o["scientificName"] for o in obs)  # the non-leopard


def test_individual_id_follows_flank_links(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    b = Builder(cat)
    b.deployment("A", "S", "2024-03-01T00:00:00+10:00", "2024-03-03T00:00:00+10:00", 43.1, 131.9)
    b.deployment("B", "S", "2024-03-01T00:00:00+10:00", "2024-03-03T00:00:00+10:00", 43.1, 131.9)
    b.individual("AL-1-L", "left")
    b.individual("AL-1-R", "right")
    b.individual("AL-9-L", "left", status="merged", merged_into="AL-1-L")
    b.sighting("A", "2024-03-01T10:00:00+10:00", "AL-9-L")
    b.sighting("B", "2024-03-01T10:00:04+10:00", "AL-1-R", "auto")
    from spotid.census.census import Census

    Census()(cat)  # stores the flank link
    export_camtrapdp(cat, tmp_path / "dp")
    ids = {o["individualID"] for o in _rows(tmp_path / "dp" / "observations.csv") if o["individualID"]}
    assert ids == {"AL-1-L|AL-1-R"}
    cat.close()


def test_missing_coordinates_is_an_error(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    Builder(cat).deployment("A", "S", "2024-03-01T00:00:00+10:00", "2024-03-03T00:00:00+10:00")
    with pytest.raises(ExportError, match="latitude"):
        export_camtrapdp(cat, tmp_path / "dp")
    cat.close()


def test_safe_rel_path():
    assert safe_rel_path("../../etc/x.jpg", "f") == "etc/x.jpg"
    assert safe_rel_path("/abs/DCIM/a.JPG", "f") == "abs/DCIM/a.JPG"
    assert safe_rel_path(".hidden/a.jpg", "f") == "hidden/a.jpg"
    assert safe_rel_path("", "media/3") == "media/3"


@pytest.mark.shared
def test_camtrapdp_validates_offline(sim, tmp_path, shared):
    """frictionless against the local 1.0.2 table schemas + jsonschema against the local profile."""
    pytest.importorskip("frictionless")
    from spotid.export.validate import validate_package

    schemas = shared / "data" / "camtrap-dp"
    # the validator accepts the official example and rejects a broken copy
    assert validate_package(schemas / "example", schemas) == []
    cat, _ = sim
    from spotid.census.census import Census
    from spotid.census.config import CensusConfig

    summary = Census(CensusConfig(secr=True, secr_buffer_m=3000.0, secr_nx=32, write_flank_links=False))(cat).summary()
    export_camtrapdp(cat, tmp_path / "dp", census=summary)
    assert validate_package(tmp_path / "dp", schemas) == []          # the custom census property is allowed
    stored = json.loads((tmp_path / "dp" / "datapackage.json").read_text())["spotid:census"]
    assert stored["mna"] == summary["mna"] and stored["D_per_100km2"] == pytest.approx(summary["D_per_100km2"])
    obs = (tmp_path / "dp" / "observations.csv").read_text().replace(",media,", ",frame,", 1)
    (tmp_path / "dp" / "observations.csv").write_text(obs)
    pkg = json.loads((tmp_path / "dp" / "datapackage.json").read_text())
    del pkg["project"]["individualAnimals"]
    (tmp_path / "dp" / "datapackage.json").write_text(json.dumps(pkg))
    errs = validate_package(tmp_path / "dp", schemas)
    assert any("observations" in e for e in errs) and any("individualAnimals" in e for e in errs)


def test_mdjson_export_roundtrip(sim, tmp_path):
    from spotid.detect.mdjson import read_batch
    from spotid.export.mdjson_export import export_mdjson

    cat, _ = sim
    n = export_mdjson(cat, tmp_path / "md.json")
    batch = read_batch(tmp_path / "md.json")
    assert len(batch.images) == n == cat.scalar("SELECT COUNT(*) FROM detection_status")
    dets = [d for im in batch.images for d in im.detections]
    assert len(dets) == cat.scalar("SELECT COUNT(*) FROM detections")
    assert any(d.label == "leopard" for d in dets)
    assert all(not im.file.startswith("/") for im in batch.images)


def test_report(sim, tmp_path):
    from PIL import Image

    from spotid.census.census import Census
    from spotid.census.config import CensusConfig
    from spotid.export.report import write_report

    cat, _ = sim
    res = Census(CensusConfig(write_flank_links=False))(cat)
    html = write_report(res, tmp_path / "rep")
    text = html.read_text()
    for png in ("stations.png", "capture_history.png", "sightings_over_time.png", "estimates.png"):
        assert png in text
        im = Image.open(tmp_path / "rep" / png)
        assert im.size[0] > 300 and im.size[1] > 200
    assert "MNA" in text and (tmp_path / "rep" / "tables" / "census_summary.csv").is_file()
    assert cat.scalar("SELECT COUNT(*) FROM flank_links") == 0  # a report does not write to the catalog


def test_cli_exports(sim, tmp_path):
    from spotid.cli import app

    cat, _ = sim
    runner = CliRunner()
    r = runner.invoke(app, ["export", "camtrapdp", "--db", str(cat.path), "--out", str(tmp_path / "dp"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["leopard_observations"] > 0
    r = runner.invoke(app, ["export", "mdjson", "--db", str(cat.path), "--out", str(tmp_path / "md.json")])
    assert r.exit_code == 0 and (tmp_path / "md.json").is_file()
    r = runner.invoke(app, ["export", "report", "--db", str(cat.path), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0 and (tmp_path / "rep" / "report.html").is_file()
    r = runner.invoke(app, ["export", "camtrapdp", "--db", str(tmp_path / "none.db"), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2


def test_export_yaml_matches_dataclass():
    import dataclasses

    import yaml

    from spotid.config import default_yaml, load_config
    from spotid.export.camtrapdp import CamtrapDPConfig

    path = default_yaml(CamtrapDPConfig)
    assert path.name == "export.yaml"
    assert load_config(CamtrapDPConfig, path) == CamtrapDPConfig()
    assert set(yaml.safe_load(path.read_text())) == {f.name for f in dataclasses.fields(CamtrapDPConfig)}
