"""``python -m monocore doctor`` gives ``monocore doctor``'s report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REQUIRE_BOOT

REPO = Path(__file__).resolve().parents[2]


def _doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monocore", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_doctor_reports_this_host_and_exits_by_its_verdict():
    report = _doctor("--json")
    data = json.loads(report.stdout)
    assert set(data) >= {"can_boot", "verdict", "kernel", "checks", "problems", "cpus"}
    assert report.returncode == (0 if data["can_boot"] else 1)
    assert data["cpus"] == os.cpu_count()
    assert [c["check"] for c in data["checks"]][:1] == ["KVM device"]
    if REQUIRE_BOOT:
        assert data["can_boot"], data
    table = _doctor()
    assert table.stdout.startswith("monocore doctor\n")
    assert f"verdict: {data['verdict']}" in table.stdout


def test_doctor_matches_the_cli_when_it_is_built():
    cli = [REPO / "target" / p / "monocore" for p in ("debug", "release")]
    built = [c for c in cli if c.exists()]
    if not built:
        pytest.skip(f"no monocore CLI under {REPO}/target (cargo build -p monocore-cli)")
    ours = _doctor()
    theirs = subprocess.run([built[0], "doctor"], capture_output=True, text=True, timeout=60)

    def steady(text: str) -> list:
        # The available memory changes from one call to the next.
        return [line for line in text.splitlines() if not line.startswith("  memory ")]

    assert ours.returncode == theirs.returncode
    assert steady(ours.stdout) == steady(theirs.stdout)
    assert len(steady(ours.stdout)) == len(ours.stdout.splitlines()) - 1
