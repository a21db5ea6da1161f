"""Review web app: queue order, every decision through the HTTP API, undo, optimistic locking,
image serving safety, and that serving never touches embedding code or feature columns."""
from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import yaml

from spotid.catalog import Catalog
from spotid.config import default_yaml, load_config
from spotid.review.config import ReviewConfig
from spotid.review.demo import build_demo_catalog
from spotid.review.queue import uncertainty

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from spotid.review.app import create_app, serve_in_thread  # noqa: E402

REVIEWER = "A. Petrov"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("review-demo")
    d = build_demo_catalog(root / "demo.db", root / "img", n_individuals=5, n_pending=6, seed=1)
    (root / "demo.json").write_text(json.dumps(dataclasses.asdict(d), default=str))
    return root


@pytest.fixture
def demo(template, tmp_path):
    """A fresh copy of the demo catalog (images shared, read-only) and its ids."""
    shutil.copy(template / "demo.db", tmp_path / "demo.db")
    info = json.loads((template / "demo.json").read_text())
    info["db_path"] = tmp_path / "demo.db"
    info["pending"] = [int(x) for x in info["pending"]]
    return info


@pytest.fixture
def client(demo):
    app = create_app(demo["db_path"], reviewer=REVIEWER)
    return TestClient(app, base_url="http://127.0.0.1")


def db_rows(db: Path, sql: str, params=()) -> list[dict]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, params)]
    finally:
        con.close()


def catalog_state(db: Path) -> dict:
    """Everything a decision may change, without the lock counter and timestamps."""
    return {
        "sightings": db_rows(db, "SELECT id, individual_id, status, probability, flank, set_aside_reason "
                                 "FROM sightings ORDER BY id"),
        "individuals": db_rows(db, "SELECT * FROM individuals ORDER BY id"),
    }


def item(client, sid: int) -> dict:
    r = client.get(f"/api/sightings/{sid}")
    assert r.status_code == 200, r.text
    return r.json()


# -- configuration and ordering --------------------------------------------------------------------
def test_yaml_mirrors_dataclass_defaults():
    data = yaml.safe_load(default_yaml(ReviewConfig).read_text())
    assert data == dataclasses.asdict(ReviewConfig())
    assert load_config(ReviewConfig, default_yaml(ReviewConfig)) == ReviewConfig()
    with pytest.raises(ValueError, match="port"):
        ReviewConfig(port=0)


def test_uncertainty_hand_computed():
    t = 0.5
    assert uncertainty(0.52, 0.10, t) == pytest.approx(0.02)   # right at the threshold
    assert uncertainty(0.90, 0.88, t) == pytest.approx(0.02)   # two strong candidates nearly tied
    assert uncertainty(0.90, 0.45, t) == pytest.approx(0.40)   # runner-up below the threshold: no tie
    assert uncertainty(0.95, 0.02, t) == pytest.approx(0.45)   # a clear match
    assert uncertainty(0.19, 0.19, t) == pytest.approx(0.31)   # two weak look-alikes tied: a clear new animal
    assert uncertainty(0.10, None, t) == pytest.approx(0.40)   # single weak candidate
    assert uncertainty(None, None, t) == 0.5                    # unknown: mid-queue


def test_include_auto_queues_machine_accepted_after_pending(demo):
    """--include-auto: the census counts 'auto' sightings, so they can be vouched for, after the
    pending ones; confirming one takes it off the queue."""
    auto = {r["id"] for r in db_rows(demo["db_path"], "SELECT id FROM sightings WHERE status = 'auto'")}
    assert auto, "the demo catalog holds machine-accepted sightings"
    cfg = ReviewConfig(include_auto=True)
    c = TestClient(create_app(demo["db_path"], reviewer=REVIEWER, config=cfg), base_url="http://127.0.0.1")
    q = c.get("/api/queue").json()
    ids = [e["sighting_id"] for e in q["items"]]
    assert q["pending"] == len(demo["pending"]) + len(auto)
    assert set(ids[:len(demo["pending"])]) == set(demo["pending"]) and set(ids[len(demo["pending"]):]) == auto
    sid = ids[-1]
    ind = db_rows(demo["db_path"], "SELECT individual_id FROM sightings WHERE id = ?", (sid,))[0]["individual_id"]
    r = c.post(f"/api/sightings/{sid}/confirm", json={"version": item(c, sid)["version"], "individual_id": ind})
    assert r.status_code == 200, r.text
    assert db_rows(demo["db_path"], "SELECT status FROM sightings WHERE id = ?", (sid,))[0]["status"] == "confirmed"
    assert sid not in [e["sighting_id"] for e in c.get("/api/queue").json()["items"]]


