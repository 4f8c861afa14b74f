"""Simulated hosts (tests/simhosts.py): network namespaces on a private bridge, each with
its own sshd and home, reached over real SSH -- and removed by their record only."""

import concurrent.futures
import ipaddress
import json
import os
import pwd
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

import simhosts
from helpers import links, namespaces, process_gone, wait_until
from simhosts import SimHosts

pytestmark = pytest.mark.skipif(simhosts.missing() is not None,
                                reason=str(simhosts.missing()))

SIMHOSTS = str(Path(__file__).with_name("simhosts.py"))
HOME = pwd.getpwuid(os.geteuid()).pw_dir
# what a new home holds: the mount points of the shared paths (the Python, if under ~)
SHARED_TOPS = sorted({os.path.relpath(p, os.path.realpath(HOME)).split(os.sep)[0]
                      for p in simhosts.default_share()})


def ssh(sim, host, command, *options, timeout=30.0):
    """Run ``command`` on ``host`` over ssh (extra ssh ``options`` first)."""
    argv = sim.ssh_argv(host, command)
    argv[1:1] = list(options)
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def on_all(sim, command, hosts=None):
    """``command`` on every host (in parallel, as a bench would); host name -> result."""
    hosts = sim.hosts if hosts is None else hosts
    with concurrent.futures.ThreadPoolExecutor(len(hosts)) as pool:
        return dict(zip([h.name for h in hosts],
                        pool.map(lambda h: ssh(sim, h, command), hosts)))


def own_address(sim, hosts=None):
    """Every host reports its own address on its interface (over strict-key ssh)."""
    results = on_all(sim, "ip -4 -o addr show dev eth0", hosts)
    for h in hosts or sim.hosts:
        result = results[h.name]
        assert result.returncode == 0, (h, result.stderr)
        assert " %s/24 " % h.address in result.stdout, (h, result.stdout)


def _running(pid, start):
    """The process recorded as (pid, start time) still runs."""
    try:
        return not process_gone(pid) and \
            abs(psutil.Process(pid).create_time() - start) < 0.05
    except psutil.Error:
        return False


class Snapshot:
    """What a set of hosts consists of, taken while up, to check that down() leaves
    none of it: its namespaces, links, sshd processes and any process in its namespaces."""

    def __init__(self, sim):
        with open(os.path.join(sim.directory, simhosts.RECORD)) as f:
            self.record = json.load(f)
        self.inodes = {os.stat("/run/netns/" + ns).st_ino
                       for ns in self.record["namespaces"]}
        self.taken = time.time()
        assert len(self.record["sshd"]) == len(self.record["hosts"])

    def left(self):
        found = {"namespaces": sorted(set(self.record["namespaces"]) & namespaces()),
                 "links": sorted(set(self.record["links"]) & links()),
                 "sshd": [e["pid"] for e in self.record["sshd"].values()
                          if _running(e["pid"], e["start"])],
                 "in namespaces": []}
        for proc in psutil.process_iter(["create_time"]):
            try:        # an inode freed by our namespaces may name a newer one meanwhile
                if os.stat("/proc/%d/ns/net" % proc.pid).st_ino in self.inodes and \
                        proc.info["create_time"] < self.taken:
                    found["in namespaces"].append(proc.pid)
            except OSError:
                continue
        return found

    def assert_gone(self):
        left = self.left()
        assert not any(left.values()), left


