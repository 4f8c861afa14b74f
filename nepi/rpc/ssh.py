"""Daemons on another host: launched over SSH, reached through an SSH-forwarded Unix
socket (the remote socket stays owner-only; the local end lives in a 0700 directory).

The remote side runs ``python3 -m nepi.rpc.remote``; set NEPI_REMOTE_PYTHON to use
another interpreter, and ``deployment_environment_setup`` for what it needs (PATH,
PYTHONPATH...). Each SSH command uses the configured key/agent/port/user; NEPI_SSH_OPTIONS
adds options (e.g. a UserKnownHostsFile).
"""

import json
import logging
import os
import shlex
import subprocess
import tempfile
import time
from typing import List, Optional

from nepi.errors import ControllerUnreachableError, NepiError
from nepi.rpc.client import unix_uri
from nepi.rpc.layout import DaemonLayout
from nepi.rpc.liveness import kill_process, process_start_time, wait_exit
from nepi.rpc.security import ensure_private_dir
from nepi.util import validation
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.rootfiles import SOCKET_SUFFIX

SSH_TIMEOUT = 60.0

_logger = logging.getLogger("nepi.rpc.ssh")


class SshTarget:
    def __init__(self, access_config) -> None:
        get = access_config.get_attribute_value
        self.host = get(DC.DEPLOYMENT_HOST)
        self.user = get(DC.DEPLOYMENT_USER)
        self.port = get(DC.DEPLOYMENT_PORT)
        # checked again here: these reach ssh's command line
        if not validation.is_host_name(None, self.host):
            raise NepiError("%s %r is not %s" % (DC.DEPLOYMENT_HOST, self.host,
                                                 validation.is_host_name.expected))
        if not validation.is_login_name(None, self.user):
            raise NepiError("%s %r is not %s" % (DC.DEPLOYMENT_USER, self.user,
                                                 validation.is_login_name.expected))
        self.key = get(DC.DEPLOYMENT_KEY)
        self.known_hosts = get(DC.DEPLOYMENT_KNOWN_HOSTS)
        self.agent = get(DC.USE_AGENT)
        self.sudo = get(DC.USE_SUDO)
        self.setup = get(DC.DEPLOYMENT_ENVIRONMENT_SETUP)
        self.log_level = get(DC.LOG_LEVEL)

    def ssh_argv(self, *extra: str) -> List[str]:
        argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                "-o", "ServerAliveInterval=5", "-p", str(self.port), "-l", self.user]
        if self.known_hosts:             # the host must be in it: no trust on first use
            argv += ["-o", "UserKnownHostsFile=%s" % self.known_hosts,
                     "-o", "StrictHostKeyChecking=yes"]
        else:
            argv += ["-o", "StrictHostKeyChecking=accept-new"]
        if self.key:
            argv += ["-i", self.key, "-o", "IdentitiesOnly=yes"]
        if self.agent:
            argv.append("-A")
        argv += shlex.split(os.environ.get("NEPI_SSH_OPTIONS", ""))
        return argv + list(extra) + ["--", self.host]

    def run_python(self, module_args: List[str]) -> dict:
        python = os.environ.get("NEPI_REMOTE_PYTHON", "python3")
        command = " ".join(shlex.quote(a) for a in [python, "-m"] + module_args)
        if self.sudo:
            command = "sudo -n " + command
        if self.setup:
            command = self.setup + "\n" + command
        proc = subprocess.run(self.ssh_argv() + ["bash -c " + shlex.quote(command)],
                              capture_output=True, text=True, timeout=SSH_TIMEOUT,
                              stdin=subprocess.DEVNULL)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise NepiError("ssh %s@%s:%s failed (exit %d): %s"
                            % (self.user, self.host, self.port, proc.returncode,
                               proc.stderr.strip() or proc.stdout.strip()))
        reply = json.loads(lines[-1])
        if "error" in reply:
            raise NepiError("on %s: %s" % (self.host, reply["error"]))
        return reply


