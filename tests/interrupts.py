"""Child Python processes for the tests that stop work from outside: Ctrl-C in the middle of a
long C++ call, or a kill in the middle of a write. The child says when it is ready; whatever
happens in the test, it never outlives it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager

# A shell that started the test run in the background passes SIGINT on as ignored; Python only
# installs its Ctrl-C handler when it is not, so the child installs it explicitly.
_CTRL_C_HANDLER = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"


@contextmanager
def child(code: str, ready: str = "ready") -> Iterator[subprocess.Popen[str]]:
    """Run ``python -c code`` until its first line is ``ready``; kill it on leaving, whatever
    happened (never leave minutes or hours of work running after a failure)."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == ready
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def ctrl_c(
    setup: str, work: str, after: str = "", *, wait: float = 1.0, timeout: float = 60.0
) -> str:
    """Everything the child ``setup; try: work; except KeyboardInterrupt: ...; after`` prints,
    Ctrl-C being pressed ``wait`` seconds into ``work``.

    The child prints ``interrupted`` when the KeyboardInterrupt reaches ``work``. Choose a
    ``work`` of many minutes: only the kernels' stop hook then ends it within the 60 s timeout
    (``timeout``: more for an ``after`` that does long work of its own).
    """
    code = (
        _CTRL_C_HANDLER
        + textwrap.dedent(setup)
        + "print('ready', flush=True)\n"
        + "try:\n"
        + textwrap.indent(textwrap.dedent(work), "    ")
        + "except KeyboardInterrupt:\n"
        + "    print('interrupted', flush=True)\n"
        + textwrap.dedent(after)
    )
    with child(code) as proc:
        time.sleep(wait)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=timeout)
    return out
