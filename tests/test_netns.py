"""The netns testbed on real Linux network namespaces (issue 6), through the in-process
ExperimentController: NEPI 2's netns controller tests and examples with their expected
outcomes (reference/testbeds.md 4.1, 4.6), TAP/TUN over TunChannels between two testbeds,
traces (stdout, stderr, pcap), applications (user, environment, stop, status), bandwidth
shaping measured with iperf3, runtime up/mtu/bandwidth, validation of delay/loss,
failures mid-deployment, the NEPI 2 XML fixture, and recovery of a killed testbed daemon.

After every test nothing of it may be left: no namespace, link or bridge of its netns
testbeds (by their tokens), no process in those namespaces or started by it (conftest's
``netns_leftovers``, autouse here).

Needs root and /dev/net/tun (the module is skipped otherwise).
"""

import base64
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from helpers import NETNS_MISSING, fixture_path, processes_in, wait_finished, wait_until

if NETNS_MISSING:
    pytest.skip(NETNS_MISSING, allow_module_level=True)

from nepi.errors import DeploymentError, DesignError  # noqa: E402
from nepi.testbeds.netns.execute import cleanup as netns_cleanup  # noqa: E402
from nepi.util import proxy  # noqa: E402
from nepi.util.constants import ApplicationStatus as AS  # noqa: E402
from nepi.util.constants import DeploymentConfiguration as DC  # noqa: E402
from nepi.util.constants import TestbedStatus as TS  # noqa: E402

import netns_experiments as nx  # noqa: E402

pytestmark = pytest.mark.usefixtures("netns_leftovers")
PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
               b"\xa1\xb2\x3c\x4d")


def need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip("needs %s (Debian packages, installed by `make install`)"
                    % ", ".join(missing))


# ---------------------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------------------

def deploy(controllers, exp_desc):
    """In-process EC (create_experiment_controller(xml, None)), started."""
    controller = proxy.create_experiment_controller(exp_desc.to_xml(), None)
    controllers.append(controller)
    controller.start()
    return controller


def root_of(controller, testbed_guid=1):
    return controller.deployment_config(testbed_guid)[DC.ROOT_DIRECTORY]


def node_ns(controller, node_guid, testbed_guid=1):
    name = nx.ns_name(nx.testbed_token(root_of(controller, testbed_guid)), node_guid)
    assert name in nx.namespaces()
    return name


def finished_trace(controller, guid, trace="stdout", timeout=20.0):
    assert wait_finished(controller, guid, timeout), "application %d never finished" % guid
    return controller.trace(guid, trace)


def shutdown(controller):
    controller.stop()
    controller.shutdown()


# ---------------------------------------------------------------------------------------
# NEPI 2 controller tests (4.1) and examples (4.6), through the ExperimentController
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("build,roles,interface", [
    (nx.make_p2p, ("desc", "node1", "node2", "iface1", "iface2", "app"), "P2PNodeInterface"),
    (nx.make_switched, ("desc", "node1", "node2", "iface1", "iface2", "switch", "app"),
     "NodeInterface"),
], ids=["p2p", "switch"])
def test_ping(controllers, build, roles, interface):
    """4.1 test 2 (test_run_ping_p2pif) and test 1 (test_run_ping_if: NodeInterfaces on a
    Switch), with NEPI 2's guids; the application is the last box."""
    exp_desc, b = build()
    assert [b[k].guid for k in roles] == list(range(1, len(roles) + 1))
    controller = deploy(controllers, exp_desc)
    assert finished_trace(controller, len(roles)).startswith(nx.ping_prefix("10.0.0.2"))
    assert controller.get_testbed_id(2) == "netns"
    assert controller.get_factory_id(4) == interface
    shutdown(controller)


