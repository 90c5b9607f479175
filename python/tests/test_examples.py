"""The README's Python example runs and prints what the README shows (two
real boots: its sandbox and its pool's VM)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import no_boot

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def test_the_quickstart_example_prints_what_the_readme_shows():
    run = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=600)
    if run.returncode != 0 and ("HostCannotBoot" in run.stderr or "BootFailed" in run.stderr):
        no_boot(RuntimeError(run.stderr.strip().splitlines()[-1]))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert re.fullmatch(r"booted in \d+\.\d+s", lines[0]), lines
    assert re.fullmatch(r"3 'hello from \S+\\n' 'oops\\n'", lines[1]), lines
    assert lines[2] == "3 /tmp/input.txt"
    assert lines[3:6] == ["stdout 'line 1\\n'", "stdout 'line 2\\n'", "stderr 'done\\n'"]
    assert lines[6] == "killed after 2.0s"
    assert re.fullmatch(r"from a warm VM: claim to output in \d+\.\d\ds", lines[7]), lines
    assert len(lines) == 8, lines


def test_the_readme_shows_the_example_as_it_is():
    readme = (EXAMPLE.parents[2] / "README.md").read_text()
    section = readme[readme.index("## Use monocore from Python") :]
    start = section.index("```python\n") + len("```python\n")
    shown = section[start : section.index("```", start)]
    source = EXAMPLE.read_text()
    assert shown == source[source.index("import time") :]
