#!/usr/bin/env python3
"""A routed three-node experiment on real Linux network namespaces, run through nepid.

    n1 --192.168.0.0/30-- n2 --192.168.1.0/30-- n3

n2 forwards; n1 and n3 have routes through it. n1 pings n3 and n3 pings n1; n1 captures
its traffic (pcap trace). The experiment controller runs as a daemon (nepid) in the root
directory, the netns testbed as its own testbed daemon; the script submits the design,
waits for both pings, prints their output and the capture, then shuts everything down.

    sudo python examples/netns_routing.py [ROOT_DIR]     (default: ./run-output/netns-routing)
"""

import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time

from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.proxy import AccessConfiguration, create_experiment_controller


def add_p2p_link(netns, node_a, node_b, address_a, address_b, prefix=30):
    ifaces = []
    for node, address in ((node_a, address_a), (node_b, address_b)):
        iface = netns.create("P2PNodeInterface")
        iface.set_attribute_value("up", True)
        node.connector("devs").connect(iface.connector("node"))
        addr = iface.add_address()
        addr.set_attribute_value("Address", address)
        addr.set_attribute_value("NetPrefix", prefix)
        ifaces.append(iface)
    ifaces[0].connector("p2p").connect(ifaces[1].connector("p2p"))
    return ifaces


def add_route(node, destination, prefix, nexthop):
    route = node.add_route()
    route.set_attribute_value("Destination", destination)
    route.set_attribute_value("NetPrefix", prefix)
    route.set_attribute_value("NextHop", nexthop)


def add_ping(netns, node, target, label):
    app = netns.create("Application")
    app.set_attribute_value("label", label)
    app.set_attribute_value("command", "ping -qc 3 %s" % target)
    app.enable_trace("stdout")
    app.connector("node").connect(node.connector("apps"))
    return app


def build(testbed_root: str):
    exp = ExperimentDescription()
    netns = exp.add_testbed_description(FactoriesProvider("netns"))
    netns.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)   # its own daemon
    netns.set_attribute_value(DC.ROOT_DIRECTORY, testbed_root)
    netns.set_attribute_value(DC.RECOVERY_POLICY, DC.POLICY_RECOVER)
    n1, n2, n3 = (netns.create("Node") for _ in range(3))
    for node, label in ((n1, "n1"), (n2, "n2"), (n3, "n3")):
        node.set_attribute_value("label", label)
    n1.enable_trace("pcap")
    add_p2p_link(netns, n1, n2, "192.168.0.1", "192.168.0.2")
    add_p2p_link(netns, n2, n3, "192.168.1.1", "192.168.1.2")
    add_route(n1, "192.168.1.0", 30, "192.168.0.2")
    add_route(n3, "192.168.0.0", 30, "192.168.1.1")
    ping13 = add_ping(netns, n1, "192.168.1.2", "ping-n1-n3")
    ping31 = add_ping(netns, n3, "192.168.0.1", "ping-n3-n1")
    return exp, n1, (ping13, ping31)


def main(argv) -> int:
    if os.geteuid() != 0:
        print("netns experiments need root: run with sudo", file=sys.stderr)
        return 1
    root = os.path.abspath(argv[1] if len(argv) > 1 else "run-output/netns-routing")
    if os.path.exists(os.path.join(root, "nepid.pid")):
        print("%s is in use by a nepid; choose another directory or `nepid stop` it" % root,
              file=sys.stderr)
        return 1
    shutil.rmtree(root, ignore_errors=True)
    exp, n1, pings = build(os.path.join(root, "testbeds", "netns"))
    exp.validate()

    config = AccessConfiguration()
    config.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)     # nepid
    config.set_attribute_value(DC.ROOT_DIRECTORY, root)
    controller = create_experiment_controller(exp.to_xml(), config)
    try:
        t0 = time.time()
        controller.start()
        print("deployed in %.2f s; nepid pid %s, root %s" % (time.time() - t0,
                                                            controller.pid, root))
        deadline = time.time() + 30
        while not all(controller.is_finished(app.guid) for app in pings):
            if time.time() > deadline:
                raise RuntimeError("pings did not finish within 30 s")
            time.sleep(0.2)
        for app in pings:
            print("--- %s ---" % app.get_attribute_value("label"))
            print(controller.trace(app.guid, "stdout").strip())
        pcap = base64.b64decode(controller.trace(n1.guid, "pcap"))
        with tempfile.NamedTemporaryFile(suffix=".pcap") as f:
            f.write(pcap)
            f.flush()
            summary = subprocess.run(["tcpdump", "-r", f.name, "-n", "icmp"],
                                     capture_output=True, text=True).stdout
        print("--- n1 capture: %d ICMP packets ---" % len(summary.splitlines()))
        print("\n".join(summary.splitlines()[:4]))
        controller.stop()
    finally:
        controller.shutdown()
    print("traces and logs kept in %s" % root)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