def test_routed_ping_with_forwarding(controllers):
    """4.1 test 3 (test_run_ping_routing): node 3 forwards between two switches."""
    exp_desc, b = nx.make_routed()
    assert [b[k].guid for k in ("node1", "node2", "node3", "iface1", "iface2", "iface3",
                                "iface4", "switch1", "switch2", "app")] == list(range(2, 12))
    controller = deploy(controllers, exp_desc)
    assert finished_trace(controller, 11).startswith(nx.ping_prefix("10.0.1.2"))
    # the middle node forwards: its namespace has ip_forward on
    ns = node_ns(controller, 3)
    assert nx.ns_exec(ns, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    shutdown(controller)


def test_routing_example_three_nodes_in_line(controllers):
    """4.6 example 3 (netns_routing_experiment.py): /30 P2P links, routes both ways."""
    exp_desc, b = nx.make_routing_example()
    controller = deploy(controllers, exp_desc)
    for app, dst in ((b["app1"], "192.168.1.2"), (b["app3"], "192.168.0.1")):
        out = finished_trace(controller, app.guid)
        assert out.startswith("PING %s (%s) 56(84) bytes of data." % (dst, dst)), out
        assert "3 packets transmitted, 3 received, 0% packet loss" in out, out
    shutdown(controller)


@pytest.mark.parametrize("device", ["TapNodeInterface", "TunNodeInterface"])
@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_tap_tun_through_tunchannels_of_two_testbeds(controllers, device, proto):
    """4.6 example 2 made local: two netns testbeds, a TAP (TUN) interface in each fed by
    a TunChannel, the channels cross-connected over udp (tcp); ping crosses."""
    exp_desc, b = nx.make_tunnel(device, proto)
    assert (b["desc_a"].guid, b["app"].guid, b["desc_b"].guid) == (1, 5, 6)
    controller = deploy(controllers, exp_desc)
    assert finished_trace(controller, 5).startswith(nx.ping_prefix("10.0.1.2"))
    # each testbed named its own namespace
    ns_a, ns_b = node_ns(controller, 2, 1), node_ns(controller, 7, 6)
    assert ns_a != ns_b
    kind = "tap" if device == "TapNodeInterface" else "tun"
    shown = nx.ns_exec(ns_b, "ip", "-d", "link", "show", "%s0" % kind).stdout
    assert "%s0" % kind in shown and "tun type %s" % kind in shown, shown
    shutdown(controller)


def test_nepi2_netns_p2p_fixture_runs():
    """The NEPI 2 XML fixture (one netns testbed, P2P, ``ping -qc3 10.20.0.2`` as root)."""
    controller = proxy.create_experiment_controller(
        fixture_path("nepi2-netns-p2p.xml").read_text(), None)
    try:
        controller.start()
        out = finished_trace(controller, 6)
        assert out.startswith("PING 10.20.0.2 (10.20.0.2) 56(84) bytes of data.\n"), out
        assert "3 packets transmitted, 3 received, 0% packet loss" in out, out
        controller.stop()
    finally:
        controller.shutdown()


# ---------------------------------------------------------------------------------------
# the testbed controller programmed directly (4.1 style): status before start
# ---------------------------------------------------------------------------------------

def program_switch(tc, root, command="ping -qc1 10.0.0.2"):
    """4.1 test 1 with the defer_* API: nodes 2, 3, interfaces 4, 5, switch 6, app 7."""
    tc.defer_configure(DC.ROOT_DIRECTORY, str(root))
    tc.defer_create(2, "Node")
    tc.defer_create(3, "Node")
    for guid, node, address in ((4, 2, "10.0.0.1"), (5, 3, "10.0.0.2")):
        tc.defer_create(guid, "NodeInterface")
        tc.defer_create_set(guid, "up", True)
        tc.defer_connect(node, "devs", guid, "node")
        tc.defer_add_address(guid, address, 24, None)
    tc.defer_create(6, "Switch")
    tc.defer_create_set(6, "up", True)
    tc.defer_connect(6, "devs", 4, "switch")
    tc.defer_connect(6, "devs", 5, "switch")
    tc.defer_create(7, "Application")
    tc.defer_create_set(7, "command", command)
    tc.defer_add_trace(7, "stdout")
    tc.defer_connect(2, "apps", 7, "node")


def deploy_programmed(tc, start=True):
    for phase in ("do_setup", "do_create", "do_connect_init", "do_connect_compl",
                  "do_preconfigure", "do_configure", "do_prestart"):
        getattr(tc, phase)()
    if start:
        tc.start()


def test_programmed_controller_status_not_started_running_finished(tmp_path):
    tc = proxy.build_testbed_controller("netns", "0.1")
    program_switch(tc, tmp_path, command="sleep 0.7; ping -qc1 10.0.0.2")
    try:
        deploy_programmed(tc, start=False)
        assert tc.status(7) == AS.STATUS_NOT_STARTED       # NEPI 2 crashed here (6.2)
        tc.start()
        assert tc.status(7) == AS.STATUS_RUNNING
        assert wait_until(lambda: tc.status(7) == AS.STATUS_FINISHED, 10)
        assert tc.trace(7, "stdout").startswith(nx.ping_prefix("10.0.0.2"))
        assert tc.trace(7, "stdout", "path") == str(tmp_path / "7-stdout.trace")
        tc.stop()
    finally:
        tc.shutdown()


# ---------------------------------------------------------------------------------------
# applications: traces, user, environment, stop, status
# ---------------------------------------------------------------------------------------

def test_application_stdout_and_stderr_traces(controllers):
    exp_desc, b = nx.make_p2p(command="echo out; echo err >&2; echo more; exit 3",
                              traces=("stdout", "stderr"))
    controller = deploy(controllers, exp_desc)
    assert finished_trace(controller, 6) == "out\nmore\n"
    assert controller.trace(6, "stderr") == "err\n"
    root = root_of(controller)
    assert controller.trace(6, "stdout", "path") == os.path.join(root, "6-stdout.trace")
    assert controller.trace(6, "stderr", "path") == os.path.join(root, "6-stderr.trace")
    assert controller.trace(6, "stdout", "filename") == "6-stdout.trace"
    shutdown(controller)


def test_application_runs_as_user_nobody(controllers):
    exp_desc, b = nx.make_p2p(command="id -un; id -u", user="nobody")
    controller = deploy(controllers, exp_desc)
    import pwd
    assert finished_trace(controller, 6) == "nobody\n%d\n" % pwd.getpwnam("nobody").pw_uid
    shutdown(controller)


def test_application_environment(controllers):
    exp_desc, b = nx.make_p2p(command='echo "$FOO|$BAR"',
                              environment="FOO=bar BAR='two words'")
    controller = deploy(controllers, exp_desc)
    assert finished_trace(controller, 6) == "bar|two words\n"
    shutdown(controller)


def test_application_runs_inside_its_node(controllers):
    exp_desc, b = nx.make_p2p(command="ip -o -4 addr show; readlink /proc/self/ns/net")
    controller = deploy(controllers, exp_desc)
    out = finished_trace(controller, 6)
    assert "10.0.0.1/24" in out and "10.0.0.2" not in out, out
    ns = node_ns(controller, 2)
    inode = os.stat(os.path.join("/run/netns", ns)).st_ino
    assert "net:[%d]" % inode in out, out
    shutdown(controller)


def test_stop_kills_the_whole_process_group(controllers):
    exp_desc, b = nx.make_p2p(command="sleep 1000 & sleep 1000")
    controller = deploy(controllers, exp_desc)
    ns = node_ns(controller, 2)

    def sleeps():
        return [cmd for cmd in processes_in(ns).values() if cmd == "sleep 1000"]
    assert len(wait_until(lambda: len(sleeps()) >= 2 and sleeps(), 5)) == 2
    assert controller.status(6) == AS.STATUS_RUNNING
    controller.stop()
    assert wait_until(lambda: not sleeps(), 5), sleeps()
    assert controller.status(6) == AS.STATUS_FINISHED
    assert processes_in(ns) == {}
    controller.shutdown()


def test_application_status_running_then_finished(controllers):
    exp_desc, b = nx.make_p2p(command="sleep 1.5")
    long_app = nx.add_app(b["desc"], b["node2"], "sleep 1000", traces=())
    controller = deploy(controllers, exp_desc)
    assert controller.status(6) == AS.STATUS_RUNNING
    assert controller.is_finished(6) is False
    assert wait_finished(controller, 6, 10)
    assert controller.status(6) == AS.STATUS_FINISHED
    assert controller.status(long_app.guid) == AS.STATUS_RUNNING
    controller.stop()
    assert controller.status(long_app.guid) == AS.STATUS_FINISHED
    controller.shutdown()


def test_start_and_stop_an_application_after_deployment(controllers, tmp_path):
    exp_desc, b = nx.make_p2p(command="ping -qc1 10.0.0.2")
    marker = tmp_path / "runs"
    again = nx.add_app(b["desc"], b["node2"], "echo run >> %s; sleep 1000" % marker,
                       traces=())
    controller = deploy(controllers, exp_desc)
    assert wait_until(lambda: marker.exists(), 5)
    assert controller.status(again.guid) == AS.STATUS_RUNNING
    with pytest.raises(RuntimeError, match="already running"):
        controller.action(again.guid, "start")
    controller.action(again.guid, "stop")
    assert controller.status(again.guid) == AS.STATUS_FINISHED
    controller.action(again.guid, "start")            # started again while deployed
    assert wait_until(lambda: marker.read_text().count("run") == 2, 5)
    assert controller.status(again.guid) == AS.STATUS_RUNNING
    with pytest.raises(ValueError, match="unknown action 'pause'"):
        controller.action(again.guid, "pause")
    with pytest.raises(RuntimeError, match="has no actions"):
        controller.action(2, "start")
    controller.stop()
    assert controller.status(again.guid) == AS.STATUS_FINISHED
    controller.shutdown()


# ---------------------------------------------------------------------------------------
# traces: pcap of a node and of an interface, read back with tcpdump
# ---------------------------------------------------------------------------------------

def icmp_counts(path):
    out = subprocess.run(["tcpdump", "-r", path, "-n"], capture_output=True,
                         text=True).stdout
    return out.count("ICMP echo request"), out.count("ICMP echo reply")


def test_pcap_traces_of_node_and_interface(controllers):
    """4.1 test 4 (test_node_pcap_trace), ported: the capture is valid and holds the 5
    echo requests and 5 replies; plus a pcap trace on the peer's interface."""
    need("tcpdump")
    exp_desc, b = nx.make_p2p(command="ping -qc5 -i0.2 10.0.0.2")
    b["node1"].enable_trace("pcap")
    b["iface2"].enable_trace("pcap")
    controller = deploy(controllers, exp_desc)
    assert "5 packets transmitted, 5 received" in finished_trace(controller, 6)
    root = root_of(controller)
    node_path = controller.trace(2, "pcap", "path")
    iface_path = controller.trace(5, "pcap", "path")
    assert node_path == os.path.join(root, "2-node.pcap")
    assert os.path.dirname(iface_path) == root and iface_path.endswith(".pcap")
    for path in (node_path, iface_path):
        assert wait_until(lambda: icmp_counts(path) == (5, 5), 5), \
            (path, icmp_counts(path))
    for guid, path in ((2, node_path), (5, iface_path)):
        value = controller.trace(guid, "pcap")
        assert isinstance(value, str)
        raw = base64.b64decode(value, validate=True)
        assert raw[:4] in PCAP_MAGICS
        with open(path, "rb") as f:
            assert f.read().startswith(raw)        # a snapshot of the file
    # the node capture is on all interfaces (cooked link type), the other on eth0 only
    assert "LINUX_SLL" in subprocess.run(["tcpdump", "-r", node_path, "-c", "1"],
                                         capture_output=True, text=True).stderr
    assert "EN10MB" in subprocess.run(["tcpdump", "-r", iface_path, "-c", "1"],
                                      capture_output=True, text=True).stderr
    shutdown(controller)


# ---------------------------------------------------------------------------------------
# bandwidth shaping (tbf) measured with iperf3, changed at runtime
# ---------------------------------------------------------------------------------------

IPERF_CLIENT = ("until iperf3 -c 10.0.0.2 -t 3 -J > first.json && grep -q sum_received "
                "first.json; do sleep 0.2; done; "
                "while [ ! -e go ]; do sleep 0.05; done; "
                "iperf3 -c 10.0.0.2 -t 3 -J > second.json")


def received_rate(path, timeout=20.0):
    """bits/s the iperf3 server received, from the client's JSON report."""
    def rate():
        try:
            with open(path) as f:
                return json.load(f)["end"]["sum_received"]["bits_per_second"]
        except (OSError, ValueError, KeyError):
            return None
    value = wait_until(rate, timeout, 0.1)
    assert value, "no iperf3 result in %s" % path
    return value


def test_bandwidth_shaping_measured_with_iperf3(controllers):
    need("iperf3")
    exp_desc, b = nx.make_p2p(command=IPERF_CLIENT)
    b["iface1"].set_attribute_value("bandwidth", 20.0)        # Mbit/s, egress of node 1
    nx.add_app(b["desc"], b["node2"], "exec iperf3 -s", traces=())
    controller = deploy(controllers, exp_desc)
    root = root_of(controller)                            # the applications' cwd
    ns = node_ns(controller, 2)
    first = received_rate(os.path.join(root, "first.json"))
    assert abs(first - 20e6) <= 0.15 * 20e6, "%.2f Mbit/s for 20" % (first / 1e6)
    assert controller.get(4, "bandwidth") == 20.0

    controller.set(4, "bandwidth", 5.0)
    assert controller.get(4, "bandwidth") == 5.0
    assert "rate 5Mbit" in nx.ns_exec(ns, "tc", "qdisc", "show", "dev", "eth0").stdout
    Path(root, "go").touch()
    second = received_rate(os.path.join(root, "second.json"))
    assert abs(second - 5e6) <= 0.15 * 5e6, "%.2f Mbit/s for 5" % (second / 1e6)

    controller.set(4, "bandwidth", 0.0)                        # 0: no shaping
    assert "tbf" not in nx.ns_exec(ns, "tc", "qdisc", "show", "dev", "eth0").stdout
    shutdown(controller)


# ---------------------------------------------------------------------------------------
# runtime get/set of interface attributes
# ---------------------------------------------------------------------------------------

def test_runtime_up_down(controllers):
    exp_desc, b = nx.make_p2p(command="true")
    controller = deploy(controllers, exp_desc)
    ns = node_ns(controller, 2)
    assert controller.get(4, "up") is True
    assert nx.ping_from(ns, "10.0.0.2")
    controller.set(4, "up", False)
    assert controller.get(4, "up") is False
    assert "state DOWN" in nx.ns_exec(ns, "ip", "-o", "link", "show", "eth0").stdout
    assert not nx.ping_from(ns, "10.0.0.2")
    controller.set(4, "up", True)
    assert controller.get(4, "up") is True
    assert wait_until(lambda: nx.ping_from(ns, "10.0.0.2"), 5)
    shutdown(controller)


def test_runtime_down_up_keeps_the_routes(controllers):
    exp_desc, b = nx.make_routed(command="true")
    controller = deploy(controllers, exp_desc)
    ns = node_ns(controller, 2)
    assert nx.ping_from(ns, "10.0.1.2")
    controller.set(5, "up", False)
    assert not nx.ping_from(ns, "10.0.1.2")
    controller.set(5, "up", True)
    try:
        assert wait_until(lambda: nx.ping_from(ns, "10.0.1.2"), 3), \
            nx.ns_exec(ns, "ip", "route").stdout
    finally:
        shutdown(controller)


def test_runtime_mtu(controllers):
    exp_desc, b = nx.make_p2p(command="true")
    b["iface2"].set_attribute_value("mtu", 1400)               # applied at deployment
    controller = deploy(controllers, exp_desc)
    ns1, ns2 = node_ns(controller, 2), node_ns(controller, 3)
    assert controller.get(5, "mtu") == 1400
    assert "mtu 1400 " in nx.ns_exec(ns2, "ip", "-o", "link", "show", "eth0").stdout
    assert controller.get(4, "mtu") == 1500
    controller.set(4, "mtu", 1400)
    assert controller.get(4, "mtu") == 1400
    assert "mtu 1400 " in nx.ns_exec(ns1, "ip", "-o", "link", "show", "eth0").stdout
    # 1372 + 28 bytes of headers = 1400 leaves unfragmented; one byte more cannot
    assert nx.ns_exec(ns1, "ping", "-c1", "-W1", "-M", "do", "-s", "1372",
                      "10.0.0.2").returncode == 0
    assert nx.ns_exec(ns1, "ping", "-c1", "-W1", "-M", "do", "-s", "1373",
                      "10.0.0.2").returncode != 0
    shutdown(controller)


# ---------------------------------------------------------------------------------------
# validation: no netem on this kernel
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["delay", "loss"])
def test_delay_and_loss_are_rejected_naming_netem(name):
    exp_desc, b = nx.make_p2p()
    with pytest.raises(Exception) as info:
        b["iface1"].set_attribute_value(name, 10)
    assert "netem" in str(info.value), str(info.value)
    b["iface1"].set_attribute_value(name, 0)                  # zero is fine
    b["iface1"].set_attribute_value("bandwidth", 10.0)        # shaping is the way
    # the same value arriving in an XML file is refused before anything is deployed
    xml = nx.make_p2p()[0].to_xml()
    up = '<attribute name="up" type="BOOL" value="True"/>'
    bad = xml.replace(up, up + '<attribute name="%s" type="DOUBLE" value="10.0"/>' % name,
                      1)
    assert bad != xml
    with pytest.raises(DesignError) as info:
        proxy.create_experiment_controller(bad, None)
    assert "netem" in str(info.value) and name in str(info.value), str(info.value)


