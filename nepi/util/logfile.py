"""Logs a researcher can read: one file per process in the experiment's logs/ directory."""

import logging
import os

FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


def log_to_file(path: str, debug: bool = False) -> None:
    """Send this process's log records to ``path`` (replacing other root handlers)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
