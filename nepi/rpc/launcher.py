"""Starting a daemon process and waiting until it is really serving."""

import os
import subprocess
import sys
import time
from typing import Dict, List, Optional

from nepi.errors import NepiError
from nepi.rpc.layout import DaemonLayout
from nepi.rpc.liveness import is_alive_pid, is_same_process, process_start_time
from nepi.rpc.pidlock import is_locked, read_pid
from nepi.rpc import zygote
from nepi.rpc.security import check_run_dir, ensure_private_dir
from nepi.util.files import read_json

READY_TIMEOUT = 60.0
# "<pid>:<start time>" of the process that asked for a daemon, kept in its ready record:
# a forked daemon's /proc/PID/environ is not readable (its command line took that room)
LAUNCHED_BY = "NEPI_LAUNCHED_BY"


def environment_from_setup(setup: Optional[str], base: Optional[Dict[str, str]] = None) \
        -> Dict[str, str]:
    """Run the user's environment-setup shell snippet once and capture the environment."""
    env = dict(base if base is not None else os.environ)
    if not setup:
        return env
    proc = subprocess.run(["bash", "-c", setup + "\nenv -0"], env=env, capture_output=True)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip()
        raise NepiError("deployment_environment_setup failed (exit %d)%s"
                        % (proc.returncode, ": " + detail if detail else ""))
    result = {}
    for item in proc.stdout.split(b"\0"):
        if b"=" in item:
            key, value = item.split(b"=", 1)
            result[key.decode(errors="replace")] = value.decode(errors="replace")
    return result


def launch(role: str, root_dir: str, args: List[str], env: Optional[Dict[str, str]] = None,
           timeout: float = READY_TIMEOUT, owner: Optional[str] = None) -> dict:
    """Start ``python -m nepi.rpc.daemon_main ROLE ...`` detached (forked from a preloaded
    process when it can be: nepi.rpc.zygote); return its ready record.

    ``owner`` is the launching root dir's experiment id, kept in the daemon's record."""
    layout = DaemonLayout(root_dir, role)
    os.makedirs(layout.root_dir, exist_ok=True)
    check_run_dir(ensure_private_dir(layout.run_dir))
    _wait_for_dead_holder(layout)
    if is_locked(layout.pid_file):
        raise NepiError("a %s daemon is already running in %s" % (layout.name, root_dir))
    if os.path.exists(layout.record_file):
        os.unlink(layout.record_file)
    env = zygote.python_path_env(dict(env if env is not None else os.environ))
    env[LAUNCHED_BY] = "%d:%r" % (os.getpid(), process_start_time(os.getpid()))
    argv = [role, "--root-dir", layout.root_dir] + list(args) + \
        (["--owner", owner] if owner else [])
    started = zygote.spawn(argv, env, timeout)
    if started is None:
        proc = subprocess.run([sys.executable, "-m", zygote.DAEMON_MODULE] + argv, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True,
                              close_fds=True, timeout=timeout)
        started = proc.returncode, proc.stderr.decode(errors="replace")
    status, stderr = started
    if status != 0:
        raise NepiError("could not start the %s daemon in %s: %s"
                        % (layout.name, root_dir, stderr.strip() or "exit status %d" % status))
    return wait_ready(layout, timeout)


def _wait_for_dead_holder(layout: DaemonLayout, timeout: float = 5.0) -> None:
    """A killed daemon's lock is released only once all its threads are gone: when the
    pid file names a dead process, give the kernel a moment instead of refusing."""
    deadline = time.monotonic() + timeout
    while is_locked(layout.pid_file) and time.monotonic() < deadline:
        pid = read_pid(layout.pid_file)
        if pid is not None and is_alive_pid(pid):
            return
        time.sleep(0.05)


def wait_ready(layout: DaemonLayout, timeout: float = READY_TIMEOUT) -> dict:
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        record = read_json(layout.record_file)
        if record:
            if record.get("state") == "failed":
                raise NepiError("the %s daemon in %s failed to start: %s"
                                % (layout.name, layout.root_dir, record.get("error")))
            if record.get("state") == "ready":
                if not is_same_process(record.get("pid"), record.get("start_time")):
                    raise NepiError("the %s daemon in %s died right after starting (see %s)"
                                    % (layout.name, layout.root_dir, record.get("log_file")))
                return record
        elif not is_locked(layout.pid_file) and not read_json(layout.record_file):
            # the daemon holds its pid lock from before detaching until it exits: it
            # died (killed) before becoming ready -- no use waiting out the timeout
            raise NepiError("the %s daemon in %s died before becoming ready (see its "
                            "log)" % (layout.name, layout.root_dir))
        # a forked daemon is ready within milliseconds, a python -m one in ~0.2 s
        time.sleep(0.002 if time.monotonic() - start < 0.5 else 0.02)
    raise NepiError("the %s daemon in %s did not become ready within %.0f s"
                    % (layout.name, layout.root_dir, timeout))
