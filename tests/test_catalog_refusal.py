"""issue 23 points 2, 3, 6: a --db that is not a spotid catalog is refused by every command, unchanged;
a command that fails on its input leaves no new catalog; a stage run before the one it needs says what to
run first (exit 2)."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spotid.catalog import APPLICATION_ID, Catalog, CatalogError, missing_step, now_iso, refuse_foreign
from spotid.cli import app
from test_ingest_helpers import burst_times, make_burst_card

ROOT = Path(__file__).resolve().parent.parent
FIX = "pass a new file name or an existing spotid catalog"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())   # the usage box wraps the message


def header_app_id(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[68:72], "big")


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its content hash: a refused command must leave it as it was."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _foreign(path: Path, *, wal: bool = False) -> Path:
    """Another program's SQLite file: one ``users`` table (in WAL mode when ``wal``)."""
    con = sqlite3.connect(path)
    if wal:
        con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO users (name) VALUES ('ada')")
    con.commit()
    con.close()
    return path


@pytest.fixture
def inputs(tmp_path) -> dict:
    """Valid inputs for every command, so that the --db is what gets refused."""
    card = tmp_path / "card"
    make_burst_card(card, burst_times([0]))
    csv = tmp_path / "deployments.csv"
    csv.write_text("deploymentID,latitude,longitude,deploymentStart,deploymentEnd\n"
                   "S01,43.1,131.9,2024-03-01T00:00:00+10:00,2024-04-01T00:00:00+10:00\n")
    return {"card": card, "csv": csv}


def _commands(db: Path, inputs: dict) -> list[list]:
    """Every command that takes --db, with otherwise valid arguments."""
    card, out = inputs["card"], db.parent / "out"
    return [
        ["ingest", card, "-d", "S01", "--db", db],
        ["process", card, "--deployment", "S01", "--db", db],
        ["deployments", "add", "S01", "--lat", "43.1", "--lon", "131.9", "--start", "2024-03-01T00:00:00+10:00",
         "--end", "2024-04-01", "--db", db],
        ["deployments", "import", inputs["csv"], "--db", db],
        ["deployments", "list", "--db", db],
        ["deployments", "check", "--db", db],
        ["media", "list", "--db", db],
        ["media", "relocate", "--deployment", "S01", card, "--db", db],
        ["detect", "--db", db],
        ["identify", "--db", db],
        ["census", "--db", db],
        ["review", "--db", db, "--no-browser"],
        ["export", "camtrapdp", "--db", db, "--out", out],
        ["export", "mdjson", "--db", db, "--out", out / "md.json"],
        ["export", "report", "--db", db, "--out", out],
        ["models", "list", "--db", db],
        ["models", "use", ROOT / "models" / "flank", "--db", db],
        ["train", "embedder", "--db", db, "--out", out / "emb"],
    ]


