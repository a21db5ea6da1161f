"""Review decisions as training data: the 'not a leopard' decision, `spotid export training-crops`."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spotid.catalog import Catalog
from spotid.cli import app
from spotid.export.training_crops import reviewed_crops
from spotid.review.decisions import Reviewer
from spotid.review.demo import build_demo_catalog


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("tc-demo")
    d = build_demo_catalog(root / "demo.db", root / "img", n_individuals=4, n_pending=6, seed=3)
    return root, d


@pytest.fixture
def demo(template, tmp_path):
    root, d = template
    shutil.copy(root / "demo.db", tmp_path / "demo.db")
    return tmp_path / "demo.db", d


def _version(cat, sid):
    return int(cat.scalar("SELECT version FROM sightings WHERE id = ?", (sid,)))


def _decide(db: Path, d) -> dict[str, int]:
    """pending[0] confirmed to its true individual, [1] not a leopard, [2] unusable, [3] rejected (a wrong
    match says nothing about the crop), [4] confirmed and undone, [5] (the new animal) a new individual."""
    p = d.pending
    with Catalog(db) as cat:
        rv = Reviewer(cat, "anna")
        rv.confirm(p[0], _version(cat, p[0]), d.individuals[d.truth[p[0]]])
        rv.not_leopard(p[1], _version(cat, p[1]))
        rv.unusable(p[2], _version(cat, p[2]))
        rv.reject(p[3], _version(cat, p[3]))
        rv.confirm(p[4], _version(cat, p[4]), d.individuals[d.truth[p[4]]])
        rv.undo()
        rv.new_individual(p[5], _version(cat, p[5]), name="Kedr")
        det = {k: int(cat.scalar("SELECT detection_id FROM sightings WHERE id = ?", (p[i],)))
               for k, i in (("confirm", 0), ("not", 1), ("unusable", 2), ("reject", 3), ("undone", 4), ("new", 5))}
    return det


def test_not_leopard_decision_clears_identity_and_undoes(demo):
    db, d = demo
    sid = d.pending[1]
    with Catalog(db) as cat:
        rv = Reviewer(cat, "anna")
        dec = rv.not_leopard(sid, _version(cat, sid))
        row = cat.query("SELECT status, individual_id FROM sightings WHERE id = ?", (sid,))[0]
        assert (dec.action, row["status"], row["individual_id"]) == ("not_leopard", "rejected", None)
        assert [c.label for c in reviewed_crops(cat)] == ["other"]
        rv.undo()
        assert cat.scalar("SELECT status FROM sightings WHERE id = ?", (sid,)) == "pending"
        assert reviewed_crops(cat) == []


def test_review_page_posts_not_a_leopard(demo):
    from fastapi.testclient import TestClient

    from spotid.review.app import create_app

    db, d = demo
    sid = d.pending[2]
    client = TestClient(create_app(db, reviewer="anna"), base_url="http://127.0.0.1")
    assert 'data-act="not_leopard"' in client.get(f"/queue?sighting={sid}").text
    with Catalog(db) as cat:
        v = _version(cat, sid)
    r = client.post(f"/api/sightings/{sid}/not_leopard", json={"version": v})
    assert r.status_code == 200, r.text
    with Catalog(db) as cat:
        assert cat.scalar("SELECT action FROM review_decisions ORDER BY id DESC LIMIT 1") == "not_leopard"


def test_export_training_crops_folders_and_manifest(demo, tmp_path):
    db, d = demo
    det = _decide(db, d)
    truth0 = d.truth[d.pending[0]]
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["export", "training-crops", "--db", str(db), "--out", str(out)])
    assert r.exit_code == 0, r.output
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.jpg"))
    assert files == sorted([
        f"leopard-other/leopard/det{det['confirm']}.jpg", f"leopard-other/leopard/det{det['unusable']}.jpg",
        f"leopard-other/leopard/det{det['new']}.jpg", f"leopard-other/other/det{det['not']}.jpg",
        f"flank/left/det{det['confirm']}.jpg", f"flank/left/det{det['new']}.jpg",
        f"identity/{truth0}/left/det{det['confirm']}.jpg", f"identity/Kedr/left/det{det['new']}.jpg"])
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert [(int(x["detection_id"]), x["decision"], x["label"], x["flank"], x["individual"], x["reviewer"])
            for x in rows] == [(det["confirm"], "confirm", "leopard", "left", truth0, "anna"),
                               (det["not"], "not_leopard", "other", "", "", "anna"),
                               (det["unusable"], "unusable", "leopard", "", "", "anna"),
                               (det["new"], "new", "leopard", "left", "Kedr", "anna")]
    assert all(x["decided_at"].endswith("+00:00") and x["encounter"] for x in rows)
    assert "4 reviewed crops" in r.output and "2 identities" in r.output


def test_export_training_crops_without_decisions_names_the_fix(demo, tmp_path):
    db, _ = demo
    r = CliRunner().invoke(app, ["export", "training-crops", "--db", str(db), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "spotid review" in r.output
    assert not (tmp_path / "o").exists()


def test_merged_individual_exports_under_the_surviving_name(demo, tmp_path):
    db, d = demo
    _decide(db, d)
    with Catalog(db) as cat:
        kedr = int(cat.scalar("SELECT id FROM individuals WHERE name = 'Kedr'"))
        Reviewer(cat, "boris").merge(d.individuals[d.truth[d.pending[0]]], kedr)
        names = {c.individual for c in reviewed_crops(cat) if c.individual}
    assert names == {d.truth[d.pending[0]]}


def test_camtrapdp_does_not_call_a_not_a_leopard_box_leopard(demo, tmp_path):
    from spotid.export.camtrapdp import CamtrapDPConfig, export_camtrapdp

    db, d = demo
    sid = d.pending[1]
    with Catalog(db) as cat:
        Reviewer(cat, "anna").not_leopard(sid, _version(cat, sid))
        det = int(cat.scalar("SELECT detection_id FROM sightings WHERE id = ?", (sid,)))
        export_camtrapdp(cat, tmp_path / "pkg", CamtrapDPConfig())
    rows = {r["observationID"]: r for r in csv.DictReader((tmp_path / "pkg/observations.csv").open())}
    row = rows[f"det{det}"]
    assert row["scientificName"] == "" and row["classificationMethod"] == "human" and row["classifiedBy"] == "anna"
    assert "not a leopard" in row["observationComments"]
    other = next(r for k, r in rows.items() if k != f"det{det}" and r["scientificName"])
    assert other["scientificName"].startswith("Panthera pardus")
