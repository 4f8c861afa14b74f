"""Experiment builders shared by the execution tests (NEPI 2's test/core/integration.py
helpers, daemons-and-tests.md 8.1).

A plain module, not a test file: pytest's default "prepend" import mode puts tests/ on
sys.path, so test files simply ``import mock_experiments``.

Guids (one generator per ExperimentDescription):

    single testbed:        desc 1, node1 2, node2 3, iface1 4, iface2 5, app 6
    cross experiment:      mock part as above; mock2 desc 7, node1 8, node2 9,
                           iface1 10, iface2 11, app 12
"""

import os
import subprocess
import sys
import time

from nepi.core.design import ExperimentDescription, FactoriesProvider

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli_env() -> dict:
    """The environment for running nepi's commands from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    return env


def nepid_command(*args, timeout=120) -> subprocess.CompletedProcess:
    """``nepid ARGS...`` in a subprocess (output captured as text)."""
    return subprocess.run([sys.executable, "-m", "nepi.cli.nepid_cmd"] + [str(a) for a in args],
                          env=cli_env(), capture_output=True, text=True, timeout=timeout)

# The 4-line trace every mock Application returns (daemons-and-tests.md 7.6).
PING_TEXT = ("PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n"
             "\n"
             "--- 10.0.0.2 ping statistics ---\n"
             "1 packets transmitted, 1 received, 0% packet loss, time 0ms\n")


def make_testbed(exp_desc, testbed_id):
    """One testbed: two nodes, one interface each, linked; an app with trace "fake".

    Returns (exp_desc, desc, app, node1, node2, iface1, iface2)."""
    provider = FactoriesProvider(testbed_id)
    desc = exp_desc.add_testbed_description(provider)
    desc.set_attribute_value("fake", True)
    node1 = desc.create("Node")
    node2 = desc.create("Node")
    iface1 = desc.create("Interface")
    iface1.set_attribute_value("fake", True)
    node1.connector("devs").connect(iface1.connector("node"))
    iface2 = desc.create("Interface")
    iface2.set_attribute_value("fake", True)
    node2.connector("devs").connect(iface2.connector("node"))
    iface1.connector("iface").connect(iface2.connector("iface"))
    app = desc.create("Application")
    app.connector("node").connect(node1.connector("apps"))
    app.enable_trace("fake")
    return exp_desc, desc, app, node1, node2, iface1, iface2


def make_test_experiment(testbed_id="mock"):
    """Returns (exp_desc, desc, app, node1, node2, iface1, iface2) with guids 1..6."""
    return make_testbed(ExperimentDescription(), testbed_id)


def make_cross_test_experiment():
    """mock (guids 1-6) and mock2 (7-12); mock iface2 (5) cross <-> mock2 iface1 (10).

    Returns (exp_desc, desc1, desc2, iface12, iface21)."""
    exp_desc = ExperimentDescription()
    (exp_desc, desc1, app1, node11, node12, iface11, iface12) = make_testbed(exp_desc, "mock")
    (exp_desc, desc2, app2, node21, node22, iface21, iface22) = make_testbed(exp_desc, "mock2")
    iface12.connector("cross").connect(iface21.connector("cross"))
    return exp_desc, desc1, desc2, iface12, iface21


def wait_until(predicate, timeout=10.0, interval=0.01):
    """Poll predicate() until true; False if it never became true within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


DAEMON_MODULE = "nepi.rpc.daemon_main"


def _daemon_cmdline(proc):
    """The command line of a live nepi daemon process, or None if it is not one."""
    import psutil
    try:
        cmdline = proc.cmdline()
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    return cmdline if DAEMON_MODULE in cmdline else None


def _option(cmdline, name):
    i = cmdline.index(name) if name in cmdline else -1
    return cmdline[i + 1] if 0 <= i < len(cmdline) - 1 else None


def _is_under(path, base):
    base = os.path.abspath(str(base))
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def nepi_daemons(*bases):
    """Live nepi daemon processes whose --root-dir is under one of ``bases``."""
    import psutil
    found = []
    for proc in psutil.process_iter():
        cmdline = _daemon_cmdline(proc)
        root = _option(cmdline, "--root-dir") if cmdline else None
        if root is not None and any(_is_under(os.path.abspath(root), b) for b in bases):
            found.append(proc)
    return found


def daemons_under(path):
    """Live nepi daemon processes whose --root-dir is ``path`` or below it."""
    return nepi_daemons(path)


def daemons_of_testbed(testbed_id):
    """Live testbed daemon processes of one testbed id (e.g. every ns3 simulator)."""
    import psutil
    return [proc for proc in psutil.process_iter()
            if _option(_daemon_cmdline(proc) or [], "--testbed-id") == testbed_id]

def runtime_files(root):
    """Sockets, secrets, daemon records and pid files left under ``root``."""
    import stat
    left = []
    for dirpath, _, files in os.walk(str(root)):
        for name in files:
            full = os.path.join(dirpath, name)
            if name.endswith(".pid") or name in ("secret", "daemon.json") or \
                    stat.S_ISSOCK(os.lstat(full).st_mode):
                left.append(full)
    return left
