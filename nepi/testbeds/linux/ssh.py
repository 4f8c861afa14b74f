"""The OpenSSH client as the linux testbed runs it: argv lists only (no local shell), batch
mode, bounded connection and liveness timeouts, host keys checked, and one multiplexed
connection per host (ControlMaster) whose sockets live in a short private directory.

The remote command is the one shell string ssh needs; callers build it with
nepi.testbeds.linux.remote, which quotes every value.
"""

import math
import os
import stat
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from typing import List, Optional

from nepi.util import validation

SSH = "ssh"
# how long an idle master stays up; the liveness probe keeps it busy while an
# experiment runs, so this only bounds what a controller that died leaves behind
CONTROL_PERSIST = 120
CONTROL_DIR_PREFIX = "nepi-linux-ssh-"
CONTROL_PARENT = "/tmp"
SUN_PATH_MAX = 107          # sockaddr_un.sun_path, minus its NUL
# ssh adds ".XXXXXXXXXXXXXXXX" while creating a socket; %C expands to 40 hex digits
_CONTROL_NAME_MAX = 40 + 17
SERVER_ALIVE_INTERVAL = 2   # seconds; a host silent for 3 of them drops the connection
SERVER_ALIVE_COUNT = 3


def is_ssh_path(attribute, value) -> bool:
    """A file path ssh takes in an option (-i, UserKnownHostsFile): ssh splits such values
    on whitespace and expands '%' tokens, so neither may appear."""
    return isinstance(value, str) and bool(value) and \
        not any(c.isspace() or c in "%\"'\\" for c in value) and \
        all(c.isprintable() for c in value)


is_ssh_path.expected = ("a file path without whitespace, quotes, backslashes or '%' "
                        "(ssh would split or expand them)")


class SshError(Exception):
    """ssh could not run a command on a host."""

    def __init__(self, target: str, message: str) -> None:
        self.target = target
        super().__init__(message)


class Unreachable(SshError):
    """The host did not answer, refused us, or the connection broke (ssh exit 255)."""


class CommandFailed(SshError):
    """The host ran the command and it failed: ``status`` and its ``stderr``/``stdout``."""

    def __init__(self, target: str, status: int, stderr: str, stdout: str = "") -> None:
        self.status = status
        self.stderr = stderr
        self.stdout = stdout
        super().__init__(target, "exit status %d%s" % (status, ": " + stderr if stderr else ""))


@dataclass(frozen=True)
class HostSpec:
    """Where and how to log in to one host; what the testbed records for cleanup."""

    host: str
    user: str
    port: int = 22
    key: Optional[str] = None
    known_hosts: Optional[str] = None     # checked strictly when given

    def __str__(self) -> str:
        return "%s@%s:%d" % (self.user, self.host, self.port)

    def problems(self) -> List[str]:
        """What makes this spec unusable on ssh's command line (empty if nothing)."""
        found = []
        if not validation.is_host_name(None, self.host):
            found.append("host %r is not %s" % (self.host, validation.is_host_name.expected))
        if not validation.is_login_name(None, self.user):
            found.append("user %r is not %s" % (self.user, validation.is_login_name.expected))
        if not (isinstance(self.port, int) and not isinstance(self.port, bool)
                and 0 < self.port < 65536):
            found.append("port %r is not a TCP port (1-65535)" % (self.port,))
        for name in ("key", "known_hosts"):
            value = getattr(self, name)
            if value is not None and not is_ssh_path(None, value):
                found.append("%s %r is not %s" % (name, value, is_ssh_path.expected))
        return found

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "HostSpec":
        return cls(**{k: data.get(k) for k in ("host", "user", "port", "key", "known_hosts")})


def make_control_dir() -> str:
    """A fresh private (0700) directory for ControlMaster sockets, short enough for
    sockaddr_un whatever the root dir's depth."""
    path = tempfile.mkdtemp(prefix=CONTROL_DIR_PREFIX, dir=CONTROL_PARENT)
    if len(path) + 1 + _CONTROL_NAME_MAX > SUN_PATH_MAX:
        os.rmdir(path)
        raise RuntimeError("%s is too long a directory for SSH control sockets" % path)
    return path


