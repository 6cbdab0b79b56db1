"""``python -m flows.cli``: the ``bikeflow`` command."""

import sys

from flows.cli.main import console_main

sys.exit(console_main())
