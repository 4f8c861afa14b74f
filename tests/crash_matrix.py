"""kill -9 of a daemon at a chosen moment of a real `nepid run` of a netns star, and what
follows: used by tests/test_crash_matrix.py and bench/bench_recovery.py.

The moment is read from state nepi itself exposes (the manifest's ``deploy_phase`` while a
phase runs, ``experiment_state`` once started), never from sleeps. After the kill the
experiment must end either started and working (a ping across the star) or failed with a
clear message, and after `nepid stop` nothing of it may be left: no namespace or link of
any token its netns testbed used, no daemon, no runtime file.
"""

import json
import os
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional

import psutil

import netns_experiments as nx
from helpers import daemons_under, kill9, links, namespaces, runtime_files, wait_until

from nepi.core.deployment import DEPLOY_PHASES
from nepi.core.manifest import SHUTTING_DOWN
from nepi.util.constants import DeploymentConfiguration as DC

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY_POINTS = ("do_create", "do_connect_init", "do_configure", "start")
SHUTDOWN = "during_shutdown"
POINTS = DEPLOY_POINTS + ("after_start", SHUTDOWN)
TARGETS = ("testbed", "nepid")
POLICIES = (DC.POLICY_FAIL, DC.POLICY_RECOVER, DC.POLICY_RESTART)
APP_COMMAND = "exec sleep 3600"


def nepid(*args, timeout=300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "nepi.cli.nepid_cmd"] + [str(a) for a in args],
                          env=env, capture_output=True, text=True, timeout=timeout)


def write_star(path: str, n: int, policy: str) -> Dict[str, object]:
    """A netns star of ``n`` nodes as one testbed daemon with ``policy``; returns the
    guids and addresses of two leaves to ping between."""
    exp_desc, boxes = nx.make_star(n)
    nx.as_daemon(boxes["desc"], policy=policy)
    for node in boxes["nodes"]:           # so that the start phase takes a while too
        nx.add_app(boxes["desc"], node, APP_COMMAND, traces=())
    with open(path, "w", encoding="utf-8") as f:
        f.write(exp_desc.to_xml())
    return {"src": boxes["nodes"][1].guid, "dst_address": "10.0.1.1"}