def usable_control_dir(path: Optional[str]) -> bool:
    """Is ``path`` a control directory this user made: the expected name, a real
    directory (not a link) owned by us and private?"""
    if not path or os.path.dirname(path) != CONTROL_PARENT or \
            not os.path.basename(path).startswith(CONTROL_DIR_PREFIX):
        return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and \
        stat.S_IMODE(st.st_mode) == 0o700


def remove_control_dir(path: Optional[str]) -> None:
    """Remove a control directory made by make_control_dir: the sockets masters left
    (none once they exited) and the directory; anything else in it is kept."""
    if not usable_control_dir(path):
        return
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if stat.S_ISSOCK(os.lstat(full).st_mode):
            os.unlink(full)
    try:
        os.rmdir(path)
    except OSError:
        pass


class Ssh:
    """Runs remote commands on one host.

    ``known_hosts_fallback``: where host keys are learnt (accept-new) when the spec names
    no known_hosts file. ``control_dir``: ControlMaster socket directory, None for one
    connection per command. ``timeout``: seconds to connect and, by default, for a
    whole command."""

    def __init__(self, spec: HostSpec, known_hosts_fallback: str,
                 control_dir: Optional[str], timeout: float) -> None:
        problems = spec.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self.spec = spec
        self.timeout = timeout
        self._known_hosts_fallback = known_hosts_fallback
        self._control_dir = control_dir

    def options(self) -> List[str]:
        spec = self.spec
        opts = ["-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=%d" % max(1, math.ceil(self.timeout)),
                "-o", "ServerAliveInterval=%d" % SERVER_ALIVE_INTERVAL,
                "-o", "ServerAliveCountMax=%d" % SERVER_ALIVE_COUNT,
                "-p", str(spec.port), "-l", spec.user]
        if spec.key:
            opts += ["-i", spec.key, "-o", "IdentitiesOnly=yes"]
        if spec.known_hosts:
            opts += ["-o", "UserKnownHostsFile=" + spec.known_hosts,
                     "-o", "StrictHostKeyChecking=yes"]
        else:
            opts += ["-o", "UserKnownHostsFile=" + self._known_hosts_fallback,
                     "-o", "StrictHostKeyChecking=accept-new"]
        if self._control_dir and os.path.isdir(self._control_dir):
            opts += ["-o", "ControlMaster=auto", "-o", "ControlPersist=%d" % CONTROL_PERSIST,
                     "-o", "ControlPath=" + os.path.join(self._control_dir, "%C")]
        else:
            opts += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
        return opts

    def argv(self, remote_command: str, tty: bool = False) -> List[str]:
        """ssh running ``remote_command``; with ``tty``, on a terminal there (-tt)."""
        return [SSH, "-tt" if tty else "-T"] + self.options() + \
            ["--", self.spec.host, remote_command]

    def run(self, remote_command: str, input: Optional[bytes] = None,
            timeout: Optional[float] = None) -> str:
        """Run ``remote_command``; its stdout. Raises Unreachable or CommandFailed."""
        timeout = self.timeout if timeout is None else timeout
        try:
            done = subprocess.run(self.argv(remote_command), input=input,
                                  stdin=subprocess.DEVNULL if input is None else None,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Unreachable(str(self.spec), "no answer within %g s" % timeout) from None
        return self.check(done.returncode, done.stdout, done.stderr)

    def popen(self, remote_command: str, **kwargs) -> subprocess.Popen:
        """Start ``remote_command`` with the caller's stdio choices (streams)."""
        return subprocess.Popen(self.argv(remote_command), **kwargs)

    def check(self, status: int, stdout: bytes, stderr: bytes) -> str:
        """The output of a finished ssh, or the error it means."""
        err = (stderr or b"").decode(errors="replace").strip()
        out = (stdout or b"").decode(errors="replace")
        if status == 255:
            raise Unreachable(str(self.spec), err or "ssh failed (exit status 255)")
        if status != 0:
            raise CommandFailed(str(self.spec), status, err, out)
        return out

    def close_master(self) -> None:
        """Ask this host's ControlMaster (if any) to exit."""
        if not self._control_dir or not os.path.isdir(self._control_dir):
            return
        try:
            subprocess.run([SSH] + self.options() + ["-O", "exit", "--", self.spec.host],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=5)
        except subprocess.TimeoutExpired:
            pass
