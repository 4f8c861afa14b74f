"""What is (still) running in an experiment root dir, and whether it may be used: the
facts and refusals behind ``nepid status/run/recover/clean`` and ``nepi run``.

Everything is read from the root dir's own records (manifest.json, nepid's pid lock and
ready record), never guessed from process lists.
"""

import os
from typing import List, NamedTuple, Optional

from nepi.core.manifest import EC_KEY, SHUTTING_DOWN, Manifest
from nepi.core.recovery import RESUMABLE_STATES
from nepi.errors import ControllerUnreachableError, NepiError
from nepi.rpc.cleanup import leftover_files
from nepi.rpc.ec_client import ExperimentControllerProxy, attach_ec
from nepi.rpc.layout import ROLE_EC, DaemonLayout
from nepi.rpc.liveness import is_same_process
from nepi.rpc.pidlock import is_locked, read_pid
from nepi.util.rootfiles import DESIGN_XML, EXECUTE_XML

# experiment states in which a root dir holds an experiment to recover or stop
LIVE_STATES = ("started", "stopped", "deploying", SHUTTING_DOWN)


class NepidNotAnswering(NepiError):
    """A process holds nepid's pid lock of a root dir but does not answer."""


class DaemonEntry(NamedTuple):
    key: str          # "ec" or "testbed-<guid>"
    entry: dict       # the manifest entry
    alive: bool       # its pid still runs with the recorded start time

    def describe(self) -> str:
        e = self.entry
        if e.get("role") == ROLE_EC:
            what = "nepid"
        else:
            what = "testbed %s (%s) daemon" % (e.get("testbed_guid", "?"),
                                               e.get("testbed_id", "?"))
        return "%s, pid %s: %s" % (what, e.get("pid", "?"),
                                   "still running" if self.alive else "dead")


def nepid_layout(root_dir: str) -> DaemonLayout:
    return DaemonLayout(root_dir, ROLE_EC)


def nepid_log_file(root_dir: str) -> str:
    return nepid_layout(root_dir).default_log_file()


def nepid_lock_pid(root_dir: str) -> Optional[int]:
    """The pid of the nepid holding its pid lock in ``root_dir``, or None if no process
    holds it (-1 if one does but its pid cannot be read)."""
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
    entries.sort(key=lambda d: (d.key != EC_KEY, d.key))
    return entries


def experiment_state(root_dir: str) -> Optional[str]:
    return manifest(root_dir).get("experiment_state")


class Leftovers(NamedTuple):
    state: Optional[str]            # the experiment state manifest.json records
    daemons: List[DaemonEntry]
    files: List[str]                # runtime files of recorded daemons still there
    error: Optional[str] = None     # why the experiment failed, if it did

    @property
    def recoverable(self) -> bool:
        return self.state in LIVE_STATES and self.state != SHUTTING_DOWN


def leftovers(root_dir: str) -> Leftovers:
    """What a root dir without a running nepid still holds."""
    if not os.path.isdir(root_dir):
        return Leftovers(None, [], [])
    return Leftovers(experiment_state(root_dir), daemon_entries(root_dir),
                     leftover_files(root_dir), manifest(root_dir).get("error"))


def attach_nepid(root_dir: str) -> Optional[ExperimentControllerProxy]:
    """A proxy to the nepid serving ``root_dir``, or None if none is running.

    NepidNotAnswering if a process holds nepid's pid lock but cannot be reached."""
    try:
        return attach_ec(root_dir)
    except ControllerUnreachableError as e:
        pid = nepid_lock_pid(root_dir)
        if pid is None:
            return None
        raise NepidNotAnswering(
            "nepid (pid %s) holds %s but does not answer (%s); it may still be starting or "
            "recovering (see %s), or be hung: `nepid clean --root-dir %s --force` removes it"
            % (pid, nepid_layout(root_dir).pid_file, e, nepid_log_file(root_dir),
               root_dir)) from e


def refuse_running_nepid(root_dir: str) -> None:
    """Before starting a nepid on ``root_dir``: none may hold its pid lock."""
    pid = nepid_lock_pid(root_dir)
    if pid is not None:
        raise NepiError("already running (pid %s) serving %s" % (pid, root_dir))


def refuse_leftovers(root_dir: str) -> None:
    """Never deploy over live daemons of an earlier experiment of the same root dir."""
    alive = [d for d in daemon_entries(root_dir) if d.alive]
    if alive:
        raise NepiError("%s still has running daemons of an earlier experiment (%s); "
                        "`nepid recover`, `nepid stop` or `nepid clean --root-dir %s` first"
                        % (root_dir, "; ".join(d.describe() for d in alive), root_dir))


def refuse_busy_root(root_dir: str) -> None:
    """``nepi run``: never deploy over a running experiment of the same root dir."""
    pid = nepid_lock_pid(root_dir)
    if pid is not None:
        raise NepiError("nepid (pid %s) is serving %s; use another root directory, or "
                        "`nepid stop --root-dir %s` first" % (pid, root_dir, root_dir))
    refuse_leftovers(root_dir)


def resumable_deployment(root_dir: str) -> bool:
    """The root dir holds a deployment its nepid did not finish (the manifest still says
    "deploying"; the design is kept): recovery rolls it back and deploys it again."""
    return experiment_state(root_dir) in RESUMABLE_STATES and \
        os.path.exists(os.path.join(root_dir, DESIGN_XML))


def refuse_unrecoverable(root_dir: str) -> None:
    """``nepid recover``: the root dir must hold a deployed experiment not shut down."""
    state = experiment_state(root_dir)
    if resumable_deployment(root_dir):
        return
    deployed = os.path.exists(os.path.join(root_dir, EXECUTE_XML))
    if not deployed or state in (None, "shutdown", "failed"):
        raise NepiError("nothing to recover in %s: %s" % (
            root_dir, "no deployed experiment (no %s)" % EXECUTE_XML if not deployed
            else "the experiment was %s" % (state or "never started")))