# ---------------------------------------------------------------------------------------
# failures: nothing left behind; names: only ours are touched
# ---------------------------------------------------------------------------------------

def _bad_gateway(b):
    nx.add_route(b["node1"], "10.9.0.0", "10.99.0.1", 24)     # gateway not on any subnet
    return "configure", "Network is unreachable"


def _bad_device_name(b):
    # a valid Linux name (bad ones are refused before deployment) the node already has
    b["iface1"].set_attribute_value("name", "lo")
    return "connect_init", "File exists"        # links are made when connecting


@pytest.mark.parametrize("breaker", [_bad_gateway, _bad_device_name],
                         ids=["unreachable-gateway", "bad-device-name"])
def test_failure_mid_deployment_leaves_nothing_behind(controllers, netns_leftovers, breaker):
    exp_desc, b = nx.make_switched(command="sleep 1000")
    p2p = nx.make_p2p(exp_desc=exp_desc)[1]       # a second netns testbed, deployed fine
    phase, detail = breaker(p2p)
    controller = proxy.create_experiment_controller(exp_desc.to_xml(), None)
    controllers.append(controller)
    with pytest.raises(DeploymentError) as info:
        controller.start()
    message = str(info.value)
    assert "failed in %s" % phase in message and detail in message, message
    assert controller.status() == TS.STATUS_FAILED
    # rolled back by start() itself, before any shutdown() call: both testbeds drew a
    # token, and nothing named after either is left
    assert len(netns_leftovers.tokens) == 2
    left = netns_leftovers.wait_gone()
    assert not any(left.values()), left
    controller.shutdown()


