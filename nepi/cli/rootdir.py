"""What is (still) running in an experiment root directory, for the CLI commands."""

import os
from typing import List, NamedTuple, Optional

from nepi.rpc.layout import ROLE_EC, DaemonLayout
from nepi.rpc.liveness import is_same_process
from nepi.rpc.manifest import Manifest
from nepi.rpc.pidlock import is_locked, read_pid


class DaemonEntry(NamedTuple):
    key: str          # "ec" or "testbed-<guid>"
    entry: dict       # the manifest entry
    alive: bool       # its pid still runs with the recorded start time

    def describe(self) -> str:
        e = self.entry
        if e.get("role") == "ec":
            what = "nepid"
        else:
            what = "testbed %s (%s) daemon" % (e.get("testbed_guid", "?"),
                                               e.get("testbed_id", "?"))
        return "%s, pid %s: %s" % (what, e.get("pid", "?"),
                                   "still running" if self.alive else "dead")


def nepid_layout(root_dir: str) -> DaemonLayout:
    return DaemonLayout(root_dir, ROLE_EC)


def nepid_lock_pid(root_dir: str) -> Optional[int]:
    """The pid of the nepid holding ``ROOT/nepid.pid``, or None if no process holds it."""
    layout = nepid_layout(root_dir)
    if not is_locked(layout.pid_file):
        return None
    return read_pid(layout.pid_file) or -1


def manifest(root_dir: str) -> dict:
    return Manifest(os.path.abspath(root_dir)).read()


def daemon_entries(root_dir: str) -> List[DaemonEntry]:
    """Every daemon in manifest.json, nepid first, with whether it is still alive."""
    daemons = manifest(root_dir).get("daemons", {}) or {}
    entries = [DaemonEntry(key, entry, is_same_process(entry.get("pid"),
                                                       entry.get("start_time")))
               for key, entry in daemons.items() if isinstance(entry, dict)]
    entries.sort(key=lambda d: (d.key != "ec", d.key))
    return entries


def experiment_state(root_dir: str) -> Optional[str]:
    return manifest(root_dir).get("experiment_state")
