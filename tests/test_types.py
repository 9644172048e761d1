"""The typed contract (issue 13 part 5): ``mypy --strict`` finds no error in the packages listed here.

Widened package by package as each reaches 0 errors (``handlers`` next). Imports into a
package not yet listed are followed silently: its own errors are not reported here, but what it
exports is still checked against how the listed packages use it. The settings (strict, Python 3.11,
third-party modules without types) are ``[tool.mypy]`` in pyproject.toml.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("linkpreview", "emulator", "bots", "handlers")


def test_mypy_strict_finds_no_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir", str(tmp_path / "cache"),
         *PACKAGES],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"mypy --strict {' '.join(PACKAGES)}:\n{report}"
    assert "Success: no issues found" in result.stdout, report


USER_MODULES = ROOT / "tests" / "types"


def _mypy_user_module(name: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir", str(tmp_path / "cache"),
         str(USER_MODULES / name)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_handlers_are_typed_for_the_events_their_decorator_delivers(tmp_path: Path) -> None:
    """A ``(event: Postback, ctx: Context)`` handler passes on ``@bot.on_postback`` and is an error on
    ``@bot.on_message``, which delivers a ``Message``."""
    good = _mypy_user_module("good_bot.py", tmp_path)
    assert good.returncode == 0, f"mypy --strict tests/types/good_bot.py:\n{good.stdout}{good.stderr}"
    assert "Success: no issues found" in good.stdout, good.stdout + good.stderr

    wrong = _mypy_user_module("wrong_bot.py", tmp_path)
    report = wrong.stdout + wrong.stderr
    assert wrong.returncode == 1, f"mypy --strict tests/types/wrong_bot.py found no error:\n{report}"
    assert "wrong_bot.py:13: error:" in report and "Callable[[Postback, Context], None]" in report, report
    assert report.count(": error:") == 1, report