def test_names_are_per_testbed_and_shutdown_removes_only_ours(controllers, tmp_path):
    """Namespaces nepi-<token>-<guid>, bridges nb<token><guid>, veths nv<token><guid>;
    shutdown and cleanup() of another root dir leave someone else's alone."""
    # this run's own decoys, of 5 characters: a length no testbed's token has
    tag = "d" + uuid.uuid4().hex[:4]
    decoys = {"ns": "nepi-%s-2" % tag, "veth": "nv%s4" % tag, "peer": "nv%s5" % tag,
              "bridge": "nb%s6" % tag}
    subprocess.run(["ip", "netns", "add", decoys["ns"]], check=True)
    try:
        subprocess.run(["ip", "link", "add", decoys["veth"], "type", "veth", "peer", "name",
                        decoys["peer"]], check=True)
        subprocess.run(["ip", "link", "add", decoys["bridge"], "type", "bridge"],
                       check=True)
        exp_desc, b = nx.make_switched()
        controller = deploy(controllers, exp_desc)
        root = root_of(controller)
        token = nx.testbed_token(root)
        assert token != tag
        ours = {"nepi-%s-2" % token, "nepi-%s-3" % token}
        assert ours <= nx.namespaces()
        bridge = "nb%s6" % token
        links = nx.links()
        assert {bridge, "nv%s4" % token, "nv%s5" % token} <= links
        enslaved = subprocess.run(["ip", "-o", "link", "show", "master", bridge],
                                  capture_output=True, text=True).stdout
        assert "nv%s4" % token in enslaved and "nv%s5" % token in enslaved
        # cleanup() of an unrelated root dir touches nothing
        netns_cleanup(str(tmp_path))
        assert ours <= nx.namespaces()
        assert finished_trace(controller, 7).startswith(nx.ping_prefix("10.0.0.2"))
        shutdown(controller)
        assert wait_until(lambda: not (ours & nx.namespaces())
                             and not any(n.startswith(("nb" + token, "nv" + token))
                                         for n in nx.links()), 5)
        assert decoys["ns"] in nx.namespaces()
        assert {decoys["veth"], decoys["peer"], decoys["bridge"]} <= nx.links()
    finally:
        for link in (decoys["veth"], decoys["bridge"]):
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        subprocess.run(["ip", "netns", "del", decoys["ns"]], capture_output=True)


