"""Cleaning an experiment root dir by record: the one cleanup behind ``nepid clean``,
``nepid stop`` leftovers, recovery and the Fail policy.

Only what the root dir's own manifest.json records is touched: daemons by pid + process
start time (or, for a daemon caught while launching, by its ready record carrying this
root dir's experiment id), testbed resources through each recorded testbed's ``cleanup``
hook (which removes only what carries that testbed's token), and the runtime files of
the recorded daemon layouts. Never a command-line pattern, never a path prefix: a
daemon of another root dir, nested or not, is never touched.
"""

import errno
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from nepi.core.manifest import EC_KEY, Manifest, testbed_key
from nepi.core.tunnels import KEYS_FILE, forget_link_keys
from nepi.rpc.layout import ROLE_EC, ROLE_TESTBED, DaemonLayout
from nepi.rpc.liveness import is_same_process, kill_process
from nepi.rpc.pidlock import is_locked, wait_unlocked
from nepi.rpc.security import socket_path_candidates
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.environ import cleanup_testbed
from nepi.util.files import read_json
from nepi.util.rootfiles import MANIFEST

_logger = logging.getLogger("nepi.rpc.cleanup")

LOCAL = "localhost"


@dataclass
class CleanReport:
    killed: List[str] = field(default_factory=list)
    removed: List[str] = field(default_factory=list)
    cleaned: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)


def _describe(key: str, entry: dict) -> str:
    if key == EC_KEY:
        return "nepid, pid %s" % entry.get("pid", "?")
    return "testbed %s (%s) daemon, pid %s" % (entry.get("testbed_guid", "?"),
                                               entry.get("testbed_id", "?"),
                                               entry.get("pid", "?"))


def _read_manifest(root_dir: str, report: CleanReport) -> dict:
    try:
        return Manifest(root_dir).read()
    except (OSError, ValueError) as e:
        report.problems.append("%s is unreadable (%s); only nepid's own files in %s are "
                               "cleaned" % (MANIFEST, e, root_dir))
        return {"daemons": {}}


def recorded_testbeds(doc: dict) -> Dict[int, Tuple[Optional[str], str]]:
    """testbed guid -> (testbed id, root dir), as the manifest recorded them."""
    found: Dict[int, list] = {}
    for key, info in (doc.get("testbeds") or {}).items():
        if isinstance(info, dict) and info.get("root_dir") and str(key).isdigit():
            found[int(key)] = [info.get("testbed_id"), info["root_dir"]]
    for entry in (doc.get("daemons") or {}).values():
        if not isinstance(entry, dict) or entry.get("role") != ROLE_TESTBED:
            continue
        guid = entry.get("testbed_guid")
        if isinstance(guid, int) and entry.get("root_dir") and \
                entry.get("host", LOCAL) == LOCAL:
            item = found.setdefault(guid, [None, entry["root_dir"]])
            item[0] = item[0] or entry.get("testbed_id")
    return {g: (tid, os.path.abspath(root)) for g, (tid, root) in found.items()}


def _layouts(root_dir: str, doc: dict) -> List[DaemonLayout]:
    """nepid's layout in the root dir and the testbed daemon layouts the manifest names."""
    roots = {root for _, root in recorded_testbeds(doc).values()}
    for entry in (doc.get("daemons") or {}).values():
        if isinstance(entry, dict) and entry.get("role") == ROLE_TESTBED and \
                entry.get("root_dir") and entry.get("host", LOCAL) == LOCAL:
            roots.add(os.path.abspath(entry["root_dir"]))
    return [DaemonLayout(root_dir, ROLE_EC)] + \
        [DaemonLayout(root, ROLE_TESTBED) for root in sorted(roots)]


def runtime_files(layout: DaemonLayout, record: Optional[dict] = None) -> List[str]:
    """Files a daemon of ``layout`` creates (never logs, traces or XML)."""
    files = [layout.pid_file, layout.secret_file, layout.record_file]
    files += socket_path_candidates(layout.run_dir, layout.socket_name)
    if record and record.get("socket") and record["socket"] not in files:
        files.append(record["socket"])
    return files


def leftover_files(root_dir: str) -> List[str]:
    """Runtime files of this root dir's recorded daemons that still exist."""
    root_dir = os.path.abspath(root_dir)
    doc = _read_manifest(root_dir, CleanReport())
    found = []
    for layout in _layouts(root_dir, doc):
        for path in runtime_files(layout, _entry_for(doc, layout)):
            if os.path.lexists(path) and path not in found:
                found.append(path)
    return found


def _entry_for(doc: dict, layout: DaemonLayout) -> Optional[dict]:
    for key, entry in (doc.get("daemons") or {}).items():
        if not isinstance(entry, dict):
            continue
        if layout.role == ROLE_EC and key == EC_KEY:
            return entry
        if layout.role == ROLE_TESTBED and entry.get("root_dir") and \
                os.path.abspath(entry["root_dir"]) == layout.root_dir:
            return entry
    return None


