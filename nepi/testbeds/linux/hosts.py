"""The hosts of one linux testbed instance: how each is reached, its experiment folder,
the record in the testbed root dir from which anyone can clean up after it, and work
done on every host at once (a thread per host, each SSH call bounded by its timeout).

The record (``linux-hosts.json``) is written before a host is touched and names, per
node, the SSH target (user, host, port, key, known_hosts), the home directory and uid
found there, and whether cleaning up needs root; plus the experiment token and the
ControlMaster socket directory. Cleanup acts on it alone: it kills what the pid files
in ``~/nepi-<token>`` name (pid + start time) and what carries the token, then removes
exactly that folder.
"""

import concurrent.futures
import logging
import os
import re
import secrets
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from nepi.errors import DeploymentError
from nepi.testbeds.linux import remote
from nepi.testbeds.linux.ssh import HostSpec, Ssh, remove_control_dir, usable_control_dir
from nepi.util.files import read_json, write_json_atomic

_logger = logging.getLogger("nepi.testbeds.linux")

RECORD_FILE = "linux-hosts.json"
RECORD_FORMAT = "nepi-linux-1"
KNOWN_HOSTS_FILE = "ssh_known_hosts"
TOKEN_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
TOKEN_LENGTH = 10               # 36**10 ~ 2**51: never shared by two experiments
_TOKEN = re.compile(r"^[0-9a-z]{%d}$" % TOKEN_LENGTH)
MAX_WORKERS = 64


def new_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def valid_token(token: Any) -> bool:
    return isinstance(token, str) and _TOKEN.match(token) is not None


def _home_and_uid(output: str) -> Tuple[str, int]:
    lines = output.splitlines()
    if len(lines) < 2 or not lines[0].startswith("/") or not lines[1].isdigit() or \
            not all(c.isprintable() for c in lines[0]):
        raise ValueError("unexpected answer to the login check: %r" % output[:200])
    return lines[0].rstrip("/") or "/", int(lines[1])


class Host:
    """One node's host: its SSH target and, once reached, its home and uid."""

    def __init__(self, node: int, spec: HostSpec, ssh: Ssh, token: str,
                 home: Optional[str] = None, uid: Optional[int] = None,
                 sudo: bool = False) -> None:
        if not valid_token(token):
            raise ValueError("bad experiment token %r" % (token,))
        self.node = node
        self.spec = spec
        self.ssh = ssh
        self.token = token
        self.home = home
        self.uid = uid
        self.sudo = sudo          # cleaning up needs root (an element runs as root)

    def __str__(self) -> str:
        return "host %s (node %d)" % (self.spec, self.node)

    @property
    def folder_name(self) -> str:
        return "nepi-" + self.token

    @property
    def folder(self) -> str:
        if self.home is None:
            raise RuntimeError("%s was never reached" % self)
        return os.path.join(self.home, self.folder_name)

    def element_folder(self, guid: int) -> str:
        return "%s/app-%d" % (self.folder, guid)

    def run(self, script: str, *args: object, sudo: bool = False,
            timeout: Optional[float] = None, input: Optional[bytes] = None) -> str:
        """Run a script of nepi.testbeds.linux.remote (as root with ``sudo``)."""
        as_root = sudo and self.uid != 0
        return self.ssh.run(remote.command_line(script, *args, sudo=as_root),
                            input=input, timeout=timeout)

    def command(self, script: str, *args: object, sudo: bool = False) -> str:
        return remote.command_line(script, *args, sudo=sudo and self.uid != 0)

    def connect(self) -> None:
        """Log in, make the experiment folder, learn home and uid."""
        self.home, self.uid = _home_and_uid(self.run(remote.CONNECT, self.folder_name))

    def reattach(self) -> None:
        """Log in again to a host whose experiment folder must still be there."""
        self.home, self.uid = _home_and_uid(self.run(remote.REATTACH, self.folder_name))

    def remove(self) -> None:
        """Stop what this experiment runs here and remove its folder."""
        if self.home is None or self.uid is None:
            self.home, self.uid = _home_and_uid(self.run(remote.HELLO))
        self.run(remote.CLEANUP, self.folder, self.token, remote.STOP_GRACE, sudo=self.sudo,
                 timeout=self.ssh.timeout + remote.STOP_GRACE + 2)

    def to_record(self) -> dict:
        return dict(self.spec.to_dict(), home=self.home, uid=self.uid, sudo=self.sudo)


