"""Cross-testbed experiments with real packets (issue 8): netns <-> ns-3 through an ns-3
FdNetDevice, fed either directly by a netns TAP file descriptor (fd passing) or by a pair
of TunChannels (the ns3 ``ns3::Nepi::TunChannel`` on a socketpair with the FdNetDevice,
the netns ``TunChannel`` on the TAP) over UDP or TCP.

Topology (``Cross``): ns-3 n1 --p2p 10.0.0.0/24-- n2, and for each link k an FdNetDevice
10.0.k.1/24 on n2 joined to the TAP 10.0.k.2/24 of netns node m_k, which pings n1.

Scenarios: (a) TunChannel udp and tcp, in-process controller; (b) every testbed a daemon
and the controller a nepid daemon, kill -9 of the nepid and recovery while pings cross;
(c) the ns3 testbed daemon killed under the Restart policy: a new one is deployed and its
fd and TunChannel cross connections are redone; the same with the netns testbed daemon
(new TAP devices reach the running simulation); (d) after each, nothing is left (no
namespace, link, process, daemon, socket). The TunChannel forwarder alone (reconnection,
dropping) and the TUN-to-ns-3 refusal are tested without root.

Each ns-3 process imports ns-3 (~10 s), so scenarios are few and do several things.
"""

import importlib.util
import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import netns_experiments as nx
from helpers import NETNS_MISSING, daemons_under, runtime_files, wait_finished, wait_until
from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.errors import DeploymentError
from nepi.util import proxy
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS
from nepi.util.tunchannel import TunChannel

pytestmark = [pytest.mark.timeout(300)]

needs_ns3_and_root = [
    pytest.mark.skipif(importlib.util.find_spec("ns") is None,
                       reason="the ns-3 Python bindings are not installed (pip install ns3)"),
    pytest.mark.skipif(NETNS_MISSING is not None,
                       reason="cross-testbed experiments build network namespaces and TAP "
                              "devices: %s" % NETNS_MISSING),
]


def scenario(test):
    """A real cross-testbed experiment: needs ns-3 and root."""
    for mark in needs_ns3_and_root:
        test = mark(test)
    return test


PROTOCOLS = ("ns3::Ipv4L3Protocol", "ns3::ArpL3Protocol", "ns3::Icmpv4L4Protocol",
             "ns3::UdpL4Protocol")
TARGET = "10.0.0.1"          # ns-3 n1
REPO = Path(__file__).resolve().parents[1]


# -- the design -------------------------------------------------------------------------

class Cross:
    """ns-3 n1 --p2p-- n2 ==(fd | udp | tcp)== netns m_k, one link per entry of ``links``."""

    def __init__(self, links, ping="ping -n -c 3 -i 0.2 " + TARGET, ns3_mode=None,
                 netns_mode=None, root=None, ns3_policy=None):
        self.exp = ExperimentDescription()
        ns3 = self.ns3 = self.exp.add_testbed_description(FactoriesProvider("ns3"))
        ns3.set_attribute_value("SimulatorImplementationType", "ns3::RealtimeSimulatorImpl")
        ns3.set_attribute_value("ChecksumEnabled", True)
        netns = self.netns = nx.add_testbed(self.exp)
        for desc, mode, name in ((ns3, ns3_mode, "ns3"), (netns, netns_mode, "netns")):
            if mode == DC.MODE_DAEMON:
                nx.as_daemon(desc, root=os.path.join(str(root), "testbeds", name))
        if ns3_policy:
            ns3.set_attribute_value(DC.RECOVERY_POLICY, ns3_policy)
        n1, n2 = self.node(), self.node()
        chan = ns3.create("ns3::PointToPointChannel")
        chan.set_attribute_value("Delay", "1ms")
        for node, address in ((n1, "10.0.0.1"), (n2, "10.0.0.2")):
            dev = self.device(node, "ns3::PointToPointNetDevice", address)
            dev.set_attribute_value("DataRate", "10Mbps")
            dev.connector("queue").connect(ns3.create("ns3::DropTailQueue").connector("dev"))
            chan.connector("dev2").connect(dev.connector("chan"))
        self.fds, self.hosts, self.taps, self.apps, self.channels = [], [], [], [], []
        for k, kind in enumerate(links, start=1):
            fd = self.device(n2, "ns3::FdNetDevice", "10.0.%d.1" % k)
            node = nx.add_node(netns)
            tap = nx.add_iface(netns, node, "10.0.%d.2" % k, 24, factory="TapNodeInterface")
            if kind == "fd":
                fd.connector("->fd").connect(tap.connector("fd->"))
                self.channels.append(None)
            else:
                mine = ns3.create("ns3::Nepi::TunChannel")
                mine.connector("fd->").connect(fd.connector("->fd"))
                theirs = netns.create("TunChannel")
                theirs.connector("->fd").connect(tap.connector("fd->"))
                mine.connector(kind).connect(theirs.connector(kind))
                self.channels.append((mine, theirs))
            self.route(n1, "10.0.%d.0" % k, "10.0.0.2")
            nx.add_route(node, "10.0.0.0", "10.0.%d.1" % k, 24)
            self.fds.append(fd)
            self.hosts.append(node)
            self.taps.append(tap)
            self.apps.append(nx.add_app(netns, node, ping))

    def node(self):
        node = self.ns3.create("ns3::Node")
        for p in PROTOCOLS:
            node.connector("protos").connect(self.ns3.create(p).connector("node"))
        return node

    def device(self, node, factory, address):
        dev = self.ns3.create(factory)
        node.connector("devs").connect(dev.connector("node"))
        addr = dev.add_address()
        addr.set_attribute_value("Address", address)
        addr.set_attribute_value("NetPrefix", 24)
        return dev

    @staticmethod
    def route(node, destination, nexthop):
        r = node.add_route()
        r.set_attribute_value("Destination", destination)
        r.set_attribute_value("NetPrefix", 24)
        r.set_attribute_value("NextHop", nexthop)

    def xml(self):
        assert self.exp.problems() == []
        return self.exp.to_xml()


