"""SQL on the catalog tables media, sequences and ingest_failures (see docs/catalog.md for their columns and who writes and reads them)."""
from __future__ import annotations

import sqlite3
from dataclasses import fields
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from spotid.catalog import now_iso
from spotid.types import MediaRow
from spotid.util import batched

if TYPE_CHECKING:
    from spotid.catalog import Catalog


# -- used by review (app, census_view) --
def image(cat: Catalog | sqlite3.Connection, media_id: int) -> MediaRow | None:
    """The path and deployment_id of media row ``media_id`` when it is a still image (kind 'image'); else None."""
    r = cat.execute("SELECT path, deployment_id FROM media WHERE id = ? AND kind = 'image'", (media_id,)).fetchone()
    return None if r is None else MediaRow.from_row(r)


def per_year(cat: Catalog | sqlite3.Connection) -> list[sqlite3.Row]:
    """Per calendar year of the local camera time (media with a timestamp), by year: ``yr``, first and last day
    ``day0`` / ``day1`` (YYYY-MM-DD), ``n_media`` frames and ``n_counted`` sightings (status 'auto' or 'confirmed'
    with an individual) on them."""
    # (aliases must not be column names: detections has a column y, which GROUP BY would pick)
    return cat.execute("SELECT substr(m.timestamp, 1, 4) yr, MIN(substr(m.timestamp, 1, 10)) day0, "
                       "MAX(substr(m.timestamp, 1, 10)) day1, COUNT(DISTINCT m.id) n_media, "
                       "COUNT(s.id) n_counted FROM media m LEFT JOIN detections d ON d.media_id = m.id "
                       "LEFT JOIN sightings s ON s.detection_id = d.id AND s.status IN ('auto', 'confirmed') "
                       "AND s.individual_id IS NOT NULL WHERE m.timestamp IS NOT NULL GROUP BY yr ORDER BY yr"
                       ).fetchall()


# -- used by export / census / workflow (camtrapdp, census, workflow truth) --
def time_span_by_deployment(cat: Catalog | sqlite3.Connection) -> dict[str, tuple[str, str]]:
    """deployment_id -> (first, last) ``media.timestamp`` (ISO text as stored) of its timestamped media;
    deployments without one are absent."""
    return {r["deployment_id"]: (r["t0"], r["t1"]) for r in cat.execute(
        "SELECT deployment_id, MIN(timestamp) t0, MAX(timestamp) t1 FROM media WHERE timestamp IS NOT NULL "
        "GROUP BY deployment_id")}


def for_export(cat: Catalog | sqlite3.Connection) -> list[MediaRow]:
    """Every media row (id, deployment_id, rel_path, kind, timestamp, warning, parent_id), by id; sampled video
    frames (``parent_id`` set) included."""
    return [MediaRow.from_row(r) for r in cat.execute(
        "SELECT id, deployment_id, rel_path, kind, timestamp, warning, parent_id FROM media ORDER BY id")]


# -- used by detect / identify (detect.run) --
def _of_deployment(deployment: str | None, column: str = "deployment_id") -> tuple[str, tuple]:
    """The optional `` AND <column> = ?`` part and its argument (none without ``deployment``)."""
    return (f" AND {column} = ?", (deployment,)) if deployment else ("", ())


def awaiting_detection(cat: Catalog | sqlite3.Connection, deployment: str | None = None) -> list[sqlite3.Row]:
    """Media detect still has to process (no ``detection_status`` row): photos and video frames, not videos
    (they go through their frames), of all deployments or of ``deployment``, by id: ``id, path, rel_path, kind,
    parent_id``."""
    where, args = _of_deployment(deployment, "m.deployment_id")
    return cat.execute("SELECT m.id, m.path, m.rel_path, m.kind, m.parent_id FROM media m "
                       "LEFT JOIN detection_status s ON s.media_id = m.id WHERE s.media_id IS NULL "
                       f"AND m.kind != 'video'{where} ORDER BY m.id", args).fetchall()


def count_frames(cat: Catalog | sqlite3.Connection, deployment: str | None = None) -> int:
    """How many media rows detect analyses (every kind but 'video'), of all deployments or of ``deployment``."""
    where, args = _of_deployment(deployment)
    return int(cat.execute(f"SELECT COUNT(*) FROM media WHERE kind != 'video'{where}", args).fetchone()[0])


def count_ingest_failures(cat: Catalog | sqlite3.Connection, deployment: str | None = None) -> int:
    """How many files ingest could not read, of all deployments or of ``deployment``."""
    where, args = _of_deployment(deployment)
    return int(cat.execute(f"SELECT COUNT(*) FROM ingest_failures WHERE 1{where}", args).fetchone()[0])


