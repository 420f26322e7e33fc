"""The README's Quickstart code runs as printed (it is what a new user pastes first)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def quickstart_code() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, "README's Quickstart has no python block"
    return blocks[0]


def test_quickstart_runs_and_prints_the_comparison(capsys):
    pytest.importorskip("semrec._text", reason="the text encoder module is not built")
    code = quickstart_code()
    assert len(code.strip().splitlines()) <= 20  # the promise is a short quickstart
    exec(compile(code, "README.md#quickstart", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    for name in ("ALS", "content", "hybrid", "contribution", "share"):
        assert name in out
