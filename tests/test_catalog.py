import sqlite3

import pytest

from spotid.catalog import Catalog, CatalogError, migrations


def test_migrates_empty_database(db_path):
    with Catalog(db_path) as cat:
        assert cat.schema_version == len(migrations()) >= 1
        tables = {r[0] for r in cat.query("SELECT name FROM sqlite_master WHERE type='table'")}
        for t in ("deployments", "media", "sequences", "detections", "individuals", "sightings",
                  "match_candidates", "review_decisions", "runs"):
            assert t in tables
        assert cat.scalar("PRAGMA journal_mode") == "wal"
        assert cat.scalar("PRAGMA foreign_keys") == 1
    # Re-opening applies nothing twice.
    with Catalog(db_path) as cat:
        assert cat.migrate() == []
        assert cat.applied_migrations() == [n for n, _ in migrations()]


def test_transaction_rolls_back(db_path):
    with Catalog(db_path) as cat:
        with pytest.raises(RuntimeError):
            with cat.transaction():
                cat.execute("INSERT INTO settings VALUES ('a', '1')")
                raise RuntimeError("boom")
        assert cat.get_setting("a") is None
        cat.set_setting("a", "2")
        assert cat.get_setting("a") == "2"


def test_foreign_keys_enforced(db_path):
    with Catalog(db_path) as cat:
        with pytest.raises(sqlite3.IntegrityError):
            with cat.transaction():
                cat.execute(
                    "INSERT INTO media (deployment_id, sha, path, rel_path, kind, size_bytes) "
                    "VALUES ('nope', 'x', '/a', 'a', 'image', 1)"
                )


def test_newer_schema_is_refused(db_path):
    with Catalog(db_path) as cat:
        cat.execute("INSERT INTO schema_migrations VALUES ('9999_from_the_future', 'x')")
    with pytest.raises(CatalogError, match="newer spotid"):
        Catalog(db_path)


def test_run_records_config(db_path):
    with Catalog(db_path) as cat:
        with cat.run("ingest", {"gap": 60}, model_version=None) as run_id:
            pass
        row = cat.query("SELECT * FROM runs WHERE id = ?", (run_id,))[0]
        assert row["status"] == "done" and '"gap": 60' in row["config_json"]


def test_create_false_refuses_a_missing_file_and_names_the_fix(tmp_path):
    """Stages after ingest open with create=False: a mistyped --db must not start an empty catalog."""
    missing = tmp_path / "typo.db"
    with pytest.raises(CatalogError, match="spotid ingest"):
        Catalog(missing, create=False)
    assert not missing.exists()
    with Catalog(tmp_path / "real.db") as cat:
        v = cat.schema_version
    with Catalog(tmp_path / "real.db", create=False) as cat:
        assert cat.schema_version == v


def test_a_file_that_is_not_a_catalog_is_refused_with_the_fix(tmp_path):
    from typer.testing import CliRunner

    from spotid.cli import app

    text, empty = tmp_path / "notes.db", tmp_path / "empty.db"
    text.write_text("field notes, not a database\n")
    empty.touch()
    with pytest.raises(CatalogError, match="not a spotid catalog"):
        Catalog(text)
    with pytest.raises(CatalogError, match="empty file"):
        Catalog(empty, create=False)
    assert empty.stat().st_size == 0   # untouched
    for db, fix in ((text, "pass a new file name or an existing spotid catalog"), (empty, "pass the --db")):
        r = CliRunner().invoke(app, ["census", "--db", str(db)])
        said = " ".join(r.output.replace("│", " ").split())   # the usage box wraps the message
        assert r.exit_code == 2 and fix in said


def test_flank_seen_rule_in_python_and_sql_agree(tmp_path):
    """One rule, read by identify's gallery, the review page's references and review decisions."""
    from spotid.catalog import flank_seen, flank_seen_sql, set_aside_sql

    cases = [("left", "auto", True), ("right", "pending", True), ("unknown", "auto", False),
             ("front", "pending", False), ("unknown", "confirmed", True), (None, "auto", False)]
    con = sqlite3.connect(":memory:")
    for crop, status, seen in cases:
        assert flank_seen(crop, status) is seen, (crop, status)
        got = con.execute(f"SELECT {flank_seen_sql()} FROM (SELECT ? AS flank) c, (SELECT ? AS status) s",
                          (crop, status)).fetchone()[0]
        assert bool(got) is seen, (crop, status)
    aside = con.execute(f"SELECT {set_aside_sql()} FROM (SELECT 'unusable' AS status, ? AS set_aside_reason) s",
                        ("crop failed",)).fetchone()[0]
    decided = con.execute(f"SELECT {set_aside_sql()} FROM (SELECT 'unusable' AS status, NULL AS set_aside_reason) s"
                          ).fetchone()[0]
    assert (aside, decided) == (1, 0)