def videos_without_frames(cat: Catalog | sqlite3.Connection, deployment: str | None = None) -> list[str]:
    """``rel_path`` of the videos no frame was sampled from (ingested by a spotid that did not sample videos),
    of all deployments or of ``deployment``, in table order."""
    where, args = _of_deployment(deployment, "v.deployment_id")
    return [r[0] for r in cat.execute("SELECT v.rel_path FROM media v WHERE v.kind = 'video' AND NOT EXISTS "
                                      f"(SELECT 1 FROM media c WHERE c.parent_id = v.id){where}", args)]


def deployment_ids(cat: Catalog | sqlite3.Connection) -> list[str]:
    """The distinct ``deployment_id`` of the media rows, in the order SQLite returns them."""
    return [r[0] for r in cat.execute("SELECT DISTINCT deployment_id FROM media")]


# -- used by ingest (ingester, video, sequences, media_root, deployments, cli, health) --
# media columns ingest writes, in this order (sequence_id and frame_num are set by update_sequence_frames)
_INGEST_COLUMNS = ("deployment_id", "sha", "path", "rel_path", "kind", "timestamp", "time_source", "width", "height",
                   "size_bytes", "make", "model", "serial", "warning", "run_id", "parent_id", "frame_offset_s")
_IN_CHUNK = 500   # placeholders per IN-list, well below SQLite's limit on host parameters


def _executemany(cat: Catalog | sqlite3.Connection, sql: str, params: Iterable) -> sqlite3.Cursor:
    # Catalog has no executemany of its own; its connection does
    return getattr(cat, "conn", cat).executemany(sql, params)


def insert_if_new(cat: Catalog | sqlite3.Connection, row: MediaRow) -> bool:
    """INSERT OR IGNORE the ``_INGEST_COLUMNS`` of ``row`` (its other fields are not written): True when a row was
    added, False when the content hash ``sha`` is already in the catalog (a duplicate or a re-run)."""
    cur = cat.execute(f"INSERT OR IGNORE INTO media ({', '.join(_INGEST_COLUMNS)}) "
                      f"VALUES ({', '.join('?' * len(_INGEST_COLUMNS))})",
                      [getattr(row, c) for c in _INGEST_COLUMNS])
    return cur.rowcount == 1


def by_sha(cat: Catalog | sqlite3.Connection, sha: str) -> MediaRow | None:
    """The media row (every column) with content hash ``sha``; None if there is none."""
    r = cat.execute("SELECT * FROM media WHERE sha = ?", (sha,)).fetchone()
    return None if r is None else MediaRow.from_row(r)


def set_time(cat: Catalog | sqlite3.Connection, sha: str, timestamp: str | None, time_source: str | None,
             warning: str | None) -> None:
    """Set ``timestamp``, ``time_source`` and ``warning`` of the media row with content hash ``sha``."""
    cat.execute("UPDATE media SET timestamp = ?, time_source = ?, warning = ? WHERE sha = ?",
                (timestamp, time_source, warning, sha))


def count_by_time_source(cat: Catalog | sqlite3.Connection, shas: Iterable[str]) -> dict[str | None, int]:
    """``time_source`` (None for NULL) -> number of the media rows with these content hashes (IN-lists of 500);
    hashes not in the catalog count nowhere."""
    counts: dict[str | None, int] = {}
    for chunk in batched(shas, _IN_CHUNK):
        for source, n in cat.execute(f"SELECT time_source, COUNT(*) FROM media WHERE sha IN ({', '.join('?' * len(chunk))}) "
                                     "GROUP BY time_source", chunk):
            counts[source] = counts.get(source, 0) + n
    return counts


def sequence_ids_of(cat: Catalog | sqlite3.Connection, shas: Iterable[str]) -> set[int]:
    """The sequences (``media.sequence_id``, NULL left out) the media rows with these content hashes are in."""
    seqs: set[int] = set()
    for chunk in batched(shas, _IN_CHUNK):
        seqs.update(r[0] for r in cat.execute(
            f"SELECT DISTINCT sequence_id FROM media WHERE sha IN ({', '.join('?' * len(chunk))}) "
            "AND sequence_id IS NOT NULL", chunk))
    return seqs


def count_of_deployment(cat: Catalog | sqlite3.Connection, deployment_id: str) -> int:
    """How many media rows (photos, videos and video frames) the deployment has."""
    return int(cat.execute("SELECT COUNT(*) FROM media WHERE deployment_id = ?", (deployment_id,)).fetchone()[0])