@pytest.mark.parametrize("kind", ["foreign-sqlite", "foreign-sqlite-wal", "directory", "text"])
def test_every_command_refuses_a_db_that_is_not_a_spotid_catalog_and_leaves_it_unchanged(tmp_path, inputs, kind):
    """issue 23 point 2 (`ingest CARD --db foreign.db` added 15 tables, exit 0) and point 3 (tracebacks for
    `review --db notes.txt` and `ingest --db SOME_DIRECTORY`)."""
    where = tmp_path / "db"
    where.mkdir()
    db = where / {"directory": "folder", "text": "notes.txt"}.get(kind, "foreign.db")
    if kind == "directory":
        db.mkdir()
    elif kind == "text":
        db.write_text("station S01: batteries replaced 2024-03-01\n")
    else:
        _foreign(db, wal=kind.endswith("wal"))
    before = snapshot(where)
    for args in _commands(db, inputs):
        r = run(*args)
        said = flat(r.output)
        assert r.exit_code == 2, (args, r.output)
        assert f"{db} is not a spotid catalog" in said and FIX in said, (args, said)
        assert "Traceback" not in r.output
        assert snapshot(where) == before, args   # byte-identical, no -wal/-shm/-journal beside it
        assert not (where / "out").exists()
    if kind.startswith("foreign"):
        with sqlite3.connect(db) as con:
            assert [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["users"]


def test_the_reason_names_what_the_file_is(tmp_path):
    rails = tmp_path / "rails.db"   # Rails' databases have a schema_migrations table too, of other rows
    with sqlite3.connect(rails) as con:
        con.execute("CREATE TABLE schema_migrations (version TEXT PRIMARY KEY)")
        con.execute("INSERT INTO schema_migrations VALUES ('20240301120000')")
    gpkg = tmp_path / "map.gpkg"
    with sqlite3.connect(gpkg) as con:
        con.execute("PRAGMA application_id = 1196444487")   # GeoPackage's "GPKG"
        con.execute("CREATE TABLE gpkg_contents (table_name TEXT)")
    empty_sqlite = tmp_path / "nothing.db"
    with sqlite3.connect(empty_sqlite) as con:
        con.execute("PRAGMA user_version = 3")   # a valid SQLite header, no table
    cases = {rails: "another program, with tables schema_migrations", gpkg: "application_id 0x47504b47",
             empty_sqlite: "without tables", tmp_path: "a directory"}
    for path, why in cases.items():
        with pytest.raises(CatalogError, match=why):
            Catalog(path)


def test_new_catalogs_carry_the_marker_and_older_ones_get_it_on_the_next_open(tmp_path):
    new = tmp_path / "new.db"
    with Catalog(new):
        assert header_app_id(new) == APPLICATION_ID   # in the file's header from the first write
    old = tmp_path / "old.db"
    with Catalog(old) as cat:
        cat.set_setting("keep", "me")
    with sqlite3.connect(old) as con:   # as a spotid from before the marker left it
        con.execute("PRAGMA application_id = 0")
    with sqlite3.connect(old) as con:
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0
    with Catalog(old) as cat:
        assert cat.get_setting("keep") == "me"
        assert cat.scalar("PRAGMA application_id") == APPLICATION_ID
    assert header_app_id(old) == APPLICATION_ID   # checkpointed on close
    # an empty file is still a fine place to start a catalog (and a missing one with create=True)
    touched = tmp_path / "touched.db"
    touched.touch()
    with Catalog(touched):
        pass
    assert header_app_id(touched) == APPLICATION_ID


def test_a_catalog_in_use_is_read_through_its_wal(tmp_path):
    """A catalog held open elsewhere (review running while a stage writes) may have its newest schema in
    the -wal file only: the check reads through it instead of taking the file for a stranger."""
    db = tmp_path / "c.db"
    con = sqlite3.connect(db, isolation_level=None)   # an older spotid's catalog, not yet checkpointed
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA wal_autocheckpoint=0")
        con.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        con.execute("INSERT INTO schema_migrations VALUES ('0001_initial.sql', 'x')")
        assert Path(f"{db}-wal").exists() and header_app_id(db) == 0
        refuse_foreign(db)   # no CatalogError
    finally:
        con.close()
    old = tmp_path / "old.db"   # end to end: one spotid holds an older catalog open, a second one opens it
    with Catalog(old):
        pass
    with sqlite3.connect(old) as c:
        c.execute("PRAGMA application_id = 0")
    first = Catalog(old)
    try:
        first.set_setting("x", "1")
        with Catalog(old, create=False) as second:
            assert second.get_setting("x") == "1"
    finally:
        first.close()


def _no_new_files(tmp_path: Path, before: set) -> set:
    return {p.name for p in tmp_path.iterdir()} - before


def test_a_command_that_fails_on_its_input_leaves_no_catalog(tmp_path):
    """issue 23 point 6: `ingest /nonexistent` left an empty database behind."""
    (tmp_path / "empty-card").mkdir()
    (tmp_path / "notes-only").mkdir()
    (tmp_path / "notes-only" / "README.txt").write_text("no photos on this card\n")
    before = {p.name for p in tmp_path.iterdir()}
    db = tmp_path / "new.db"
    cases = [
        (["ingest", tmp_path / "nonexistent", "-d", "B1", "--db", db], "does not exist: pass the folder"),
        (["ingest", tmp_path / "empty-card", "-d", "B1", "--db", db], "no image or video files in"),
        (["ingest", tmp_path / "notes-only", "-d", "B1", "--db", db], "(1 other files): pass the folder"),
        (["process", tmp_path / "empty-card", "--deployment", "B1", "--db", db], "no image or video files in"),
        (["process", tmp_path / "nonexistent", "--deployment", "B1", "--db", db], "does not exist"),
        (["deployments", "import", tmp_path / "missing.csv", "--db", db], "missing.csv does not exist"),
        (["deployments", "list", "--db", db], "no catalog at"),
        (["media", "list", "--db", db], "no catalog at"),
    ]
    for args, message in cases:
        r = run(*args)
        assert r.exit_code == 2 and message in flat(r.output), (args, r.output)
        assert _no_new_files(tmp_path, before) == set(), args


def _catalog_with_media(db: Path, tmp_path: Path) -> None:
    card = tmp_path / "card"
    make_burst_card(card, burst_times([0, 1, 5000]))
    r = run("ingest", card, "-d", "S01", "--db", db, "--tz", "+10:00")
    assert r.exit_code == 0, r.output


def _detected(db: Path, *, leopard: bool) -> None:
    """What a detect run leaves: every frame processed, and one leopard box or none."""
    with Catalog(db) as cat, cat.transaction():
        run_id = cat.execute("INSERT INTO runs (stage, started_at, status) VALUES ('detect', ?, 'done')",
                             (now_iso(),)).lastrowid
        ids = [r[0] for r in cat.query("SELECT id FROM media ORDER BY id")]
        for m in ids:
            cat.execute("INSERT INTO detection_status (media_id, run_id, detector, processed_at) VALUES (?, ?, 'x', ?)",
                        (m, run_id, now_iso()))
        if leopard:
            cat.execute("INSERT INTO detections (media_id, run_id, detector, category, conf, x, y, w, h, label) "
                        "VALUES (?, ?, 'x', 1, 0.9, 0.1, 0.1, 0.3, 0.3, 'leopard')", (ids[0], run_id))


def test_each_stage_run_too_early_says_what_to_run_first(tmp_path):
    """issue 23 point 6: `identify` before `detect` and `census` on an empty catalog exited 0 (the census
    inventing the period 2000-01-01 – 2000-01-02)."""
    db = tmp_path / "season.db"
    r = run("deployments", "add", "S01", "--lat", "43.1", "--lon", "131.9", "--start", "2024-03-01T00:00:00+10:00",
            "--end", "2024-04-01", "--db", db)
    assert r.exit_code == 0, r.output   # a catalog with a deployment and no media
    for stage in (["census"], ["detect"], ["identify"], ["census", "--start", "2024-03-01", "--end", "2024-03-31"]):
        r = run(*stage, "--db", db)
        said = flat(r.output)
        assert r.exit_code == 2 and f"no media in {db}: run `spotid ingest CARD --deployment ID --db {db}` first" \
            in said, (stage, said)
        assert "2000-01-01" not in said
    r = run("detect", "--db", db, "--deployment", "S01")
    assert r.exit_code == 2 and "no media of deployment S01" in flat(r.output)
    r = run("detect", "--db", db, "--deployment", "S0l")
    assert r.exit_code == 2 and f"no deployment S0l in {db}: pass an ID that `spotid deployments list" in flat(r.output)

    _catalog_with_media(db, tmp_path)
    r = run("identify", "--db", db)
    assert r.exit_code == 2 and f"has been through detect: run `spotid detect --db {db}` first" in flat(r.output)
    r = run("census", "--db", db)
    assert r.exit_code == 2 and (f"run `spotid detect --db {db}` and then `spotid identify --db {db}` first"
                                 in flat(r.output))
    with Catalog(db) as cat:
        n_runs = cat.scalar("SELECT COUNT(*) FROM runs")
    _detected(db, leopard=True)
    r = run("census", "--db", db)
    assert r.exit_code == 2 and f"1 leopard detection(s) have not been through identify: run `spotid identify " \
                                f"--db {db}` first" in flat(r.output)
    with Catalog(db) as cat:   # the refusals recorded no run
        assert cat.scalar("SELECT COUNT(*) FROM runs") == n_runs + 1
        assert missing_step(cat, "identify") is None


def test_a_survey_whose_detect_found_no_leopard_is_a_real_zero(tmp_path):
    db = tmp_path / "season.db"
    _catalog_with_media(db, tmp_path)
    _detected(db, leopard=False)
    with Catalog(db) as cat:
        assert [missing_step(cat, s) for s in ("detect", "identify", "census")] == [None, None, None]
    r = run("census", "--db", db, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)["summary"]
    assert summary["mna"] == 0 and summary["period_start"].startswith("2024-03-0"), summary
