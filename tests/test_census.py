"""Catalog census on a hand-built catalog: events, MNA, flank links, bounds, effort, outputs, CLI."""
from __future__ import annotations

import csv
import dataclasses
import json
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from spotid.catalog import Catalog
from spotid.census.census import Census
from spotid.census.config import CensusConfig
from spotid.census.history import estimate_file
from spotid.config import default_yaml, load_config

sys.path.insert(0, str(Path(__file__).parent))
from test_census_fixtures import Builder, T  # noqa: E402


@pytest.fixture
def catalog(db_path):
    cat = Catalog(db_path)
    b = Builder(cat)
    b.deployment("D1a", "S1", T(1, "00:00"), T(5, "00:00"), 43.10, 131.90)
    b.deployment("D1b", "S1", T(1, "00:00"), T(5, "00:00"), 43.10, 131.90)
    b.deployment("D2", "S2", None, None, 43.12, 131.95)  # no dates: effort from first/last media
    for name, fl in [("L1", "left"), ("R1", "right"), ("L2", "left"), ("R2", "right"), ("R5", "right")]:
        b.individual(name, fl)
    b.individual("L3", "left", status="merged", merged_into="L2")
    b.sighting("D1a", T(1, "20:00"), "L1")
    b.sighting("D1b", T(1, "20:00", 5), "R1")          # 5 s later, other camera of S1: link L1-R1
    b.sighting("D1a", T(1, "20:10"), "L1", "auto")     # 10 min later: same event
    b.sighting("D1a", T(1, "21:00"), "L1")             # 50 min after the last: a new event
    b.sighting("D1a", T(3, "10:00"), "L1")
    b.sighting("D2", T(2, "03:00"), "L2")
    b.sighting("D2", T(3, "22:00"), "L3")              # merged into L2
    b.sighting("D1b", T(4, "01:00"), "R2")
    b.sighting("D1b", T(4, "02:00"), "R5", "pending")  # not counted by default
    b.sighting("D1a", T(2, "12:00"), None, "unusable")
    yield cat, b
    cat.close()


def test_census_counts(catalog):
    cat, _ = catalog
    res = Census(CensusConfig())(cat)
    s = res.summary()
    assert (s["linked"], s["left_only"], s["right_only"]) == (1, 1, 1)
    assert (s["mna_min"], s["mna_max"], s["mna"]) == (2, 3, 2)
    assert s["n_occasions"] == 4 and s["period_start"].startswith("2024-03-01T00:00")
    assert s["n_sightings"] == 8 and s["n_events"] == 7  # L1 3, R1 1, L2 2, R2 1
    assert s["n_unusable_sightings"] == 1                # the unidentifiable one on day 2, told, not counted
    assert res.unusable_reasons == {"marked unusable in review": 1}   # no identify reason: a person's
    with cat.transaction():
        cat.execute("UPDATE sightings SET set_aside_reason = 'no left/right flank' WHERE status = 'unusable'")
    assert Census(CensusConfig())(cat).to_dict()["unusable_reasons"] == {"no left/right flank": 1}
    names = {v["name"]: v for v in res.identities.values()}
    assert set(names) == {"L1", "R1", "L2", "R2"}
    assert names["L1"]["n_events"] == 3 and names["L1"]["n_sightings"] == 4
    assert names["L2"]["n_sightings"] == 2 and names["L1"]["linked_to"] == "R1"
    assert names["L1"]["animal"] == names["R1"]["animal"] == "L1|R1"
    assert res.histories[names["L1"]["id"]].tolist() == [1, 0, 1, 0]
    assert res.histories[names["L2"]["id"]].tolist() == [0, 1, 1, 0]
    assert res.estimate_flank == "left" and res.estimates.mna == 2
    # the link is stored with its reason and evidence
    rows = cat.query("SELECT left_id, right_id, reason, evidence_json FROM flank_links")
    assert len(rows) == 1 and (rows[0]["left_id"], rows[0]["right_id"]) == (names["L1"]["id"], names["R1"]["id"])
    ev = json.loads(rows[0]["evidence_json"])
    assert "S1" in rows[0]["reason"] and ev["pairs"][0]["dt_seconds"] == 5.0
    # a second run reuses the stored link and does not duplicate it
    res2 = Census(CensusConfig())(cat)
    assert res2.links[0].source == "catalog" and cat.scalar("SELECT COUNT(*) FROM flank_links") == 1


