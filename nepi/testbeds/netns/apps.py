"""Running commands inside a namespace as real processes (setns in the child)."""

import os
import pwd
import shlex
import signal
import subprocess
import time
from typing import Dict, Iterable, Optional, Sequence, Set

from nepi.testbeds.netns import nsutil


def _demote(user: Optional[str]):
    if not user:
        return None
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise ValueError("unknown user %r" % user) from None
    return pw


# What a demoted process finds on its PATH: a login's directories (sbin too, for ip/tc).
DEMOTED_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"


def demoted_environment(pw: pwd.struct_passwd) -> Dict[str, str]:
    """A login's environment for ``pw``, built from scratch: nothing of the controller's
    (root's) environment reaches a demoted process except the locale."""
    return {"PATH": DEMOTED_PATH, "HOME": pw.pw_dir, "USER": pw.pw_name,
            "LOGNAME": pw.pw_name, "SHELL": pw.pw_shell or "/bin/sh",
            "LANG": os.environ.get("LANG") or "C.UTF-8"}


def spawn(ns_name: str, argv: Sequence[str], stdout_path: Optional[str] = None,
          stderr_path: Optional[str] = None, user: Optional[str] = None,
          environment: Optional[Dict[str, str]] = None, stdin_text: Optional[str] = None,
          cwd: Optional[str] = None) -> subprocess.Popen:
    """Start ``argv`` (an argument list: no shell unless argv names one) in the namespace,
    in its own session/process group.

    With ``user`` the process runs as that user with :func:`demoted_environment`; without,
    it inherits the controller's environment. Either way ``environment`` is added last and
    only fds 0-2 are inherited: the namespace fd is entered between fork and exec and is
    O_CLOEXEC, and close_fds drops every other fd of this process (netlink and RPC
    sockets, TAP devices, logs)."""
    pw = _demote(user)
    ns_fd = os.open(nsutil.ns_path(ns_name), os.O_RDONLY | os.O_CLOEXEC)

    def child_setup():
        nsutil.setns_fd(ns_fd)
        if pw is not None:
            os.initgroups(pw.pw_name, pw.pw_gid)
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)

    env = demoted_environment(pw) if pw is not None else dict(os.environ)
    env.update(environment or {})
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    err = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE if stdin_text else subprocess.DEVNULL,
            stdout=out, stderr=err, env=env, cwd=cwd, preexec_fn=child_setup,
            start_new_session=True, close_fds=True)
    finally:
        os.close(ns_fd)
        for f in (out, err):
            if hasattr(f, "close"):
                f.close()
    if stdin_text:
        try:
            proc.stdin.write(stdin_text.encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
    return proc


def parse_environment(text: Optional[str]) -> Dict[str, str]:
    env = {}
    for item in shlex.split(text or ""):
        if "=" not in item:
            raise ValueError("environment entry %r is not NAME=value" % item)
        key, value = item.split("=", 1)
        env[key] = value
    return env


def _live_groups(pgids: Set[int]) -> Set[int]:
    """Those of ``pgids`` with a live member (zombies waiting for a reaper are not), in
    one pass over /proc however many groups are asked about."""
    alive: Set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields: state ppid pgrp ...
        pgid = int(fields[2])
        if pgid in pgids and fields[0] not in ("Z", "X"):
            alive.add(pgid)
    return alive


def kill_groups(pids: Iterable[int], timeout: float = 3.0) -> None:
    """SIGTERM each process group, SIGKILL what is left after ``timeout``: all groups at
    once, so stopping many applications costs one wait, not one per application."""
    left = set(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in list(left):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                left.discard(pid)
        deadline = time.monotonic() + timeout
        while left:
            for pid in left:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            left &= _live_groups(left)
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        if not left:
            return


def kill_group(pid: int, timeout: float = 3.0) -> None:
    kill_groups([pid], timeout)
