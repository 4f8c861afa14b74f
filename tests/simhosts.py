"""Simulated hosts on one machine, for multi-host experiments over real SSH.

Each host is a network namespace plugged into a private Linux bridge, with an IPv4
address from the benchmarking range 198.18.0.0/15 (RFC 2544, never routed on the
Internet), running its own sshd (own host key and config, accepting one test client
key) in a private mount namespace where the user's home is a per-host directory -- so
two hosts do not see each other's files in ~, like real machines. Only the shared paths
stay visible there, read-only: by default the running Python's installation when it
lives in the home, as pyenv's does (real hosts would have Python installed too). The
root namespace (the controller) has the bridge's .1 address and reaches every host;
hosts reach each other through the bridge.

Two runs may share the machine: names carry a random token, the /24 is one that no
interface or route of the machine uses yet, and cleanup goes by the record
DIRECTORY/simhosts.json only (written before each resource is made), never by name
patterns.

    sim = SimHosts.up(directory, 3)       # sim.hosts[0].spec() == "root@198.18.7.2:22"
    subprocess.run(sim.ssh_argv(sim.hosts[0], "hostname"))
    sim.down()

Command line (``make hosts-up`` / ``make hosts-down``)::

    python tests/simhosts.py up --count N --dir DIR
    python tests/simhosts.py down --dir DIR

Unix socket paths (ssh ControlPath) must stay under 108 bytes: a pytest tmp_path is too
long for them, so keep such sockets in a short directory of their own.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ipaddress
import json
import os
import pwd
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

import psutil

NETWORK = ipaddress.ip_network("198.18.0.0/15")     # RFC 2544 benchmarking range
RECORD = "simhosts.json"
FORMAT = "nepi-simhosts-1"
TOKEN_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
TOKEN_LENGTH = 6
MAX_HOSTS = 253                                      # .2 .. .254 of one /24
SSH_PORT = 22
HOST_IFNAME = "eth0"                                 # the host's side of its veth
KEY_NAME = "id_ed25519"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"      # sshd re-execs: absolute path
WAIT_SSHD = 10.0                                     # seconds for an sshd to listen
WAIT_GONE = 5.0                                      # seconds for processes/links to go
# sshd runs with the user's home replaced by the host's own directory, in which the
# shared paths are read-only bind mounts of the real ones (made first: the real home is
# hidden afterwards). Arguments: HOME_SRC HOME SSHD CONFIG [SOURCE MOUNTPOINT]...; the
# values are positional parameters, never part of the script.
SSHD_SCRIPT = """set -e
home=$1 target=$2 sshd=$3 config=$4
shift 4
while [ $# -gt 0 ]; do mount --bind -o ro "$1" "$2"; shift 2; done
mount --rbind "$home" "$target"
exec "$sshd" -D -e -f "$config"
"""

_rng = random.SystemRandom()


def missing() -> Optional[str]:
    """Why simulated hosts cannot run here (for a skip reason), or None."""
    if os.geteuid() != 0:
        return "simulated hosts need root (network and mount namespaces)"
    for tool in ("ip", "unshare", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return "%s is not installed (make install-deb installs it)" % tool
    if not os.access(SSHD, os.X_OK):
        return "sshd is not installed (openssh-server; make install-deb installs it)"
    return None


@dataclass(frozen=True)
class SimHost:
    """One simulated host, as an SSH client sees it (plus where it lives here)."""
    name: str           # "h1", "h2", ...
    address: str        # its IPv4 address on the bridge
    port: int           # sshd's port (22)
    user: str           # the user to log in as (the current user)
    ns: str             # its network namespace
    home: str           # host-side directory mounted as the user's home inside it
    link: str = ""      # its port on the bridge (root namespace side of its veth)
    directory: str = "" # DIRECTORY/<name>: sshd_config, host key, sshd log, home

    def spec(self) -> str:
        """"user@address:port", the form the hosts file and nepi attributes use."""
        return "%s@%s:%d" % (self.user, self.address, self.port)


def _run(argv: List[str]) -> str:
    """Run a command (argv list, no shell); its stdout, or RuntimeError with stderr."""
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s" % (shlex.join(argv), done.returncode,
                                                         done.stderr.strip()))
    return done.stdout


def default_share() -> List[str]:
    """The running Python's installation, where it lies in the user's home (pyenv,
    a virtualenv there): what ``up()`` shares with the hosts by default."""
    home = os.path.realpath(pwd.getpwuid(os.geteuid()).pw_dir)
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)}
    return sorted(p for p in prefixes if _is_under(p, home) and p != home)


def _is_under(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def _names(token: str, i: int = 0) -> Tuple[str, str, str]:
    """(bridge, namespace of host i, its bridge port) for ``token``: under 16 bytes."""
    return "shb" + token, "sh%s-%d" % (token, i), "shv%s%d" % (token, i)


def _link_exists(name: str) -> bool:
    return os.path.exists(os.path.join("/sys/class/net", name))


def _ns_path(name: str) -> str:
    return os.path.join("/run/netns", name)


def _ns_inode(name: str) -> Optional[int]:
    try:
        return os.stat(_ns_path(name)).st_ino
    except OSError:
        return None


def _pids_in_netns(inodes: Set[int]) -> List[int]:
    """Live (non-zombie) processes whose network namespace inode is one of ``inodes``."""
    found = []
    if not inodes:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat("/proc/%s/ns/net" % entry).st_ino in inodes and \
                    psutil.Process(int(entry)).status() != psutil.STATUS_ZOMBIE:
                found.append(int(entry))
        except (OSError, psutil.Error):
            continue                    # gone meanwhile, or a zombie (no ns links)
    return found


def _alive(pid: int, start: float) -> bool:
    """The recorded process (pid and start time) still runs (not a recycled pid)."""
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - start) < 0.05 and \
            proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _descendants(pid: int) -> Set[Tuple[int, float]]:
    """(pid, start time) of the live descendants of ``pid``."""
    found = set()
    try:
        for child in psutil.Process(pid).children(recursive=True):
            try:
                found.add((child.pid, child.create_time()))
            except psutil.Error:
                continue
    except psutil.Error:
        pass
    return found


def _kill(pids: Iterable[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _networks_in_use() -> List[Tuple[str, ipaddress.IPv4Network]]:
    """(interface, network) of every IPv4 address and route of the root namespace."""
    found = []
    for link in json.loads(_run(["ip", "-j", "-4", "addr", "show"]) or "[]"):
        for info in link.get("addr_info", []):
            network = ipaddress.ip_interface("%s/%s" % (info["local"], info["prefixlen"]))
            found.append((link.get("ifname", ""), network.network))
    routes = _run(["ip", "-j", "-4", "route", "show", "table", "all"])
    for route in json.loads(routes or "[]"):
        dst = route.get("dst", "default")
        if dst != "default" and route.get("type", "unicast") == "unicast":
            found.append((route.get("dev", ""), ipaddress.ip_network(dst, strict=False)))
    return found


def _write_private(path: str, text: str) -> None:
    """Write ``path`` atomically, readable by the owner only."""
    tmp = "%s.%d.tmp" % (path, threading.get_ident())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _keygen(path: str, comment: str) -> str:
    """A fresh ed25519 key without passphrase at ``path``; its public line's "type key"."""
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])
    with open(path + ".pub") as f:
        return " ".join(f.read().split()[:2])