def test_effort(catalog):
    cat, _ = catalog
    res = Census(CensusConfig())(cat)
    s1, s2 = res.stations["S1"], res.stations["S2"]
    assert s1.trap_nights == pytest.approx(4.0) and s1.camera_nights == pytest.approx(8.0)
    assert s1.usage == pytest.approx([1, 1, 1, 1])
    assert s2.effort_source.startswith("first/last media")
    assert s2.trap_nights == pytest.approx(1 + 19 / 24)
    assert s1.n_events == 5 and s2.n_events == 2
    assert s1.x_m is not None and s2.x_m - s1.x_m > 3000  # ~4 km east


def test_independence_setting(catalog):
    cat, _ = catalog
    res = Census(CensusConfig(independence_minutes=60, write_flank_links=False))(cat)
    l1 = [v for v in res.identities.values() if v["name"] == "L1"][0]
    assert l1["n_events"] == 2  # 20:00, 20:10, 21:00 are one event with a 60-min gap


def test_link_window(catalog):
    cat, _ = catalog
    res = Census(CensusConfig(flank_link_seconds=2, write_flank_links=False))(cat)
    assert res.links == [] and (res.bounds.linked, res.bounds.left_only, res.bounds.right_only) == (0, 2, 2)
    assert (res.bounds.mna_min, res.bounds.mna_max) == (2, 4)


def test_pending_and_period(catalog):
    cat, _ = catalog
    res = Census(CensusConfig(statuses=("auto", "confirmed", "pending")))(cat)
    assert res.bounds.right_only == 2 and res.bounds.mna_max == 4
    assert not any("wait for review" in w for w in res.warnings)
    # by default the one pending sighting is left out, and the census says so
    assert any(w.startswith("1 sighting(s) wait for review") for w in Census(CensusConfig())(cat).warnings)
    res = Census(CensusConfig(start="2024-03-02", end="2024-03-04"))(cat)
    s = res.summary()
    # period 2..4 March inclusive: L1 (seen on 1 March too: resighted), L2 new, R2 new
    assert s["n_occasions"] == 3 and (s["linked"], s["left_only"], s["right_only"]) == (1, 1, 1)
    assert (s["new_animals"], s["resighted_animals"]) == (2, 1)
    assert s["n_unusable_sightings"] == 1                # 2 March: inside
    assert Census(CensusConfig(start="2024-03-03"))(cat).summary()["n_unusable_sightings"] == 0
    assert res.stations["S1"].trap_nights == pytest.approx(3.0)
    with pytest.raises(ValueError):
        Census(CensusConfig(start="2024-03-04", end="2024-03-02"))(cat)


def test_ambiguous_links_are_not_used(db_path):
    cat = Catalog(db_path)
    b = Builder(cat)
    b.deployment("A", "S", T(1, "00:00"), T(3, "00:00"))
    b.deployment("B", "S", T(1, "00:00"), T(3, "00:00"))
    for name, fl in [("L9", "left"), ("R9", "right"), ("R10", "right")]:
        b.individual(name, fl)
    b.sighting("A", T(1, "10:00"), "L9")
    b.sighting("B", T(1, "10:00", 3), "R9")
    b.sighting("A", T(2, "10:00"), "L9")
    b.sighting("B", T(2, "10:00", 4), "R10")
    res = Census(CensusConfig())(cat)
    assert res.links == [] and len(res.link_conflicts) == 2
    assert (res.bounds.mna_min, res.bounds.mna_max) == (2, 3)
    assert any("ambiguous" in w for w in res.warnings)
    cat.close()


def test_same_camera_is_not_a_link(db_path):
    cat = Catalog(db_path)
    b = Builder(cat)
    b.deployment("A", "S", T(1, "00:00"), T(3, "00:00"))
    b.individual("L", "left")
    b.individual("R", "right")
    b.sighting("A", T(1, "10:00"), "L")
    b.sighting("A", T(1, "10:00", 2), "R")  # two animals in front of one camera
    res = Census(CensusConfig())(cat)
    assert res.links == [] and res.bounds.mna_min == 1 and res.bounds.mna_max == 2
    cat.close()