# -- checks -----------------------------------------------------------------------------

def loss(stdout):
    """(transmitted, received) of a finished ping."""
    m = re.search(r"(\d+) packets transmitted, (\d+) received", stdout)
    assert m, stdout
    return int(m.group(1)), int(m.group(2))


def ping_result(controller, app, timeout=60):
    assert wait_finished(controller, app.guid, timeout), "ping %d did not finish" % app.guid
    return controller.trace(app.guid, "stdout")


def local_inet_ports():
    """Ports of this process's IPv4 sockets (in-process TunChannels)."""
    return {c.laddr.port for c in psutil.Process().net_connections(kind="inet")
            if c.laddr}


def in_process(root):
    """An in-process experiment controller keeping its state in ``root``."""
    return proxy.AccessConfiguration({DC.ROOT_DIRECTORY: str(root)})


@pytest.fixture
def clean_host(tmp_path, nepi_kit, netns_leftovers):
    """(d): whatever a scenario built -- its namespaces, links, processes in them
    (netns_leftovers, given 10 s here), its daemons (ns3 ones included), sockets -- is
    gone once it shut down (checked after nepi_kit has shut down the controllers a failed
    test left running)."""
    netns_leftovers.timeout = 10.0
    yield
    nepi_kit.close()                 # shut down what a failed test left running
    assert wait_until(lambda: not daemons_under(tmp_path), 15), \
        "daemons left: %s" % [p.cmdline() for p in daemons_under(tmp_path)]
    sockets = [path for path in runtime_files(tmp_path) if path.endswith(".sock")
               or stat.S_ISSOCK(os.lstat(path).st_mode)]
    assert sockets == [], sockets


# -- the forwarder alone (no root, no ns-3) ------------------------------------------------

LINK_KEY = "5e" * 32          # what the controller would hand both ends


def _channel_pair(proto):
    """Two TunChannels, each forwarding one end of a local socketpair; returns the
    channels and the 'device' ends (what a TAP or an FdNetDevice would hold)."""
    channels, devices = [], []
    for _ in range(2):
        device, local = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        device.settimeout(5)
        channel = TunChannel()                  # tun_cipher AES: authenticated
        channel.attach_socket(local)
        channel.bind(proto)
        channels.append(channel)
        devices.append(device)
    return channels, devices


def _join(a, b):
    for x, y in ((a, b), (b, a)):
        x.connect_peer(y.tun_addr, y.tun_port, y.tun_proto, y.tun_cipher, LINK_KEY)
    a.wait(10)
    b.wait(10)


