"""ns3 testbed scenarios on the ns3 wheel (ns-3 3.44): NEPI 2's ns3 tests and examples with
their expected outcomes (reference/testbeds.md 4.3, 4.4, 4.6), through the controller, an
in-process ExperimentController (SINGLE: ns-3 in a private child daemon) and a testbed
daemon (deployment_mode DAEMON).

Each ns-3 process costs ~10 s of import, so the scenarios are few and large. After every
test no ns3 testbed daemon may be left running.
"""

import glob
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import time

import psutil
import pytest

from helpers import fixture_path, nepi_daemons, process_gone, wait_until
from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.errors import DeploymentError
from nepi.util import proxy
from nepi.util.constants import ApplicationStatus as AS
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("ns") is None,
                       reason="the ns-3 Python bindings are not installed (pip install ns3)"),
    pytest.mark.timeout(300),
]

FIXTURE = str(fixture_path("nepi2-ns3-p2p.xml"))
PROTOCOLS = ("ns3::Ipv4L3Protocol", "ns3::ArpL3Protocol", "ns3::Icmpv4L4Protocol",
             "ns3::UdpL4Protocol")
# 84-byte IP packet + 2-byte PPP header at 32768 bps, both ways (reference 4.3)
P2P_RTT_NS = 41992188


# -- helpers --------------------------------------------------------------------------

def assert_no_crash_in_logs(root):
    """ns-3 reports a fatal error or a signal with '*** Break ***' in the daemon's log."""
    for path in glob.glob(os.path.join(str(root), "**", "logs", "*.log"), recursive=True):
        with open(path, errors="replace") as f:
            text = f.read()
        assert "*** Break ***" not in text and "NS_FATAL" not in text, \
            "%s:\n%s" % (path, text[-3000:])


@pytest.fixture
def controllers(controllers):
    """Experiment controllers of a test (conftest's, shut down here first), whose ns-3
    daemons must not have crashed (not even at Simulator::Destroy)."""
    yield controllers
    controllers.shutdown_all()
    for c in controllers:
        assert_no_crash_in_logs(c.root_dir)


def rtt_lines(text):
    """[(simulation time ns, rtt ns)] of an Rtt trace."""
    result = []
    for line in text.splitlines():
        m = re.match(r"^\+(\d+)\.0ns\t\+(\d+)\.0ns$", line)
        assert m, "bad Rtt line %r" % line
        result.append((int(m.group(1)), int(m.group(2))))
    return result


def assert_p2p_rtts(text, count):
    lines = rtt_lines(text)
    assert len(lines) == count, text
    for k, (when, rtt) in enumerate(lines):
        assert abs(rtt - P2P_RTT_NS) <= 5, lines
        assert abs(when - (k * 10 ** 9 + rtt)) <= 5, lines


def reply_line(time_text, dst, src, seq):
    """NEPI 2's expected ascii trace line for an echo reply, tolerant of what 3.44 changed
    (device index after the loopback, identifier, 'data size')."""
    return re.compile(
        r"^- %s /NodeList/\d+/DeviceList/\d+/\$ns3::PointToPointNetDevice/TxQueue/Dequeue "
        r"ns3::PppHeader \(Point-to-Point Protocol: IP \(0x0021\)\) ns3::Ipv4Header \(tos 0x0 "
        r"DSCP Default ECN Not-ECT ttl 64 id %d protocol 1 offset \(bytes\) 0 flags \[none\] "
        r"length: 84 %s > %s\) ns3::Icmpv4Header \(type=0, code=0\) ns3::Icmpv4Echo "
        r"\(identifier=\d+, sequence=%d(, data size=56)?\)$"
        % (re.escape(time_text), seq, re.escape(dst), re.escape(src), seq), re.M)