def test_queue_order_most_uncertain_first_and_skip_goes_last(client, demo):
    q = client.get("/api/queue").json()
    assert q["pending"] == len(demo["pending"])
    u = [e["uncertainty"] for e in q["items"]]
    assert u == sorted(u)
    for e in q["items"]:  # recomputed from the candidates as stored
        probs = sorted((r["probability"] for r in db_rows(demo["db_path"],
                        "SELECT probability FROM match_candidates WHERE sighting_id = ?", (e["sighting_id"],))),
                       reverse=True)
        assert e["uncertainty"] == pytest.approx(uncertainty(probs[0], probs[1] if len(probs) > 1 else None, 0.5))
    first = q["items"][0]["sighting_id"]
    before = catalog_state(demo["db_path"])
    r = client.post(f"/api/sightings/{first}/skip", json={"version": item(client, first)["version"]})
    assert r.status_code == 200
    order = [e["sighting_id"] for e in client.get("/api/queue").json()["items"]]
    assert order[-1] == first and order[0] != first
    assert catalog_state(demo["db_path"]) == before          # a skip changes nothing but the order


def test_threshold_from_catalog_setting(demo):
    with Catalog(demo["db_path"]) as cat:
        cat.set_setting("identify.match_threshold", "0.8")
    c = TestClient(create_app(demo["db_path"], reviewer=REVIEWER), base_url="http://127.0.0.1")
    items = c.get("/api/queue").json()["items"]
    for e in items:
        probs = sorted((r["probability"] for r in db_rows(demo["db_path"],
                        "SELECT probability FROM match_candidates WHERE sighting_id = ?", (e["sighting_id"],))),
                       reverse=True)
        assert e["uncertainty"] == pytest.approx(uncertainty(probs[0], probs[1] if len(probs) > 1 else None, 0.8))


# -- item content ----------------------------------------------------------------------------------
def test_item_shows_candidates_same_flank_best_references_and_evidence(client, demo):
    db = demo["db_path"]
    for sid in demo["pending"]:
        it = item(client, sid)
        assert it["query"]["has_image"] and it["query"]["station"].startswith("S")
        assert it["query"]["timestamp"].endswith("+10:00")
        assert it["candidates"], sid
        for c in it["candidates"]:
            assert c["flank"] == it["flank"] == "left"
            # best = highest crops.quality among the individual's auto/confirmed sightings
            quals = [r["quality"] for r in db_rows(db, "SELECT c.quality FROM sightings s JOIN crops c ON "
                     "c.detection_id = s.detection_id WHERE s.individual_id = ? AND s.status IN ('auto','confirmed') "
                     "ORDER BY c.quality DESC", (c["individual_id"],))]
            assert [r["quality"] for r in c["references"]] == quals[:len(c["references"])]
            stored = db_rows(db, "SELECT evidence_json, reference_detection_id FROM match_candidates "
                             "WHERE sighting_id = ? AND individual_id = ?", (sid, c["individual_id"]))[0]
            ev = json.loads(stored["evidence_json"])
            assert c["reference"]["detection_id"] == stored["reference_detection_id"]
            assert [list(p) for p in c["evidence"]["query_pts"]] == ev["query_pts"]
            assert [list(p) for p in c["evidence"]["ref_pts"]] == ev["ref_pts"]
        ranks = [r["rank"] for r in db_rows(db, "SELECT rank FROM match_candidates WHERE sighting_id = ? "
                                               "ORDER BY rank", (sid,))]
        assert [c["rank"] for c in it["candidates"]] == list(range(1, len(ranks) + 1))  # identify's order


def test_pages_render(client, demo):
    sid = demo["pending"][0]
    r = client.get(f"/queue?sighting={sid}")
    assert r.status_code == 200
    html = r.text
    for key in ("<kbd>c</kbd>", "<kbd>r</kbd>", "<kbd>n</kbd>", "<kbd>m</kbd>", "<kbd>s</kbd>", "<kbd>u</kbd>",
                "<kbd>j</kbd>", "<kbd>k</kbd>", "<kbd>a</kbd>", "<kbd>x</kbd>", "Undo last", f"Sighting #{sid}", "pending"):
        assert key in html, key
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # no external resources
    assert "<link" not in html and "src=\"http" not in html
    ind = demo["individuals"]["L-0001"]
    r = client.get(f"/individuals/{ind}")
    assert r.status_code == 200 and "L-0001" in r.text and "Best reference images" in r.text
    assert "R-0001" in r.text  # the linked other flank
    for page in ("/individuals", "/census", "/history", "/"):
        assert client.get(page).status_code == 200, page
    assert client.get("/individuals/99999").status_code == 404
    assert client.get("/queue?sighting=99999").status_code == 404


def test_empty_queue_page(client, demo):
    for sid in demo["pending"]:
        assert client.post(f"/api/sightings/{sid}/reject", json={"version": item(client, sid)["version"]}).status_code == 200
    assert client.get("/api/queue").json() == {"pending": 0, "items": []}
    html = client.get("/queue").text
    assert "No sightings waiting for review" in html and f"{len(demo['pending'])} decisions today" in html