def _owned_record(layout: DaemonLayout, experiment_id: Optional[str]) -> Optional[dict]:
    """The ready record of a live daemon in ``layout`` that carries our experiment id."""
    record = read_json(layout.record_file) if os.path.exists(layout.record_file) else None
    if not isinstance(record, dict) or not experiment_id or \
            record.get("owner") != experiment_id:
        return None
    if not is_same_process(record.get("pid"), record.get("start_time")):
        return None
    return record


def kill_daemon(key: str, entry: dict, experiment_id: Optional[str],
                report: CleanReport) -> None:
    """Kill one recorded daemon: the process the manifest names (pid + start time), or
    one caught between launch and manifest update (its record carries our id)."""
    if entry.get("host", LOCAL) != LOCAL:
        report.problems.append("%s runs on %s: not killed from here"
                               % (_describe(key, entry), entry.get("host")))
        return
    targets = []
    if entry.get("pid") and is_same_process(entry.get("pid"), entry.get("start_time")):
        targets.append((entry["pid"], entry.get("start_time")))
    if entry.get("root_dir") or key == EC_KEY:
        role = ROLE_EC if key == EC_KEY else ROLE_TESTBED
        root = entry.get("root_dir") if role == ROLE_TESTBED else None
        if root:
            record = _owned_record(DaemonLayout(root, role), experiment_id)
            if record and (record["pid"], record.get("start_time")) not in targets:
                targets.append((record["pid"], record.get("start_time")))
    for pid, start in targets:
        what = _describe(key, dict(entry, pid=pid))
        if kill_process(pid, start):
            report.killed.append("%s: killed" % what)
        else:
            report.problems.append("could not kill %s" % what)


def remove_runtime_files(layout: DaemonLayout, record: Optional[dict],
                         report: CleanReport) -> None:
    """Remove a dead daemon's pid file, socket, secret and record (never a live one's)."""
    if not wait_unlocked(layout.pid_file):
        report.problems.append("%s is still locked by a live process" % layout.pid_file)
        return
    files = runtime_files(layout, record)
    for path in files:
        if not os.path.lexists(path) or os.path.isdir(path):
            continue
        try:
            os.unlink(path)
            report.removed.append(path)
        except OSError as e:
            report.problems.append("cannot remove %s: %s" % (path, e.strerror or e))
    for directory in sorted({os.path.dirname(p) for p in files if p != layout.pid_file}):
        try:
            os.rmdir(directory)      # only if now empty: never anything we did not make
        except FileNotFoundError:
            pass                     # already gone: nothing to remove
        except OSError as e:
            if e.errno == errno.ENOTEMPTY:
                _logger.info("kept %s: it still holds other files", directory)
            else:
                _logger.warning("cannot remove %s: %s", directory, e.strerror or e)


def clean_testbed_here(testbed_root: str, testbed_id: str, experiment_id: str,
                       resources: bool = True) -> CleanReport:
    """On the host a testbed ran on (``nepi.rpc.remote clean``): its daemon if the ready
    record in ``testbed_root`` carries ``experiment_id``, its runtime files and, unless
    ``resources`` is False, its resources."""
    report = CleanReport()
    layout = DaemonLayout(os.path.abspath(testbed_root), ROLE_TESTBED)
    record = _owned_record(layout, experiment_id)
    if record is not None:
        what = "testbed daemon in %s, pid %s" % (layout.root_dir, record["pid"])
        if kill_process(record["pid"], record.get("start_time")):
            report.killed.append("%s: killed" % what)
        else:
            report.problems.append("could not kill %s" % what)
    if read_json(layout.record_file) is None or record is not None:   # never another's
        remove_runtime_files(layout, record, report)
    if resources:
        _run_cleanup_hook(testbed_id, layout.root_dir, testbed_id, report)
    return report


def _run_cleanup_hook(testbed_id: str, testbed_root: str, name: object,
                      report: CleanReport) -> None:
    try:
        cleanup_testbed(testbed_id, testbed_root)
        report.cleaned.append("testbed %s (%s)" % (name, testbed_id))
    except Exception as e:
        _logger.error("cleaning testbed %s failed: %s", name, e)
        report.problems.append("cleaning testbed %s (%s) failed: %s" % (name, testbed_id, e))


def _clean_over_ssh(testbed_guid: int, info: dict, experiment_id: Optional[str],
                    resources: bool, report: CleanReport) -> None:
    """A testbed on another host: the same cleanup, run there over SSH (its namespaces,
    processes and files are that host's)."""
    from nepi.core.access import AccessConfiguration
    from nepi.rpc.ssh import SshTarget
    name = "testbed %s (%s) on %s" % (testbed_guid, info.get("testbed_id"),
                                      (info.get("access") or {}).get(DC.DEPLOYMENT_HOST))
    try:
        target = SshTarget(AccessConfiguration.from_dict(info["access"]))
        reply = target.run_python(
            ["nepi.rpc.remote", "clean", "testbed", info["root_dir"], info["testbed_id"],
             experiment_id or "-"] + ([] if resources else ["--keep-resources"]))
    except Exception as e:
        report.problems.append("cleaning %s failed: %s" % (name, e))
        return
    done = reply.get("report") or {}
    report.killed += ["%s: %s" % (name, line) for line in done.get("killed", [])]
    report.cleaned += ["%s: %s" % (name, line) for line in done.get("cleaned", [])]
    report.problems += ["%s: %s" % (name, line) for line in done.get("problems", [])]


