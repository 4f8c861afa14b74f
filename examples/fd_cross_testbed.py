#!/usr/bin/env python3
"""NEPI 2's fd cross-testbed experiment: real packets between namespaces and ns-3.

    ns-3:  n1 --p2p 10.0.0.0/24-- n2 ==FdNetDevice 10.0.1.1==
    netns:                           == TAP 10.0.1.2 == n3 --p2p 10.0.2.0/24-- n4

n3's TAP file descriptor is handed to n2's FdNetDevice (Unix-socket fd passing between the
two testbed daemons); the simulator runs in real time with checksums so the kernel accepts
its packets. n4 pings the simulated n1; the RTT is dominated by the simulated 32768 bps
point-to-point link (~42 ms).

    sudo python examples/fd_cross_testbed.py [ROOT_DIR]   (default: ./run-output/fd-cross)
"""

import os
import shutil
import sys
import time

from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.proxy import AccessConfiguration, create_experiment_controller

from design_helpers import address, connect, netns_iface, ns3_device, ns3_node, route


def ns3_p2p(ns3, node, value):
    device = ns3_device(ns3, node, "ns3::PointToPointNetDevice", value)
    connect(device, "queue", ns3.create("ns3::DropTailQueue"), "dev")
    return device


def build(root: str):
    exp = ExperimentDescription()
    ns3 = exp.add_testbed_description(FactoriesProvider("ns3"))
    ns3.set_attribute_value("SimulatorImplementationType", "ns3::RealtimeSimulatorImpl")
    ns3.set_attribute_value("ChecksumEnabled", True)
    ns3.set_attribute_value(DC.ROOT_DIRECTORY, os.path.join(root, "testbeds", "ns3"))
    n1, n2 = ns3_node(ns3), ns3_node(ns3)
    channel = ns3.create("ns3::PointToPointChannel")
    connect(channel, "dev2", ns3_p2p(ns3, n1, "10.0.0.1"), "chan")
    connect(channel, "dev2", ns3_p2p(ns3, n2, "10.0.0.2"), "chan")
    fd = ns3.create("ns3::FdNetDevice")
    connect(n2, "devs", fd, "node")
    address(fd, "10.0.1.1")

    netns = exp.add_testbed_description(FactoriesProvider("netns"))
    netns.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
    netns.set_attribute_value(DC.ROOT_DIRECTORY, os.path.join(root, "testbeds", "netns"))
    n3, n4 = netns.create("Node"), netns.create("Node")
    tap = netns_iface(netns, n3, "TapNodeInterface", "10.0.1.2")
    connect(netns_iface(netns, n3, "P2PNodeInterface", "10.0.2.1"), "p2p",
            netns_iface(netns, n4, "P2PNodeInterface", "10.0.2.2"), "p2p")
    connect(fd, "->fd", tap, "fd->")                 # the cross-testbed link

    route(n1, "10.0.2.0", "10.0.0.2")
    route(n2, "10.0.2.0", "10.0.1.2")
    route(n3, "10.0.0.0", "10.0.1.1")
    route(n4, "10.0.0.0", "10.0.2.1")
    ping = netns.create("Application")
    ping.set_attribute_value("command", "ping -qc 3 10.0.0.1")
    ping.enable_trace("stdout")
    connect(ping, "node", n4, "apps")
    return exp, ping


def main(argv) -> int:
    if os.geteuid() != 0:
        print("this experiment builds network namespaces: run it as root", file=sys.stderr)
        return 1
    root = os.path.abspath(argv[1] if len(argv) > 1 else "run-output/fd-cross")
    shutil.rmtree(root, ignore_errors=True)
    exp, ping = build(root)
    exp.validate()
    config = AccessConfiguration()
    config.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
    config.set_attribute_value(DC.ROOT_DIRECTORY, root)
    print("deploying (the ns-3 testbed daemon imports ns-3 first: ~10 s)")
    controller = create_experiment_controller(exp.to_xml(), config)
    try:
        controller.start()
        deadline = time.time() + 60
        while not controller.is_finished(ping.guid):
            if time.time() > deadline:
                raise RuntimeError("the ping did not finish within 60 s")
            time.sleep(0.2)
        print(controller.trace(ping.guid, "stdout").strip())
        controller.stop()
    finally:
        controller.shutdown()
    print("traces and logs kept in %s" % root)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