def _set_aside(db: Path, sid: int, reason: str, flank: str, keep_candidates: bool) -> None:
    """Make a demo sighting one that identify set aside (as identify.writer.SightingWriter.set_aside writes it)."""
    con = sqlite3.connect(db)
    con.execute("UPDATE sightings SET status = 'unusable', individual_id = NULL, probability = NULL, flank = ?, "
                "set_aside_reason = ? WHERE id = ?", (flank, reason, sid))
    con.execute("UPDATE crops SET flank = ? WHERE detection_id = (SELECT detection_id FROM sightings WHERE id = ?)",
                (flank, sid))
    if not keep_candidates:  # identify matches no-flank sightings with nobody
        con.execute("DELETE FROM match_candidates WHERE sighting_id = ?", (sid,))
    con.commit()
    con.close()


def test_set_aside_sightings_are_queued_on_request_with_their_reason_and_can_be_rescued(demo):
    db = demo["db_path"]
    weak, noflank = demo["pending"][:2]
    _set_aside(db, weak, "matched nobody, too small or blurred to found one", "left", keep_candidates=True)
    _set_aside(db, noflank, "no left/right flank (front, back or unsure)", "unknown", keep_candidates=False)
    others = [s for s in demo["pending"] if s not in (weak, noflank)]

    plain = TestClient(create_app(db, reviewer=REVIEWER), base_url="http://127.0.0.1")
    q = plain.get("/api/queue").json()
    assert q["pending"] == len(others) and {weak, noflank}.isdisjoint(e["sighting_id"] for e in q["items"])

    c = TestClient(create_app(db, reviewer=REVIEWER, config=ReviewConfig(include_set_aside=True)),
                   base_url="http://127.0.0.1")
    ids = [e["sighting_id"] for e in c.get("/api/queue").json()["items"]]
    assert set(ids[:len(others)]) == set(others) and set(ids[len(others):]) == {weak, noflank}  # after pending
    html = c.get(f"/queue?sighting={noflank}").text
    assert 'id="set-aside"' in html and "no left/right flank (front, back or unsure)" in html
    assert "New left individual" in html and "New right individual" in html
    assert "Reject match" not in html and "identify compared it with nobody" in html  # there is no match to reject
    it = item(c, weak)
    assert it["set_aside_reason"] == "matched nobody, too small or blurred to found one" and it["candidates"]

    before = catalog_state(db)
    # rescue the weak one: the person reads the coat and confirms the candidate identify had below threshold
    target = it["candidates"][0]["individual_id"]
    r = c.post(f"/api/sightings/{weak}/confirm", json={"version": it["version"], "individual_id": target})
    assert r.status_code == 200, r.text
    row = db_rows(db, "SELECT status, individual_id, set_aside_reason FROM sightings WHERE id = ?", (weak,))[0]
    assert row == {"status": "confirmed", "individual_id": target, "set_aside_reason": None}
    # the no-flank one: a new individual needs the flank the person sees
    v = item(c, noflank)["version"]
    r = c.post(f"/api/sightings/{noflank}/new", json={"version": v})
    assert r.status_code == 400 and "choose the flank the photo shows" in r.json()["detail"]
    r = c.post(f"/api/sightings/{noflank}/new", json={"version": v, "flank": "sideways"})
    assert r.status_code == 400 and "'left' or a 'right'" in r.json()["detail"]
    r = c.post(f"/api/sightings/{noflank}/new", json={"version": v, "flank": "right"})
    assert r.status_code == 200, r.text
    row = db_rows(db, "SELECT s.status, s.flank, s.set_aside_reason, i.flank AS ind_flank, i.status AS ind_status "
                      "FROM sightings s JOIN individuals i ON i.id = s.individual_id WHERE s.id = ?", (noflank,))[0]
    assert row == {"status": "confirmed", "flank": "right", "set_aside_reason": None, "ind_flank": "right",
                   "ind_status": "confirmed"}
    assert {weak, noflank}.isdisjoint(e["sighting_id"] for e in c.get("/api/queue").json()["items"])
    # both undone: set aside again, with identify's reason and flank
    assert c.post("/api/undo", json={}).status_code == 200
    assert c.post("/api/undo", json={}).status_code == 200
    assert catalog_state(db) == before

    # an empty queue says how many were set aside and how to go through them
    for sid in others:
        assert plain.post(f"/api/sightings/{sid}/reject", json={"version": item(plain, sid)["version"]}).status_code == 200
    html = plain.get("/queue").text
    assert "Identify set 2 sightings aside" in html and "spotid review --include-set-aside" in html


def test_census_dashboard_shows_figures(client, demo):
    html = client.get("/census").text
    assert "minimum number known alive" in html
    assert "left / right flank identities" in html
    assert '<div class="v">0</div><div class="l">leopard sightings not identifiable' in html
    sid = demo["pending"][0]
    assert client.post(f"/api/sightings/{sid}/unusable", json={"version": item(client, sid)["version"]}).status_code == 200
    page = client.get("/census").text
    assert '<div class="v">1</div><div class="l">leopard sightings not identifiable' in page
    assert "<li>1 × marked unusable in review</li>" in page   # the person's decision, not identify's reason