def _remote_testbeds(doc: dict) -> Dict[int, dict]:
    """testbed guid -> its manifest entry, for testbeds run on another host (the entry
    says how to reach it: ``access``)."""
    return {int(key): info for key, info in (doc.get("testbeds") or {}).items()
            if str(key).isdigit() and isinstance(info, dict) and info.get("access")
            and info.get("root_dir") and info.get("testbed_id")}


def clean_testbed(root_dir: str, testbed_guid: int, testbed_id: Optional[str],
                  testbed_root: str, resources: bool = True,
                  report: Optional[CleanReport] = None) -> CleanReport:
    """What is left of one testbed: its daemon (by record), its runtime files and, unless
    ``resources`` is False (the Recover policy re-attaches to them), its resources -- on
    the host it ran on."""
    report = report if report is not None else CleanReport()
    manifest = Manifest(root_dir)
    doc = _read_manifest(root_dir, report)
    key = testbed_key(testbed_guid)
    entry = (doc.get("daemons") or {}).get(key)
    remote = _remote_testbeds(doc).get(testbed_guid)
    if remote is not None:
        _clean_over_ssh(testbed_guid, remote, doc.get("experiment_id"), resources, report)
        if isinstance(entry, dict):
            manifest.update(key, state="lost")
        return report
    if isinstance(entry, dict):
        kill_daemon(key, entry, doc.get("experiment_id"), report)
        if entry.get("host", LOCAL) == LOCAL:
            remove_runtime_files(DaemonLayout(entry.get("root_dir") or testbed_root,
                                              ROLE_TESTBED), entry, report)
        manifest.update(key, state="lost")
    if resources and testbed_id:
        _run_cleanup_hook(testbed_id, testbed_root, testbed_guid, report)
    return report


def clean_root(root_dir: str) -> CleanReport:
    """Kill this root dir's recorded daemons (nepid first, so it cannot react to its
    testbeds dying), run each recorded testbed's cleanup, remove runtime files and mark
    the experiment shut down. Logs, traces and XML are kept."""
    root_dir = os.path.abspath(root_dir)
    report = CleanReport()
    doc = _read_manifest(root_dir, report)
    experiment_id = doc.get("experiment_id")
    daemons = {k: e for k, e in (doc.get("daemons") or {}).items() if isinstance(e, dict)}
    if EC_KEY in daemons:
        kill_daemon(EC_KEY, daemons[EC_KEY], experiment_id, report)
    _kill_own_nepid(root_dir, daemons.get(EC_KEY), report)
    remote = _remote_testbeds(doc)
    for key in sorted(k for k in daemons if k != EC_KEY):
        if daemons[key].get("testbed_guid") not in remote:
            kill_daemon(key, daemons[key], experiment_id, report)
    for guid, info in sorted(remote.items()):
        _clean_over_ssh(guid, info, experiment_id, True, report)
    for guid, (testbed_id, root) in sorted(recorded_testbeds(doc).items()):
        if testbed_id and guid not in remote:
            _run_cleanup_hook(testbed_id, root, guid, report)
    for layout in _layouts(root_dir, doc):
        remove_runtime_files(layout, _entry_for(doc, layout), report)
    if forget_link_keys(root_dir):
        report.removed.append(os.path.join(root_dir, KEYS_FILE))
    if os.path.exists(Manifest(root_dir).path) or daemons:
        try:
            manifest = Manifest(root_dir)
            for key in daemons:
                manifest.remove(key)
            manifest.set_meta(experiment_state="shutdown")
        except (OSError, ValueError) as e:
            report.problems.append("cannot update %s: %s" % (MANIFEST, e))
    return report


def _kill_own_nepid(root_dir: str, entry: Optional[dict], report: CleanReport) -> None:
    """A nepid holding this root dir's own pid lock whose ready record (in this root
    dir's run/) names it, even if it died before writing the manifest."""
    layout = DaemonLayout(root_dir, ROLE_EC)
    record = read_json(layout.record_file) if os.path.exists(layout.record_file) else None
    if not isinstance(record, dict) or not is_locked(layout.pid_file) or \
            record.get("root_dir") != layout.root_dir:
        return
    pid, start = record.get("pid"), record.get("start_time")
    if entry and entry.get("pid") == pid:
        return                    # already handled through the manifest
    if is_same_process(pid, start):
        if kill_process(pid, start):
            report.killed.append("nepid, pid %s: killed" % pid)
        else:
            report.problems.append("could not kill nepid, pid %s" % pid)
