"""Design builders for the netns tests and the scale benchmark (NEPI 2's netns tests and
examples, reference/testbeds.md 4.1, 4.2, 4.6).

A plain module, not a test file (like mock_experiments): test files ``import
netns_experiments``; bench/bench_netns_scale.py puts tests/ on sys.path.

Each ``make_*`` function builds a complete ExperimentDescription and returns it with a
dict of the boxes by role (``exp_desc, boxes``). Guids follow creation order, one
generator per ExperimentDescription, and the builders create boxes in the order NEPI 2's
tests did, so the guids are NEPI 2's:

    p2p (4.1 test 2):      desc 1, node1 2, node2 3, iface1 4, iface2 5, app 6
    switch (4.1 test 1):   desc 1, node1 2, node2 3, iface1 4, iface2 5, switch 6, app 7
    routing (4.1 test 3):  desc 1, nodes 2 3 4, ifaces 5 6 7 8, switches 9 10, app 11
"""

import json
import os
import subprocess

import psutil

from helpers import NAMESPACE_RE, RESOURCES_FILE, links, namespaces, remove_netns, wait_until
from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.util.constants import DeploymentConfiguration as DC

TESTBED_ID = "netns"

# NEPI 2's expected ping output prefix (4.1), checked with startswith; it stops before the
# elapsed time, which is "0ms" on a quiet machine and "1ms" or more under load.
PING_PREFIX = ("PING {dst} ({dst}) 56(84) bytes of data.\n"
               "\n"
               "--- {dst} ping statistics ---\n"
               "1 packets transmitted, 1 received, 0% packet loss, time ")


def ping_prefix(dst):
    return PING_PREFIX.format(dst=dst)


# -- small building blocks ------------------------------------------------------------

def add_testbed(exp_desc, **attributes):
    desc = exp_desc.add_testbed_description(FactoriesProvider(TESTBED_ID))
    for name, value in attributes.items():
        desc.set_attribute_value(name, value)
    return desc


def add_node(desc, **attributes):
    node = desc.create("Node")
    for name, value in attributes.items():
        node.set_attribute_value(name, value)
    return node


def add_iface(desc, node, address=None, prefix=None, factory="NodeInterface", up=True,
              **attributes):
    """An interface on ``node`` (``up`` set explicitly, as every NEPI 2 test did)."""
    iface = desc.create(factory)
    if up is not None:
        iface.set_attribute_value("up", up)
    for name, value in attributes.items():
        iface.set_attribute_value(name, value)
    node.connector("devs").connect(iface.connector("node"))
    if address is not None:
        addr = iface.add_address()
        addr.set_attribute_value("Address", address)
        if prefix is not None:
            addr.set_attribute_value("NetPrefix", prefix)
    return iface


def add_switch(desc, *ifaces, up=True):
    switch = desc.create("Switch")
    if up is not None:
        switch.set_attribute_value("up", up)
    for iface in ifaces:
        switch.connector("devs").connect(iface.connector("switch"))
    return switch


def link_p2p(iface1, iface2):
    iface1.connector("p2p").connect(iface2.connector("p2p"))


def add_app(desc, node, command, traces=("stdout",), **attributes):
    app = desc.create("Application")
    app.set_attribute_value("command", command)
    for name, value in attributes.items():
        app.set_attribute_value(name, value)
    for trace in traces:
        app.enable_trace(trace)
    app.connector("node").connect(node.connector("apps"))
    return app


def add_route(node, destination, nexthop, prefix=None):
    route = node.add_route()
    route.set_attribute_value("Destination", destination)
    route.set_attribute_value("NextHop", nexthop)
    if prefix is not None:
        route.set_attribute_value("NetPrefix", prefix)
    return route


def as_daemon(desc, root=None, policy=None, env_setup=None):
    """Run a testbed description as a testbed daemon."""
    desc.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
    if root is not None:
        desc.set_attribute_value(DC.ROOT_DIRECTORY, str(root))
    if policy is not None:
        desc.set_attribute_value(DC.RECOVERY_POLICY, policy)
    if env_setup is not None:
        desc.set_attribute_value(DC.DEPLOYMENT_ENVIRONMENT_SETUP, env_setup)
    return desc


# -- NEPI 2 scenarios -----------------------------------------------------------------

def make_p2p(command="ping -qc1 10.0.0.2", traces=("stdout",), exp_desc=None, **app_attrs):
    """4.1 test 2 (test_run_ping_p2pif): two nodes, P2P interfaces 10.0.0.1/24 and
    10.0.0.2/24, an application on node 1."""
    exp_desc = exp_desc or ExperimentDescription()
    desc = add_testbed(exp_desc)
    node1 = add_node(desc)
    node2 = add_node(desc)
    iface1 = add_iface(desc, node1, "10.0.0.1", 24, factory="P2PNodeInterface")
    iface2 = add_iface(desc, node2, "10.0.0.2", 24, factory="P2PNodeInterface")
    link_p2p(iface1, iface2)
    app = add_app(desc, node1, command, traces, **app_attrs)
    return exp_desc, dict(desc=desc, node1=node1, node2=node2, iface1=iface1,
                          iface2=iface2, app=app)


