"""`python -m services.cli`: the `drgwatch` command line, as child processes start it."""

import sys

from services.cli import main

sys.exit(main())
