#!/usr/bin/env python3
"""Ping across a simulated point-to-point link with the ns3 testbed (ns-3 3.44).

Two ns-3 nodes with an IPv4 stack, point-to-point devices with drop-tail queues on a
32768 bps channel, and a ping (NEPI 2's ns3::V4Ping) from 10.0.0.1 to 10.0.0.2 for ten
seconds of simulated time: NEPI 2's ns3 ping test. The design is built with the public
API and run by an in-process ExperimentController; the simulator itself runs in a private
testbed daemon (one ns-3 simulator per process; importing ns-3 takes ~10 s there).

    python examples/ns3_p2p_ping.py [--realtime] [--keep DIR]

Prints the ping's Rtt trace (simulation time and round-trip time of every reply) and the
receiving device's ascii trace lines for the last echo. Each RTT is ~41.99 ms: 84 bytes
of IP plus 2 of PPP take 20.996 ms per direction at 32768 bps.
"""

import argparse
import os
import sys
import time

from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.util import proxy
from nepi.util.constants import DeploymentConfiguration as DC

PROTOCOLS = ("ns3::Ipv4L3Protocol", "ns3::ArpL3Protocol", "ns3::Icmpv4L4Protocol",
             "ns3::UdpL4Protocol")


def build(realtime=False, seconds=10):
    """The design and the boxes worth looking at afterwards."""
    exp = ExperimentDescription()
    ns3 = exp.add_testbed_description(FactoriesProvider("ns3"))
    if realtime:
        ns3.set_attribute_value("SimulatorImplementationType", "ns3::RealtimeSimulatorImpl")

    def node():
        n = ns3.create("ns3::Node")
        for protocol in PROTOCOLS:
            n.connector("protos").connect(ns3.create(protocol).connector("node"))
        return n

    def device(n, address):
        dev = ns3.create("ns3::PointToPointNetDevice")
        n.connector("devs").connect(dev.connector("node"))
        dev.connector("queue").connect(ns3.create("ns3::DropTailQueue").connector("dev"))
        dev.enable_trace("P2PAsciiTrace")
        dev.enable_trace("P2PPcapTrace")
        addr = dev.add_address()
        addr.set_attribute_value("Address", address)
        addr.set_attribute_value("NetPrefix", 24)
        return dev

    node1, node2 = node(), node()
    dev1, dev2 = device(node1, "10.0.0.1"), device(node2, "10.0.0.2")
    channel = ns3.create("ns3::PointToPointChannel")
    channel.connector("dev2").connect(dev1.connector("chan"))
    channel.connector("dev2").connect(dev2.connector("chan"))

    ping = ns3.create("ns3::V4Ping")
    ping.set_attribute_value("label", "ping")
    ping.set_attribute_value("Remote", "10.0.0.2")
    ping.set_attribute_value("StartTime", "0s")
    ping.set_attribute_value("StopTime", "%ds" % seconds)
    ping.enable_trace("Rtt")
    node1.connector("apps").connect(ping.connector("node"))
    return exp, dict(ping=ping, dev1=dev1, dev2=dev2, channel=channel)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--realtime", action="store_true",
                        help="run in real time (RealtimeSimulatorImpl) instead of as fast "
                             "as possible")
    parser.add_argument("--keep", metavar="DIR",
                        help="root directory to keep (traces, execute.xml, logs)")
    args = parser.parse_args(argv)

    exp, boxes = build(realtime=args.realtime)
    access = None
    if args.keep:
        access = proxy.AccessConfiguration({DC.ROOT_DIRECTORY: os.path.abspath(args.keep)})
    started = time.monotonic()
    controller = proxy.create_experiment_controller(exp.to_xml(), access)
    try:
        controller.start()
        print("deployed in %.1f s (ns-3 imported in its own process)"
              % (time.monotonic() - started))
        ping = boxes["ping"].guid
        while not controller.is_finished(ping):
            time.sleep(0.1)
        print("\nRtt trace of the ping (guid %d): simulation time, round-trip time" % ping)
        print(controller.trace(ping, "Rtt"), end="")
        ascii_trace = controller.trace(boxes["dev2"].guid, "P2PAsciiTrace")
        last = [line for line in ascii_trace.splitlines()
                if "sequence=9," in line and line.startswith(("r ", "- "))]
        print("\nlast echo at 10.0.0.2 (%s):" % controller.trace(boxes["dev2"].guid,
                                                                "P2PAsciiTrace", "filename"))
        for line in last:
            print("  " + line)
        controller.stop()
        if args.keep:
            print("\ntraces kept in %s (pcap of 10.0.0.1: %s)"
                  % (os.path.abspath(args.keep),
                     controller.trace(boxes["dev1"].guid, "P2PPcapTrace", "filename")))
    finally:
        controller.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
