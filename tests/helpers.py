"""What every test file shares for waiting, killing and finding what a test left behind.

A plain module, not a test file: pytest's default "prepend" import mode puts tests/ on
sys.path, so test files ``from helpers import ...``; conftest.py builds its fixtures
(``daemon_leftover_guard``, ``nepi_kit``, ``controllers``, ``netns_leftovers``) on it.

The standard (developers' guide): tests clean up only what they created -- found by the
test's own directories, the tokens of its netns testbeds or the pids it started -- so
that two runs can share a machine. Nothing here compares the whole host before and after.

    waiting          wait_until(predicate, timeout, interval, what=None),
                     wait_finished(controller, guid, timeout)
    processes        process_gone(pid), kill9(pid), kill_all(procs)
    nepi daemons     nepi_daemons(*roots, testbed_id=None), daemons_under(root),
                     owned_daemons(), assert_no_daemons_left(root), runtime_files(root)
    netns            NETNS_MISSING, needs_netns, namespaces(), links(), processes_in(ns),
                     NAMESPACE_RE, remove_netns(tokens), NetnsLeftovers (the resources
                     of one test's netns testbeds)
    files            FIXTURES_DIR, fixture_path(name), LIB_DIR, import_lib(name)
"""

import importlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from nepi.rpc.layout import ROLE_TESTBED, DaemonLayout
from nepi.util.files import read_json

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent
FIXTURES_DIR = TESTS_DIR / "fixtures"          # NEPI 2 design XML (fixtures/README.md)
LIB_DIR = str(TESTS_DIR / "lib")               # test-only testbeds (failmock)


def fixture_path(name) -> Path:
    """A file of tests/fixtures (the checkout's own copy: CI clones only the repo)."""
    return FIXTURES_DIR / name


def import_lib(name):
    """Import a test-only package of tests/lib (e.g. ``failmock``)."""
    if LIB_DIR not in sys.path:
        sys.path.insert(0, LIB_DIR)
    return importlib.import_module(name)


# -- waiting ----------------------------------------------------------------------------

def wait_until(predicate, timeout=10.0, interval=0.02, what=None):
    """Poll ``predicate()`` until it returns something true or ``timeout`` passes; return
    its last value. With ``what``, a timeout raises AssertionError naming it instead."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            if what is not None:
                raise AssertionError("timed out after %gs waiting for %s" % (timeout, what))
            return value
        time.sleep(interval)


def wait_finished(controller, guid, timeout=20.0):
    """Until application ``guid`` finished (NEPI 2 polled is_finished every 0.5 s forever;
    bounded here); true if it did."""
    return wait_until(lambda: controller.is_finished(guid), timeout, 0.05)


# -- processes --------------------------------------------------------------------------

def process_gone(pid) -> bool:
    """Reaped, or a zombie whose threads have all exited (a thread-group leader shows as
    a zombie while its other threads still hold its files, e.g. the pid-file lock)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE and \
            len(os.listdir("/proc/%d/task" % pid)) <= 1
    except (psutil.NoSuchProcess, FileNotFoundError):
        return True