def _manifest(root: str) -> dict:
    try:
        with open(os.path.join(root, "manifest.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _testbed_root(root: str) -> str:
    return os.path.join(root, "testbeds", "1")


def _token(root: str) -> Optional[str]:
    try:
        return nx.testbed_token(_testbed_root(root))
    except (OSError, ValueError, KeyError):
        return None


class CrashRun:
    """One experiment in ``root``: deploy, kill ``target`` at ``point``, follow, stop."""

    def __init__(self, root: str, n: int, policy: str) -> None:
        self.root = root
        self.policy = policy
        os.makedirs(root, exist_ok=True)
        self.design = os.path.join(os.path.dirname(root), os.path.basename(root) + ".xml")
        self.ping = write_star(self.design, n, policy)
        self.tokens: set = set()

    def _remember_token(self) -> Optional[str]:
        token = _token(self.root)
        if token:
            self.tokens.add(token)
        return token

    def _pid_of(self, target: str) -> Optional[int]:
        daemons = _manifest(self.root).get("daemons", {})
        entry = daemons.get("ec" if target == "nepid" else "testbed-1") or {}
        return entry.get("pid")

    def _at(self, point: str, run: subprocess.Popen) -> Optional[str]:
        """"now" once the experiment is at ``point``; "passed" once it can no longer be
        (deployed past it, or `nepid run` gave up); None while it may still come."""
        doc = _manifest(self.root)
        self._remember_token()
        state, phase = doc.get("experiment_state"), doc.get("deploy_phase")
        if point == "after_start":
            return "now" if state == "started" else None
        if phase == point and state == "deploying":
            return "now"
        if state not in (None, "created", "deploying") or run.poll() not in (None, 0):
            return "passed"
        if phase in DEPLOY_PHASES and DEPLOY_PHASES.index(phase) > DEPLOY_PHASES.index(point):
            return "passed"
        return None

    def _settled(self, point: str, killed: int, run: subprocess.Popen) -> bool:
        """After the testbed daemon was killed: the experiment failed, or runs on a new
        daemon (and `nepid run`, if the kill was during deployment, has ended)."""
        state = _manifest(self.root).get("experiment_state")
        if state in ("failed", "shutdown"):
            return True
        return state == "started" and self._pid_of("testbed") not in (None, killed) and \
            (point == "after_start" or run.poll() is not None)

    def working(self) -> bool:
        """A ping from one leaf of the star to another, inside the namespaces."""
        token = self._remember_token()
        if token is None:
            return False
        return nx.ping_from(nx.ns_name(token, self.ping["src"]), self.ping["dst_address"],
                            count=1, wait=2)

    def run(self, point: str, target: str, timeout: float = 240.0) -> dict:
        """Kill ``target`` at ``point``; return outcome, seconds from kill to a working
        experiment (None if it failed), the message, and what was left after stop. If
        this itself fails half-way, what the experiment made is removed before raising."""
        try:
            if point == SHUTDOWN:
                return self.run_shutdown(target, timeout)
            return self._run(point, target, timeout)
        except BaseException:
            nepid("stop", "--root-dir", self.root, "--no-traces", timeout=120)
            nepid("clean", "--root-dir", self.root, timeout=120)
            raise

    def _run(self, point: str, target: str, timeout: float) -> dict:
        result = {"point": point, "target": target}
        run = subprocess.Popen([sys.executable, "-m", "nepi.cli.nepid_cmd", "run", "-q",
                                self.design, "--root-dir", self.root],
                               env=dict(os.environ, PYTHONPATH=REPO),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            if wait_until(lambda: self._at(point, run), timeout, 0.001) != "now":
                result.update(outcome="missed", message="never saw %s (nepid run: %s, "
                              "manifest: %s)" % (point, run.poll(), _manifest(self.root)))
                return self._stop(result, run)
            pid = self._pid_of(target)
            killed_at = time.monotonic()
            kill9(pid)
            result["killed_pid"] = pid
            if target == "nepid":
                run.wait(timeout)
                recover = nepid("recover", "--root-dir", self.root, timeout=timeout)
                result["message"] = (recover.stdout + recover.stderr).strip()
            else:
                wait_until(lambda: self._settled(point, pid, run), timeout, 0.02)
                if point != "after_start":
                    run.wait(timeout)
                    result["message"] = (run.stdout.read() + run.stderr.read()).strip()
            state = _manifest(self.root).get("experiment_state")
            if state == "started" and wait_until(self.working, 30, 0.1):
                result.update(outcome="working", seconds=time.monotonic() - killed_at)
            else:
                result.update(outcome="failed" if state in ("failed", "shutdown") else
                              "state %s" % state, seconds=None)
                status = nepid("status", "--root-dir", self.root)    # says why
                result["message"] = (result.get("message", "") + "\n" + status.stdout).strip()
                if state == "started":
                    result["outcome"] = "started but not working"
            return self._stop(result, run)
        finally:
            if run.poll() is None:
                run.send_signal(signal.SIGINT)
                try:
                    run.wait(10)
                except subprocess.TimeoutExpired:
                    run.kill()

    def run_shutdown(self, target: str, timeout: float = 240.0) -> dict:
        """Deploy, then kill ``target`` while `nepid stop` shuts the experiment down (the
        manifest says "shutting_down"). A dead testbed daemon is cleaned up by record by
        that same stop. A dead nepid leaves a shutdown the `nepid stop` that saw it die
        finishes (policy Fail here); for the other policies that command dies with nepid
        (a lost session) and `nepid recover`, as systemd's restart would, finishes it."""
        result = {"point": SHUTDOWN, "target": target}
        deploy = nepid("run", "-q", self.design, "--root-dir", self.root, timeout=timeout)
        self._remember_token()
        if deploy.returncode != 0 or not wait_until(self.working, 30, 0.1):
            result.update(outcome="not deployed", message=deploy.stdout + deploy.stderr)
            return self._stop(result, None)
        stop = subprocess.Popen([sys.executable, "-m", "nepi.cli.nepid_cmd", "stop",
                                 "--no-traces", "--root-dir", self.root],
                                env=dict(os.environ, PYTHONPATH=REPO),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            if not wait_until(lambda: _manifest(self.root).get("experiment_state") ==
                              SHUTTING_DOWN, timeout, 0.001):
                result.update(outcome="missed", message="never saw the shutdown")
                stop.wait(timeout)
                return self._stop(result, None)
            pid = self._pid_of(target)
            session_lost = target == "nepid" and self.policy != DC.POLICY_FAIL
            if session_lost:
                stop.kill()
            killed_at = time.monotonic()
            kill9(pid)
            result["killed_pid"] = pid
            stop.wait(timeout)
            result["message"] = (stop.stdout.read() + stop.stderr.read()).strip()
            if session_lost:
                after = nepid("recover", "--root-dir", self.root, timeout=timeout)
                result["message"] += "\n" + (after.stdout + after.stderr).strip()
                result["finished_by"] = after.returncode
            state = _manifest(self.root).get("experiment_state")
            result["outcome"] = "stopped" if state == "shutdown" else "state %s" % state
            result["seconds"] = time.monotonic() - killed_at
            return self._stop(result, None)
        finally:
            if stop.poll() is None:
                stop.kill()

    def _stop(self, result: dict, run: Optional[subprocess.Popen]) -> dict:
        if run is not None and run.poll() is None:
            run.wait(60)
        self._remember_token()
        stop = nepid("stop", "--root-dir", self.root, "--no-traces")
        result["stop"] = stop.returncode
        result["left"] = self.leftovers()
        return result

    def leftovers(self) -> List[str]:
        """What of this experiment still exists (wait a little: netlink frees links of a
        removed namespace asynchronously)."""
        def left():
            found = ["namespace %s" % n for n in namespaces()
                     if any(n.startswith("nepi-%s-" % t) for t in self.tokens)]
            found += ["link %s" % n for n in links()
                      if any(n.startswith(("nb" + t, "nv" + t)) for t in self.tokens)]
            found += ["daemon %d" % p.pid for p in daemons_under(self.root)]
            found += ["application %d" % pid for pid in self.applications()]
            found += ["file %s" % f for f in runtime_files(self.root)]
            return found
        return [] if wait_until(lambda: not left(), 10, 0.1) else left()

    def applications(self) -> List[int]:
        """Live processes of this experiment's applications (they run in the testbed's
        root directory)."""
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
            cwd = proc.info.get("cwd") or ""
            if proc.info.get("cmdline") == APP_COMMAND.split()[1:] and \
                    (cwd + "/").startswith(self.root + "/"):
                found.append(proc.pid)
        return found