def test_cleanup_of_a_root_dir_removes_its_leftovers(tmp_path):
    """A testbed controller that vanished without shutdown: cleanup(root_dir) removes its
    namespaces, links and processes (the hook behind ``nepid clean``)."""
    tc = proxy.build_testbed_controller("netns", "0.1")
    program_switch(tc, tmp_path, command="sleep 1000")
    tc.defer_add_trace(2, "pcap")
    deploy_programmed(tc)
    token = nx.testbed_token(tmp_path)
    ns = nx.ns_name(token, 2)
    assert any(cmd == "sleep 1000" for cmd in processes_in(ns).values())
    netns_cleanup(str(tmp_path))
    assert not {nx.ns_name(token, 2), nx.ns_name(token, 3)} & nx.namespaces()
    assert not os.path.exists(os.path.join(str(tmp_path), "netns-resources.json"))
    tc.shutdown()          # reaps its children; nothing else left to do


# ---------------------------------------------------------------------------------------
# recovery
# ---------------------------------------------------------------------------------------

def test_a_new_controller_reattaches_to_running_applications(tmp_path):
    """What a re-started testbed daemon does under the Recover policy: same programming,
    do_setup(), recover() -> same namespaces and the application still RUNNING."""
    first = proxy.build_testbed_controller("netns", "0.1")
    program_switch(first, tmp_path, command="sleep 1000")
    second = None
    try:
        deploy_programmed(first)
        assert first.status(7) == AS.STATUS_RUNNING
        token = nx.testbed_token(tmp_path)
        second = proxy.build_testbed_controller("netns", "0.1")   # "first" crashed
        program_switch(second, tmp_path, command="sleep 1000")
        second.do_setup()
        second.recover()
        assert nx.testbed_token(tmp_path) == token
        assert second.status() == TS.STATUS_STARTED
        assert second.get(4, "up") is True
        assert second.status(7) == AS.STATUS_RUNNING
        second.stop()
        assert second.status(7) == AS.STATUS_FINISHED
    finally:
        if second is not None:
            second.shutdown()
        first.shutdown()