# -- decisions ---------------------------------------------------------------------------------------
def _decisions(db):
    return db_rows(db, "SELECT * FROM review_decisions ORDER BY id")


def test_confirm_assigns_audits_and_undo_restores_exactly(client, demo):
    db = demo["db_path"]
    sid = demo["pending"][0]
    it = item(client, sid)
    target = it["candidates"][-1]  # not necessarily identify's proposal
    before = catalog_state(db)
    r = client.post(f"/api/sightings/{sid}/confirm", json={"version": it["version"], "individual_id": target["individual_id"]})
    assert r.status_code == 200, r.text
    s = db_rows(db, "SELECT * FROM sightings WHERE id = ?", (sid,))[0]
    assert (s["status"], s["individual_id"], s["version"]) == ("confirmed", target["individual_id"], it["version"] + 1)
    assert s["probability"] == pytest.approx(target["probability"])
    (d,) = _decisions(db)
    assert (d["action"], d["reviewer"], d["sighting_id"]) == ("confirm", REVIEWER, sid)
    assert d["decided_at"].endswith("+00:00")
    prev, new = json.loads(d["previous_json"]), json.loads(d["new_json"])
    assert prev["sightings"][str(sid)]["status"] == "pending"
    assert new["sightings"][str(sid)] == {"individual_id": target["individual_id"], "status": "confirmed",
                                          "probability": target["probability"], "version": it["version"] + 1,
                                          "flank": "left", "set_aside_reason": None}
    assert sid not in [e["sighting_id"] for e in client.get("/api/queue").json()["items"]]
    hist = client.get("/history").text
    assert f"#{sid}: pending → confirmed" in hist and REVIEWER in hist

    r = client.post("/api/undo", json={})
    assert r.status_code == 200, r.text
    assert catalog_state(db) == before
    orig, undo = _decisions(db)
    assert undo["action"] == "undo" and undo["undoes"] == orig["id"] and orig["undone_by"] == undo["id"]
    assert db_rows(db, "SELECT version FROM sightings WHERE id = ?", (sid,))[0]["version"] == it["version"] + 2
    assert sid in [e["sighting_id"] for e in client.get("/api/queue").json()["items"]]
    # the same decision cannot be undone twice, and there is nothing left to undo
    assert client.post("/api/undo", json={"decision_id": orig["id"]}).status_code == 409
    assert client.post("/api/undo", json={}).status_code == 404


def test_older_decision_undoable_when_later_ones_touch_other_rows(client, demo):
    db = demo["db_path"]
    target = demo["individuals"]["L-0001"]
    s1, s2 = demo["pending"][:2]
    before = catalog_state(db)
    ids = []
    for sid in (s1, s2):
        r = client.post(f"/api/sightings/{sid}/confirm", json={"version": item(client, sid)["version"], "individual_id": target})
        assert r.status_code == 200, r.text
        ids.append(r.json()["decision"]["id"])
    assert client.post("/api/undo", json={"decision_id": ids[0]}).status_code == 200
    assert db_rows(db, "SELECT status FROM sightings WHERE id = ?", (s1,))[0]["status"] == "pending"
    assert db_rows(db, "SELECT status FROM sightings WHERE id = ?", (s2,))[0]["status"] == "confirmed"
    assert client.post("/api/undo", json={}).status_code == 200  # the latest live one: s2's confirm
    assert catalog_state(db) == before


@pytest.mark.parametrize("action,status", [("reject", "rejected"), ("unusable", "unusable")])
def test_reject_and_unusable_clear_the_identity(client, demo, action, status):
    db = demo["db_path"]
    sid = demo["pending"][1]
    before = catalog_state(db)
    r = client.post(f"/api/sightings/{sid}/{action}", json={"version": item(client, sid)["version"]})
    assert r.status_code == 200, r.text
    s = db_rows(db, "SELECT status, individual_id FROM sightings WHERE id = ?", (sid,))[0]
    assert s == {"status": status, "individual_id": None}
    assert _decisions(db)[-1]["action"] == action
    assert client.post("/api/undo", json={}).status_code == 200
    assert catalog_state(db) == before


