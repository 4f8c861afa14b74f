"""Command-line tools: ``nepi`` (designs: validate, show, run in-process) and ``nepid``
(the experiment-controller daemon: start, status, stop, run, recover, clean)."""