def _recover_deployment(nepi_kit, tmp_path):
    """EC as nepid, the netns testbed as a daemon with the Recover policy; a ping that
    finishes (6) and a sleep that keeps running (7)."""
    exp_desc, b = nx.make_p2p()
    nx.add_app(b["desc"], b["node2"], "sleep 1000", traces=())
    nx.as_daemon(b["desc"], policy=DC.POLICY_RECOVER)
    controller = nepi_kit.create_ec(exp_desc.to_xml(), nepi_kit.ec_config(tmp_path,
                                                                           env_setup=""))
    controller.start()
    assert finished_trace(controller, 6).startswith(nx.ping_prefix("10.0.0.2"))
    assert controller.status(7) == AS.STATUS_RUNNING
    return controller


def _kill_testbed_daemon_and_wait(nepi_kit, tmp_path, controller):
    dead = nepi_kit.testbed_pid(tmp_path, 1)
    nepi_kit.kill9(dead)
    handled = nepi_kit.wait_until(
        lambda: controller.status(1) == TS.STATUS_FAILED or (
            nepi_kit.testbed_pid(tmp_path, 1) not in (None, dead)
            and controller.status(1) == TS.STATUS_STARTED), 10.0)
    assert handled, "the liveness watcher did not handle the dead testbed daemon"
    return dead