def make_switched(command="ping -qc1 10.0.0.2", prefix=24):
    """4.1 test 1 (test_run_ping_if) and the 4.2 integration design: two nodes with
    NodeInterfaces 10.0.0.1 and 10.0.0.2 on a Switch, ping from node 1.
    ``prefix=None`` leaves the NetPrefix at its default (/24), as 4.2 did."""
    exp_desc = ExperimentDescription()
    desc = add_testbed(exp_desc)
    node1 = add_node(desc)
    node2 = add_node(desc)
    iface1 = add_iface(desc, node1, "10.0.0.1", prefix)
    iface2 = add_iface(desc, node2, "10.0.0.2", prefix)
    switch = add_switch(desc, iface1, iface2)
    app = add_app(desc, node1, command)
    return exp_desc, dict(desc=desc, node1=node1, node2=node2, iface1=iface1,
                          iface2=iface2, switch=switch, app=app)


def make_routed(command="ping -qc1 10.0.1.2"):
    """4.1 test 3 (test_run_ping_routing): nodes 2, 3, 4; NodeInterfaces 5 (node 2,
    10.0.0.1/24), 6 (node 3, 10.0.0.2/24), 7 (node 3, 10.0.1.1/24), 8 (node 4,
    10.0.1.2/24); Switch 9 joins 5+6, Switch 10 joins 7+8; routes node 2 10.0.1.0/24 via
    10.0.0.2 and node 4 10.0.0.0/24 via 10.0.1.1; Application 11 on node 2."""
    exp_desc = ExperimentDescription()
    desc = add_testbed(exp_desc)
    node1, node2, node3 = add_node(desc), add_node(desc), add_node(desc)
    iface1 = add_iface(desc, node1, "10.0.0.1", 24)
    iface2 = add_iface(desc, node2, "10.0.0.2", 24)
    iface3 = add_iface(desc, node2, "10.0.1.1", 24)
    iface4 = add_iface(desc, node3, "10.0.1.2", 24)
    switch1 = add_switch(desc, iface1, iface2)
    switch2 = add_switch(desc, iface3, iface4)
    add_route(node1, "10.0.1.0", "10.0.0.2", 24)
    add_route(node3, "10.0.0.0", "10.0.1.1", 24)
    app = add_app(desc, node1, command)
    return exp_desc, dict(desc=desc, node1=node1, node2=node2, node3=node3, iface1=iface1,
                          iface2=iface2, iface3=iface3, iface4=iface4, switch1=switch1,
                          switch2=switch2, app=app)


def make_routing_example():
    """4.6 example 3 (examples/netns_routing_experiment.py): three nodes in line with P2P
    interfaces 192.168.0.1/30 <-> 192.168.0.2/30 and 192.168.1.1/30 <-> 192.168.1.2/30;
    routes n1 -> 192.168.1.0/30 via 192.168.0.2, n3 -> 192.168.0.0/30 via 192.168.1.1;
    ``ping -qc 3`` from each end to the other."""
    exp_desc = ExperimentDescription()
    desc = add_testbed(exp_desc)
    node1, node2, node3 = add_node(desc), add_node(desc), add_node(desc)
    iface12 = add_iface(desc, node1, "192.168.0.1", 30, factory="P2PNodeInterface")
    iface21 = add_iface(desc, node2, "192.168.0.2", 30, factory="P2PNodeInterface")
    link_p2p(iface12, iface21)
    iface23 = add_iface(desc, node2, "192.168.1.1", 30, factory="P2PNodeInterface")
    iface32 = add_iface(desc, node3, "192.168.1.2", 30, factory="P2PNodeInterface")
    link_p2p(iface23, iface32)
    add_route(node1, "192.168.1.0", "192.168.0.2", 30)
    add_route(node3, "192.168.0.0", "192.168.1.1", 30)
    app1 = add_app(desc, node1, "ping -qc 3 192.168.1.2")
    app3 = add_app(desc, node3, "ping -qc 3 192.168.0.1")
    return exp_desc, dict(desc=desc, node1=node1, node2=node2, node3=node3, app1=app1,
                          app3=app3)


