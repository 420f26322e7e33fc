"""A fresh Python process for tests whose subject is the process itself: which libraries load,
which threads start, what a forked child can do."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str, timeout: float = 300) -> str:
    """Runs ``code`` (dedented) in a new interpreter; its stripped stdout, or a failure with its
    stderr (``subprocess.TimeoutExpired`` after ``timeout`` seconds: a hang fails, not waits)."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