class Tunnel:
    """``ssh -N -L local.sock:remote.sock``; the local socket is in a private dir."""

    def __init__(self, target: SshTarget, remote_socket: str,
                 local_dir: Optional[str] = None) -> None:
        self._own_dir = local_dir is None      # a temporary folder of ours: removed on close
        self.target = target
        self.dir = ensure_private_dir(local_dir or tempfile.mkdtemp(prefix="nepi-ssh-"))
        self.host = target.host
        self.local_socket = os.path.join(self.dir, "tunnel-%d%s" % (os.getpid(),
                                                                    SOCKET_SUFFIX))
        if os.path.exists(self.local_socket):
            os.unlink(self.local_socket)
        old = os.umask(0o077)
        try:
            self.proc = subprocess.Popen(
                target.ssh_argv("-N", "-o", "ExitOnForwardFailure=yes",
                                "-o", "StreamLocalBindUnlink=yes",
                                "-L", "%s:%s" % (self.local_socket, remote_socket)),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True)
        finally:
            os.umask(old)
        self.start_time = process_start_time(self.proc.pid)
        deadline = time.monotonic() + 15
        while not os.path.exists(self.local_socket):
            if self.proc.poll() is not None:
                detail = self.proc.stderr.read().decode(errors="replace").strip()
                self.close()
                raise ControllerUnreachableError("ssh tunnel to %s failed: %s" % (
                    target.host, detail))
            if time.monotonic() > deadline:
                self.close()
                raise ControllerUnreachableError("ssh tunnel to %s not ready" % target.host)
            time.sleep(0.02)

    def close(self) -> None:
        kill_process(self.proc.pid, self.start_time, timeout=2)
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            _logger.warning("the ssh tunnel to %s (pid %d) has not exited yet; it was sent "
                            "SIGKILL", self.host, self.proc.pid)
        if os.path.exists(self.local_socket):
            os.unlink(self.local_socket)
        if self._own_dir and os.path.isdir(self.dir):
            try:
                os.rmdir(self.dir)       # only when empty: never anything we did not make
            except OSError as e:
                _logger.warning("could not remove the tunnel folder %s: %s", self.dir, e)


def wait_remote_exit(target: SshTarget, pid: Optional[int],
                     start_time: Optional[float]) -> None:
    """Return once the daemon ``pid`` (started at ``start_time``) on the target host is gone:
    a shut-down daemon answers before its process ends, and the caller's "shut down" must
    mean "nothing left on that host" as it does for a local daemon."""
    if pid is None:
        return
    try:
        target.run_python(["nepi.rpc.remote", "wait", str(pid), repr(start_time)])
    except (NepiError, subprocess.TimeoutExpired) as e:
        _logger.warning("could not confirm that daemon pid %s on %s exited: %s",
                        pid, target.host, e)


def wait_gone(record: dict, tunnel: Optional["Tunnel"]) -> None:
    """Wait for a daemon told to shut down to be gone, on this host or (``tunnel``) on
    the host the tunnel leads to."""
    if tunnel is None:
        wait_exit(record.get("pid"), record.get("start_time"))
    else:
        wait_remote_exit(tunnel.target, record.get("pid"), record.get("start_time"))


def remote_daemon(role: str, access_config, extra_args: List[str]):
    """Launch (or, with ``recover``, find) a ``role`` daemon on deployment_host and open an
    SSH tunnel to its socket: ``(record, secret, tunnel)``, the record's ``uri`` pointing
    at the tunnel's local end. The caller makes the client and closes the tunnel if that
    fails (nepi.rpc.tc_client, nepi.rpc.ec_client)."""
    target = SshTarget(access_config)
    root = access_config.get_attribute_value(DC.ROOT_DIRECTORY)
    if access_config.get_attribute_value(DC.RECOVER):
        reply = target.run_python(["nepi.rpc.remote", "attach", role, root])
    else:
        reply = target.run_python(["nepi.rpc.remote", "launch", role, root,
                                   "--log-level", target.log_level] + extra_args)
    record = dict(reply["record"])
    tunnel = Tunnel(target, record["socket"])
    record["remote_uri"] = record["uri"]
    record["uri"] = unix_uri(DaemonLayout(root, role).object_id, tunnel.local_socket)
    record["host"] = target.host
    return record, reply["secret"], tunnel
