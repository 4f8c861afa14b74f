"""manifest.json: every daemon and testbed of an experiment and the experiment's state,
written atomically under a lock, so that recovery and ``nepid clean`` know exactly what to
reconnect to or remove. Persistence of the root dir: the experiment controller writes it,
the runtime layer (daemons, cleanup) and the command line read it."""

import fcntl
import os
import secrets
from contextlib import contextmanager
from typing import Any, Dict, Optional

from nepi.util.files import read_json, write_json_atomic
from nepi.util.rootfiles import MANIFEST, MANIFEST_LOCK

# the experiment state recorded while it is being shut down: a controller found dead in
# it left a shutdown to finish (by record), never an experiment to re-attach to
SHUTTING_DOWN = "shutting_down"


class Manifest:
    def __init__(self, root_dir: str) -> None:
        self.root_dir = root_dir
        self.path = os.path.join(root_dir, MANIFEST)
        self._lock_path = os.path.join(root_dir, MANIFEST_LOCK)

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

    def experiment_id(self) -> str:
        """This root dir's random experiment id, made on first use. Daemons carry it in
        their records, so cleanup can tell our daemons from anyone else's."""
        with self._locked():
            doc = self.read()
            if not doc.get("experiment_id"):
                doc["experiment_id"] = secrets.token_hex(16)
                write_json_atomic(self.path, doc, mode=0o600)
            return doc["experiment_id"]

    def testbeds(self) -> Dict[str, dict]:
        return self.read().get("testbeds", {}) or {}

    def record_testbed(self, testbed_guid: int, testbed_id: str, root_dir: str,
                       mode: str, **fields) -> None:
        """Written before a testbed controller is created: whatever happens next,
        cleanup knows where that testbed keeps its resources. Other fields of the entry
        (its deployment ``phase``) are kept unless given."""
        with self._locked():
            doc = self.read()
            entry = doc.setdefault("testbeds", {}).setdefault(str(testbed_guid), {})
            entry.update(testbed_id=testbed_id, root_dir=root_dir, mode=mode, **fields)
            write_json_atomic(self.path, doc, mode=0o600)

    def record_phase(self, testbed_guid: Optional[int] = None, done: Optional[str] = None,
                     running: Optional[str] = None, **meta) -> None:
        """Deployment progress: ``done`` is the last phase testbed ``testbed_guid``
        completed (testbeds[guid]["phase"]); ``running`` the phase the experiment is in
        now (meta "deploy_phase"); ``meta`` other experiment-level fields."""
        with self._locked():
            doc = self.read()
            if testbed_guid is not None:
                doc.setdefault("testbeds", {}).setdefault(str(testbed_guid), {})["phase"] = done
            if running is not None:
                doc["deploy_phase"] = running
            doc.update(meta)
            write_json_atomic(self.path, doc, mode=0o600)

    def testbed_phase(self, testbed_guid: int) -> Optional[str]:
        """The last deployment phase testbed ``testbed_guid`` completed, or None."""
        return (self.testbeds().get(str(testbed_guid)) or {}).get("phase")

    def remove(self, key: str) -> None:
        with self._locked():
            doc = self.read()
            if doc.get("daemons", {}).pop(key, None) is not None:
                write_json_atomic(self.path, doc, mode=0o600)


def testbed_key(testbed_guid: int) -> str:
    return "testbed-%d" % testbed_guid


EC_KEY = "ec"