def tcpdump(path):
    out = subprocess.run(["tcpdump", "-r", path, "-n"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def need_tcpdump():
    if not any(os.access(os.path.join(d, "tcpdump"), os.X_OK)
               for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin"]):
        pytest.skip("tcpdump is not installed")


class Design:
    """Small builder over the public design API."""

    def __init__(self, **testbed_attributes):
        self.exp = ExperimentDescription()
        self.tb = self.exp.add_testbed_description(FactoriesProvider("ns3"))
        for name, value in testbed_attributes.items():
            self.tb.set_attribute_value(name, value)

    def create(self, factory_id, **attributes):
        box = self.tb.create(factory_id)
        for name, value in attributes.items():
            box.set_attribute_value(name, value)
        return box

    @staticmethod
    def connect(a, ca, b, cb):
        a.connector(ca).connect(b.connector(cb))

    def node(self, protocols=PROTOCOLS):
        node = self.create("ns3::Node")
        for p in protocols:
            self.connect(node, "protos", self.create(p), "node")
        return node

    @staticmethod
    def address(dev, address, prefix=None):
        a = dev.add_address()
        a.set_attribute_value("Address", address)
        if prefix is not None:
            a.set_attribute_value("NetPrefix", prefix)

    def p2p(self, node, address, traces=("P2PAsciiTrace",), **attributes):
        dev = self.create("ns3::PointToPointNetDevice", **attributes)
        self.connect(node, "devs", dev, "node")
        self.connect(dev, "queue", self.create("ns3::DropTailQueue"), "dev")
        for t in traces:
            dev.enable_trace(t)
        self.address(dev, address)
        return dev

    def link(self, d1, d2, **attributes):
        chan = self.create("ns3::PointToPointChannel", **attributes)
        self.connect(chan, "dev2", d1, "chan")
        self.connect(chan, "dev2", d2, "chan")
        return chan

    def adhoc_wifi(self, node, channel):
        """An 802.11b ad hoc WifiNetDevice of ``node`` on ``channel``; (dev, phy, manager)."""
        dev = self.create("ns3::WifiNetDevice")
        self.connect(node, "devs", dev, "node")
        phy = self.create("ns3::YansWifiPhy", Standard="WIFI_PHY_STANDARD_80211b")
        self.connect(dev, "phy", phy, "dev")
        self.connect(phy, "chan", channel, "phys")
        self.connect(self.create("ns3::NistErrorRateModel"), "phy", phy, "err")
        self.connect(dev, "mac", self.create("ns3::AdhocWifiMac"), "dev")
        manager = self.create("ns3::ConstantRateWifiManager", DataMode="DsssRate2Mbps",
                              ControlMode="DsssRate1Mbps")
        self.connect(dev, "manager", manager, "dev")
        return dev, phy, manager

    def ping(self, node, remote, stop="10s", start="0s"):
        ping = self.create("ns3::V4Ping", Remote=remote, StartTime=start, StopTime=stop)
        ping.enable_trace("Rtt")
        self.connect(node, "apps", ping, "node")
        return ping

    def route(self, node, destination, nexthop, prefix=None):
        r = node.add_route()
        r.set_attribute_value("Destination", destination)
        r.set_attribute_value("NextHop", nexthop)
        if prefix is not None:
            r.set_attribute_value("NetPrefix", prefix)

    def xml(self):
        assert self.exp.problems() == []
        return self.exp.to_xml()


# -- NEPI 2 test/testbeds/ns3/execute.py, at the controller level ---------------------

def test_run_ping_if_controller(tmp_path):
    """NEPI 2's test_run_ping_if, same guids and calls, on the SINGLE-mode controller
    (ns-3 runs in its private daemon): ten pings over a 32768 bps link."""
    need_tcpdump()
    from nepi.testbeds.ns3 import TestbedController
    tc = TestbedController()
    try:
        tc.defer_configure("rootDirectory", str(tmp_path))
        for node, protos, dev, queue, address in ((2, (3, 4, 5, 6), 7, 8, "10.0.0.1"),
                                                   (9, (10, 11, 12, 13), 14, 15, "10.0.0.2")):
            tc.defer_create(node, "ns3::Node")
            for guid, factory in zip(protos, PROTOCOLS):
                tc.defer_create(guid, factory)
                tc.defer_connect(node, "protos", guid, "node")
            tc.defer_create(dev, "ns3::PointToPointNetDevice")
            tc.defer_connect(node, "devs", dev, "node")
            tc.defer_create(queue, "ns3::DropTailQueue")
            tc.defer_connect(dev, "queue", queue, "dev")
            tc.defer_add_trace(dev, "P2PAsciiTrace")
            tc.defer_add_address(dev, address, 24, None)
        tc.defer_add_trace(7, "P2PPcapTrace")
        tc.defer_create(16, "ns3::PointToPointChannel")
        tc.defer_connect(7, "chan", 16, "dev2")
        tc.defer_connect(14, "chan", 16, "dev2")
        tc.defer_create(17, "ns3::V4Ping")
        tc.defer_create_set(17, "Remote", "10.0.0.2")
        tc.defer_create_set(17, "StartTime", "0s")
        tc.defer_create_set(17, "StopTime", "10s")
        tc.defer_connect(2, "apps", 17, "node")
        tc.defer_add_trace(17, "Rtt")
        for phase in ("do_setup", "do_create", "do_connect_init", "do_connect_compl",
                      "do_preconfigure", "do_configure", "do_prestart"):
            getattr(tc, phase)()
        assert tc.status(17) == AS.STATUS_NOT_STARTED
        # the simulator lives in another process, never in this one
        pid = tc.daemon_pid
        assert pid and pid != os.getpid()
        assert "nepi.rpc.daemon_main" in psutil.Process(pid).cmdline()
        assert "ns" not in sys.modules
        tc.start()
        wait_until(lambda: tc.status(17) == AS.STATUS_FINISHED, 60, 0.1,
                   what="the ping to finish")
        assert tc.testbed_status() == TS.STATUS_STARTED

        assert_p2p_rtts(tc.trace(17, "Rtt"), 10)
        trace = tc.trace(14, "P2PAsciiTrace")
        assert reply_line("9.021", "10.0.0.2", "10.0.0.1", 9).search(trace), trace[-2000:]
        path = tc.trace(14, "P2PAsciiTrace", "path")
        assert path == str(tmp_path / "trace-p2p-node-9-dev-0.tr")
        assert tc.trace(14, "P2PAsciiTrace", "filename") == "trace-p2p-node-9-dev-0.tr"
        # values read back from the simulator, in nepi's types and canonical forms
        assert tc.get(17, "Remote") == "10.0.0.2"
        assert tc.get(17, "StopTime") == "10s"
        assert tc.get(17, "Size") == 56
        assert tc.get(7, "DataRate") == "32768bps"
        assert tc.get(2, "Up") is True
        assert tc.get(16, "Delay") == "0s"
        assert re.match(r"^00:00:00:00:00:0[0-9a-f]$", tc.get(7, "Address"))

        tc.stop()
        assert tc.testbed_status() == TS.STATUS_STOPPED
        pcap = tcpdump(tc.trace(7, "P2PPcapTrace", "path"))
        assert pcap.count("ICMP echo request") == 10 and pcap.count("ICMP echo reply") == 10
        assert tc.trace(7, "P2PPcapTrace").startswith("\xd4\xc3\xb2\xa1")   # pcap magic
    finally:
        tc.shutdown()
    wait_until(lambda: process_gone(pid), 15, 0.1, what="the ns3 daemon to exit")
    assert_no_crash_in_logs(tmp_path)


# -- many NEPI 2 scenarios in one simulation, in-process ExperimentController -------------

def test_topologies_in_one_simulation(controllers):
    """CSMA, wifi ad hoc, three-node static routing (NEPI 2 execute2.py), UdpEcho, OnOff to
    PacketSink over global routing, and an error model, each on its own networks of one
    ns3 testbed, through create_experiment_controller(xml, None)."""
    need_tcpdump()
    # the random walks below never run out of events: the simulation stops at 30 s
    d = Design(GlobalRouting=True, StopTime="30s")
    # CSMA: two nodes on a bus
    bus = d.create("ns3::CsmaChannel", DataRate="100Mbps", Delay="1ms")
    csma = []
    for n, address in ((d.node(), "10.1.0.1"), (d.node(), "10.1.0.2")):
        dev = d.create("ns3::CsmaNetDevice")
        d.connect(n, "devs", dev, "node")
        d.connect(dev, "chan", bus, "devs")
        dev.enable_trace("CsmaPcapTrace")
        dev.enable_trace("CsmaAsciiTrace")
        d.address(dev, address)
        csma.append((n, dev))
    csma_ping = d.ping(csma[0][0], "10.1.0.2", stop="3s")
    # wifi ad hoc (NEPI 2 wifi example pieces): 802.11b, 5 m apart
    wchan = d.create("ns3::YansWifiChannel")
    d.connect(d.create("ns3::LogDistancePropagationLossModel"), "prev", wchan, "loss")
    d.connect(d.create("ns3::ConstantSpeedPropagationDelayModel"), "chan", wchan, "delay")
    wifi = []
    for i, address in enumerate(("10.2.0.1", "10.2.0.2")):
        n = d.node()
        d.connect(n, "mobility",
                  d.create("ns3::ConstantPositionMobilityModel", Position="%d:0:0" % (5 * i)),
                  "node")
        dev, phy, manager = d.adhoc_wifi(n, wchan)
        phy.enable_trace("YansWifiPhyPcapTrace")
        d.address(dev, address)
        wifi.append((n, dev, phy, manager))
    wifi_ping = d.ping(wifi[0][0], "10.2.0.2", stop="3s")
    # NEPI 2 execute2.py test_run_ping_routing: 10.0.0.0/24 -- node -- 10.0.1.0/24
    r1, r2, r3 = d.node(), d.node(), d.node()
    d.link(d.p2p(r1, "10.0.0.1"), d.p2p(r2, "10.0.0.2"))
    d.link(d.p2p(r2, "10.0.1.1"), r3_dev := d.p2p(r3, "10.0.1.2"))
    d.route(r1, "10.0.1.0", "10.0.0.2")
    d.route(r3, "10.0.0.0", "10.0.1.1")
    route_ping = d.ping(r1, "10.0.1.2")
    # UdpEcho: three echoes
    u1, u2 = d.node(), d.node()
    d.link(echo_client_dev := d.p2p(u1, "10.4.0.1"), d.p2p(u2, "10.4.0.2"))
    server = d.create("ns3::UdpEchoServer", Port=9, StartTime="0s", StopTime="10s")
    d.connect(u2, "apps", server, "node")
    client = d.create("ns3::UdpEchoClient", Remote="10.4.0.2:9", MaxPackets=3,
                      Interval="1s", PacketSize=100, StartTime="1s", StopTime="10s")
    d.connect(u1, "apps", client, "node")
    # OnOff -> PacketSink, routed by global routing (no static routes on these nodes)
    g1, g2, g3 = d.node(), d.node(), d.node()
    d.link(d.p2p(g1, "10.5.0.1", DataRate="1Mbps"), d.p2p(g2, "10.5.0.2", DataRate="1Mbps"))
    d.link(d.p2p(g2, "10.5.1.1", DataRate="1Mbps"),
           sink_dev := d.p2p(g3, "10.5.1.2", DataRate="1Mbps"))
    d.connect(g3, "apps", d.create("ns3::PacketSink", Local="0.0.0.0:5000"), "node")
    onoff = d.create("ns3::OnOffApplication", Remote="10.5.1.2:5000", DataRate="100kbps",
                     PacketSize=500, OnTime="Constant:1", OffTime="Constant:0",
                     StartTime="1s", StopTime="2s")
    d.connect(g1, "apps", onoff, "node")
    # a link whose receiver drops every packet (NEPI 2 name of the error unit)
    e1, e2 = d.node(), d.node()
    e2_dev = d.p2p(e2, "10.6.0.2")
    d.link(d.p2p(e1, "10.6.0.1"), e2_dev)
    d.connect(d.create("ns3::RateErrorModel", ErrorRate=1.0, ErrorUnit="EU_PKT"), "dev",
              e2_dev, "err")
    lossy_ping = d.ping(e1, "10.6.0.2", stop="3s")
    # wifi infrastructure: an access point and two stations random-walking around it
    infra = d.create("ns3::YansWifiChannel")
    stations = []
    for mac_type, address in (("ns3::ApWifiMac", "10.7.0.1"), ("ns3::StaWifiMac", "10.7.0.2"),
                              ("ns3::StaWifiMac", "10.7.0.3")):
        n = d.node()
        if mac_type == "ns3::ApWifiMac":
            mob = d.create("ns3::ConstantPositionMobilityModel", Position="10:10:0")
        else:
            mob = d.create("ns3::RandomWalk2dMobilityModel", Bounds="0|20|0|20",
                           Speed="ns3::ConstantRandomVariable[Constant=1]")
        d.connect(n, "mobility", mob, "node")
        dev = d.create("ns3::WifiNetDevice")
        d.connect(n, "devs", dev, "node")
        phy = d.create("ns3::YansWifiPhy", Standard="WIFI_STANDARD_80211g")
        d.connect(dev, "phy", phy, "dev")
        d.connect(phy, "chan", infra, "phys")
        mac = d.create(mac_type, Ssid="nepi")
        d.connect(dev, "mac", mac, "dev")
        d.address(dev, address)
        stations.append((n, mac, mob))
    station_ping = d.ping(stations[1][0], "10.7.0.3", start="1s", stop="4s")
    # NEPI 2 examples/ns3_wifi_hidden_terminal.py: a matrix loss model where n1 and n3
    # cannot hear each other (default loss 200 dB) but both hear n2 (50 dB)
    hidden = d.create("ns3::YansWifiChannel")
    matrix = d.create("ns3::MatrixPropagationLossModel", DefaultLoss=200.0)
    d.connect(matrix, "chan", hidden, "loss")
    d.connect(d.create("ns3::ConstantSpeedPropagationDelayModel"), "chan", hidden, "delay")
    terminals = []
    for address in ("10.8.0.1", "10.8.0.2", "10.8.0.3"):
        n = d.node(PROTOCOLS + ("ns3::TcpL4Protocol",))
        mob = d.create("ns3::ConstantPositionMobilityModel")
        d.connect(n, "mobility", mob, "node")
        dev = d.adhoc_wifi(n, hidden)[0]
        d.address(dev, address, 8)
        terminals.append((n, mob))
    for a in (0, 2):
        pair = d.create("ns3::Nepi::MobilityPair", Loss=50.0)
        d.connect(pair, "matrix", matrix, "mobpair")
        d.connect(pair, "ma", terminals[a][1], "mp")
        d.connect(pair, "mb", terminals[1][1], "mp")
    heard_ping = d.ping(terminals[0][0], "10.8.0.2", stop="3s")
    hidden_ping = d.ping(terminals[0][0], "10.8.0.3", stop="3s")

    ec = proxy.create_experiment_controller(d.xml(), None)
    controllers.append(ec)
    ec.start()
    for app in (csma_ping, wifi_ping, route_ping, client, onoff, lossy_ping, station_ping,
                heard_ping, hidden_ping):
        wait_until(lambda: ec.is_finished(app.guid), 60, 0.1,
                   what="application %d" % app.guid)

    # CSMA: 3 replies; ARP and ICMP in the pcap
    csma_rtts = rtt_lines(ec.trace(csma_ping.guid, "Rtt"))
    assert len(csma_rtts) == 3
    assert all(rtt >= 2_000_000 for _, rtt in csma_rtts)          # 1 ms each way at least
    pcap = tcpdump(ec.trace(csma[0][1].guid, "CsmaPcapTrace", "path"))
    assert "ARP, Request who-has 10.1.0.2" in pcap
    assert pcap.count("10.1.0.1 > 10.1.0.2: ICMP echo request") == 3
    assert pcap.count("10.1.0.2 > 10.1.0.1: ICMP echo reply") == 3
    assert "$ns3::CsmaNetDevice/MacRx" in ec.trace(csma[1][1].guid, "CsmaAsciiTrace")
    # wifi ad hoc: 3 replies; 802.11 frames in the pcap
    assert len(rtt_lines(ec.trace(wifi_ping.guid, "Rtt"))) == 3
    pcap = tcpdump(ec.trace(wifi[0][2].guid, "YansWifiPhyPcapTrace", "path"))
    assert "10.2.0.1 > 10.2.0.2: ICMP echo request" in pcap
    assert "10.2.0.2 > 10.2.0.1: ICMP echo reply" in pcap
    assert ec.get(wifi[0][3].guid, "DataMode") == "DsssRate2Mbps"
    assert ec.get(wifi[1][0].guid, "Up") is True
    # routing: the last reply leaves node 3 at 9.04199 s (two 32768 bps hops)
    trace = ec.trace(r3_dev.guid, "P2PAsciiTrace")
    assert reply_line("9.04199", "10.0.1.2", "10.0.0.1", 9).search(trace), trace[-1500:]
    assert len(rtt_lines(ec.trace(route_ping.guid, "Rtt"))) == 10
    # UdpEcho: 3 requests out, 3 echoes back
    trace = ec.trace(echo_client_dev.guid, "P2PAsciiTrace").splitlines()
    sent = [l for l in trace if l.startswith("-") and "10.4.0.1 > 10.4.0.2" in l
            and "ns3::UdpHeader" in l]
    received = [l for l in trace if l.startswith("r") and "10.4.0.2 > 10.4.0.1" in l
                and "ns3::UdpHeader" in l]
    assert (len(sent), len(received)) == (3, 3)
    # OnOff: 100 kbps of 500-byte packets for 1 s reach the sink across two hops
    trace = ec.trace(sink_dev.guid, "P2PAsciiTrace").splitlines()
    udp = [l for l in trace if l.startswith("r") and "10.5.0.1 > 10.5.1.2" in l]
    assert 20 <= len(udp) <= 30, len(udp)
    # every packet to 10.6.0.2 is lost
    assert ec.trace(lossy_ping.guid, "Rtt") == ""
    # station to station through the access point, while moving
    assert len(rtt_lines(ec.trace(station_ping.guid, "Rtt"))) == 3
    assert ec.get(stations[1][1].guid, "Ssid") == "nepi"
    x, y, z = (float(v) for v in ec.get(stations[1][2].guid, "Position").split(":"))
    assert 0 <= x <= 20 and 0 <= y <= 20 and (x, y) != (0.0, 0.0)
    # hidden terminal: n1 hears n2, never n3
    assert len(rtt_lines(ec.trace(heard_ping.guid, "Rtt"))) == 3
    assert ec.trace(hidden_ping.guid, "Rtt") == ""
    # a well-formed but unknown TypeId is refused without harming the simulator process
    with pytest.raises(Exception, match="no TypeId 'ns3::NoSuchSocketFactory'"):
        ec.set(onoff.guid, "Protocol", "ns3::NoSuchSocketFactory")
    assert ec.get(onoff.guid, "Protocol") == "ns3::UdpSocketFactory"
    ec.stop()
    ec.shutdown()


# -- realtime, testbed daemon (DAEMON mode): runtime get/set while the simulation runs --

def test_realtime_runtime_get_and_set_in_daemon_mode(tmp_path, controllers):
    """NEPI 2's ns3_runtime_attribute_change example in short: a realtime simulation in a
    testbed daemon answers get/set/status while it runs, and a channel delay changed at
    run time shows in the RTTs."""
    d = Design(SimulatorImplementationType="ns3::RealtimeSimulatorImpl",
               ChecksumEnabled=True)
    d.tb.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
    n1, n2 = d.node(), d.node()
    d1 = d.p2p(n1, "10.0.0.1", traces=("P2PAsciiTrace", "P2PPcapTrace"), DataRate="1Mbps")
    d2 = d.p2p(n2, "10.0.0.2", DataRate="1Mbps")
    chan = d.link(d1, d2)
    ping = d.ping(n1, "10.0.0.2", start="1s", stop="30s")
    config = proxy.AccessConfiguration({DC.ROOT_DIRECTORY: str(tmp_path)})
    ec = proxy.create_experiment_controller(d.xml(), config)
    controllers.append(ec)
    ec.start()
    started = time.monotonic()
    (summary,) = ec.testbeds_summary()
    assert summary["mode"] == "daemon" and summary["pid"] != os.getpid()
    assert "ns" not in sys.modules
    # the simulation runs in real time: the ping starts at 1 s
    assert ec.status(ping.guid) == AS.STATUS_NOT_STARTED
    wait_until(lambda: ec.status(ping.guid) == AS.STATUS_RUNNING, 10, 0.05,
               what="the ping to start")
    assert time.monotonic() - started >= 0.8
    assert ec.status(1) == TS.STATUS_STARTED
    # runtime get/set, answered by the running simulator
    assert ec.get(chan.guid, "Delay") == "0s"
    assert ec.get(n1.guid, "Up") is True
    ec.set(chan.guid, "Delay", "150ms")
    assert ec.get(chan.guid, "Delay") == "150ms"
    wait_until(lambda: len(rtt_lines(ec.trace(ping.guid, "Rtt"))) >= 3, 10, 0.1,
               what="three echo replies")
    rtts = [rtt for _, rtt in rtt_lines(ec.trace(ping.guid, "Rtt"))]
    assert rtts[-1] >= 300_000_000                              # 2 x 150 ms added
    # traces are readable while the simulation runs, pcap included
    assert ec.status(ping.guid) == AS.STATUS_RUNNING
    if os.access("/usr/sbin/tcpdump", os.X_OK) or os.access("/usr/bin/tcpdump", os.X_OK):
        assert tcpdump(ec.trace(d1.guid, "P2PPcapTrace", "path")).count(
            "ICMP echo reply") >= 3
    # application stop time moved while running: it finishes then, not at 30 s
    ec.set(ping.guid, "StopTime", "4s")
    assert ec.get(ping.guid, "StopTime") == "4s"
    wait_until(lambda: ec.is_finished(ping.guid), 10, 0.1, what="the ping to stop at 4 s")
    assert 3.5 <= time.monotonic() - started <= 12
    with pytest.raises(Exception, match="StartTime"):
        ec.set(ping.guid, "StartTime", "2s")                     # ExecReadOnly
    ec.stop()
    assert ec.status(ping.guid) == AS.STATUS_FINISHED
    assert ec.status(1) == TS.STATUS_STOPPED
    ec.shutdown()


# -- the NEPI 2 design file itself ----------------------------------------------------

def test_nepi2_fixture_runs(controllers):
    """nepi2-ns3-p2p.xml (written by NEPI 2 for ns-3 3.11): realtime, checksums, a V4Ping
    from 0 s to 5 s; run in process with ns-3 in its private daemon."""
    with open(FIXTURE) as f:
        xml = f.read()
    started = time.monotonic()
    ec = proxy.create_experiment_controller(xml, None)
    controllers.append(ec)
    ec.start()
    wait_until(lambda: ec.is_finished(15), 30, 0.1, what="the V4Ping to finish")
    assert time.monotonic() - started >= 5                      # real time
    trace = ec.trace(10, "P2PAsciiTrace")
    replies = re.findall(r"^r \S+ /NodeList/\d+/DeviceList/\d+/\$ns3::PointToPointNetDevice"
                         r"/MacRx .* 10\.30\.0\.2 > 10\.30\.0\.1\) ns3::Icmpv4Header "
                         r"\(type=0, code=0\)", trace, re.M)
    assert len(replies) == 5, trace
    assert ec.get_testbed_version(15) == "3.44"
    ec.stop()
    ec.shutdown()


def test_failed_deployment_leaves_no_daemon(controllers):
    """A ping without destination would abort ns-3 at start: refused at configure, the
    deployment is rolled back and the daemon goes away."""
    d = Design()
    n1, n2 = d.node(), d.node()
    d.link(d.p2p(n1, "10.0.0.1"), d.p2p(n2, "10.0.0.2"))
    ping = d.create("ns3::V4Ping", StopTime="1s")
    d.connect(n1, "apps", ping, "node")
    ec = proxy.create_experiment_controller(d.xml(), None)
    controllers.append(ec)
    with pytest.raises(DeploymentError, match="needs its Remote attribute"):
        ec.start()
    assert ec.state == "failed"
    # the rollback destroyed the simulator (a ping that never sent anything must not
    # crash ns-3 there); the controllers fixture checks the daemon log


def test_example_ns3_p2p_ping(tmp_path):
    """examples/ns3_p2p_ping.py runs and prints the ping trace."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, os.path.join(repo, "examples", "ns3_p2p_ping.py"),
                          "--keep", str(tmp_path / "root")], capture_output=True, text=True,
                         timeout=240, env=dict(os.environ, PYTHONPATH=repo))
    assert out.returncode == 0, out.stdout + out.stderr
    assert_p2p_rtts("".join(l + "\n" for l in out.stdout.splitlines()
                            if l.startswith("+")), 10)
    assert reply_line("9.021", "10.0.0.2", "10.0.0.1", 9).search(out.stdout.replace("  - ",
                                                                                      "- "))
    assert_no_crash_in_logs(tmp_path / "root")


# -- ns-3 and netns together: the TAP file descriptor crosses (NEPI 2 example 4.6.1) ----

def _netns_available():
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        return False
    try:
        importlib.import_module("nepi.testbeds.netns")
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _netns_available(), reason="needs root and the netns testbed")
def test_fd_cross_testbed_experiment(netns_leftovers, controllers):
    """n1 --p2p-- n2 ==fd== n3 --p2p-- n4: n1, n2 simulated by ns-3, n3, n4 network
    namespaces; n2's FdNetDevice gets n3's TAP file descriptor. A real ping from n4 reaches
    the simulated n1 and comes back (RTT dominated by the 32768 bps simulated link)."""
    import netns_experiments as nx
    d = Design(SimulatorImplementationType="ns3::RealtimeSimulatorImpl",
               ChecksumEnabled=True)
    n1, n2 = d.node(), d.node()
    d.link(d.p2p(n1, "10.0.0.1", traces=()), d.p2p(n2, "10.0.0.2", traces=()))
    fd = d.create("ns3::FdNetDevice")
    d.connect(n2, "devs", fd, "node")
    d.address(fd, "10.0.1.1")
    fd.enable_trace("FdAsciiTrace")
    fd.enable_trace("FdPcapTrace")
    netns = nx.add_testbed(d.exp)
    n3 = nx.add_node(netns, forwarding=True)
    n4 = nx.add_node(netns)
    tap = nx.add_iface(netns, n3, "10.0.1.2", 24, factory="TapNodeInterface")
    nx.link_p2p(nx.add_iface(netns, n3, "10.0.2.1", 24, factory="P2PNodeInterface"),
                nx.add_iface(netns, n4, "10.0.2.2", 24, factory="P2PNodeInterface"))
    fd.connector("->fd").connect(tap.connector("fd->"))
    d.route(n1, "10.0.2.0", "10.0.0.2")
    d.route(n2, "10.0.2.0", "10.0.1.2")
    nx.add_route(n3, "10.0.0.0", "10.0.1.1")
    nx.add_route(n4, "10.0.0.0", "10.0.2.1")
    app = nx.add_app(netns, n4, "ping -qc 3 10.0.0.1")
    ec = proxy.create_experiment_controller(d.xml(), None)
    controllers.append(ec)
    ec.start()
    wait_until(lambda: ec.is_finished(app.guid), 60, 0.2, what="the ping from the namespace")
    stdout = ec.trace(app.guid, "stdout")
    assert "3 packets transmitted, 3 received, 0% packet loss" in stdout, stdout
    rtt_avg = float(re.search(r"= [\d.]+/([\d.]+)/", stdout).group(1))
    assert rtt_avg >= 41.9                                    # the simulated p2p link
    trace = ec.trace(fd.guid, "FdAsciiTrace")
    assert re.search(r"^r \S+ /NodeList/\d+/DeviceList/\d+/\$ns3::FdNetDevice/MacRx "
                     r"Payload \(size=98\)$", trace, re.M), trace[:1000]
    ec.stop()
    pcap = tcpdump(ec.trace(fd.guid, "FdPcapTrace", "path"))
    assert pcap.count("10.0.2.2 > 10.0.0.1: ICMP echo request") == 3
    ec.shutdown()


# -- a private daemon does not outlive the process that owns it -----------------------

OWNER_SCRIPT = """
import sys, time
from nepi.util import proxy
from nepi.util.constants import DeploymentConfiguration as DC
xml = open(sys.argv[1]).read()
config = proxy.AccessConfiguration({DC.ROOT_DIRECTORY: sys.argv[2]})
ec = proxy.create_experiment_controller(xml, config)
ec.start()
print("started", flush=True)
time.sleep(600)
"""


def test_private_daemon_exits_when_its_owner_dies(tmp_path):
    """SINGLE mode: the experiment controller's process is killed (no shutdown); its ns3
    daemon notices and exits instead of lingering with a running simulation."""
    script = tmp_path / "owner.py"
    script.write_text(OWNER_SCRIPT)
    root = tmp_path / "exp"
    owner = subprocess.Popen([sys.executable, str(script), FIXTURE, str(root)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "started"
        mine = nepi_daemons(root, testbed_id="ns3")
        assert len(mine) == 1
        daemon = mine[0]
    finally:
        owner.kill()
        owner.wait(10)
    psutil.wait_procs([daemon], timeout=20)
    assert not daemon.is_running() or daemon.status() == psutil.STATUS_ZOMBIE


# -- what nepi accepts, ns-3 accepts (some of its parsers abort the process otherwise) ---

AGREEMENT_SCRIPT = r"""
import json, sys
from ns import ns
cases = json.loads(sys.argv[1])
bad = []
for typeid, attribute, value in cases:
    tid = ns.TypeId.LookupByName(typeid)
    info = ns.TypeId.AttributeInformation()
    tid.LookupAttributeByName(attribute, info)
    v = info.checker.Create()
    if not v.DeserializeFromString(value, info.checker):
        bad.append([typeid, attribute, value])
print("BAD " + json.dumps(bad), flush=True)
"""


def test_values_nepi_accepts_are_accepted_by_ns3():
    """Validation is the only guard against ns-3 aborting the simulator process on a
    malformed construction-time value: every sample nepi's validators accept must parse
    with ns-3's own checker (a failure there may abort the child: the test sees it)."""
    from nepi.testbeds.ns3 import values
    from nepi.testbeds.ns3.metadata import tables
    samples = {
        "Time": ["1s", "1.5s", "+1e+09ns", "250us", "2min", "10", ".5s", "1e3ms", "0s"],
        "DataRate": ["32768bps", "1Mbps", "1.5Mb/s", ".5Mbps", "100 Mbps", "1000",
                     "5KiB/s", "3kBps", "2Gb/s", "1e6bps", "1.5e3kbps"],
        "QueueSize": ["100p", "64KB", "1Mip", "4000Mp", "3Gp", "10 p", "100", "4294967296p"],
        "Vector3D": ["1:2:3", "1e1:-2.5:.3", "+1:-0:3.0", " 1 : 2 : 3 ", "1:2"],
        "Rectangle": ["0|100|0|100", "-5.5|5|1e1|20", "0|100|0"],
        "Mac48Address": ["00:11:22:33:44:55", "ff:ff:ff:ff:ff:ff", "00:11:22"],
        "Ipv4Mask": ["/24", "255.255.0.0", "/0", "/32"],
        "Ssid": ["nepi", "a-b_c.d"],
        "WifiMode": ["DsssRate1Mbps", "OfdmRate6Mbps", "HtMcs7", "OfdmRate7Mbps"],
        "AttributeContainer": ["{36, 20, BAND_5GHZ, 0}", "{1,20,BAND_2_4GHZ,0}",
                               "{0, 0, BAND_UNSPECIFIED, 0}", "{36, 20, 5GHz, 0}", "{x}"],
        "Object:ns3::RandomVariableStream": [
            "ns3::UniformRandomVariable[Min=0|Max=1]", "Uniform:0:1", "Constant:2",
            "ns3::ExponentialRandomVariable[Mean=2|Bound=10]",
            "ns3::NormalRandomVariable[Mean=0.0|Variance=1.0|Bound=3]"],
    }
    attrs, _, info = tables()
    cases, refused = [], 0
    for vtype, texts in samples.items():
        factory, name = next((f, n) for f, entries in info.items() for n, e in entries.items()
                             if e.get("type") == vtype)
        definition = attrs["%s#%s" % (factory, name)]
        from nepi.testbeds.ns3.spec import FACTORIES
        typeid = FACTORIES[factory]["typeid"]
        for text in texts:
            if definition["validation_function"](None, text):
                cases.append([typeid, name, values.ns3_text(vtype, text, name)])
            else:
                refused += 1
    assert refused >= 10                # the malformed samples above are refused
    out = subprocess.run([sys.executable, "-c", AGREEMENT_SCRIPT, __import__("json").dumps(cases)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    bad = __import__("json").loads(re.search(r"^BAD (.*)$", out.stdout, re.M).group(1))
    assert bad == [], bad
