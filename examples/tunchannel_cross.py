#!/usr/bin/env python3
"""netns <-> ns-3 over a pair of TunChannels (UDP): real packets between namespaces and a
simulation, the way NEPI 2 joined testbeds that cannot share a file descriptor.

    ns-3:  n1 --p2p 10.0.0.0/24-- n2 ==FdNetDevice 10.0.1.1== ns3::Nepi::TunChannel
                                                                    || UDP 127.0.0.1
    netns:                     n4 --p2p 10.0.2.0/24-- n3 == TAP 10.0.1.2 == TunChannel

n2's FdNetDevice reads and writes Ethernet frames on one end of a socketpair; the ns3
TunChannel carries the other end's frames in UDP datagrams to the netns TunChannel, which
writes them to n3's TAP interface (and the way back). Each channel publishes its address
and port during the cross connection and connects to the other's; every frame is
authenticated and encrypted (AES-256-GCM) under a link key that the experiment controller
hands to both ends. The simulator runs
in real time with checksums so that the kernel accepts its packets. n4 pings the
simulated n1.

The experiment controller runs in this process (the ns-3 simulator in a private daemon:
one simulator per process, ~10 s to import).

    sudo python examples/tunchannel_cross.py [ROOT_DIR]   (default: ./run-output/tun-cross)
"""

import os
import shutil
import sys
import time

from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.proxy import AccessConfiguration, create_experiment_controller

from design_helpers import connect, netns_iface, ns3_device, ns3_node, route


def build(root: str, proto: str = "udp"):
    exp = ExperimentDescription()
    ns3 = exp.add_testbed_description(FactoriesProvider("ns3"))
    ns3.set_attribute_value("SimulatorImplementationType", "ns3::RealtimeSimulatorImpl")
    ns3.set_attribute_value("ChecksumEnabled", True)
    ns3.set_attribute_value(DC.ROOT_DIRECTORY, os.path.join(root, "testbeds", "ns3"))
    n1, n2 = ns3_node(ns3), ns3_node(ns3)
    channel = ns3.create("ns3::PointToPointChannel")
    channel.set_attribute_value("Delay", "2ms")
    for node, value in ((n1, "10.0.0.1"), (n2, "10.0.0.2")):
        device = ns3_device(ns3, node, "ns3::PointToPointNetDevice", value)
        device.set_attribute_value("DataRate", "10Mbps")
        connect(device, "queue", ns3.create("ns3::DropTailQueue"), "dev")
        connect(channel, "dev2", device, "chan")
    fd = ns3_device(ns3, n2, "ns3::FdNetDevice", "10.0.1.1")
    ns3_tunnel = ns3.create("ns3::Nepi::TunChannel")
    connect(ns3_tunnel, "fd->", fd, "->fd")

    netns = exp.add_testbed_description(FactoriesProvider("netns"))
    netns.set_attribute_value(DC.ROOT_DIRECTORY, os.path.join(root, "testbeds", "netns"))
    n3, n4 = netns.create("Node"), netns.create("Node")
    tap = netns_iface(netns, n3, "TapNodeInterface", "10.0.1.2")
    netns_tunnel = netns.create("TunChannel")
    connect(netns_tunnel, "->fd", tap, "fd->")
    connect(netns_iface(netns, n3, "P2PNodeInterface", "10.0.2.1"), "p2p",
            netns_iface(netns, n4, "P2PNodeInterface", "10.0.2.2"), "p2p")

    connect(ns3_tunnel, proto, netns_tunnel, proto)   # the cross-testbed link

    route(n1, "10.0.2.0", "10.0.0.2")
    route(n1, "10.0.1.0", "10.0.0.2")
    route(n2, "10.0.2.0", "10.0.1.2")
    route(n3, "10.0.0.0", "10.0.1.1")
    route(n4, "10.0.0.0", "10.0.2.1")
    ping = netns.create("Application")
    ping.set_attribute_value("command", "ping -n -c 5 -i 0.2 10.0.0.1")
    ping.enable_trace("stdout")
    connect(ping, "node", n4, "apps")
    return exp, ping, (ns3_tunnel, netns_tunnel)


def main(argv) -> int:
    if os.geteuid() != 0:
        print("this experiment builds network namespaces: run it as root", file=sys.stderr)
        return 1
    root = os.path.abspath(argv[1] if len(argv) > 1 else "run-output/tun-cross")
    shutil.rmtree(root, ignore_errors=True)
    exp, ping, tunnels = build(root)
    exp.validate()
    config = AccessConfiguration()
    config.set_attribute_value(DC.ROOT_DIRECTORY, root)
    print("deploying (the ns-3 testbed daemon imports ns-3 first: ~10 s)")
    controller = create_experiment_controller(exp.to_xml(), config)
    try:
        controller.start()
        for tunnel in tunnels:
            print("%s %d: %s %s:%s" % (controller.get_factory_id(tunnel.guid), tunnel.guid,
                                       controller.get(tunnel.guid, "tun_proto"),
                                       controller.get(tunnel.guid, "tun_addr"),
                                       controller.get(tunnel.guid, "tun_port")))
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