def test_three_hosts(sim_hosts):
    sim = sim_hosts(3)
    h1, h2, h3 = sim.hosts
    assert [h.name for h in sim.hosts] == ["h1", "h2", "h3"]
    assert len({h.address for h in sim.hosts} | {h.ns for h in sim.hosts}) == 6
    for h in sim.hosts:
        assert h.port == 22 and h.user == pwd.getpwuid(os.geteuid()).pw_name
        assert h.spec() == "%s@%s:22" % (h.user, h.address)
        assert simhosts.NETWORK.overlaps(ipaddress.ip_network(h.address))
        assert os.stat(h.home).st_mode & 0o777 == 0o700
        assert sorted(os.listdir(h.home)) == SHARED_TOPS
    with open(sim.hosts_file) as f:
        assert f.read().split() == [h.spec() for h in sim.hosts]
    assert os.stat(os.path.join(sim.directory, simhosts.RECORD)).st_mode & 0o777 == 0o600

    # strict host key checking against known_hosts, each host seeing its own address
    own_address(sim)

    # ... and a host presenting another host's key is refused
    with open(sim.known_hosts) as f:
        lines = f.read().splitlines()
    swapped = os.path.join(sim.directory, "swapped_known_hosts")
    with open(swapped, "w") as f:
        f.write("%s %s\n" % (h1.address, lines[1].split(None, 1)[1]))
    result = ssh(sim, h1, "true", "-o", "UserKnownHostsFile=" + swapped)
    assert result.returncode == 255 and "Host key verification failed" in result.stderr, \
        result.stderr
    os.unlink(swapped)

    # each host has its own home: what h1 writes in ~ is not in ~ on h2, nor in ours
    name = "only-on-h1-%s" % uuid.uuid4().hex
    result = ssh(sim, h1, 'echo "$HOME"; ls ~; echo written > ~/%s' % name)
    assert result.returncode == 0 and result.stdout.split() == [HOME], result
    result = ssh(sim, h2, "ls -A ~")
    assert result.returncode == 0 and result.stdout.split() == SHARED_TOPS, result
    assert sorted(os.listdir(h1.home)) == sorted([name] + SHARED_TOPS)
    assert sorted(os.listdir(h2.home)) == SHARED_TOPS
    assert not os.path.exists(os.path.join(HOME, name))

    # the controller's Python runs there as on a real host with the same installation
    result = ssh(sim, h3, "%s -c 'import psutil, sys; print(sys.prefix)'" % sys.executable)
    assert result.returncode == 0 and result.stdout.strip() == sys.prefix, result

    # hosts reach each other through the bridge
    ping = subprocess.run(["ip", "netns", "exec", h1.ns, "ping", "-c", "1", "-W", "2",
                           h3.address], capture_output=True, text=True, timeout=10)
    assert ping.returncode == 0, ping.stdout + ping.stderr

    snapshot = Snapshot(sim)
    sim.down()
    snapshot.assert_gone()
    assert not os.path.exists(sim.directory) or os.listdir(sim.directory) == []
    sim.down()                                  # idempotent
    snapshot.assert_gone()


def test_down_from_the_record(sim_hosts):
    sim = sim_hosts(2)
    snapshot = Snapshot(sim)
    loaded = SimHosts.load(sim.directory)
    assert loaded.hosts == sim.hosts and loaded.key == sim.key
    assert loaded.ssh_argv("h2", "true") == sim.ssh_argv(sim.hosts[1], "true")
    loaded.down()
    snapshot.assert_gone()
    loaded.down()
    sim.down()


