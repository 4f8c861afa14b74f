"""What the ``nepid`` commands do to a root dir and its nepid: start it, stop it (traces
copied first), restart it to recover its experiment, clean up after it. The command line
(nepi.cli.nepid_cmd) parses arguments and prints what these return.
"""

import os
from typing import Dict, List, NamedTuple, Optional

from nepi.core.manifest import EC_KEY
from nepi.errors import NepiError
from nepi.rpc import daemon_main
from nepi.rpc.cleanup import CleanReport, clean_root, leftover_files
from nepi.rpc.ec_client import ExperimentControllerProxy, nepid_arguments, start_nepid
from nepi.rpc.launcher import launch
from nepi.rpc.layout import ROLE_EC
from nepi.rpc.rootdir import (NepidNotAnswering, attach_nepid, daemon_entries,
                              nepid_lock_pid, refuse_leftovers, refuse_running_nepid,
                              refuse_unrecoverable)
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
                       allowed_roots: Optional[List[str]] = None) -> ExperimentControllerProxy:
    """``nepid run`` on a root dir without a nepid: start one there (refusing a root dir
    whose nepid is starting or hung, or that still has live daemons)."""
    if nepid_lock_pid(root_dir) is not None:
        raise NepiError("nepid in %s is starting or hung; try again or `nepid clean`"
                        % root_dir)
    refuse_leftovers(root_dir)
    os.makedirs(root_dir, exist_ok=True)
    return start_nepid(root_dir, log_level, allowed_roots=allowed_roots)


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


class RecoverReport(NamedTuple):
    status: dict                       # the restarted nepid's daemon_status()
    before: Dict[int, int]             # testbed guid -> pid of its daemon alive before


def recover_nepid(root_dir: str, log_level: str) -> RecoverReport:
    """Restart the nepid of ``root_dir`` (none runs) to recover its experiment."""
    refuse_unrecoverable(root_dir)
    before = {d.entry.get("testbed_guid"): d.entry.get("pid") for d in daemon_entries(root_dir)
              if d.key != EC_KEY and d.alive}
    proxy = start_nepid(root_dir, log_level, recover=True)
    try:
        status = proxy.daemon_status()
    finally:
        proxy.close()
    return RecoverReport(status, before)


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