def make_tunnel(device="TapNodeInterface", proto="udp", command="ping -qc1 10.0.1.2"):
    """4.6 example 2 made local: TWO netns testbeds, each a node with a TAP (or TUN)
    interface fed by a TunChannel; the two TunChannels are cross-connected over
    ``proto``. Node A 10.0.1.1/24 pings node B 10.0.1.2/24 through the channel.

    Guids: testbed A 1, node 2, device 3, channel 4, app 5; testbed B 6, node 7,
    device 8, channel 9."""
    exp_desc = ExperimentDescription()
    desc_a = add_testbed(exp_desc)
    node_a = add_node(desc_a)
    dev_a = add_iface(desc_a, node_a, "10.0.1.1", 24, factory=device)
    chan_a = desc_a.create("TunChannel")
    chan_a.connector("->fd").connect(dev_a.connector("fd->"))
    app = add_app(desc_a, node_a, command)
    desc_b = add_testbed(exp_desc)
    node_b = add_node(desc_b)
    dev_b = add_iface(desc_b, node_b, "10.0.1.2", 24, factory=device)
    chan_b = desc_b.create("TunChannel")
    chan_b.connector("->fd").connect(dev_b.connector("fd->"))
    chan_a.connector(proto).connect(chan_b.connector(proto))
    return exp_desc, dict(desc_a=desc_a, node_a=node_a, dev_a=dev_a, chan_a=chan_a,
                          app=app, desc_b=desc_b, node_b=node_b, dev_b=dev_b,
                          chan_b=chan_b)


def make_star(n, address_base="10.{hi}.{lo}.1", prefix=8):
    """The scale benchmark's star: ``n`` nodes, each with one NodeInterface (one address)
    on a single Switch. Node k (1-based) gets 10.<k // 250>.<k % 250>.1/8."""
    exp_desc = ExperimentDescription()
    desc = add_testbed(exp_desc)
    nodes, ifaces = [], []
    for k in range(1, n + 1):
        node = add_node(desc)
        iface = add_iface(desc, node, address_base.format(hi=k // 250, lo=k % 250),
                          prefix)
        nodes.append(node)
        ifaces.append(iface)
    switch = add_switch(desc, *ifaces)
    return exp_desc, dict(desc=desc, nodes=nodes, ifaces=ifaces, switch=switch)


# -- the host's state, for bench/bench_netns_scale.py only -------------------------------
# The benchmark runs alone and compares the whole host before and after. Tests must not:
# they check their own resources by token (conftest's netns_leftovers fixture).

def processes_in_other_namespaces():
    """pid -> command line of every live (non-zombie) process whose network namespace is
    not this process's (the root namespace)."""
    own = os.stat("/proc/self/ns/net").st_ino
    found = {}
    for proc in psutil.process_iter(["pid", "status", "cmdline"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and \
                    os.stat("/proc/%d/ns/net" % proc.pid).st_ino != own:
                found[proc.pid] = " ".join(proc.info["cmdline"] or [])
        except (OSError, psutil.Error):
            continue
    return found


def host_state():
    return {"namespaces": namespaces(), "links": links(),
            "processes": processes_in_other_namespaces()}


def wait_nothing_new(before, timeout=5.0):
    """What exists now and did not in ``before`` (polled until nothing is new or
    ``timeout`` passes; all lists empty when clean)."""
    def new_since():
        now = host_state()
        return {"namespaces": sorted(now["namespaces"] - before["namespaces"]),
                "links": sorted(now["links"] - before["links"]),
                "processes": sorted("%d %s" % (pid, cmd)
                                    for pid, cmd in now["processes"].items()
                                    if pid not in before["processes"])}
    wait_until(lambda: not any(new_since().values()), timeout, 0.05)
    return new_since()


def remove_leftovers(left):
    """Remove what ``wait_nothing_new`` found (nepi namespaces by token, processes)."""
    remove_netns({m.group(1) for m in map(NAMESPACE_RE.match, left.get("namespaces", []))
                  if m}, left.get("processes", []))


# -- names of a running netns testbed ---------------------------------------------------

def testbed_token(root_dir):
    """The per-testbed token the netns testbed keeps in its root dir."""
    with open(os.path.join(str(root_dir), RESOURCES_FILE)) as f:
        return json.load(f)["token"]


def ns_name(token, node_guid):
    return "nepi-%s-%d" % (token, node_guid)


def ns_exec(ns, *command, timeout=20):
    """Run ``command`` inside named namespace ``ns`` (``ip netns exec``)."""
    return subprocess.run(["ip", "netns", "exec", ns] + list(command), capture_output=True,
                          text=True, timeout=timeout)


def ping_from(ns, dst, count=1, wait=1):
    """True if ``ping -c count -W wait dst`` from namespace ``ns`` gets replies."""
    return ns_exec(ns, "ping", "-n", "-c", str(count), "-W", str(wait), dst).returncode == 0
