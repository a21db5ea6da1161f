"""The review page's Census tab: period controls, a deployment too long for the default period, every bad
period answered in the page (never a 500, never a traceback in the log), the empty states, the stations'
latitude/longitude and one crop per counted individual."""
from __future__ import annotations

import logging
import re
import sqlite3
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
sys.path.insert(0, str(Path(__file__).parent))
from fastapi.testclient import TestClient  # noqa: E402
from test_review import REVIEWER, demo, template  # noqa: E402,F401  (fixtures)

from spotid.catalog import Catalog  # noqa: E402
from spotid.review.app import create_app  # noqa: E402


def _client(db) -> TestClient:
    return TestClient(create_app(db, reviewer=REVIEWER), base_url="http://127.0.0.1")


def _text(html: str) -> str:
    html = re.sub(r"<(style|script)>.*?</\1>", "", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _no_traceback(caplog) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING] == []


def _long_deployment(db: Path) -> None:
    """One camera of the demo also holds a 2009 photo: its span (2009-06-01 .. 2026-03-06) is 6,123 daily
    occasions, more than the census's 5,000."""
    con = sqlite3.connect(db)
    con.execute("UPDATE deployments SET start = '2009-06-01T10:00:00+10:00' WHERE id = 'S01A'")
    con.execute("INSERT INTO media (deployment_id, sha, path, rel_path, kind, timestamp, size_bytes) VALUES "
                "('S01A', 'old2009', '/card/S01A/OLD.JPG', 'OLD.JPG', 'image', '2009-06-01T10:00:00+10:00', 1000)")
    con.commit()
    con.close()


def test_a_deployment_too_long_for_the_default_period_gets_a_message_and_a_way_out(demo, caplog):
    _long_deployment(demo["db_path"])
    c = _client(demo["db_path"])
    caplog.set_level(logging.INFO)
    r = c.get("/census")
    assert r.status_code == 200
    text = _text(r.text)
    assert ("The period 2009-06-01 – 2026-03-06 makes 6,123 occasions of 1 day(s); a census takes at most 5,000. "
            "Choose a shorter period") in text
    assert '<form class="panel section periodform" id="period" method="get" action="/census">' in r.text
    # a link per year with photos, and one for the whole span in 2-day occasions (3,062 <= 5,000)
    assert '<a href="/census?start=2009-06-01&amp;end=2009-06-01">' in r.text
    assert re.search(r'<a href="/census\?start=2026-01-\d\d&amp;end=2026-03-\d\d">', r.text)
    assert '<a href="/census?occasion_days=2">Count it in occasions of 2 days</a>' in r.text
    _no_traceback(caplog)
    # the period controls re-run the census for the season
    r = c.get("/census", params={"start": "2026-01-01", "end": "2026-03-31", "occasion_days": "7"})
    assert r.status_code == 200
    text = _text(r.text)
    assert "counted: 2026-01-01 – 2026-04-01" in text    # 90 days in 13 whole weeks: the last ends 1 April
    assert "13 occasions of 7.0 d" in text and "minimum number known alive" in text
    assert 'name="start" value="2026-01-01"' in r.text and 'name="occasion_days" min="0" step="any" value="7"' in r.text
    assert "--start 2026-01-01 --end 2026-03-31 --occasion-days 7" in text   # the same period as a report command
    r = c.get("/census", params={"occasion_days": "2"})
    assert r.status_code == 200 and "3062 occasions of 2.0 d" in _text(r.text)
    _no_traceback(caplog)


@pytest.mark.parametrize("params, says", [
    ({"occasion_days": "abc"}, "occasion length 'abc' is not a number of days"),
    ({"occasion_days": "0"}, "occasion length 0 days: give more than 0 and at most 366 days"),
    ({"occasion_days": "inf"}, "occasion length inf days"),
    ({"start": "2026-03-01", "end": "2026-01-01"}, "end 2026-01-01 is not after start 2026-03-01: the period is empty"),
    ({"start": "2026-02-01T12:00", "end": "2026-02-01T12:00"}, "the period is empty; give an end after the start"),
    ({"start": "yesterday"}, "bad date 'yesterday': use ISO 8601"),
    ({"start": "9999-12-31"}, "give dates of the survey"),
    ({"start": "1900-01-01", "end": "2026-01-01"}, "a census takes at most 5,000"),
])
def test_any_period_renders_the_page_with_a_message(demo, caplog, params, says):
    caplog.set_level(logging.INFO)
    r = _client(demo["db_path"]).get("/census", params=params)
    assert r.status_code == 200
    assert says in _text(r.text).replace("&#39;", "'")
    assert 'id="census-error"' in r.text
    _no_traceback(caplog)


