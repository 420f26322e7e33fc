"""The command line, end to end on small sizes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from semrec.cli import main


def test_demo_runs_and_prints_results_and_timing(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--items", "3000", "--users", "200", "--dim", "16", "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Top recommendations" in out
    assert "agreement with the NumPy reference:   100.0%" in out
    assert "speed-up:" in out
    # The synthetic catalogue is topical: most recommendations match the user's topic.
    on_topic = float(out.split("recommendations on the user's topic:")[1].split("%")[0])
    assert on_topic > 50


def test_console_script_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "semrec.cli", "demo", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "--items" in result.stdout


def test_bad_argument_is_a_one_line_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "semrec.cli", "demo", "--items", "0"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "must be >= 1" in result.stderr
