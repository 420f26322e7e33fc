"""``python -m semrec``: the ``semrec`` command, run by the console script's entry point.

Examples
--------
>>> import subprocess, sys
>>> subprocess.run([sys.executable, "-m", "semrec", "--help"]).returncode  # doctest: +SKIP
0
"""

import sys

from semrec.cli import main

if __name__ == "__main__":  # run, not imported (e.g. by a tool walking the package)
    sys.exit(main())
