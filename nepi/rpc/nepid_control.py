"""What the ``nepid`` commands do to a root dir and its nepid: start it, stop it (traces
copied first), restart it to recover its experiment, clean up after it. The command line
(nepi.cli.nepid_cmd) parses arguments and prints what these return.
"""

import os
import time
from typing import Dict, List, NamedTuple, Optional, Sequence

from nepi.core.journal import Journal
from nepi.core.manifest import EC_KEY, SHUTTING_DOWN
from nepi.errors import NepiError
from nepi.rpc import daemon_main
from nepi.rpc.cleanup import CleanReport, clean_root, leftover_files
from nepi.rpc.ec_client import ExperimentControllerProxy, nepid_arguments, start_nepid
from nepi.rpc.launcher import launch
from nepi.rpc.layout import ROLE_EC
from nepi.rpc.rootdir import (NepidNotAnswering, attach_nepid, daemon_entries,
                              experiment_state, leftovers, nepid_lock_pid, refuse_leftovers,
                              refuse_running_nepid, refuse_unrecoverable,
                              resumable_deployment)
from nepi.rpc.traces import TraceCopy, copy_traces


def _daemon_arguments(root_dir: str, log_level: str, allowed_roots: Optional[List[str]],
                      listen: List[str]) -> List[str]:
    """``nepid start`` always recovers what it finds in the root dir."""
    return nepid_arguments(root_dir, log_level, True, allowed_roots) + list(listen)


def run_nepid_in_foreground(root_dir: str, log_level: str,
                            allowed_roots: Optional[List[str]] = None,
                            listen: Optional[List[str]] = None) -> int:
    """Serve ``root_dir`` in this process until stopped (systemd); its exit status."""
    refuse_running_nepid(root_dir)
    os.makedirs(root_dir, exist_ok=True)
    return daemon_main.main([ROLE_EC, "--root-dir", root_dir, "--foreground"] +
                            _daemon_arguments(root_dir, log_level, allowed_roots,
                                              listen or []))


def launch_nepid(root_dir: str, log_level: str, allowed_roots: Optional[List[str]] = None,
                 listen: Optional[List[str]] = None) -> dict:
    """Start a detached nepid on ``root_dir``; its ready record (pid, log_file, listen)."""
    refuse_running_nepid(root_dir)
    return launch(ROLE_EC, root_dir, _daemon_arguments(root_dir, log_level, allowed_roots,
                                                       listen or []))


def nepid_status(root_dir: str) -> Optional[dict]:
    """What the nepid serving ``root_dir`` says of itself, or None if none runs."""
    proxy = attach_nepid(root_dir)
    if proxy is None:
        return None
    try:
        return proxy.daemon_status()
    finally:
        proxy.close()


def start_nepid_to_run(root_dir: str, log_level: str,
                       allowed_roots: Optional[List[str]] = None,
                       testbed_ids: Sequence[str] = ()) -> ExperimentControllerProxy:
    """``nepid run`` on a root dir without a nepid: start one there (refusing a root dir
    whose nepid is starting or hung, or that still has live daemons), preloading the
    modules of ``testbed_ids`` (the design's) for their daemons."""
    if nepid_lock_pid(root_dir) is not None:
        raise NepiError("nepid in %s is starting or hung; try again or `nepid clean`"
                        % root_dir)
    refuse_leftovers(root_dir)
    os.makedirs(root_dir, exist_ok=True)
    return start_nepid(root_dir, log_level, allowed_roots=allowed_roots,
                       preload=list(dict.fromkeys(testbed_ids)))


class StopReport(NamedTuple):
    pid: Optional[int]                 # nepid's
    state: str                         # the experiment's, before stopping
    stop_error: Optional[Exception]    # stopping the experiment failed (shut down anyway)
    copied: Optional[TraceCopy]        # traces copied into ROOT/traces (None: not copied)
    remote_root: Optional[str]         # nepid's root dir on its own host
    left: List[str]                    # runtime files left behind (this host only)


def stop_nepid(proxy: ExperimentControllerProxy, root_dir: Optional[str],
               with_traces: bool = True) -> StopReport:
    """Stop the experiment, copy its traces into ``root_dir`` (None: nepid runs on another
    host, nothing is copied), shut it and nepid down. Logs, traces and XML are kept."""
    pid = proxy.pid
    state = proxy.state
    stop_error = None
    if state == "started":
        try:
            proxy.stop()
        except Exception as e:          # reported; the shutdown below still runs
            stop_error = e
    copied = None
    if state in ("started", "stopped") and with_traces and root_dir is not None:
        copied = copy_traces(proxy, root_dir)
    remote_root = proxy.root_dir
    proxy.shutdown()
    left = leftover_files(root_dir) if root_dir is not None else []
    return StopReport(pid, state, stop_error, copied, remote_root, left)


