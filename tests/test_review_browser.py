"""End-to-end: Debian's chromium, driven by Playwright, reviews the queue with the keyboard.

Confirms a match with a key press, undoes it with `u`, confirms again with `c`, and checks the
catalog after each step. CI installs chromium (`apt-get install chromium`); without it this test
FAILS with that instruction instead of skipping.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from spotid.review.screenshot import CHROMIUM_ARGS
from test_review import db_rows

CHROMIUM = "/usr/bin/chromium"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Debian chromium is missing: run `apt-get update && apt-get install -y chromium` "
                    "(CI's .ci/run does this); the review page's browser test needs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                              args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def test_keyboard_confirm_undo_confirm(tmp_path, browser):
    from spotid.review.app import create_app, serve_in_thread
    from spotid.review.demo import build_demo_catalog

    demo = build_demo_catalog(tmp_path / "demo.db", tmp_path / "img", n_individuals=4, n_pending=4, seed=2)
    db = demo.db_path
    server, url = serve_in_thread(create_app(db, reviewer="E2E Tester"))
    errors: list[str] = []
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/queue")
        page.wait_for_selector("body[data-ready='1']")
        data = json.loads(page.locator("#item-data").text_content())
        item = data["item"]
        sid, version = item["sighting_id"], item["version"]
        first = item["candidates"][0]
        assert db_rows(db, "SELECT status FROM sightings WHERE id = ?", (sid,))[0]["status"] == "pending"
        # the keypoint evidence of the shown candidate is drawn over the two images (2 lines per pair)
        if first["evidence"] and first["evidence"]["query_pts"]:
            page.wait_for_function("document.querySelectorAll('#lines line').length > 0")
            assert page.locator("#lines line").count() == 2 * min(60, len(first["evidence"]["query_pts"]))
        assert page.locator("text=Undo last").is_visible()

        # 1) confirm candidate 1 with the keyboard: the page moves on to the next item
        with page.expect_navigation():
            page.keyboard.press("1")
        page.wait_for_selector("body[data-ready='1']")
        s = db_rows(db, "SELECT status, individual_id, version FROM sightings WHERE id = ?", (sid,))[0]
        assert s == {"status": "confirmed", "individual_id": first["individual_id"], "version": version + 1}
        d = db_rows(db, "SELECT * FROM review_decisions ORDER BY id")
        assert [(r["action"], r["sighting_id"], r["reviewer"]) for r in d] == [("confirm", sid, "E2E Tester")]
        assert json.loads(page.locator("#item-data").text_content())["item"]["sighting_id"] != sid

        # 2) undo with `u`: the page returns to the restored sighting
        with page.expect_navigation():
            page.keyboard.press("u")
        page.wait_for_selector("body[data-ready='1']")
        assert json.loads(page.locator("#item-data").text_content())["item"]["sighting_id"] == sid
        s = db_rows(db, "SELECT status, individual_id, version FROM sightings WHERE id = ?", (sid,))[0]
        assert s["status"] == "pending" and s["version"] == version + 2
        d = db_rows(db, "SELECT * FROM review_decisions ORDER BY id")
        assert [r["action"] for r in d] == ["confirm", "undo"]
        assert d[0]["undone_by"] == d[1]["id"] and d[1]["undoes"] == d[0]["id"]

        # 3) confirm again with `c` (the selected candidate: identify's proposal)
        shown = json.loads(page.locator("#item-data").text_content())["item"]
        expected = shown["candidates"][(shown["proposed_rank"] or 1) - 1]["individual_id"]
        with page.expect_navigation():
            page.keyboard.press("c")
        page.wait_for_selector("body[data-ready='1']")
        s = db_rows(db, "SELECT status, individual_id FROM sightings WHERE id = ?", (sid,))[0]
        assert s == {"status": "confirmed", "individual_id": expected}
        d = db_rows(db, "SELECT action, undone_by FROM review_decisions ORDER BY id")
        assert [r["action"] for r in d] == ["confirm", "undo", "confirm"] and d[2]["undone_by"] is None
        assert errors == []
    finally:
        server.should_exit = True


def test_conflict_in_second_tab_reloads_item(tmp_path, browser):
    from spotid.review.app import create_app, serve_in_thread
    from spotid.review.demo import build_demo_catalog

    demo = build_demo_catalog(tmp_path / "demo.db", tmp_path / "img", n_individuals=3, n_pending=2, seed=4)
    server, url = serve_in_thread(create_app(demo.db_path, reviewer="two tabs"))
    try:
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        a, b = ctx.new_page(), ctx.new_page()
        for p in (a, b):
            p.goto(f"{url}/queue")
            p.wait_for_selector("body[data-ready='1']")
        sid = json.loads(a.locator("#item-data").text_content())["item"]["sighting_id"]
        assert json.loads(b.locator("#item-data").text_content())["item"]["sighting_id"] == sid
        with a.expect_navigation():
            a.keyboard.press("r")
        with b.expect_navigation(timeout=15000):  # tab B's stale decision: 409, message, reload
            b.keyboard.press("c")
        b.wait_for_selector("body[data-ready='1']")
        assert "rejected" in b.locator("#status").text_content()
        d = db_rows(demo.db_path, "SELECT action FROM review_decisions WHERE sighting_id = ?", (sid,))
        assert [r["action"] for r in d] == ["reject"]
        # tab B now assigns the next item by name with `a` (an individual that is not a candidate)
        item = json.loads(b.locator("#item-data").text_content())
        assert item["nav"]["next"] is not None
        with b.expect_navigation():
            b.keyboard.press("j")
        b.wait_for_selector("body[data-ready='1']")
        item = json.loads(b.locator("#item-data").text_content())
        cands = {c["individual_id"] for c in item["item"]["candidates"]}
        other = next((a for a in item["assignable"] if a["id"] not in cands), item["assignable"][0])
        b.keyboard.press("a")
        b.fill("#assign-name", other["name"])
        with b.expect_navigation():
            b.keyboard.press("Enter")
        s = db_rows(demo.db_path, "SELECT status, individual_id FROM sightings WHERE id = ?", (item["item"]["sighting_id"],))[0]
        assert s == {"status": "confirmed", "individual_id": other["id"]}
    finally:
        server.should_exit = True