def test_recover_policy_reattaches_after_testbed_daemon_kill9(tmp_path, nepi_kit):
    controller = _recover_deployment(nepi_kit, tmp_path)
    try:
        tb_root = str(tmp_path / "testbeds" / "1")
        token = nx.testbed_token(tb_root)
        names = {nx.ns_name(token, 2), nx.ns_name(token, 3)}
        assert names <= nx.namespaces()
        dead = _kill_testbed_daemon_and_wait(nepi_kit, tmp_path, controller)
        assert controller.failed_testbeds() == {}
        assert nepi_kit.testbed_pid(tmp_path, 1) not in (None, dead)
        assert names <= nx.namespaces()                       # same names survived
        assert nx.testbed_token(tb_root) == token
        assert controller.status(6) == AS.STATUS_FINISHED
        assert controller.trace(6, "stdout").startswith(nx.ping_prefix("10.0.0.2"))
        assert controller.status(7) == AS.STATUS_RUNNING
        assert controller.get(4, "up") is True
        controller.stop()
        assert controller.status(7) == AS.STATUS_FINISHED
    finally:
        controller.stop()
        controller.shutdown()


def test_recover_policy_kill9_then_shutdown_leaves_nothing(tmp_path, nepi_kit):
    """Whatever the recovery achieves, stop/shutdown afterwards leave no namespace, link,
    process or daemon (checked by the autouse fixtures)."""
    controller = _recover_deployment(nepi_kit, tmp_path)
    try:
        _kill_testbed_daemon_and_wait(nepi_kit, tmp_path, controller)
    finally:
        controller.stop()
        controller.shutdown()
    assert nepi_kit.wait_until(lambda: not nepi_kit.processes(tmp_path), 5.0)
