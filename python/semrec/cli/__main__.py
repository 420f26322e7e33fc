import sys

from semrec.cli import main

sys.exit(main())