def test_new_individual_created_or_proposal_promoted_and_undone(client, demo):
    db = demo["db_path"]
    # a sighting proposed to an existing individual: a new confirmed individual is created
    sid = demo["pending"][0]
    before = catalog_state(db)
    r = client.post(f"/api/sightings/{sid}/new", json={"version": item(client, sid)["version"]})
    assert r.status_code == 200, r.text
    s = db_rows(db, "SELECT individual_id, status FROM sightings WHERE id = ?", (sid,))[0]
    ind = db_rows(db, "SELECT * FROM individuals WHERE id = ?", (s["individual_id"],))[0]
    assert s["status"] == "confirmed" and ind["status"] == "confirmed" and ind["flank"] == "left"
    # identify's naming continued: L-0001..L-0003 known, L-0004 proposed by identify for the new animal
    assert ind["name"] == "L-0005" and ind["created_by"] == f"reviewer:{REVIEWER}"
    assert client.post("/api/undo", json={}).status_code == 200
    assert catalog_state(db) == before  # the created individual is gone again

    # the sighting identify proposed as a new animal: its proposed individual is confirmed (renamed)
    new_sid = next(int(k) for k, v in demo["truth"].items() if v == "new")
    proposed = db_rows(db, "SELECT individual_id FROM sightings WHERE id = ?", (new_sid,))[0]["individual_id"]
    r = client.post(f"/api/sightings/{new_sid}/new", json={"version": item(client, new_sid)["version"], "name": "Khasan"})
    assert r.status_code == 200, r.text
    ind = db_rows(db, "SELECT * FROM individuals WHERE id = ?", (proposed,))[0]
    assert (ind["status"], ind["name"]) == ("confirmed", "Khasan")
    # a name that exists is refused
    r = client.post(f"/api/sightings/{sid}/new", json={"version": item(client, sid)["version"], "name": "L-0001"})
    assert r.status_code == 400 and "exists" in r.json()["detail"]
    assert client.post("/api/undo", json={}).status_code == 200
    assert catalog_state(db) == before


def test_merge_moves_sightings_and_undo_restores(client, demo):
    db = demo["db_path"]
    keep, absorb = demo["individuals"]["L-0001"], demo["individuals"]["L-0002"]
    moved = [r["id"] for r in db_rows(db, "SELECT id FROM sightings WHERE individual_id = ?", (absorb,))]
    assert moved
    before = catalog_state(db)
    r = client.post("/api/merge", json={"keep_id": keep, "absorb_id": absorb})
    assert r.status_code == 200, r.text
    a = db_rows(db, "SELECT status, merged_into FROM individuals WHERE id = ?", (absorb,))[0]
    assert a == {"status": "merged", "merged_into": keep}
    assert db_rows(db, "SELECT COUNT(*) n FROM sightings WHERE individual_id = ?", (absorb,))[0]["n"] == 0
    assert {r["id"] for r in db_rows(db, "SELECT id FROM sightings WHERE individual_id = ?", (keep,))} >= set(moved)
    # candidates that pointed at the absorbed individual now show the kept one, once
    for sid in demo["pending"]:
        ids = [c["individual_id"] for c in item(client, sid)["candidates"]]
        assert absorb not in ids and len(ids) == len(set(ids))
    # merging it again, or across flanks, is refused
    assert client.post("/api/merge", json={"keep_id": keep, "absorb_id": absorb}).status_code == 409
    right = demo["individuals"]["R-0002"]
    r = client.post("/api/merge", json={"keep_id": keep, "absorb_id": right})
    assert r.status_code == 400 and "flank" in r.json()["detail"]
    assert client.post("/api/undo", json={}).status_code == 200
    assert catalog_state(db) == before


def test_confirm_to_other_flank_refused(client, demo):
    sid = demo["pending"][0]
    r = client.post(f"/api/sightings/{sid}/confirm",
                    json={"version": item(client, sid)["version"], "individual_id": demo["individuals"]["R-0002"]})
    assert r.status_code == 400 and "flank" in r.json()["detail"]
    assert _decisions(demo["db_path"]) == []


def test_a_flank_identify_only_inferred_from_a_match_can_be_corrected(client, demo):
    """identify gives a view without a flank (front, back, classifier unsure) the flank of the
    individual it matched; a person may assign it to an individual of the other flank."""
    db = demo["db_path"]
    sid = demo["pending"][0]
    assert item(client, sid)["flank_source"] == "classifier"
    con = sqlite3.connect(db)
    con.execute("UPDATE crops SET flank = 'unknown', flank_conf = 0.55 "
                "WHERE detection_id = (SELECT detection_id FROM sightings WHERE id = ?)", (sid,))
    con.commit()
    con.close()
    html = client.get(f"/queue?sighting={sid}").text
    assert "either flank (the classifier saw none)" in html and "R-0002" in html   # assignable: both flanks
    # the reviewer sees the flank and who gave it
    assert item(client, sid)["flank_source"] == "match"
    assert "placed by its match: the flank classifier saw unknown (55%)" in html
    r = client.post(f"/api/sightings/{sid}/confirm",
                    json={"version": item(client, sid)["version"], "individual_id": demo["individuals"]["R-0002"]})
    assert r.status_code == 200, r.text
    row = db_rows(db, "SELECT flank, status, individual_id FROM sightings WHERE id = ?", (sid,))[0]
    assert row == {"flank": "right", "status": "confirmed", "individual_id": demo["individuals"]["R-0002"]}
    assert item(client, sid)["flank_source"] == "reviewer"
    # now a person has fixed it: the other flank is refused again
    r = client.post(f"/api/sightings/{sid}/confirm",
                    json={"version": item(client, sid)["version"], "individual_id": demo["individuals"]["L-0001"]})
    assert r.status_code == 400 and "flank" in r.json()["detail"]



