"""manifest.json: every daemon of an experiment, written atomically under a lock, so that
recovery and ``nepid clean`` know exactly what to reconnect to or remove."""

import fcntl
import os
from contextlib import contextmanager
from typing import Any, Dict, Optional

from nepi.util.files import read_json, write_json_atomic

MANIFEST = "manifest.json"


class Manifest:
    def __init__(self, root_dir: str) -> None:
        self.root_dir = root_dir
        self.path = os.path.join(root_dir, MANIFEST)
        self._lock_path = os.path.join(root_dir, ".manifest.lock")

    @contextmanager
    def _locked(self):
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def read(self) -> Dict[str, Any]:
        return read_json(self.path, {"daemons": {}}) or {"daemons": {}}

    def daemons(self) -> Dict[str, dict]:
        return self.read().get("daemons", {})

    def entry(self, key: str) -> Optional[dict]:
        return self.daemons().get(key)

    def update(self, key: str, **fields) -> None:
        with self._locked():
            doc = self.read()
            doc.setdefault("daemons", {}).setdefault(key, {}).update(fields)
            write_json_atomic(self.path, doc, mode=0o600)

    def set_meta(self, **fields) -> None:
        with self._locked():
            doc = self.read()
            doc.update(fields)
            write_json_atomic(self.path, doc, mode=0o600)

    def remove(self, key: str) -> None:
        with self._locked():
            doc = self.read()
            if doc.get("daemons", {}).pop(key, None) is not None:
                write_json_atomic(self.path, doc, mode=0o600)


def testbed_key(testbed_guid: int) -> str:
    return "testbed-%d" % testbed_guid


EC_KEY = "ec"
