"""The benchmark scripts run end to end on a tiny bundle (their numbers are not checked here, their shape is)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runtime_bundles import bundle_for

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_serve_load_stops_each_run_at_max_requests_with_its_stats(tmp_path):
    """--max-requests ends a locust run early; the run's requests and percentiles must still be counted."""
    bundle = bundle_for(tmp_path, "text-classification")
    out = tmp_path / "load"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "serve_load.py"), str(bundle), "--out", str(out),
                           "--users", "1", "--seconds", "8", "--repeats", "1", "--max-requests", "25",
                           "--overload-users", "2", "--overload-queue", "2", "--overload-rounds", "1",
                           "--overhead-runs", "3"], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.with_suffix(".json").read_text())
    runs = [run for runs in result["load"].values() for run in runs] + result["overload"]["rounds"]
    assert len(runs) >= 4  # every micro-batching configuration, then the overload round
    for run in runs:
        assert run["requests"] == 25 and run["ok"] + run["failures"] == 25, run
        assert run["requests_per_s"] > 0 and 0 < run["p50_ms"] <= run["p99_ms"], run
    assert out.with_suffix(".md").read_text().count("|") > 10