def test_a_view_with_an_inferred_flank_is_no_reference_image(demo):
    """identify's gallery leaves out views whose flank it only inferred from a match; so do the
    reference images the review page shows for an individual (a face must not stand in for a flank)."""
    from spotid.review.queue import best_references

    db = demo["db_path"]
    ind = demo["individuals"]["L-0001"]
    with Catalog(db) as cat:
        refs = [c.detection_id for c in best_references(cat, ind, "left", 50)]
        machine = [d for d in refs if cat.scalar("SELECT status FROM sightings WHERE detection_id = ?", (d,)) == "auto"]
        assert machine, "L-0001 has machine-accepted sightings in the demo"
        cat.execute("UPDATE crops SET flank = 'front' WHERE detection_id = ?", (machine[0],))
        assert [c.detection_id for c in best_references(cat, ind, "left", 50)] == [d for d in refs if d != machine[0]]
        # a person who confirms it vouches for it: it is a reference again
        cat.execute("UPDATE sightings SET status = 'confirmed' WHERE detection_id = ?", (machine[0],))
        assert [c.detection_id for c in best_references(cat, ind, "left", 50)] == refs


# -- two reviewers ------------------------------------------------------------------------------------
def test_stale_version_conflict_409_and_undo_blocked_by_later_decision(demo):
    db = demo["db_path"]
    tab_a = TestClient(create_app(db, reviewer="A"), base_url="http://127.0.0.1")
    tab_b = TestClient(create_app(db, reviewer="B"), base_url="http://127.0.0.1")
    sid = demo["pending"][2]
    seen_a, seen_b = item(tab_a, sid), item(tab_b, sid)
    cand = seen_a["candidates"][0]["individual_id"]
    assert tab_a.post(f"/api/sightings/{sid}/confirm", json={"version": seen_a["version"], "individual_id": cand}).status_code == 200
    r = tab_b.post(f"/api/sightings/{sid}/reject", json={"version": seen_b["version"]})
    assert r.status_code == 409
    assert "changed since this page loaded it" in r.json()["detail"] and "by A" in r.json()["detail"]
    assert [d["action"] for d in _decisions(db)] == ["confirm"]
    # B reloads and decides on the current version; A's undo would now overwrite it: refused
    assert tab_b.post(f"/api/sightings/{sid}/reject", json={"version": item(tab_b, sid)["version"]}).status_code == 200
    r = tab_a.post("/api/undo", json={})
    assert r.status_code == 409 and "undo that first" in r.json()["detail"]
    assert tab_b.post("/api/undo", json={}).status_code == 200
    assert tab_a.post("/api/undo", json={}).status_code == 200
    assert db_rows(db, "SELECT status FROM sightings WHERE id = ?", (sid,))[0]["status"] == "pending"


def test_two_concurrent_clients_one_decision_wins(demo):
    """Two reviewers post at the same moment on the same version, through a real server: exactly one
    decision is applied and recorded, the other gets 409."""
    import httpx

    db = demo["db_path"]
    server, url = serve_in_thread(create_app(db, reviewer="both"))
    try:
        for round_, sid in enumerate(demo["pending"][:3]):
            it = httpx.get(f"{url}/api/sightings/{sid}").json()
            bodies = [(f"/api/sightings/{sid}/confirm", {"version": it["version"],
                                                         "individual_id": it["candidates"][0]["individual_id"]}),
                      (f"/api/sightings/{sid}/reject", {"version": it["version"]})]
            barrier = threading.Barrier(2)
            codes: list[int] = []

            def post(path, body):
                with httpx.Client(base_url=url) as c:
                    barrier.wait()
                    codes.append(c.post(path, json=body).status_code)
            threads = [threading.Thread(target=post, args=b) for b in bodies]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert sorted(codes) == [200, 409], codes
            rows = db_rows(db, "SELECT action FROM review_decisions WHERE sighting_id = ?", (sid,))
            assert len(rows) == 1
            s = db_rows(db, "SELECT status, version FROM sightings WHERE id = ?", (sid,))[0]
            assert s["version"] == it["version"] + 1
            assert s["status"] == {"confirm": "confirmed", "reject": "rejected"}[rows[0]["action"]]
    finally:
        server.should_exit = True


