"""The netns scenarios through daemons (reference/testbeds.md 4.2): NEPI 2's netns
integration variants -- daemonized testbed, daemonized experiment controller (nepid), both
-- for the P2P ping, the switched ping (4.2's design: default /24) and the routed ping;
TAP over TunChannels between two testbed daemons; and ``nepid clean``-style cleanup via
nepi.util.proxy.cleanup_testbed after kill -9 of every daemon.

After every test: no namespace, link or bridge of its netns testbeds, no process in their
namespaces (conftest's netns_leftovers), and no nepi daemon of the test's directories
(conftest's daemon_leftover_guard).

Needs root and /dev/net/tun (the module is skipped otherwise).
"""

import os

import pytest

from helpers import NETNS_MISSING, process_gone, processes_in, wait_finished, wait_until

if NETNS_MISSING:
    pytest.skip(NETNS_MISSING, allow_module_level=True)

from nepi.util import proxy  # noqa: E402
from nepi.util.constants import ApplicationStatus as AS  # noqa: E402
from nepi.util.constants import DeploymentConfiguration as DC  # noqa: E402
from nepi.util.constants import TestbedStatus as TS  # noqa: E402

import netns_experiments as nx  # noqa: E402

pytestmark = pytest.mark.usefixtures("netns_leftovers")

MODES = ["testbed-daemon", "ec-daemon", "both-daemons"]


SCENARIOS = {
    # name: (builder, application guid, ping destination)
    "p2p": (lambda: nx.make_p2p(), 6, "10.0.0.2"),
    "switch": (lambda: nx.make_switched(prefix=None), 7, "10.0.0.2"),
    "routed": (lambda: nx.make_routed(), 11, "10.0.1.2"),
}


def configure(nepi_kit, tmp_path, exp_desc, descs, mode):
    """Deployment of ``mode``; returns (access configuration, testbed root dirs)."""
    roots = {}
    if mode in ("testbed-daemon", "both-daemons"):
        for desc in descs:
            root = None
            if mode == "testbed-daemon":        # an explicit root next to the EC's
                root = tmp_path / ("tb%d" % desc.guid)
                root.mkdir()
            nx.as_daemon(desc, root=root)
            roots[desc.guid] = str(root) if root else str(tmp_path / "testbeds" /
                                                           str(desc.guid))
    else:
        for desc in descs:
            roots[desc.guid] = str(tmp_path / "testbeds" / str(desc.guid))
    if mode == "testbed-daemon":
        config = proxy.AccessConfiguration()
        config.set_attribute_value(DC.ROOT_DIRECTORY, str(tmp_path))
    else:
        config = nepi_kit.ec_config(tmp_path, env_setup="")
    return config, roots


def check_processes(nepi_kit, tmp_path, controller, mode, testbeds):
    """Exactly the daemons the mode asks for are running."""
    entries = nepi_kit.manifest(tmp_path).get("daemons", {})
    expected = set()
    if mode != "testbed-daemon":
        expected.add(controller.pid)
        assert controller.pid != os.getpid()
    if mode != "ec-daemon":
        for guid in testbeds:
            entry = entries["testbed-%d" % guid]
            assert entry["testbed_id"] == "netns" and entry["role"] == "testbed"
            expected.add(entry["pid"])
    else:
        assert not [k for k in entries if k.startswith("testbed-")]
    assert {p.pid for p in nepi_kit.processes(tmp_path)} == expected


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenario_through_daemons(tmp_path, nepi_kit, scenario, mode):
    build, app, dst = SCENARIOS[scenario]
    exp_desc, b = build()
    config, roots = configure(nepi_kit, tmp_path, exp_desc, [b["desc"]], mode)
    controller = nepi_kit.create_ec(exp_desc.to_xml(), config)
    controller.start()
    assert wait_finished(controller, app, 20)
    assert controller.status(app) == AS.STATUS_FINISHED
    assert controller.trace(app, "stdout").startswith(nx.ping_prefix(dst))
    assert controller.trace(app, "stdout", "path") == os.path.join(roots[1],
                                                                    "%d-stdout.trace" % app)
    assert controller.status(1) == TS.STATUS_STARTED
    assert controller.get_testbed_id(2) == "netns"
    check_processes(nepi_kit, tmp_path, controller, mode, [1])
    # the namespaces are named after the testbed's token, kept in its root dir
    token = nx.testbed_token(roots[1])
    assert nx.ns_name(token, 2) in nx.namespaces()
    controller.stop()
    controller.shutdown()
    nepi_kit.assert_nothing_left(tmp_path)