def wait_until_unlocked(root_dir: str, timeout: float = 5.0) -> bool:
    """True once no process holds nepid's pid lock of ``root_dir`` (it died or exited)."""
    deadline = time.monotonic() + timeout
    while nepid_lock_pid(root_dir) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


class DeadStopReport(NamedTuple):
    state: Optional[str]               # the experiment state the manifest recorded
    shut_down: List[str]               # testbed daemons that shut down when asked
    refused: List[str]                 # those that did not (killed by record instead)
    cleaned: CleanReport               # clean_root: killed, removed, cleaned, problems
    left: List[str]                    # what is still there: live daemons, runtime files


def stop_without_nepid(root_dir: str) -> DeadStopReport:
    """``nepid stop`` on a root dir whose nepid is dead (killed during a deployment, a
    run or an earlier ``nepid stop``): ask each surviving testbed daemon of this
    experiment (by record; its run/ secret, its owner id checked) to shut down, which
    releases its resources, then kill what did not and remove every recorded testbed's
    resources by token (clean_root). Idempotent: run again, it finishes what is left."""
    from nepi.core.manifest import Manifest
    from nepi.rpc.cleanup import LOCAL
    from nepi.rpc.tc_client import attach
    root_dir = os.path.abspath(root_dir)
    doc = Manifest(root_dir).read()
    owner = doc.get("experiment_id")
    shut_down, problems = [], []
    for daemon in daemon_entries(root_dir):
        entry = daemon.entry
        if daemon.key == EC_KEY or not daemon.alive or not owner or \
                entry.get("host", LOCAL) != LOCAL or not entry.get("root_dir"):
            continue
        try:
            controller = attach(os.path.abspath(entry["root_dir"]), entry.get("testbed_id"),
                                entry.get("testbed_version"), entry.get("testbed_guid"),
                                owner)
            controller.shutdown()
            shut_down.append("%s: shut down" % daemon.describe().rsplit(":", 1)[0])
        except Exception as e:          # killed by record below
            problems.append("%s did not shut down when asked (%s): killed instead"
                            % (daemon.describe().rsplit(":", 1)[0], e))
    report = clean_root(root_dir)
    Journal(root_dir).append("experiment", "shutdown",
                             message="nepid was not running: shut down by record")
    left = ["%s" % d.describe() for d in daemon_entries(root_dir) if d.alive]
    left += leftover_files(root_dir)
    return DeadStopReport(doc.get("experiment_state"), shut_down, problems, report, left)


class RecoverReport(NamedTuple):
    status: Optional[dict]             # the restarted nepid's daemon_status() (None: none)
    before: Dict[int, int]             # testbed guid -> pid of its daemon alive before
    state: Optional[str] = None        # the experiment state the manifest recorded
    cleaned: Optional[CleanReport] = None   # nothing to resume: what was left, removed


def recover_nepid(root_dir: str, log_level: str) -> RecoverReport:
    """Restart the nepid of ``root_dir`` (none runs) to recover its experiment: re-attach
    to a deployed one, or roll back and redeploy one its nepid left half-deployed. An
    experiment that cannot be resumed (failed, shut down, state unknown) but left
    daemons or runtime files behind is cleaned up by record instead (``cleaned``), and
    one whose nepid died while shutting it down has that shutdown finished."""
    state = experiment_state(root_dir)
    if state == SHUTTING_DOWN:
        return RecoverReport(None, {}, state, stop_without_nepid(root_dir).cleaned)
    if not resumable_deployment(root_dir):
        try:
            refuse_unrecoverable(root_dir)
        except NepiError:
            left = leftovers(root_dir)
            if not (left.daemons or left.files):
                raise
            return RecoverReport(None, {}, state, clean_root(root_dir))
    before = {d.entry.get("testbed_guid"): d.entry.get("pid") for d in daemon_entries(root_dir)
              if d.key != EC_KEY and d.alive}
    proxy = start_nepid(root_dir, log_level, recover=True)
    try:
        status = proxy.daemon_status()
    finally:
        proxy.close()
    return RecoverReport(status, before, state)


def clean(root_dir: str, force: bool = False) -> CleanReport:
    """``nepid clean``: kill what is left of ``root_dir``'s experiment and remove its
    runtime files (nepi.rpc.cleanup.clean_root); refused while its nepid answers, unless
    ``force``."""
    if not force:
        try:
            proxy = attach_nepid(root_dir)
        except NepidNotAnswering:
            proxy = None     # holds the lock but does not answer: a leftover to kill
        if proxy is not None:
            pid = proxy.pid
            proxy.close()
            raise NepiError("nepid (pid %s) is running and answering in %s: use `nepid stop "
                            "--root-dir %s` (or `nepid clean --force` to kill it)"
                            % (pid, root_dir, root_dir))
    return clean_root(root_dir)
