"""Kill -9 in the middle of an ingest, re-run, and every frame is in the catalog exactly once."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from test_ingest_helpers import burst_times, make_burst_card

N_FRAMES = 400


def _count(db) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM media").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # file or table not there yet
        return 0


def _ingest_cmd(card, db):
    return [sys.executable, "-m", "spotid", "ingest", str(card), "-d", "KILL-1", "--db", str(db),
            "--tz", "+10:00", "--batch-size", "4", "--workers", "1", "--json"]


@pytest.mark.slow
def test_sigkill_mid_ingest_then_rerun_gives_each_frame_once(tmp_path):
    card = tmp_path / "card"
    # Bursts of 4 frames 2 s apart, bursts 10 min apart: 100 sequences.
    offsets = [b * 600 + k * 2 for b in range(N_FRAMES // 4) for k in range(4)]
    make_burst_card(card, burst_times(offsets), size=(320, 240))
    db = tmp_path / "kill.db"
    proc = subprocess.Popen(_ingest_cmd(card, db), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _count(db) < 40 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "ingest finished before it could be killed: make the card bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    partial = _count(db)
    assert 0 < partial < N_FRAMES, partial
    assert partial % 4 == 0  # only whole batches were committed

    out = subprocess.run(_ingest_cmd(card, db), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["media_added"] == N_FRAMES - partial and summary["duplicates"] == partial
    assert summary["failures"] == [] and summary["sequences"] == N_FRAMES // 4
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT sha), COUNT(DISTINCT path) FROM media").fetchone() == (
        N_FRAMES, N_FRAMES, N_FRAMES)
    assert con.execute("SELECT COUNT(*) FROM media WHERE sequence_id IS NULL").fetchone()[0] == 0
    assert con.execute("SELECT COUNT(*), MIN(n_media), MAX(n_media) FROM sequences").fetchone() == (N_FRAMES // 4, 4, 4)
    # The killed run stays 'running' (no chance to record anything); the re-run is 'done'.
    assert [r[0] for r in con.execute("SELECT status FROM runs ORDER BY id")] == ["running", "done"]
    con.close()
