"""Command-line tools: ``nepi`` (designs: validate, show) and ``nepid`` (daemon, to come)."""
