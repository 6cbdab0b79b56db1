"""``python -m flows.cli``: the ``bikeflow`` command."""

from flows.cli.main import console_main

console_main()
