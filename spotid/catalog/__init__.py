"""The spotid catalog: one SQLite file holding every stage's inputs and results.

Design:
- WAL journal so the review web page can read while a stage writes; foreign keys on.
- Forward-only migrations: ``spotid/catalog/migrations/NNNN_name.sql`` applied in name order, each
  in its own transaction, recorded in ``schema_migrations``. ``PRAGMA user_version`` holds the count,
  which is the schema version reported to users.
- Every write happens inside :meth:`Catalog.transaction`; stages commit in batches so a kill loses
  at most one batch and a re-run completes it (all inserts are keyed so they are idempotent).
"""
from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

DEFAULT_DB = "spotid.db"
# ``PRAGMA application_id`` of every spotid catalog (bytes 68-71 of the file header): ASCII "SPID". Set when
# spotid creates a catalog, and on the next open of an older one (recognised by its schema_migrations table).
APPLICATION_ID = 0x53504944


def now_iso() -> str:
    """Current UTC time as ISO 8601 with offset, second precision."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# -- rules on sightings that several stages read the same way ------------------------------------
def flank_seen(crop_flank: str | None, status: str) -> bool:
    """True when a sighting's flank was seen, not inferred: the flank classifier called its crop left
    or right, or a person confirmed the sighting. identify gives a view without a flank the flank of
    the individual it matched; such a view is no reference crop (identify's gallery, the review page's
    reference images) and a person may still assign it to the other flank. SQL form:
    :func:`flank_seen_sql`."""
    return crop_flank in ("left", "right") or status == "confirmed"


def flank_seen_sql(crop: str = "c", sighting: str = "s") -> str:
    """:func:`flank_seen` as an SQL condition on a ``crops`` alias and a ``sightings`` alias."""
    return f"({crop}.flank IN ('left', 'right') OR {sighting}.status = 'confirmed')"


def set_aside_sql(sighting: str = "s") -> str:
    """SQL condition: a sighting identify set aside (status 'unusable' with its reason) that no person
    has decided since (a decision clears ``set_aside_reason``)."""
    return f"({sighting}.status = 'unusable' AND {sighting}.set_aside_reason IS NOT NULL)"


def missing_step(cat: "Catalog", stage: str, deployment: str | None = None) -> str | None:
    """Why ``stage`` ('detect', 'identify' or 'census') has nothing to work on in ``cat`` because an earlier
    stage has not run, as a sentence naming the command to run first; None when it can go ahead.

    detect needs media; identify needs media through detect; census needs those and, when detect found
    leopards, identify's sightings (a census of a survey whose detect found none is a real zero). With
    ``deployment``, that deployment must exist and the media are its own."""
    where, args = ("WHERE m.deployment_id = ?", [deployment]) if deployment else ("", [])
    of = f" of deployment {deployment}" if deployment else ""
    db = cat.path
    if deployment and not cat.scalar("SELECT COUNT(*) FROM deployments WHERE id = ?", (deployment,)):
        return f"no deployment {deployment} in {db}: pass an ID that `spotid deployments list --db {db}` shows"
    if not cat.scalar(f"SELECT COUNT(*) FROM media m {where}", args):
        return (f"no media{of} in {db}: run `spotid ingest CARD --deployment {deployment or 'ID'} --db {db}` "
                "first")
    if stage == "detect":
        return None
    detected = ("SELECT EXISTS (SELECT 1 FROM detection_status x JOIN media m ON m.id = x.media_id {w}) "
                "OR EXISTS (SELECT 1 FROM detections x JOIN media m ON m.id = x.media_id {w})").format(w=where)
    if not cat.scalar(detected, args * 2):   # detections without a status: made by review's demo or by hand
        then = f" and then `spotid identify --db {db}`" if stage == "census" else ""
        return f"no frame{of} in {db} has been through detect: run `spotid detect --db {db}`{then} first"
    if stage == "identify":
        return None
    leopards = cat.scalar("SELECT COUNT(*) FROM detections d JOIN media m ON m.id = d.media_id LEFT JOIN sightings s "
                          "ON s.detection_id = d.id WHERE d.label = 'leopard' AND d.static_fp = 0 AND s.id IS NULL "
                          + where.replace("WHERE", "AND"), args)
    if leopards and not cat.scalar("SELECT COUNT(*) FROM sightings"):
        return (f"no sightings in {db}: {leopards} leopard detection(s) have not been through identify: run "
                f"`spotid identify --db {db}` first")
    return None


def migrations() -> list[tuple[str, str]]:
    """All shipped migrations as (name, sql), in the order they are applied."""
    files = resources.files("spotid.catalog") / "migrations"
    out = [(f.name, f.read_text(encoding="utf-8")) for f in files.iterdir() if f.name.endswith(".sql")]
    return sorted(out)


class CatalogError(RuntimeError):
    """A catalog that cannot be used as asked (newer schema, not a spotid file, ...)."""


class Catalog:
    """A connection to a spotid catalog file, migrated to the current schema on open.

    Use as a context manager or call :meth:`close`. Not thread-safe: one Catalog per thread.
    """

    def __init__(self, path: str | Path = DEFAULT_DB, *, timeout: float = 30.0, create: bool = True):
        """``create=False``: the file must exist (every stage after ingest), so a mistyped ``--db``
        fails with the fix instead of silently starting an empty catalog. Any existing file that is not a
        spotid catalog (:func:`refuse_foreign`) is refused, unchanged."""
        self.path = Path(path)
        if not create and not self.path.exists():
            raise CatalogError(f"no catalog at {self.path}: run `spotid ingest CARD --deployment ID --db {self.path}` "
                               "first, or pass the --db you ingested into")
        refuse_foreign(self.path)   # before SQLite touches the file: a refused one stays byte-identical
        if not create and self.path.stat().st_size == 0:  # SQLite would take it for a new, empty catalog
            raise CatalogError(f"{self.path} is an empty file, not a catalog ingest wrote: pass the --db you "
                               "ingested into")
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so transactions are explicit.
        self.conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self._depth = 0
        try:
            # the marker goes in before WAL, so a new file's header carries it from its first write
            if self.conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.migrate()
        except sqlite3.DatabaseError as e:
            self.conn.close()
            raise CatalogError(f"{self.path} is not a spotid catalog, or it is damaged ({e}): pass the --db that "
                               "ingest wrote, or restore it from a copy") from None

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- schema ----------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def applied_migrations(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM schema_migrations ORDER BY name")]

    def migrate(self) -> list[str]:
        """Apply every migration not yet applied; returns the names applied now."""
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = set(self.applied_migrations())
        shipped = migrations()
        unknown = done - {name for name, _ in shipped}
        if unknown:
            raise CatalogError(
                f"{self.path} was written by a newer spotid (migrations {sorted(unknown)}): upgrade spotid"
            )
        applied = []
        for name, sql in shipped:
            if name in done:
                continue
            with self.transaction():
                # executescript would COMMIT our transaction; run statement by statement instead.
                for stmt in _split_sql(sql):
                    self.conn.execute(stmt)
                self.conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, now_iso()))
                self.conn.execute(f"PRAGMA user_version = {len(done) + len(applied) + 1}")
            applied.append(name)
            log.debug("applied migration %s to %s", name, self.path)
        return applied

    # -- transactions ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, *, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN ... COMMIT, rolled back on any exception. Nested calls join the outer one.

        ``immediate`` takes the write lock at BEGIN, so two writers (two review tabs) serialise
        instead of failing half-way with SQLITE_BUSY.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, params: Any = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    # -- runs ------------------------------------------------------------------------------------
    def start_run(self, stage: str, config: Any = None, model_version: str | None = None) -> int:
        """Record the start of a stage with its resolved configuration; returns the run id."""
        cfg = asdict(config) if is_dataclass(config) else (config or {})
        with self.transaction():
            cur = self.conn.execute(
                "INSERT INTO runs (stage, started_at, config_json, model_version) VALUES (?, ?, ?, ?)",
                (stage, now_iso(), json.dumps(cfg, default=str, sort_keys=True), model_version),
            )
        return int(cur.lastrowid)

    def record_run(self, stage: str, model_version: str | None = None, status: str = "done") -> int:
        """Record a run that is already over (no config, no finish time): a catalog built by hand, such as
        the review page's demo; returns its id. Inside the caller's transaction."""
        return int(self.conn.execute("INSERT INTO runs (stage, started_at, status, model_version) VALUES (?, ?, ?, ?)",
                                     (stage, now_iso(), status, model_version)).lastrowid)

    def finish_run(self, run_id: int, status: str = "done", summary: dict | None = None) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE runs SET finished_at = ?, status = ?, summary_json = ? WHERE id = ?",
                (now_iso(), status, json.dumps(summary, default=str) if summary is not None else None, run_id),
            )

    @contextlib.contextmanager
    def run(self, stage: str, config: Any = None, model_version: str | None = None) -> Iterator[int]:
        """Context manager around start_run/finish_run; marks the run interrupted/failed on error."""
        run_id = self.start_run(stage, config, model_version)
        try:
            yield run_id
        except KeyboardInterrupt:
            self.finish_run(run_id, "interrupted")
            raise
        except BaseException:
            self.finish_run(run_id, "failed")
            raise
        else:
            self.finish_run(run_id, "done")

    # -- settings --------------------------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        v = self.scalar("SELECT value FROM settings WHERE key = ?", (key,))
        return default if v is None else v

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


def refuse_foreign(path: Path) -> None:
    """Raise :class:`CatalogError` unless ``path`` is absent, an empty file, or a spotid catalog: an SQLite
    file with spotid's :data:`APPLICATION_ID`, or (older catalogs) with spotid's ``schema_migrations``.
    Nothing is written: the header is read as bytes and the tables through an ``immutable`` connection,
    which leaves no -wal/-shm behind (a plain read-only one would, on a WAL file)."""
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return
    why = None
    if path.is_dir():
        why = "a directory"
    elif not path.is_file():
        why = "not a regular file"
    else:
        with open(path, "rb") as f:
            head = f.read(100)
        if len(head) < 100 or not head.startswith(b"SQLite format 3\0"):
            why = "not an SQLite file"
        else:
            app_id = int.from_bytes(head[68:72], "big", signed=True)
            if app_id == APPLICATION_ID:
                return
            why = (_foreign_tables(path) if app_id == 0
                   else f"an SQLite file of another program, application_id {app_id:#x}")
    if why:
        raise CatalogError(f"{path} is not a spotid catalog ({why}): pass a new file name or an existing spotid "
                           "catalog")


def _foreign_tables(path: Path) -> str | None:
    """None when ``path`` (an SQLite file without an application_id) is an older spotid catalog, one whose
    ``schema_migrations`` lists spotid's first migration (Rails, for one, has a table of that name too);
    else what it holds instead. A -wal file beside it may hold the newest schema: then read through it."""
    wal = Path(f"{path}-wal").exists()
    uri = f"{path.resolve().as_uri()}?{'mode=ro' if wal else 'immutable=1'}"
    try:
        con = sqlite3.connect(uri, uri=True)
        try:
            names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            if "schema_migrations" in names:
                with contextlib.suppress(sqlite3.DatabaseError):
                    if con.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (migrations()[0][0],)).fetchone():
                        return None
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        return f"an unreadable SQLite file: {e}"
    if not names:
        return "an SQLite database without tables or spotid's marker"
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return f"an SQLite database of another program, with tables {', '.join(names[:5])}{more}"


def _split_sql(sql: str) -> list[str]:
    """Split a migration script into complete statements (sqlite3 knows where each one ends,
    including ';' inside comments and strings)."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip() and not all(ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()):
        raise CatalogError(f"incomplete statement at the end of a migration: {buf.strip()[:80]}")
    return out