def remove_path(path: str) -> None:
    """Remove a file, link or whole directory we made (a link itself, never its target);
    one already gone is fine."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class SimHosts:
    """A set of simulated hosts; ``up()`` makes them, ``down()`` removes them by record."""

    def __init__(self, directory: str, record: dict) -> None:
        self.directory = directory
        self._record = record
        self._lock = threading.Lock()
        self._procs: Dict[str, subprocess.Popen] = {}   # sshd children of this process

    # -- public attributes, all derived from the record --------------------------------

    @property
    def hosts(self) -> List[SimHost]:
        return [SimHost(**h) for h in self._record["hosts"]]

    @property
    def key(self) -> str:
        return os.path.join(self.directory, KEY_NAME)

    @property
    def known_hosts(self) -> str:
        return os.path.join(self.directory, "known_hosts")

    @property
    def hosts_file(self) -> str:
        return os.path.join(self.directory, "hosts")

    @property
    def bridge(self) -> str:
        return self._record["bridge"]

    @property
    def subnet(self) -> Optional[str]:
        return self._record["subnet"]

    def host(self, host: Union[SimHost, str]) -> SimHost:
        """A host by name (or the host itself)."""
        name = host.name if isinstance(host, SimHost) else host
        for candidate in self.hosts:
            if candidate.name == name:
                return candidate
        raise KeyError("no simulated host %r in %s" % (name, self.directory))

    def ssh_argv(self, host: Union[SimHost, str], *command: str) -> List[str]:
        """The ssh command running ``command`` on ``host``, host key checked strictly."""
        h = self.host(host)
        return ["ssh", "-i", self.key, "-o", "UserKnownHostsFile=%s" % self.known_hosts,
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                "-p", str(h.port), "--", "%s@%s" % (h.user, h.address), *command]

    def pids(self, host: Union[SimHost, str]) -> List[int]:
        """Live processes inside ``host`` (its network namespace)."""
        inode = _ns_inode(self.host(host).ns)
        return _pids_in_netns({inode} if inode is not None else set())

    # -- making them ----------------------------------------------------------------------

    @classmethod
    def up(cls, directory: str, count: int,
           share: Optional[Sequence[str]] = None) -> "SimHosts":
        """Make ``count`` hosts recorded in ``directory`` (missing or empty); on any
        failure remove what was made and raise.

        ``share``: directories under the user's home that every host still sees, read
        only, at the same path (their mount points are the only entries of a new home):
        by default the running Python's installation if it lives there (pyenv), so that
        ``sys.executable`` runs on the hosts as it would on real ones; ``()`` for none."""
        why = missing()
        if why:
            raise RuntimeError(why)
        if not 1 <= count <= MAX_HOSTS:
            raise ValueError("count must be 1..%d, not %r" % (MAX_HOSTS, count))
        directory = os.path.abspath(directory)
        account = pwd.getpwuid(os.geteuid())
        home = os.path.realpath(account.pw_dir)
        real = os.path.realpath(directory)
        if _is_under(real, home):
            # each sshd mounts the host's home over it, which would hide its own config
            raise ValueError("%s is inside %s, the home each host replaces; choose a "
                             "directory outside it" % (directory, home))
        shared = {os.path.realpath(p) for p in (default_share() if share is None
                                                  else share)}
        if any(p == home or not _is_under(p, home) or not os.path.isdir(p)
               for p in shared):
            raise ValueError("shared paths must be directories inside %s: %s"
                             % (home, sorted(shared)))
        shared = sorted(p for p in shared if not any(      # nested ones come along
            q != p and _is_under(p, q) for q in shared))
        made = not os.path.exists(directory)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if os.listdir(directory):
            raise FileExistsError("%s is not empty (hosts up there? take them down first)"
                                  % directory)
        token = cls._new_token()
        sim = cls(directory, {
            "format": FORMAT, "token": token, "user": account.pw_name,
            "home_target": home, "made_directory": made, "shared": shared,
            "bridge": _names(token)[0], "subnet": None, "hosts": [], "sshd": {},
            "namespaces": [_names(token, i)[1] for i in range(1, count + 1)],
            "links": [_names(token, i)[2] for i in range(1, count + 1)]
                     + [_names(token)[0]],
            "files": [RECORD, KEY_NAME, KEY_NAME + ".pub", "authorized_keys",
                      "known_hosts", "hosts"] + ["h%d" % i for i in range(1, count + 1)],
        })
        try:
            sim._save()                     # everything it will make, before making any
            sim._build(count)
        except BaseException:
            try:
                sim.down()
            except Exception as cleanup:    # the original error is what matters
                print("simhosts: cleanup after a failed up() failed too: %s" % cleanup,
                      file=sys.stderr)
            raise
        return sim

    @staticmethod
    def _new_token() -> str:
        """A random token no namespace or link of this machine carries yet."""
        while True:
            token = "".join(_rng.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))
            bridge, ns, link = _names(token, 1)
            if not (_link_exists(bridge) or _link_exists(link)
                    or os.path.exists(_ns_path(ns))):
                return token

    def _save(self) -> None:
        with self._lock:
            _write_private(os.path.join(self.directory, RECORD),
                           json.dumps(self._record, indent=1, sort_keys=True) + "\n")

    def _build(self, count: int) -> None:
        _run(["ip", "link", "add", self.bridge, "up", "type", "bridge"])
        subnet = self._claim_subnet()
        token, user = self._record["token"], self._record["user"]
        self._record["hosts"] = [asdict(SimHost(
            name="h%d" % i, address=str(subnet[i + 1]), port=SSH_PORT, user=user,
            ns=_names(token, i)[1], home=os.path.join(self.directory, "h%d" % i, "home"),
            link=_names(token, i)[2], directory=os.path.join(self.directory, "h%d" % i)))
            for i in range(1, count + 1)]
        self._save()
        client = _keygen(self.key, "simhosts-client")
        _write_private(os.path.join(self.directory, "authorized_keys"), client + "\n")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)     # privilege separation
        for h in self.hosts:        # one at a time: concurrent `ip netns add` may race
            _run(["ip", "netns", "add", h.ns])                  # on /run/netns's mount
        # hosts in parallel: each is a dozen short commands plus an sshd start
        with concurrent.futures.ThreadPoolExecutor(min(count, 32)) as pool:
            futures = [pool.submit(self._start_host, h) for h in self.hosts]
        public = [f.result() for f in futures]                  # first failure raises
        _write_private(self.known_hosts, "".join(
            "%s %s\n" % (h.address if h.port == 22 else "[%s]:%d" % (h.address, h.port),
                         key)
            for h, key in zip(self.hosts, public)))
        _write_private(self.hosts_file, "".join(h.spec() + "\n" for h in self.hosts))

    def _claim_subnet(self) -> ipaddress.IPv4Network:
        """A /24 of NETWORK that nothing else here uses, with .1 on our bridge. Another
        run may pick the same one at the same moment: checked again after adding the
        address, and on a clash both step back and draw again."""
        for _ in range(50):
            used = [network for _, network in _networks_in_use()]
            free = [n for n in NETWORK.subnets(new_prefix=24)
                    if not any(n.overlaps(u) for u in used)]
            if not free:
                raise RuntimeError("no free /24 left in %s" % NETWORK)
            subnet = _rng.choice(free)
            self._record["subnet"] = str(subnet)
            self._save()
            gateway = "%s/%d" % (subnet[1], subnet.prefixlen)
            _run(["ip", "addr", "add", gateway, "dev", self.bridge])
            if not any(dev != self.bridge and network.overlaps(subnet)
                       for dev, network in _networks_in_use()):
                return subnet
            _run(["ip", "addr", "del", gateway, "dev", self.bridge])
            time.sleep(_rng.uniform(0.0, 0.1))
        raise RuntimeError("could not claim a free /24 of %s" % NETWORK)

    def _start_host(self, h: SimHost) -> str:
        """Make host ``h`` in its namespace (veth, address, keys, sshd); its public
        host key."""
        _run(["ip", "link", "add", h.link, "up", "master", self.bridge, "type", "veth",
              "peer", "name", HOST_IFNAME, "netns", h.ns])
        _run(["ip", "-n", h.ns, "addr", "add", "%s/%s" % (h.address,
              self.subnet.split("/")[1]), "dev", HOST_IFNAME])
        _run(["ip", "-n", h.ns, "link", "set", HOST_IFNAME, "up"])
        _run(["ip", "-n", h.ns, "link", "set", "lo", "up"])
        os.makedirs(h.directory, mode=0o700)
        os.mkdir(h.home, 0o700)
        os.chmod(h.home, 0o700)                                 # whatever the umask
        for source in self._record["shared"]:
            os.makedirs(self._mount_point(h, source))
        host_key = _keygen(os.path.join(h.directory, "host_key"), "simhosts-" + h.name)
        config = os.path.join(h.directory, "sshd_config")
        _write_private(config, self._sshd_config(h))
        self._start_sshd(h, config)
        return host_key

    def _mount_point(self, h: SimHost, source: str) -> str:
        """Where shared path ``source`` is mounted in ``h``'s home (host side)."""
        return os.path.join(h.home, os.path.relpath(source, self._record["home_target"]))

    def _sshd_config(self, h: SimHost) -> str:
        lines = [
            "ListenAddress %s:%d" % (h.address, h.port),
            "HostKey %s" % os.path.join(h.directory, "host_key"),
            "AuthorizedKeysFile %s" % os.path.join(self.directory, "authorized_keys"),
            "PidFile %s" % os.path.join(h.directory, "sshd.pid"),
            "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes", "PermitRootLogin prohibit-password",
            "StrictModes no", "UsePAM no", "AllowTcpForwarding yes",
            "AllowStreamLocalForwarding yes", "AllowAgentForwarding yes",
            # the bench opens many sessions in parallel
            "MaxSessions 64", "MaxStartups 100:30:200",
            "Subsystem sftp internal-sftp",                    # scp uses sftp now
            "PrintMotd no", "PrintLastLog no", "UseDNS no",
        ]
        return "\n".join(lines) + "\n"

    def _start_sshd(self, h: SimHost, config: str) -> None:
        """Start h's sshd in its namespace with its own home; wait until it listens."""
        log_path = os.path.join(h.directory, "sshd.log")
        argv = ["ip", "netns", "exec", h.ns, "unshare", "--mount", "--propagation",
                "private", "sh", "-c", SSHD_SCRIPT, "sh", h.home,
                self._record["home_target"], SSHD, config]
        for source in self._record["shared"]:
            argv += [source, self._mount_point(h, source)]
        with open(log_path, "w") as log:
            # its own session: it outlives `simhosts.py up`, and ^C in a terminal
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        self._procs[h.name] = proc
        try:
            start = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            start = 0.0                     # died at once: the wait below says why
        with self._lock:
            self._record["sshd"][h.name] = {"pid": proc.pid, "start": start}
        self._save()
        deadline = time.monotonic() + WAIT_SSHD
        while True:
            if proc.poll() is not None:
                raise RuntimeError("sshd of %s (%s) exited with %s; its log:\n%s"
                                   % (h.name, h.address, proc.returncode, _read(log_path)))
            try:
                socket.create_connection((h.address, h.port), timeout=0.5).close()
                return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise RuntimeError("sshd of %s did not accept connections on %s:%d "
                                   "within %gs; its log:\n%s" % (
                                       h.name, h.address, h.port, WAIT_SSHD,
                                       _read(log_path)))
            time.sleep(0.02)

    # -- failure and removal --------------------------------------------------------------

    def kill_host(self, host: Union[SimHost, str]) -> None:
        """Simulate ``host`` dying: its bridge port goes down (it stops answering at
        once); its sshd, what its sessions started, and everything in its network
        namespace are SIGKILLed."""
        h = self.host(host)
        if _link_exists(h.link):
            _run(["ip", "link", "set", h.link, "down"])
        left = self._kill_processes([h.name], [h.ns])
        if left:
            raise RuntimeError("processes of %s survived SIGKILL: %s" % (h.name, left))

    def _kill_processes(self, names: List[str], namespaces: List[str]) -> List[int]:
        """SIGKILL the recorded sshds of hosts ``names`` (if still the same processes)
        with their descendants, and every process in ``namespaces``, until none is left
        or WAIT_GONE passes; the pids still alive then."""
        known = {(e["pid"], e["start"]) for n, e in self._record["sshd"].items()
                 if n in names}
        inodes = {i for i in (_ns_inode(ns) for ns in namespaces) if i is not None}
        deadline = time.monotonic() + WAIT_GONE
        while True:
            for name in names:              # reap our own children: no zombies left
                if name in self._procs:
                    self._procs[name].poll()
            for pid, start in list(known):  # what sessions started, even elsewhere
                if _alive(pid, start):
                    known.update(_descendants(pid))
            victims = set(_pids_in_netns(inodes))
            victims.update(pid for pid, start in known if _alive(pid, start))
            if not victims or time.monotonic() >= deadline:
                return sorted(victims)
            _kill(victims)
            time.sleep(0.02)

    def down(self) -> None:
        """Remove everything of the record -- processes, namespaces, links, files -- and
        nothing else; a second call finds nothing to do."""
        record = self._record
        problems = []
        left = self._kill_processes(list(record["sshd"]), record["namespaces"])
        if left:
            problems.append("processes survived SIGKILL: %s" % left)
        for ns in record["namespaces"]:
            if os.path.exists(_ns_path(ns)):
                try:
                    _run(["ip", "netns", "del", ns])
                except RuntimeError as e:
                    problems.append(str(e))
        # veths go with their namespace (asynchronously); delete what is still there
        for link in record["links"]:
            if _link_exists(link):
                try:
                    _run(["ip", "link", "del", link])
                except RuntimeError as e:
                    if _link_exists(link):
                        problems.append(str(e))
        deadline = time.monotonic() + WAIT_GONE
        while any(_link_exists(link) for link in record["links"]) and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        links = [link for link in record["links"] if _link_exists(link)]
        if links:
            problems.append("links still there: %s" % links)
        for proc in self._procs.values():
            proc.poll()
        if problems:
            raise RuntimeError("simulated hosts of %s not fully removed (record kept): %s"
                               % (self.directory, "; ".join(problems)))
        self._remove_files()

    def _remove_files(self) -> None:
        """The files this run made (the record last), and the directory if it made it."""
        for name in _record_last(self._record["files"]):
            remove_path(os.path.join(self.directory, name))
        if self._record.get("made_directory"):
            try:
                os.rmdir(self.directory)
            except OSError:
                pass                        # gone already, or holds others' files

    @classmethod
    def load(cls, directory: str) -> "SimHosts":
        """The hosts recorded in ``directory`` (by ``up``, maybe in another process)."""
        directory = os.path.abspath(directory)
        with open(os.path.join(directory, RECORD)) as f:
            record = json.load(f)
        if record.get("format") != FORMAT:
            raise ValueError("%s is not a simhosts record"
                             % os.path.join(directory, RECORD))
        return cls(directory, record)

    def __enter__(self) -> "SimHosts":
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def _record_last(files: List[str]) -> List[str]:
    """The record file goes last: if removal stops half-way, it still lists the rest."""
    return [f for f in files if f != RECORD] + [f for f in files if f == RECORD]


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read().strip() or "(empty)"
    except OSError as e:
        return "(unreadable: %s)" % e


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="make simulated hosts")
    up.add_argument("--count", type=int, default=3)
    up.add_argument("--dir", required=True)
    down = commands.add_parser("down", help="remove the simulated hosts recorded in --dir")
    down.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    if args.command == "up":
        started = time.monotonic()
        sim = SimHosts.up(args.dir, args.count)
        print("%d hosts up in %.1fs on %s (%s); hosts file: %s" % (
            len(sim.hosts), time.monotonic() - started, sim.bridge, sim.subnet,
            sim.hosts_file))
        for h in sim.hosts:
            print("  %s  %s  netns %s" % (h.name, h.spec(), h.ns))
        print("ssh:", shlex.join(sim.ssh_argv(sim.hosts[0])))
        return 0
    if not os.path.exists(os.path.join(args.dir, RECORD)):
        print("no simulated hosts recorded in %s" % args.dir)
        return 0
    SimHosts.load(args.dir).down()
    print("simulated hosts of %s removed" % args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