def kill9(pid, timeout=10.0):
    """SIGKILL ``pid`` and wait until it is really gone (``process_gone``)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_until(lambda: process_gone(pid), timeout, 0.005, what="pid %d to die of SIGKILL" % pid)


def kill_all(procs, timeout=5.0):
    """SIGKILL psutil processes (those already gone are skipped); return 'pid: cmdline'
    of each, for a failure message."""
    described = []
    for proc in procs:
        try:
            described.append("pid %d: %s" % (proc.pid, " ".join(proc.cmdline())))
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=timeout)
    return described


# -- nepi daemons -----------------------------------------------------------------------

DAEMON_MODULE = "nepi.rpc.daemon_main"
NS3_PARENT_ENV = "NEPI_NS3_PARENT"        # "<owner pid>:<start time>" of a private ns3 daemon
NS3_CHILD_PREFIX = "ns3d-"                 # its root dir (nepi.testbeds.ns3.single)


def _daemon_cmdline(proc):
    """The command line of a live nepi daemon process, or None if it is not one."""
    try:
        cmdline = proc.cmdline()
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return cmdline if DAEMON_MODULE in cmdline else None


def _option(cmdline, name):
    i = cmdline.index(name) if name in cmdline else -1
    return cmdline[i + 1] if 0 <= i < len(cmdline) - 1 else None


def _is_under(path, base):
    path, base = os.path.abspath(str(path)), os.path.abspath(str(base))
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def nepi_daemons(*roots, testbed_id=None):
    """Live nepi daemon processes whose --root-dir is one of ``roots`` or below one (and,
    with ``testbed_id``, that serve that testbed)."""
    found = []
    for proc in psutil.process_iter():
        cmdline = _daemon_cmdline(proc)
        root = _option(cmdline, "--root-dir") if cmdline else None
        if root is not None and any(_is_under(root, base) for base in roots) and \
                testbed_id in (None, _option(cmdline, "--testbed-id")):
            found.append(proc)
    return found


def daemons_under(root):
    """Live nepi daemon processes whose --root-dir is ``root`` or below it."""
    return nepi_daemons(root)


def assert_no_daemons_left(root, timeout=5.0):
    """Fail if nepi daemons of ``root`` still run after ``timeout`` (killed first): for
    module-scoped fixtures, whose daemons the per-test guard does not look at."""
    if not wait_until(lambda: not daemons_under(root), timeout, 0.05):
        pytest.fail("daemons of %s left running (killed now): %s"
                    % (root, kill_all(daemons_under(root))), pytrace=False)


def owned_daemons():
    """Live private ns3 daemons owned by this process (an in-process ns3 testbed of this
    run launched them, wherever their root dir is)."""
    me = "%d:" % os.getpid()
    found = []
    for proc in psutil.process_iter():
        cmdline = _daemon_cmdline(proc)
        if cmdline is None:
            continue
        try:
            if proc.environ().get(NS3_PARENT_ENV, "").startswith(me):
                found.append(proc)
                continue
        except psutil.Error:
            continue
        # a daemon forked by nepi's launcher process: its environment is not readable,
        # its ready record says who asked for it
        root = _option(cmdline, "--root-dir")
        if not root or not os.path.basename(root).startswith(NS3_CHILD_PREFIX):
            continue
        record = read_json(DaemonLayout(root, ROLE_TESTBED).record_file)
        if record and record.get("pid") == proc.pid and \
                (record.get("launched_by") or "").startswith(me):
            found.append(proc)
    return found


def runtime_files(root):
    """Sockets, pid files, secrets and daemon records left under ``root``."""
    left = []
    for dirpath, _, filenames in os.walk(str(root)):
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                continue
            if stat.S_ISSOCK(mode) or name.endswith((".pid", ".sock")) or \
                    name in ("secret", "daemon.json"):
                left.append(path)
    return sorted(left)


# -- network namespaces -------------------------------------------------------------------

def _netns_missing():
    if os.geteuid() != 0:
        return ("the netns testbed needs root (CAP_NET_ADMIN/CAP_SYS_ADMIN) to create "
                "network namespaces; run the netns tests as root")
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing: TAP/TUN devices cannot be created here"
    return None


NETNS_MISSING = _netns_missing()        # why netns testbeds cannot run here, or None
# a test (or, at module level, ``pytestmark = needs_netns``) that deploys netns testbeds
needs_netns = pytest.mark.skipif(NETNS_MISSING is not None, reason=str(NETNS_MISSING))

NAMESPACE_RE = re.compile(r"^nepi-([0-9a-z]+)-\d+$")      # nepi-<token>-<node guid>
RESOURCES_FILE = "netns-resources.json"                  # a deployed netns testbed's record


def namespaces():
    """Names listed by ``ip netns`` (first word of each line)."""
    out = subprocess.run(["ip", "netns"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def links():
    """Interface names of the root namespace, as ``ip -o link`` lists them."""
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                         check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.add(parts[1].strip().split("@")[0])
    return names


def _netns_inode(pid):
    return os.stat("/proc/%s/ns/net" % pid).st_ino


def _cmdline(proc):
    return " ".join(proc.info["cmdline"] or [])


def processes_in(ns_name):
    """pid -> command line of the live processes inside named namespace ``ns_name``."""
    try:
        inode = os.stat(os.path.join("/run/netns", ns_name)).st_ino
    except FileNotFoundError:
        return {}
    found = {}
    for proc in psutil.process_iter(["pid", "status", "cmdline"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and \
                    _netns_inode(proc.pid) == inode:
                found[proc.pid] = _cmdline(proc)
        except (OSError, psutil.Error):
            continue
    return found


def remove_netns(tokens, processes=()):
    """Remove every namespace, bridge and veth named after ``tokens`` (with what runs in
    those namespaces), and kill ``processes`` ("pid command line" entries)."""
    from nepi.testbeds.netns.execute import remove_resources
    for token in sorted(tokens):
        remove_resources(token)
    for entry in processes:
        try:
            os.kill(int(entry.split()[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass


class NetnsLeftovers:
    """The network-namespace resources of one test, found by what the test made -- never
    by comparing the whole host, where other test runs work meanwhile.

    Tokens (a netns testbed names its namespaces ``nepi-<token>-<guid>``, bridges
    ``nb<token>...``, veths ``nv<token>...``) are learnt from ``netns-resources.json``
    under the watched roots (the test's tmp_path, ``watch()`` adds more), which a netns
    testbed keeps while deployed: by a poller while the test runs, at ``record()`` and at
    ``check()``; ``add_token`` adds one directly (conftest's fixture hands it every token
    an in-process netns testbed draws). Processes are this test's when they run in one of
    its namespaces, were listed by its testbeds, were added with ``add_pid``, or descend
    from this process and live in another network namespace."""

    POLL = 0.1

    def __init__(self, *roots, timeout=5.0):
        self.roots = [str(r) for r in roots]
        self.timeout = timeout
        self.tokens = set()
        self.pids = {}                  # pid -> create time
        self._older = self._descendants()   # this process's children before the test
        self._stop = threading.Event()
        self._poller = None

    # -- learning what is ours -----------------------------------------------------------

    def watch(self, root):
        self.roots.append(str(root))

    def add_token(self, token):
        self.tokens.add(token)

    def add_pid(self, pid, created=None):
        """A process of this test (``created``: its psutil create time, if known)."""
        try:
            self.pids[pid] = created or psutil.Process(pid).create_time()
        except psutil.Error:
            pass

    def _scan_roots(self):
        """Tokens and process pids recorded by the netns testbeds under the roots now."""
        for root in list(self.roots):
            for dirpath, _, filenames in os.walk(root):
                if RESOURCES_FILE not in filenames:
                    continue
                try:
                    with open(os.path.join(dirpath, RESOURCES_FILE)) as f:
                        saved = json.load(f)
                except (OSError, ValueError):
                    continue                # removed or being replaced right now
                if saved.get("token"):
                    self.add_token(saved["token"])
                for kind in ("applications", "captures"):
                    for info in (saved.get(kind) or {}).values():
                        if info.get("pid") and info["pid"] not in self.pids:
                            self.add_pid(info["pid"], info.get("start"))

    def record(self):
        """Learn what is this test's now: tokens under the roots, pids in its namespaces."""
        self._scan_roots()
        for ns in self.our_namespaces():
            for pid in processes_in(ns):
                self.add_pid(pid)

    def start(self):
        """Poll the roots while the test runs (a testbed's record goes at its shutdown)."""
        def poll():
            while not self._stop.wait(self.POLL):
                self._scan_roots()
        self._poller = threading.Thread(target=poll, name="netns-leftovers", daemon=True)
        self._poller.start()

    def stop(self):
        self._stop.set()
        if self._poller is not None:
            self._poller.join()

    # -- what is left ----------------------------------------------------------------------

    def our_namespaces(self):
        tokens = set(self.tokens)           # a copy: the poller may add one meanwhile
        if not tokens:
            return []
        return sorted(name for name in namespaces()
                      if (NAMESPACE_RE.match(name) or [None, None])[1] in tokens)

    @staticmethod
    def _descendants():
        return {p.pid for p in psutil.Process().children(recursive=True)}

    def _our_processes(self, names):
        found = {}
        for ns in names:
            found.update(processes_in(ns))
        root_ns = _netns_inode("self")
        candidates = list(dict(self.pids).items())
        candidates += [(pid, None) for pid in self._descendants() - self._older]
        for pid, created in candidates:
            try:
                proc = psutil.Process(pid)
                if proc.status() == psutil.STATUS_ZOMBIE or (
                        created is not None and abs(proc.create_time() - created) > 0.05):
                    continue                # gone, or the pid now names another process
                if created is not None or _netns_inode(pid) != root_ns:
                    found[pid] = " ".join(proc.cmdline())
            except (OSError, psutil.Error):
                continue
        return found

    def left(self):
        """{"namespaces", "links", "processes"}: what of this test exists now."""
        names = self.our_namespaces()
        prefixes = tuple(p + t for t in set(self.tokens) for p in ("nb", "nv"))
        ours = sorted(n for n in links() if n.startswith(prefixes)) if prefixes else []
        processes = self._our_processes(names)
        return {"namespaces": names, "links": ours,
                "processes": sorted("%d %s" % item for item in processes.items())}

    def wait_gone(self, timeout=None):
        """Poll until nothing of this test is left (a removed namespace's links go
        asynchronously); return what is still left then (all lists empty when clean)."""
        self.record()
        wait_until(lambda: not any(self.left().values()),
                   self.timeout if timeout is None else timeout, 0.05)
        return self.left()

    def remove(self, left):
        """Remove this test's leftovers (by its tokens, and the processes in ``left``)."""
        remove_netns(set(self.tokens), left.get("processes", []))

    def check(self, timeout=None):
        """Fail the test if it left a namespace, link or process of its own (removed
        first, so that the next test starts clean)."""
        left = self.wait_gone(timeout)
        if any(left.values()):
            self.remove(left)
            pytest.fail("the test left netns resources behind (tokens %s): %s"
                        % (sorted(self.tokens), left), pytrace=False)