class Record:
    """The testbed root dir's record of the hosts an experiment touches."""

    def __init__(self, root_dir: str) -> None:
        self.root_dir = root_dir
        self.path = os.path.join(root_dir, RECORD_FILE)

    def load(self) -> dict:
        data = read_json(self.path, {}) or {}
        return data if isinstance(data, dict) else {}

    def save(self, token: str, control_dir: Optional[str], timeout: float,
             hosts: Iterable[Host]) -> None:
        write_json_atomic(self.path, {
            "format": RECORD_FORMAT, "token": token, "control_dir": control_dir,
            "timeout": timeout, "hosts": {str(h.node): h.to_record() for h in hosts}},
            mode=0o600)

    def update(self, **fields: Any) -> None:
        """Change top-level fields of the record, keeping its hosts."""
        data = self.load()
        data.update(fields)
        write_json_atomic(self.path, data, mode=0o600)

    def delete(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    @property
    def known_hosts(self) -> str:
        """Where host keys are learnt when the design names no known_hosts file."""
        return os.path.join(self.root_dir, KNOWN_HOSTS_FILE)

    def hosts(self, data: Optional[dict] = None,
              control_dir: Optional[str] = None) -> List[Host]:
        """The recorded hosts (reached through ``control_dir``, default the recorded
        one if it is still usable)."""
        data = self.load() if data is None else data
        token = data.get("token")
        if not valid_token(token):
            return []
        if control_dir is None and usable_control_dir(data.get("control_dir")):
            control_dir = data["control_dir"]
        timeout = float(data.get("timeout") or 30.0)
        found = []
        for node, entry in sorted((data.get("hosts") or {}).items()):
            spec = HostSpec.from_dict(entry)
            ssh = Ssh(spec, self.known_hosts, control_dir, timeout)
            found.append(Host(int(node), spec, ssh, token, entry.get("home"),
                              entry.get("uid"), bool(entry.get("sudo"))))
        return found


def each_host(hosts: Iterable[Host], fn: Callable[[Host], Any]
              ) -> Tuple[Dict[int, Any], Dict[int, BaseException]]:
    """``fn(host)`` on every host at once: results and errors by node guid."""
    hosts = list(hosts)
    results: Dict[int, Any] = {}
    errors: Dict[int, BaseException] = {}
    if not hosts:
        return results, errors
    with concurrent.futures.ThreadPoolExecutor(min(len(hosts), MAX_WORKERS),
                                               "nepi-linux") as pool:
        futures = {pool.submit(fn, h): h for h in hosts}
        for future, host in futures.items():
            try:
                results[host.node] = future.result()
            except Exception as e:
                errors[host.node] = e
    return results, errors


def failure_message(what: str, errors: Dict[int, BaseException],
                    hosts: Dict[int, Host]) -> str:
    """One message naming every host (and node) where ``what`` failed, and why."""
    return "linux: %s failed on %d host%s: %s" % (
        what, len(errors), "" if len(errors) == 1 else "s",
        "; ".join("%s: %s" % (hosts[n], errors[n]) for n in sorted(errors)))


def teardown(record: Record, hosts: List[Host], control_dir: Optional[str],
             lost: Optional[Dict[int, str]] = None) -> Dict[int, BaseException]:
    """Remove the experiment from every host, close the SSH masters (and their socket
    directory), and update the record: hosts that could not be cleaned stay in it (for
    a later cleanup), and it goes once none is left. Hosts ``lost`` (node -> why) are
    known not to answer: not waited for again, kept in the record. The failures by node."""
    lost = lost or {}
    _, errors = each_host([h for h in hosts if h.node not in lost], Host.remove)
    errors.update({h.node: ConnectionError(lost[h.node]) for h in hosts if h.node in lost})
    each_host(hosts, lambda host: host.ssh.close_master())
    remove_control_dir(control_dir)
    data = record.load()
    left = {str(n): e for n, e in (data.get("hosts") or {}).items() if int(n) in errors}
    if left:
        record.update(hosts=left, control_dir=None)
    else:
        record.delete()
    return errors


def cleanup(root_dir: str) -> None:
    """Testbed hook for ``nepid clean`` and lost controllers: remove what the experiment
    recorded in ``root_dir`` left on its hosts (nothing else)."""
    record = Record(root_dir)
    data = record.load()
    hosts = record.hosts(data)
    control_dir = data.get("control_dir") if usable_control_dir(data.get("control_dir")) \
        else None
    if not hosts:
        record.delete()
        remove_control_dir(control_dir)
        return
    errors = teardown(record, hosts, control_dir)
    if errors:
        raise DeploymentError(failure_message("cleaning up", errors,
                                              {h.node: h for h in hosts})
                              + " (kept in %s for another try)" % record.path)