def _exchange(devices, tag):
    devices[0].send(b"ping-" + tag)
    assert devices[1].recv(2048) == b"ping-" + tag
    devices[1].send(b"pong-" + tag)
    assert devices[0].recv(2048) == b"pong-" + tag


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_tunchannel_reconnects_to_a_restarted_peer(proto):
    """Frames cross both ways, authenticated; when the peer is replaced (its testbed
    restarted, new port, a new sender epoch under the same link key), connect_peer()
    again on the surviving channel joins the new one, keeping the surviving endpoint (and
    what it published) unchanged."""
    (a, b), devices = _channel_pair(proto)
    (b2, spare), devices2 = _channel_pair(proto)
    try:
        _join(a, b)
        _exchange(devices, b"1")
        b.close()
        port = a.tun_port
        _join(a, b2)
        assert (a.tun_port, a.connections) == (port, 2)
        _exchange([devices[0], devices2[0]], b"2")
        assert a.forwarding and b2.forwarding
        refused = ("frames_forged", "frames_replayed", "frames_malformed", "frames_oversized")
        assert not any(a.counters()[name] for name in refused), a.counters()
    finally:
        for closable in [a, b, b2, spare] + devices + devices2:
            closable.close()
    assert not a.forwarding and a.tun_fd is None


def test_tunchannel_drops_what_the_device_cannot_take():
    """A device that does not read (a stopped simulator): frames beyond its buffer are
    dropped and the forwarder keeps running."""
    (a, b), devices = _channel_pair("udp")
    try:
        _join(a, b)
        payload = b"x" * 1400
        for _ in range(2000):
            devices[0].send(payload)
        assert wait_until(lambda: b.frames_dropped > 0, 10)
        devices[1].settimeout(0.5)
        while True:                                     # drain what was queued
            try:
                devices[1].recv(2048)
            except OSError:
                break
        devices[1].settimeout(5)
        _exchange(devices, b"after")
        assert b.forwarding
    finally:
        for closable in [a, b] + devices:
            closable.close()


def test_a_tun_interface_cannot_feed_ns3():
    """ns-3's FdNetDevice exchanges Ethernet frames: a netns TUN interface (raw IP) is
    refused as the source of an fd cross connection or of a TunChannel joined to ns-3,
    with the reason, instead of a link that silently carries nothing."""
    from nepi.testbeds.netns import connect

    class Netns:
        tunchannels = {}
        factories = {3: "TunNodeInterface", 4: "TunChannel", 5: "TapNodeInterface"}

        def get_factory_id(self, guid):
            return self.factories[guid]

        def get_connected(self, guid, connector, other):
            return [3] if guid == 4 else []

        def tap_fd(self, guid):
            raise AssertionError("no fd may be used")

    peer = {"_testbed_id": "ns3", "_guid": 9, "tun_addr": "/nonexistent"}
    with pytest.raises(RuntimeError, match="TunNodeInterface 3 carries raw IP"):
        connect.connect_fd(Netns(), 3, peer)
    with pytest.raises(RuntimeError, match="use a TapNodeInterface"):
        connect.tunchannel_init(Netns(), 4, peer, "udp")
    assert Netns.tunchannels == {}


# -- (a) TunChannel udp and tcp -----------------------------------------------------------

@scenario
def test_tunchannel_udp_and_tcp_between_netns_and_ns3(tmp_path, nepi_kit, clean_host):
    """(a) n2 has two FdNetDevices, each fed by an ns3 TunChannel on a socketpair; one
    channel joins a netns TunChannel over UDP, the other over TCP; each netns node's TAP
    is fed by its channel. Both netns nodes ping the simulated n1: 0% loss."""
    design = Cross(["udp", "tcp"])
    controller = nepi_kit.create_ec(design.xml(), in_process(tmp_path / "exp"),
                                    allowed_roots=[str(tmp_path)])
    try:
        controller.start()
        for app in design.apps:
            out = ping_result(controller, app)
            assert "3 packets transmitted, 3 received, 0% packet loss" in out, out
        # both ends published the endpoint they listen on, with the agreed protocol
        ports = set()
        for (mine, theirs), proto in zip(design.channels, ("udp", "tcp")):
            for box in (mine, theirs):
                assert controller.get(box.guid, "tun_proto") == proto
                assert controller.get(box.guid, "tun_addr") == "127.0.0.1"
                ports.add(controller.get(box.guid, "tun_port"))
        assert len(ports) == 4 and all(isinstance(p, int) and p > 0 for p in ports)
        netns_ports = {controller.get(theirs.guid, "tun_port")
                       for _, theirs in design.channels}
        assert netns_ports <= local_inet_ports()       # netns runs in this process
        controller.stop()
    finally:
        controller.shutdown()
    assert not netns_ports & local_inet_ports()        # the channels' sockets are closed