def test_outputs(catalog, tmp_path):
    from spotid.census.outputs import write_census

    cat, _ = catalog
    res = Census(CensusConfig())(cat)
    paths = write_census(res, tmp_path / "out")
    out = tmp_path / "out"
    for name in ("census_summary.csv", "individuals.csv", "capture_history.csv", "stations.csv", "census.json",
                 "individuals.json", "stations.json", "secr_capthist_left.txt", "secr_traps.txt",
                 "census_config.yaml", "estimates.csv", "events.csv", "flank_links.csv"):
        assert (out / name).is_file(), name
    summ = list(csv.DictReader((out / "census_summary.csv").open()))
    assert len(summ) == 1 and summ[0]["mna"] == "2" and summ[0]["mna_max"] == "3"
    # the capture history reads back through `census estimate` with the same bounds
    back = estimate_file(out / "capture_history.csv")
    assert back.two_flank and (back.bounds.mna_min, back.bounds.mna_max) == (2, 3)
    # secr trapID format: Session ID Occasion Detector, detectors listed in the traps file
    cap = [ln.split() for ln in (out / "secr_capthist_left.txt").read_text().splitlines() if not ln.startswith("#")]
    traps = [ln.split() for ln in (out / "secr_traps.txt").read_text().splitlines() if not ln.startswith("#")]
    assert {tuple(r[1:]) for r in cap} == {("L1+R1", "1", "S1"), ("L1+R1", "3", "S1"), ("L2", "2", "S2"),
                                           ("L2", "3", "S2")}
    assert {r[0] for r in traps} == {"S1", "S2"} and all(len(r[3]) == 4 for r in traps)
    assert yaml.safe_load((out / "census_config.yaml").read_text())["independence_minutes"] == 30.0
    doc = json.loads((out / "census.json").read_text())
    assert doc["summary"]["mna"] == 2 and doc["flank_links"][0]["left"] == "L1"
    assert "NaN" not in (out / "census.json").read_text()
    assert set(paths) >= {"census.json", "capture_history.csv"}


def test_cli_census(catalog, tmp_path):
    from spotid.cli import app

    cat, _ = catalog
    runner = CliRunner()
    r = runner.invoke(app, ["census", "--db", str(cat.path), "--json", "--out", str(tmp_path / "o"),
                            "--independence", "1h"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["summary"]["mna"] == 2 and d["summary"]["n_events"] == 6
    assert (tmp_path / "o" / "census_summary.csv").is_file()
    assert d["unusable_reasons"] == {"marked unusable in review": 1}
    r = runner.invoke(app, ["census", "--db", str(cat.path), "--include-pending"])
    assert r.exit_code == 0 and "MNA" in r.output
    assert "not identifiable: 1 × marked unusable in review" in r.output
    r = runner.invoke(app, ["census", "--db", str(tmp_path / "missing.db")])
    assert r.exit_code == 2
    r = runner.invoke(app, ["census", "--db", str(cat.path), "--independence", "soon"])
    assert r.exit_code == 2


def test_config_yaml_matches_dataclass():
    path = default_yaml(CensusConfig)
    assert path.name == "census.yaml"
    assert load_config(CensusConfig, path) == CensusConfig()
    assert set(yaml.safe_load(path.read_text())) == {f.name for f in dataclasses.fields(CensusConfig)}


def test_warnings_name_set_aside_sightings_and_occasions_without_effort(db_path):
    """The census says what it could not count: sightings set aside, and occasions when no camera ran."""
    with Catalog(db_path) as cat:
        b = Builder(cat)
        b.deployment("D1", "S1", T(1, "00:00"), T(3, "00:00"), 43.1, 131.9)    # days 1-2
        b.deployment("D2", "S2", T(6, "00:00"), T(8, "00:00"), 43.1, 131.95)   # days 6-7: days 3-5 idle
        b.individual("L1", "left")
        b.sighting("D1", T(1, "20:00"), "L1")
        b.sighting("D2", T(6, "21:00"), "L1")
        b.sighting("D2", T(7, "01:00"), None, status="unusable")
        res = Census(CensusConfig())(cat)
    assert res.n_occasions == 7 and res.mna == 1
    text = "\n".join(res.warnings)
    assert "1 leopard sighting(s) in the period were set aside" in text
    assert "3 of 7 occasion(s) have no camera operating (2024-03-03, 2024-03-04, 2024-03-05)" in text
