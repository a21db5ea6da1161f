"""spotid.workflow and the census on simulated surveys: truth audit, CLI guards, end-to-end demo."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spotid.catalog import Catalog, now_iso
from spotid.types import iou as _iou
from spotid.workflow.truth import check_against_truth


_SHA = itertools.count(1)   # unique content hashes across the tests of this module


def _media(cat, path, dep="D1", w=100, h=100):
    n = next(_SHA)
    return cat.execute("INSERT INTO media (deployment_id, sha, path, rel_path, kind, timestamp, width, height, size_bytes) "
                       "VALUES (?,?,?,?,?,?,?,?,?)", (dep, f"s{n}", str(path), "x", "image",
                                                      "2024-01-01T00:00:00+10:00", w, h, 1)).lastrowid


def test_iou():
    assert _iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert _iou((0, 0, 10, 10), (5, 0, 10, 10)) == 50 / 150
    assert _iou((0, 0, 1, 1), (5, 5, 1, 1)) == 0.0


def test_truth_audit(tmp_path):
    card = tmp_path / "card"
    cat = Catalog(tmp_path / "c.db")
    with cat.transaction():
        cat.execute("INSERT INTO deployments (id, created_at) VALUES ('D1', ?)", (now_iso(),))
        ids = {}
        for name, fl in [("A-L", "left"), ("B-L", "left"), ("A-R", "right"), ("X-L", "left")]:
            ids[name] = cat.execute("INSERT INTO individuals (name, flank, status, created_at) VALUES (?,?,?,?)",
                                    (name, fl, "proposed", now_iso())).lastrowid
        # truth: ind1 in f1, f2 (left) and f4 (right); ind2 in f3 (left)
        # X-L: founded on f6, whose box lies on no leopard (a boar the classifier called leopard)
        plan = [("f1.jpg", "A-L"), ("f2.jpg", "B-L"), ("f3.jpg", "B-L"), ("f4.jpg", "A-R"), ("f5.jpg", "A-L"),
                ("f6.jpg", "X-L")]
        for fname, ident in plan:
            m = _media(cat, card / "D1" / fname)
            d = cat.execute("INSERT INTO detections (media_id, detector, category, conf, x, y, w, h) VALUES "
                            "(?,?,?,?,?,?,?,?)", (m, "t", 1, 0.9, 0.1, 0.1, 0.5, 0.5)).lastrowid
            cat.execute("INSERT INTO sightings (detection_id, individual_id, status, updated_at) VALUES (?,?,?,?)",
                        (d, ids[ident], "auto", now_iso()))
    truth = {
        "images": [{"id": k, "file_name": f"D1/f{k}.jpg", "width": 100, "height": 100} for k in range(1, 7)],
        "annotations": [
            {"image_id": 1, "bbox": [10, 10, 50, 50], "individual_id": "ind1", "flank": "left"},
            {"image_id": 2, "bbox": [12, 10, 50, 50], "individual_id": "ind1", "flank": "left"},
            {"image_id": 3, "bbox": [10, 10, 50, 50], "individual_id": "ind2", "flank": "left"},
            {"image_id": 4, "bbox": [10, 10, 50, 50], "individual_id": "ind1", "flank": "right"},
            {"image_id": 5, "bbox": [80, 80, 10, 10], "individual_id": "ind2", "flank": "left"},  # no overlap
        ],
    }
    res = check_against_truth(cat, truth, card)
    # B-L holds ind1 (f2) and ind2 (f3): one merged identity; ind1-left spread over A-L and (majority-tied) B-L
    assert res["identities"] == 3 and res["merged_identities"] == 1
    assert res["sightings_not_matched_to_truth"] == 2
    assert res["identities_not_leopard"] == 1   # X-L: counted by the census, invisible to the split/merge audit
    assert res["sighting_purity"] == 0.75
    cat.close()


def test_demo_refuses_existing_db(tmp_path):
    from spotid.cli import app

    db = tmp_path / "mine.db"
    db.write_text("precious")
    r = CliRunner().invoke(app, ["demo", "--db", str(db), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and db.read_text() == "precious"


def test_process_checks_identify_settings_before_any_work(tmp_path):
    from spotid.cli import app

    card = tmp_path / "card" / "DCIM"
    card.mkdir(parents=True)
    (card / "a.jpg").write_bytes(b"not a photo")
    bad = tmp_path / "bad.yaml"
    bad.write_text("identify:\n  pass_gap_s: ten\n")
    db = tmp_path / "c.db"
    r = CliRunner().invoke(app, ["process", str(tmp_path / "card"), "--deployment", "D1", "--db", str(db),
                                 "--config", str(bad)])
    assert r.exit_code == 2 and "pass_gap_s='ten': use a number or null" in r.output
    assert not db.exists()   # nothing ingested or detected before the mistake was named
    # a model path in the config that holds no model, or a broken card there: named before any work too
    broken = tmp_path / "emb"
    broken.mkdir()
    (broken / "card.json").write_text('{"name": "cut short"')
    for setting, want in ((f"flank_model: {tmp_path / 'nope'}", "no flank model at"),
                          (f"embedder_model: {broken}", "cannot be read as a model card")):
        bad.write_text(f"identify:\n  {setting}\n")
        r = CliRunner().invoke(app, ["process", str(tmp_path / "card"), "--deployment", "D1", "--db", str(db),
                                     "--config", str(bad)])
        assert r.exit_code == 2 and want in r.output and "--config" in r.output, r.output
        assert not db.exists()
    # the detector's model likewise (check_detector reads the cards of the models its backend uses)
    bad.write_text(f"detect:\n  classifier: {broken}\n")
    r = CliRunner().invoke(app, ["process", str(tmp_path / "card"), "--deployment", "D1", "--db", str(db),
                                 "--config", str(bad)])
    assert r.exit_code == 2 and "cannot be read as a model card" in r.output and "--config" in r.output, r.output
    assert not db.exists()


def test_process_needs_a_folder(tmp_path):
    from spotid.cli import app

    r = CliRunner().invoke(app, ["process", str(tmp_path / "nope"), "--deployment", "D1", "--db", str(tmp_path / "c.db"),
                                 "--json"])
    assert r.exit_code == 2


@pytest.mark.slow
def test_demo_end_to_end_tiny(tmp_path):
    """The whole chain on a tiny synthetic survey with the shipped models (accuracy is the demo's job;
    here: every stage ran, the truth is read, and the census figures are consistent)."""
    from spotid.workflow.demo import Demo, DemoConfig

    res = Demo(DemoConfig(seed=3, individuals=3, stations=1, days=2, empty_fraction=0.2, workers=1))(
        tmp_path / "demo.db", tmp_path / "out")
    assert res.true_individuals == 3 and 0 <= res.true_detected_individuals <= 3
    assert set(res.seconds) >= {"synth", "ingest", "detect", "identify", "census", "total"}
    assert res.census["mna"] == res.summary["mna"] >= 0
    assert res.card["frames"] > 0 and res.truth_check["detect"]["frames"] == res.card["frames"]
    assert (tmp_path / "out" / "census" / "census_summary.csv").is_file()


def test_census_on_simulated_survey_with_true_identities(tmp_path):
    """The synth world's triggers (no rendering) as a catalog with perfect identities: flank linking
    must join exactly the two flanks of each animal, and MNA must equal the animals photographed."""
    from spotid.census.census import Census
    from spotid.census.config import CensusConfig
    from spotid.synth.config import SynthConfig
    from spotid.synth.world import World

    from spotid.workflow.truth import catalog_from_world

    w = World(SynthConfig(seed=0, individuals=10, stations=4, days=10))
    cat = Catalog(tmp_path / "sim.db")
    ind = catalog_from_world(cat, w)
    res = Census(CensusConfig())(cat)
    truth_of = {v: k[0] for k, v in ind.items()}
    animals = {k[0] for k in ind}
    both = {a for a in animals if (a, "left") in ind and (a, "right") in ind}
    assert res.links and all(truth_of[lk.left_id] == truth_of[lk.right_id] for lk in res.links)
    assert res.bounds.linked == len(both) and res.mna == len(animals) == res.bounds.mna_min
    assert res.bounds.linked + res.bounds.left_only + res.bounds.right_only == len(animals)
    assert res.estimates is not None and res.estimates.best is not None
    cat.close()


def test_demo_next_step_names_the_set_aside_sightings(capsys):
    """The demo's last line is the next command; with sightings identify set aside it queues them too."""
    from types import SimpleNamespace

    from spotid.workflow.cli import _print_truth

    res = SimpleNamespace(census={"mna": 7, "N": 7.3, "lcl": 7.0, "ucl": 14.8, "model": "M0"},
                          truth_check={"split_individual_flanks": 0, "merged_identities": 0, "sighting_purity": 1.0,
                                       "counted_within_10pct_of_photographed": True, "ci_contains_true_N": True},
                          true_detected_individuals=7, true_individuals=8, seconds={"total": 1.0})
    _print_truth(res, Path("d.db"), set_aside=6)
    assert "next: spotid review --db d.db --include-auto --include-set-aside" in capsys.readouterr().out
    _print_truth(res, Path("d.db"))
    assert "next: spotid review --db d.db --include-auto    (" in capsys.readouterr().out