@scenario
def test_emulation_needs_realtime_and_checksums(tmp_path, nepi_kit, clean_host):
    """An FdNetDevice (or TunChannel) exchanges frames with the kernel: deploying one on
    a simulator that is not realtime, or without checksums, fails with the reason."""
    design = Cross(["udp"])
    design.ns3.set_attribute_value("ChecksumEnabled", False)
    controller = nepi_kit.create_ec(design.xml(), in_process(tmp_path / "exp"),
                                    allowed_roots=[str(tmp_path)])
    try:
        with pytest.raises(DeploymentError) as info:
            controller.start()
        message = str(info.value)
        assert "ChecksumEnabled = True" in message, message
        assert "ns3::Nepi::TunChannel" in message and "ns3::FdNetDevice" in message
    finally:
        controller.shutdown()


# -- (b) every testbed a daemon, the controller a nepid daemon, kill -9 and recover -------

@scenario
def test_cross_links_survive_ec_daemon_kill9_and_recovery(tmp_path, nepi_kit, clean_host):
    """(b) An fd link and a TunChannel (udp) link, ns3 and netns each in a testbed daemon,
    the controller in nepid. Pings are running when the nepid is killed -9; the recovered
    controller reattaches to the same testbed daemons; the pings lost at most one echo;
    pings started again through the recovered controller cross with 0% loss."""
    design = Cross(["fd", "udp"], ping="ping -n -c 25 -i 0.2 " + TARGET,
                   ns3_mode=DC.MODE_DAEMON, netns_mode=DC.MODE_DAEMON, root=tmp_path)
    config = nepi_kit.ec_config(tmp_path)
    controller = nepi_kit.create_ec(design.xml(), config, allowed_roots=[str(tmp_path)])
    controller.start()
    pids = {g: nepi_kit.testbed_pid(tmp_path, g) for g in (design.ns3.guid,
                                                           design.netns.guid)}
    starts = {g: nepi_kit.start_time(pid) for g, pid in pids.items()}
    assert all(not controller.is_finished(app.guid) for app in design.apps)
    nepi_kit.kill9(controller.pid)
    config.set_attribute_value(DC.RECOVER, True)
    recovered = nepi_kit.create_ec(design.xml(), config, allowed_roots=[str(tmp_path)])
    assert recovered.failed_testbeds() == {}
    assert {g: nepi_kit.testbed_pid(tmp_path, g) for g in pids} == pids
    assert {g: nepi_kit.start_time(pid) for g, pid in pids.items()} == starts
    for app in design.apps:
        sent, received = loss(ping_result(recovered, app))
        print("ping across the kill -9 and recovery: %d sent, %d received" % (sent, received))
        assert sent == 25 and received >= 24, (sent, received)
    ping_again(recovered, design, " 0% packet loss")
    assert recovered.status() == TS.STATUS_STARTED
    shut_down(nepi_kit, recovered, tmp_path)


def deploy_in_process(nepi_kit, design, tmp_path):
    """An in-process controller (root tmp_path/exp) of ``design``, started; its first
    pings cross with 0% loss."""
    controller = nepi_kit.create_ec(design.xml(), in_process(tmp_path / "exp"),
                                    allowed_roots=[str(tmp_path)])
    controller.start()
    for app in design.apps:
        assert " 0% packet loss" in ping_result(controller, app)
    return controller


def kill9_until_restarted(nepi_kit, controller, tmp_path, testbed, timeout):
    """kill -9 ``testbed``'s daemon; its Restart policy brings a new one up, deployed."""
    exp_root = str(tmp_path / "exp")
    dead = nepi_kit.testbed_pid(exp_root, testbed.guid)
    nepi_kit.kill9(dead)
    assert nepi_kit.wait_until(
        lambda: nepi_kit.testbed_pid(exp_root, testbed.guid) not in (None, dead)
        and controller.status(testbed.guid) == TS.STATUS_STARTED, timeout, 0.2), \
        "testbed %d was not restarted" % testbed.guid
    assert controller.failed_testbeds() == {}


