"""Logs a researcher can read: one file per process in the experiment's logs/ directory.

Logs hold commands and addresses, so they are created readable by their owner only."""

import logging
import os

FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


def log_to_file(path: str, debug: bool = False) -> None:
    """Send this process's log records to ``path`` (replacing other root handlers)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))  # not world-readable
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
