"""The ingest benchmark script keeps working (a tiny run; the real numbers come from --n 3000)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "ingest.py"


@pytest.mark.shared
@pytest.mark.slow
def test_benchmark_script_runs_on_a_small_card(shared, tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), "--n", "40", "--baseline-n", "4", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["frames"] == 40 and res["spotid_ingest_fps"] > 0 and res["naive_full_decode_fps"] > 0
    assert res["speedup_vs_naive"] == pytest.approx(res["spotid_ingest_fps"] / res["naive_full_decode_fps"], rel=0.02)