@pytest.mark.parametrize("mode", ["testbed-daemon", "both-daemons"])
def test_tap_over_udp_tunchannel_between_two_testbed_daemons(tmp_path, nepi_kit, mode):
    """The TunChannel cross connection with each netns testbed in its own daemon: the
    channel's address, port and key cross two daemons (and the EC daemon)."""
    exp_desc, b = nx.make_tunnel("TapNodeInterface", "udp")
    config, roots = configure(nepi_kit, tmp_path, exp_desc, [b["desc_a"], b["desc_b"]],
                              mode)
    controller = nepi_kit.create_ec(exp_desc.to_xml(), config)
    controller.start()
    assert wait_finished(controller, 5, 20)
    assert controller.trace(5, "stdout").startswith(nx.ping_prefix("10.0.1.2"))
    check_processes(nepi_kit, tmp_path, controller, mode, [1, 6])
    assert controller.get(4, "tun_proto") == controller.get(9, "tun_proto") == "udp"
    ports = controller.get(4, "tun_port"), controller.get(9, "tun_port")
    assert all(isinstance(p, int) and p > 0 for p in ports) and ports[0] != ports[1]
    controller.stop()
    controller.shutdown()
    nepi_kit.assert_nothing_left(tmp_path)


def test_runtime_set_through_both_daemons(tmp_path, nepi_kit):
    """Runtime up/mtu/bandwidth travel EC daemon -> testbed daemon -> kernel."""
    exp_desc, b = nx.make_p2p(command="true")
    config, roots = configure(nepi_kit, tmp_path, exp_desc, [b["desc"]], "both-daemons")
    controller = nepi_kit.create_ec(exp_desc.to_xml(), config)
    controller.start()
    ns = nx.ns_name(nx.testbed_token(roots[1]), 2)
    assert nx.ping_from(ns, "10.0.0.2")
    controller.set(4, "up", False)
    assert controller.get(4, "up") is False
    assert not nx.ping_from(ns, "10.0.0.2")
    controller.set(4, "up", True)
    assert wait_until(lambda: nx.ping_from(ns, "10.0.0.2"), 5)
    controller.set(4, "mtu", 1400)
    assert controller.get(4, "mtu") == 1400
    controller.set(4, "bandwidth", 3.0)
    assert "rate 3Mbit" in nx.ns_exec(ns, "tc", "qdisc", "show", "dev", "eth0").stdout
    controller.stop()
    controller.shutdown()
    nepi_kit.assert_nothing_left(tmp_path)


def test_cleanup_testbed_after_kill9_of_every_daemon(tmp_path, nepi_kit):
    """kill -9 of the EC daemon and the testbed daemon leaves namespaces, links and
    processes (applications, tcpdump) behind; proxy.cleanup_testbed('netns', root) --
    what ``nepid clean`` runs per testbed -- removes all of them."""
    exp_desc, b = nx.make_routed(command="ping -qc1 10.0.1.2; sleep 1000")
    nx.add_app(b["desc"], b["node3"], "sleep 1000", traces=())
    b["node2"].enable_trace("pcap")
    config, roots = configure(nepi_kit, tmp_path, exp_desc, [b["desc"]], "both-daemons")
    controller = nepi_kit.create_ec(exp_desc.to_xml(), config)
    controller.start()
    token = nx.testbed_token(roots[1])
    names = {nx.ns_name(token, guid) for guid in (2, 3, 4)}
    assert names <= nx.namespaces()
    assert wait_until(lambda: controller.trace(11, "stdout").startswith(
        nx.ping_prefix("10.0.1.2")), 10)
    inside = {ns: processes_in(ns) for ns in names}
    assert any("tcpdump" in cmd for cmd in inside[nx.ns_name(token, 3)].values())
    assert any(cmd == "sleep 1000" for cmd in inside[nx.ns_name(token, 4)].values())

    nepi_kit.kill9(nepi_kit.testbed_pid(tmp_path, 1))
    nepi_kit.kill9(controller.pid)
    # nobody is left to shut the experiment down: everything is still there
    assert names <= nx.namespaces()
    assert any(n.startswith("nb" + token) for n in nx.links())

    proxy.cleanup_testbed("netns", roots[1])
    assert wait_until(lambda: not (names & nx.namespaces()), 5)
    assert wait_until(lambda: not any(n.startswith(("nb" + token, "nv" + token))
                                         for n in nx.links()), 5)
    for procs in inside.values():
        for pid in procs:
            assert wait_until(lambda: process_gone(pid), 5), pid
    # running it again (or on a root dir that has nothing) is harmless
    proxy.cleanup_testbed("netns", roots[1])
    proxy.cleanup_testbed("netns", str(tmp_path / "nothing-here"))
