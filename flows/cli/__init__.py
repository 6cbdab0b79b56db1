"""The ``bikeflow`` console command: ``main`` builds the parser, one module per subcommand."""