# -- serving safety -----------------------------------------------------------------------------------
def test_images_only_from_catalog_no_traversal(client, demo, tmp_path):
    db = demo["db_path"]
    det = db_rows(db, "SELECT detection_id, crop_path FROM crops LIMIT 1")[0]
    r = client.get(f"/img/crop/{det['detection_id']}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == Path(det["crop_path"]).read_bytes()
    for bad in ("/img/crop/..%2F..%2F..%2Fetc%2Fpasswd", "/img/crop/../../etc/passwd", "/img/crop/%2Fetc%2Fpasswd",
                "/img/crop/1;rm", "/img/crop/99999", "/img/frame/..%2Fdemo.db", "/static/../demo.db",
                "/img/crop/1/../../demo.db"):
        r = client.get(bad)
        assert r.status_code in (404, 422), (bad, r.status_code)
        assert b"SQLite" not in r.content and b"root:" not in r.content
    # a catalog row pointing at a non-image or a missing file is not served either
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    with Catalog(db) as cat, cat.transaction():
        cat.execute("UPDATE crops SET crop_path = ? WHERE detection_id = ?", (str(secret), det["detection_id"]))
    r = client.get(f"/img/crop/{det['detection_id']}")
    assert r.status_code == 404 and b"root:" not in r.content
    with Catalog(db) as cat, cat.transaction():
        cat.execute("UPDATE crops SET crop_path = ? WHERE detection_id = ?", (str(tmp_path / "gone.jpg"), det["detection_id"]))
    assert client.get(f"/img/crop/{det['detection_id']}").status_code == 404
    r = client.get("/img/frame/1")
    assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"


def test_foreign_host_and_cross_origin_writes_refused(demo):
    app = create_app(demo["db_path"], reviewer=REVIEWER)
    evil = TestClient(app, base_url="http://evil.example")
    assert evil.get("/queue").status_code == 403   # DNS rebinding
    c = TestClient(app, base_url="http://127.0.0.1")
    sid = demo["pending"][0]
    r = c.post(f"/api/sightings/{sid}/reject", json={"version": 0}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    assert _decisions(demo["db_path"]) == []


SERVE_CHECK = textwrap.dedent("""
    import sqlite3, sys
    from fastapi.testclient import TestClient
    from spotid.catalog import Catalog
    from spotid.review.app import create_app

    reads = []
    FEATURES = {"embedding", "keypoints", "descriptors"}

    def opener(path):
        cat = Catalog(path)
        def auth(action, table, column, db, trigger):
            if action == sqlite3.SQLITE_READ and table == "crops" and column in FEATURES:
                reads.append(column)
            return sqlite3.SQLITE_OK
        cat.conn.set_authorizer(auth)
        return cat

    db, sids, ind = sys.argv[1], [int(x) for x in sys.argv[2].split(",")], sys.argv[3]
    c = TestClient(create_app(db, reviewer="t", open_catalog=opener), base_url="http://127.0.0.1")
    urls = ["/queue", "/individuals", "/individuals/" + ind, "/census", "/history", "/api/queue", "/img/crop/1",
            "/img/frame/1"] + ["/queue?sighting=%d" % s for s in sids] + ["/api/sightings/%d" % s for s in sids]
    for u in urls:
        assert c.get(u).status_code == 200, u
    it = c.get("/api/sightings/%d" % sids[0]).json()
    assert c.post("/api/sightings/%d/confirm" % sids[0], json={"version": it["version"],
                  "individual_id": it["candidates"][0]["individual_id"]}).status_code == 200
    assert c.post("/api/undo", json={}).status_code == 200
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "cv2", "yolox")
                   or m.startswith(("spotid.identify", "spotid.train", "spotid.detect")))
    print("HEAVY", heavy)
    print("READS", sorted(set(reads)))
""")


def test_serving_reads_no_features_and_imports_no_embedding_code(demo):
    db = demo["db_path"]
    ind = str(demo["individuals"]["L-0001"])
    out = subprocess.run([sys.executable, "-c", SERVE_CHECK, str(db), ",".join(map(str, demo["pending"])), ind],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "HEAVY []" in out.stdout, out.stdout
    assert "READS []" in out.stdout, out.stdout


# -- CLI -----------------------------------------------------------------------------------------------
def test_cli_errors_name_the_fix(tmp_path):
    from typer.testing import CliRunner

    from spotid.cli import app

    r = CliRunner().invoke(app, ["review", "--db", str(tmp_path / "nope.db"), "--no-browser"])
    assert r.exit_code == 2 and "--db" in r.output


def test_cli_binds_localhost_and_opens_browser(demo, monkeypatch):
    import uvicorn
    import webbrowser
    from typer.testing import CliRunner

    from spotid.cli import app

    seen: dict = {}
    opened = threading.Event()

    def fake_run(self):
        seen["host"], seen["port"] = self.config.host, self.config.port
        self.started = True
        opened.wait(5)

    import socket
    with socket.socket() as sock:  # a free port, so that the CLI's in-use check passes on any machine
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    monkeypatch.setattr(webbrowser, "open", lambda url: (seen.setdefault("url", url), opened.set()))
    r = CliRunner().invoke(app, ["review", "--db", str(demo["db_path"]), "--port", str(port), "--reviewer", "Z"])
    assert r.exit_code == 0, r.output
    assert seen == {"host": "127.0.0.1", "port": port, "url": f"http://127.0.0.1:{port}/queue"}
    seen.clear()
    opened.set()
    r = CliRunner().invoke(app, ["review", "--db", str(demo["db_path"]), "--port", str(port), "--no-browser"])
    assert r.exit_code == 0 and "url" not in seen


def test_evidence_says_how_many_drawn_pairs_are_night_chance():
    from spotid.review.queue import parse_evidence

    day = parse_evidence(json.dumps({"query_pts": [[1, 2], [3, 4]], "ref_pts": [[5, 6], [7, 8]]}))
    assert day.n == 2 and day.chance == 0
    night = parse_evidence(json.dumps({"query_pts": [[1, 2]] * 9, "ref_pts": [[5, 6]] * 9, "chance": 7}))
    assert night.n == 9 and night.chance == 7                       # 2 counted inliers, 9 pairs drawn
    assert parse_evidence(json.dumps({"query_pts": [], "ref_pts": [], "chance": "x"})) is None


def test_older_catalog_gets_a_reason_for_what_identify_set_aside_not_for_peoples_decisions(client, demo):
    """Migration 0009 on a catalog from before set-aside reasons: the 'unusable' sightings no person
    decided were identify's, so they get a placeholder reason and reach the set-aside queue; one a
    person marked unusable stays decided."""
    db = demo["db_path"]
    by_person, by_identify = demo["pending"][:2]
    assert client.post(f"/api/sightings/{by_person}/unusable",
                       json={"version": item(client, by_person)["version"]}).status_code == 200
    con = sqlite3.connect(db)
    con.execute("UPDATE sightings SET status = 'unusable', individual_id = NULL WHERE id = ?", (by_identify,))
    con.execute("ALTER TABLE sightings DROP COLUMN set_aside_reason")   # as an older spotid left it
    con.execute("DELETE FROM schema_migrations WHERE name LIKE '0009_%'")
    con.commit()
    con.close()
    with Catalog(db) as cat:
        assert any(m.startswith("0009_") for m in cat.applied_migrations())  # re-applied (later ones follow it)
        reasons = {r["id"]: r["set_aside_reason"] for r in cat.query(
            "SELECT id, set_aside_reason FROM sightings WHERE status = 'unusable'")}
    assert reasons == {by_person: None,
                       by_identify: "set aside by an earlier identify run (its reason was not recorded)"}


def test_evidence_names_the_verifier_whose_pairs_are_drawn_and_each_scorers_p(client, demo):
    """Under the fusion identify stores the surest verifier's pairs with its own inlier count and every
    scorer's calibrated P (``evidence_json`` keys ``verifier``, ``inliers``, ``scores``); the page names that
    verifier beside its count. Older rows (no such keys) read as RootSIFT with the column's count."""
    from spotid.review.queue import parse_evidence

    old = parse_evidence(json.dumps({"query_pts": [[1, 2]], "ref_pts": [[3, 4]]}))
    assert (old.verifier, old.inliers, old.scores) == ("RootSIFT", None, ())
    ev = parse_evidence(json.dumps({"query_pts": [[1, 2]] * 23, "ref_pts": [[3, 4]] * 23, "verifier": "aliked",
                                    "inliers": 23, "scores": {"embedding": 0.31, "sift": 0.12, "aliked": 0.91}}))
    assert (ev.verifier, ev.inliers, ev.n) == ("ALIKED", 23, 23)
    assert ev.scores == (("embedding", 0.31), ("RootSIFT", 0.12), ("ALIKED", 0.91))
    assert parse_evidence(json.dumps({"query_pts": [], "ref_pts": [], "scores": [1, 2]})) is None
    sid = demo["pending"][0]
    con = sqlite3.connect(demo["db_path"])
    with con:
        row = con.execute("SELECT id, evidence_json FROM match_candidates WHERE sighting_id = ? ORDER BY rank "
                          "LIMIT 1", (sid,)).fetchone()
        data = json.loads(row[1])
        data.update(verifier="aliked", inliers=len(data["query_pts"]), scores={"sift": 0.2, "aliked": 0.93})
        con.execute("UPDATE match_candidates SET evidence_json = ?, verify_inliers = 3 WHERE id = ?",
                    (json.dumps(data), row[0]))
    con.close()
    html = client.get(f"/queue?sighting={sid}").text
    assert f"{len(data['query_pts'])} ALIKED inliers" in html
    got = item(client, sid)["candidates"][0]
    assert got["verify_inliers"] == 3 and got["evidence"]["verifier"] == "ALIKED"
    assert [list(s) for s in got["evidence"]["scores"]] == [["RootSIFT", 0.2], ["ALIKED", 0.93]]