def test_a_period_without_cameras_says_nothing_was_counted_and_why(demo, caplog):
    caplog.set_level(logging.INFO)
    r = _client(demo["db_path"]).get("/census", params={"start": "2020-01-01", "end": "2020-01-31"})
    assert r.status_code == 200
    text = _text(r.text)
    assert "Nothing counted in this period." in text
    assert "no camera was operating in 2020-01-01 – 2020-01-31: choose a period within the deployments" in text
    assert "6 sighting(s) wait for review: confirm or correct them in the Queue tab" in text
    assert "Discovery curve" not in text and "No estimates: no leopard counted in this period." in text
    _no_traceback(caplog)


def test_an_empty_catalog_says_what_to_run_first(tmp_path, caplog):
    Catalog(tmp_path / "empty.db").close()
    caplog.set_level(logging.INFO)
    r = _client(tmp_path / "empty.db").get("/census")
    assert r.status_code == 200
    text = _text(r.text)
    assert "Nothing to count yet" in text and "run `spotid ingest CARD --deployment ID --db" in text
    assert "2000-01-01" not in text and "id=\"period\"" not in r.text   # no invented period, no form to fill
    _no_traceback(caplog)


def test_stations_in_degrees_and_a_crop_per_counted_individual(demo):
    c = _client(demo["db_path"])
    html = c.get("/census").text
    assert "<th class=\"num\">latitude</th><th class=\"num\">longitude</th>" in html
    assert re.search(r"<td>S03</td><td class=\"num\">43\.14000</td><td class=\"num\">131\.56000</td>", html)
    tiles = re.findall(r'<a class="tile" href="/individuals/(\d+)">\s*(?:<img src="/img/crop/(\d+)"|<div class="nocrop">)',
                       html)
    counted = db_ids(demo["db_path"], "SELECT DISTINCT individual_id FROM sightings WHERE status IN ('auto', 'confirmed')")
    assert sorted(int(i) for i, _ in tiles) == sorted(counted)
    for ind, det in tiles:   # the best-quality counted crop of that individual, served by the app
        best = db_ids(demo["db_path"], "SELECT d.id FROM sightings s JOIN detections d ON d.id = s.detection_id "
                      "JOIN crops c ON c.detection_id = d.id WHERE s.individual_id = ? AND s.status IN ('auto', "
                      "'confirmed') ORDER BY s.status = 'confirmed' DESC, c.quality DESC LIMIT 1", (int(ind),))
        assert int(det) == best[0]
        assert c.get(f"/img/crop/{det}").headers["content-type"] == "image/jpeg"
    # a crop file gone from disk: a placeholder, not a broken image
    gone = db_ids(demo["db_path"], "SELECT detection_id FROM crops WHERE detection_id = ?", (int(tiles[0][1]),))[0]
    con = sqlite3.connect(demo["db_path"])
    con.execute("UPDATE crops SET crop_path = '/nonexistent/crop.jpg' WHERE detection_id IN (SELECT s.detection_id "
                "FROM sightings s WHERE s.individual_id = ?)", (int(tiles[0][0]),))
    con.commit()
    con.close()
    html = c.get("/census").text
    assert f'<img src="/img/crop/{gone}"' not in html
    assert re.search(rf'<a class="tile" href="/individuals/{tiles[0][0]}">\s*<div class="nocrop">crop missing on disk',
                     html)


def db_ids(db: Path, sql: str, params=()) -> list[int]:
    con = sqlite3.connect(db)
    try:
        return [int(r[0]) for r in con.execute(sql, params)]
    finally:
        con.close()