def ping_again(controller, design, expected="3 packets transmitted, 3 received, "
                                            "0% packet loss"):
    """Start every ping again; each crosses as ``expected``."""
    for app in design.apps:
        controller.action(app.guid, "start")
    for app in design.apps:
        out = ping_result(controller, app)
        assert expected in out, out


def shut_down(nepi_kit, controller, tmp_path):
    controller.stop()
    controller.shutdown()
    nepi_kit.assert_nothing_left(tmp_path)


# -- (c) Restart of the ns3 testbed redoes its cross connections -------------------------

@scenario
def test_ns3_restart_redoes_fd_and_tunchannel_cross_connections(tmp_path, nepi_kit,
                                                                 clean_host):
    """(c) The ns3 testbed daemon (Restart policy) is killed -9 while the experiment runs:
    the controller's liveness watcher launches a new daemon and deploys it again; the
    netns testbed sends its TAP fd again (it kept it open) and its TunChannel joins the new
    ns3 TunChannel. New pings over both links cross with 0% loss."""
    design = Cross(["fd", "udp"], ns3_mode=DC.MODE_DAEMON, root=tmp_path,
                   ns3_policy=DC.POLICY_RESTART)
    controller = deploy_in_process(nepi_kit, design, tmp_path)
    t0 = time.monotonic()
    kill9_until_restarted(nepi_kit, controller, tmp_path, design.ns3, 90)
    print("ns3 testbed kill -9 -> redeployed: %.1f s" % (time.monotonic() - t0))
    ping_again(controller, design)
    shut_down(nepi_kit, controller, tmp_path)


@scenario
def test_netns_restart_redoes_fd_and_tunchannel_cross_connections(tmp_path, nepi_kit,
                                                                  clean_host):
    """The other side: the netns testbed daemon (Restart policy) is killed -9; the new one
    builds new namespaces and TAP devices (new MAC addresses). The running simulation
    receives the new TAP's fd (its FdNetDevice is stopped, given it and started again),
    its TunChannel joins the new netns channel, and both devices forget the old MACs.
    Pings started again on the new namespaces cross with 0% loss."""
    design = Cross(["fd", "udp"], ns3_mode=DC.MODE_DAEMON, netns_mode=DC.MODE_DAEMON,
                   root=tmp_path)
    design.netns.set_attribute_value(DC.RECOVERY_POLICY, DC.POLICY_RESTART)
    controller = deploy_in_process(nepi_kit, design, tmp_path)
    exp_root = str(tmp_path / "exp")
    ns3_pid = nepi_kit.testbed_pid(exp_root, design.ns3.guid)
    netns_root = os.path.join(str(tmp_path), "testbeds", "netns")
    old_token = nx.testbed_token(netns_root)
    kill9_until_restarted(nepi_kit, controller, tmp_path, design.netns, 60)
    assert nepi_kit.testbed_pid(exp_root, design.ns3.guid) == ns3_pid   # still running
    new_token = nx.testbed_token(netns_root)                          # new namespaces
    assert new_token != old_token
    assert not any(n.startswith("nepi-%s-" % old_token) for n in nx.namespaces())
    assert {nx.ns_name(new_token, h.guid) for h in design.hosts} <= nx.namespaces()
    for app in design.apps:                 # the restarted testbed ran its pings again
        print("first ping after the restart:", loss(ping_result(controller, app)))
    ping_again(controller, design)
    shut_down(nepi_kit, controller, tmp_path)


# -- the example ----------------------------------------------------------------------

@scenario
def test_example_tunchannel_cross(tmp_path, clean_host):
    """examples/tunchannel_cross.py: netns n4 pings ns-3 n1 through a UDP TunChannel
    pair, with an in-process controller; it prints the channels and the ping output."""
    root = tmp_path / "example"
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "tunchannel_cross.py"),
                           str(root)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "5 packets transmitted, 5 received, 0% packet loss" in out, out
    assert re.search(r"^ns3::Nepi::TunChannel \d+: udp 127\.0\.0\.1:\d+$", out, re.M), out
    assert re.search(r"^TunChannel \d+: udp 127\.0\.0\.1:\d+$", out, re.M), out
    assert "unauthenticated" not in proc.stderr      # AES on both ends: no PLAIN warning
    assert (root / "execute.xml").exists()