def files_of_deployment(cat: Catalog | sqlite3.Connection, deployment_id: str) -> list[MediaRow]:
    """The deployment's media rows that are files under its media root (photos and videos: ``parent_id`` NULL;
    a video's sampled frames live in the frame cache), by ``rel_path``: id, rel_path, sha and size_bytes."""
    return [MediaRow.from_row(r) for r in cat.execute(
        "SELECT id, rel_path, sha, size_bytes FROM media WHERE deployment_id = ? AND parent_id IS NULL "
        "ORDER BY rel_path", (deployment_id,))]


def prefix_rel_paths(cat: Catalog | sqlite3.Connection, deployment_id: str, prefix: str) -> None:
    """Put ``prefix`` (ending in '/') in front of every ``rel_path`` of the deployment (its media root widened)."""
    cat.execute("UPDATE media SET rel_path = ? || rel_path WHERE deployment_id = ?", (prefix, deployment_id))


def set_paths(cat: Catalog | sqlite3.Connection, paths: Mapping[int, str]) -> None:
    """Set ``media.path`` of each media id in ``paths`` (id -> absolute path)."""
    _executemany(cat, "UPDATE media SET path = ? WHERE id = ?", [(p, i) for i, p in paths.items()])


def listing(cat: Catalog | sqlite3.Connection, deployment_id: str | None = None, limit: int = 0) -> list[sqlite3.Row]:
    """Media rows for ``spotid media list``, of one deployment (None: all), by deployment, timestamp and path; at most
    ``limit`` (0: all). Columns: id, deployment_id, timestamp, time_source, sequence_id, frame_num, kind, width,
    height, make, model, serial, sha, rel_path, path, warning."""
    where, args = _where_deployment(deployment_id)
    return cat.execute("SELECT id, deployment_id, timestamp, time_source, sequence_id, frame_num, kind, width, height, "
                       f"make, model, serial, sha, rel_path, path, warning FROM media {where} "
                       f"ORDER BY deployment_id, timestamp, path{_limit(limit)}", args).fetchall()


def camera_photos(cat: Catalog | sqlite3.Connection) -> list[MediaRow]:
    """Every photo the cameras took (kind 'image', not a video's sampled frame), in table order: id,
    deployment_id, timestamp, path and rel_path."""
    return [MediaRow.from_row(r) for r in cat.execute(
        "SELECT id, deployment_id, timestamp, path, rel_path FROM media WHERE kind = 'image' AND parent_id IS NULL")]


def sampled_video_shas(cat: Catalog | sqlite3.Connection) -> set[str]:
    """Content hashes of the videos that have sampled frames (media rows with their ``parent_id``)."""
    return {r[0] for r in cat.execute(
        "SELECT v.sha FROM media v WHERE v.kind = 'video' AND EXISTS (SELECT 1 FROM media c WHERE c.parent_id = v.id)")}


def video_by_sha(cat: Catalog | sqlite3.Connection, sha: str) -> MediaRow | None:
    """The video (kind 'video') with content hash ``sha``: id, deployment_id, rel_path, timestamp, time_source,
    make, model and serial; None if there is none."""
    r = cat.execute("SELECT id, deployment_id, rel_path, timestamp, time_source, make, model, serial FROM media "
                    "WHERE sha = ? AND kind = 'video'", (sha,)).fetchone()
    return None if r is None else MediaRow.from_row(r)


def has_frames(cat: Catalog | sqlite3.Connection, video_id: int) -> bool:
    """True when some media row is a sampled frame of media row ``video_id``."""
    return cat.execute("SELECT 1 FROM media WHERE parent_id = ? LIMIT 1", (video_id,)).fetchone() is not None


def timed_of_deployment(cat: Catalog | sqlite3.Connection, deployment_id: str) -> list[MediaRow]:
    """The deployment's media rows with a timestamp, in table order: id, timestamp, rel_path, path, sequence_id,
    frame_num and time_source."""
    return [MediaRow.from_row(r) for r in cat.execute(
        "SELECT id, timestamp, rel_path, path, sequence_id, frame_num, time_source FROM media "
        "WHERE deployment_id = ? AND timestamp IS NOT NULL", (deployment_id,))]


def set_sequence_frames(cat: Catalog | sqlite3.Connection, frames: Iterable[tuple[int, int, int]]) -> None:
    """Set ``sequence_id`` and ``frame_num`` of media rows, from (sequence_id, frame_num, media id) triples."""
    _executemany(cat, "UPDATE media SET sequence_id = ?, frame_num = ? WHERE id = ?", frames)


