"""The typed contract (issue 13 part 5): ``mypy --strict`` finds no error in the packages listed here.

Widened package by package as each reaches 0 errors (``bots`` and ``handlers`` next). Imports into a
package not yet listed are followed silently: its own errors are not reported here, but what it
exports is still checked against how the listed packages use it. The settings (strict, Python 3.11,
third-party modules without types) are ``[tool.mypy]`` in pyproject.toml.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("linkpreview", "emulator")


def test_mypy_strict_finds_no_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir", str(tmp_path / "cache"),
         *PACKAGES],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"mypy --strict {' '.join(PACKAGES)}:\n{report}"
    assert "Success: no issues found" in result.stdout, report