def test_kill_host(sim_hosts):
    sim = sim_hosts(3)
    h1, h2, h3 = sim.hosts
    sshd = Snapshot(sim).record["sshd"]["h2"]["pid"]
    # one session in h2's network namespace, one that left it for ours: both on h2
    sessions = [subprocess.Popen(sim.ssh_argv(h2, command), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for command in ("sleep 60", "exec nsenter --net=/proc/%d/ns/net sleep 61"
                                % os.getpid())]
    try:
        def sleeping():
            found = {}
            for proc in psutil.Process(sshd).children(recursive=True):
                try:
                    if proc.name() == "sleep":
                        found[proc.cmdline()[-1]] = proc
                except psutil.Error:
                    continue
            return found if len(found) == 2 else None
        sleeps = wait_until(sleeping, 15, 0.05, what="the ssh sessions' sleeps on h2")
        assert sleeps["60"].pid in sim.pids(h2) and sleeps["61"].pid not in sim.pids(h2)
        sim.kill_host(h2)
        assert sim.pids(h2) == [] and process_gone(sshd)
        assert all(process_gone(proc.pid) for proc in sleeps.values())
        started = time.monotonic()
        result = ssh(sim, h2, "true", "-o", "ConnectTimeout=2", timeout=20)
        assert result.returncode == 255, result
        assert time.monotonic() - started < 10
        own_address(sim, [h1, h3])
    finally:
        for session in sessions:
            session.kill()
            session.wait()
    snapshot = Snapshot(sim)
    sim.down()
    snapshot.assert_gone()


def test_command_line_round_trip(tmp_path):
    directory = str(tmp_path / "cli-hosts")
    up = subprocess.run([sys.executable, SIMHOSTS, "up", "--count", "2", "--dir",
                         directory], capture_output=True, text=True, timeout=60)
    down = None
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        sim = SimHosts.load(directory)
        assert sim.hosts_file in up.stdout
        for h in sim.hosts:
            assert h.spec() in up.stdout
        with open(sim.hosts_file) as f:
            assert f.read().split() == [h.spec() for h in sim.hosts]
        own_address(sim)                        # the sshds outlive `up`
        snapshot = Snapshot(sim)
    finally:
        if os.path.exists(os.path.join(directory, simhosts.RECORD)):
            down = subprocess.run([sys.executable, SIMHOSTS, "down", "--dir", directory],
                                  capture_output=True, text=True, timeout=60)
    assert down is not None and down.returncode == 0, down
    snapshot.assert_gone()
    assert not os.path.exists(directory)        # `up` made it, `down` removed it
    again = subprocess.run([sys.executable, SIMHOSTS, "down", "--dir", directory],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "no simulated hosts" in again.stdout


def test_sixteen_hosts_quickly(sim_hosts):
    started = time.monotonic()
    sim = sim_hosts(16)
    elapsed = time.monotonic() - started
    print("16 simulated hosts up in %.2fs" % elapsed)
    assert elapsed < 20
    own_address(sim)


def test_side_by_side(sim_hosts):
    """Two sets made at once (as two test runs would) get their own names and subnets."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: sim_hosts(2), range(2))
    assert a.bridge != b.bridge and a.subnet != b.subnet
    assert not {h.ns for h in a.hosts} & {h.ns for h in b.hosts}
    own_address(a)
    own_address(b)
    snapshot = Snapshot(a)
    a.down()
    snapshot.assert_gone()
    own_address(b)                              # untouched by a's removal


def test_failed_up_removes_what_it_made(tmp_path, monkeypatch):
    tokens = []
    draw = SimHosts._new_token
    monkeypatch.setattr(SimHosts, "_new_token",
                        staticmethod(lambda: tokens.append(draw()) or tokens[-1]))
    monkeypatch.setattr(simhosts, "SSHD", "/bin/false")        # every sshd exits at once
    directory = str(tmp_path / "failing")
    with pytest.raises(RuntimeError, match=r"sshd of h\d .* exited with 1"):
        SimHosts.up(directory, 3)
    token, = tokens
    assert not [n for n in namespaces() if n.startswith("sh%s-" % token)]
    assert not [n for n in links() if token in n]
    assert not os.path.exists(directory)


def test_nothing_shared(tmp_path):
    """share=(): an empty home, even where the Python lives in ~ (then it is hidden)."""
    sim = SimHosts.up(str(tmp_path / "bare"), 1, share=())
    try:
        assert os.listdir(sim.hosts[0].home) == []
        result = ssh(sim, "h1", "ls -A ~")
        assert result.returncode == 0 and result.stdout == "", result
    finally:
        sim.down()


def test_shared_paths_are_read_only(sim_hosts):
    if not simhosts.default_share():
        pytest.skip("this Python does not live in the home directory")
    sim = sim_hosts(1)
    result = ssh(sim, "h1", "touch %s/simhosts-must-fail" % simhosts.default_share()[0])
    assert result.returncode != 0 and "Read-only" in result.stderr, result


def test_refused_directories(tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("")
    with pytest.raises(FileExistsError):
        SimHosts.up(str(busy), 1)
    with pytest.raises(ValueError, match="home"):
        SimHosts.up(os.path.join(HOME, "simhosts-never-made"), 1)
    assert not os.path.exists(os.path.join(HOME, "simhosts-never-made"))
    with pytest.raises(ValueError, match="shared paths"):
        SimHosts.up(str(tmp_path / "never-made"), 1, share=["/usr"])
    assert not os.path.exists(str(tmp_path / "never-made"))