# sequences
def sequence_ids_of_deployment(cat: Catalog | sqlite3.Connection, deployment_id: str) -> set[int]:
    """Ids of the deployment's ``sequences`` rows."""
    return {r[0] for r in cat.execute("SELECT id FROM sequences WHERE deployment_id = ?", (deployment_id,))}


def insert_sequence(cat: Catalog | sqlite3.Connection, deployment_id: str, start: str, end: str, n_media: int) -> int:
    """Add a ``sequences`` row (start, end: ISO times with offset); returns its id."""
    return int(cat.execute("INSERT INTO sequences (deployment_id, start, end, n_media) VALUES (?, ?, ?, ?)",
                           (deployment_id, start, end, n_media)).lastrowid)


def update_sequences(cat: Catalog | sqlite3.Connection, spans: Iterable[tuple[str, str, int, int]]) -> None:
    """Set ``start``, ``end`` and ``n_media`` of sequences, from (start, end, n_media, sequence id) tuples."""
    _executemany(cat, "UPDATE sequences SET start = ?, end = ?, n_media = ? WHERE id = ?", spans)


def delete_sequences(cat: Catalog | sqlite3.Connection, sequence_ids: Iterable[int]) -> None:
    """Delete these ``sequences`` rows (their media keep the id until set again: ON DELETE SET NULL)."""
    _executemany(cat, "DELETE FROM sequences WHERE id = ?", [(i,) for i in sequence_ids])


# ingest_failures
def clear_failures(cat: Catalog | sqlite3.Connection, paths: Iterable[str]) -> None:
    """Delete the ``ingest_failures`` rows of these file paths (the files ingest now)."""
    _executemany(cat, "DELETE FROM ingest_failures WHERE path = ?", [(p,) for p in paths])


def record_failures(cat: Catalog | sqlite3.Connection, run_id: int | None, deployment_id: str,
                    failures: Iterable[tuple[str, str]]) -> None:
    """Record (path, reason) pairs as ``ingest_failures`` of the run, stamped now; a path already recorded gets
    this run, deployment, reason and time (one row per path)."""
    _executemany(cat, "INSERT INTO ingest_failures (run_id, deployment_id, path, reason, recorded_at) "
                 "VALUES (?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET run_id = excluded.run_id, "
                 "deployment_id = excluded.deployment_id, reason = excluded.reason, recorded_at = excluded.recorded_at",
                 [(run_id, deployment_id, path, reason, now_iso()) for path, reason in failures])


def failures(cat: Catalog | sqlite3.Connection, deployment_id: str | None = None, limit: int = 0) -> list[sqlite3.Row]:
    """``ingest_failures`` rows of one deployment (None: all), by path; at most ``limit`` (0: all). Columns: id,
    deployment_id, path, reason, run_id, recorded_at."""
    where, args = _where_deployment(deployment_id)
    return cat.execute(f"SELECT id, deployment_id, path, reason, run_id, recorded_at FROM ingest_failures {where} "
                       f"ORDER BY path{_limit(limit)}", args).fetchall()


def failure_paths(cat: Catalog | sqlite3.Connection) -> set[str]:
    """The path of every ``ingest_failures`` row."""
    return {r[0] for r in cat.execute("SELECT path FROM ingest_failures")}


def set_failure_paths(cat: Catalog | sqlite3.Connection, paths: Mapping[int, str]) -> None:
    """Set ``ingest_failures.path`` of each failure id in ``paths`` (id -> path)."""
    _executemany(cat, "UPDATE ingest_failures SET path = ? WHERE id = ?", [(p, i) for i, p in paths.items()])


def _where_deployment(deployment_id: str | None) -> tuple[str, list]:
    """(WHERE clause, its parameters) keeping one deployment's rows, or ('', []) for all."""
    return ("WHERE deployment_id = ?", [deployment_id]) if deployment_id is not None else ("", [])


def _limit(limit: int) -> str:
    return f" LIMIT {int(limit)}" if limit > 0 else ""


# -- used by review (demo) and workflow (truth) --
def insert(cat: Catalog | sqlite3.Connection, row: MediaRow) -> int:
    """Add a media row with the fields of ``row`` that are not None (``id`` is assigned); returns its id."""
    values = {f.name: getattr(row, f.name) for f in fields(row) if f.name != "id" and getattr(row, f.name) is not None}
    cur = cat.execute(f"INSERT INTO media ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                      tuple(values.values()))
    return int(cur.lastrowid)
