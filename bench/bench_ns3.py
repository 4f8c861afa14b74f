#!/usr/bin/env python3
"""ns3 testbed overhead: the same simulation run by nepi and by a hand-written ns-3 script.

Topology (both runs): n0 --p2p 5 Mbps, 2 ms-- n1 ==CSMA 100 Mbps== n2, n3, n4, static
routes, and a ping from n0 to n4 every 10 ms for SIM simulated seconds (default 300, i.e.
30 000 echoes), quiet, no per-packet traces.

* nepi: the design is built with the public API and run by an in-process
  ExperimentController; ns-3 runs in the testbed's private daemon. Timed from
  create_experiment_controller() until the controller reports the ping finished.
* hand-written: a plain ns-3 Python script with the usual helpers (InternetStackHelper,
  PointToPointHelper, CsmaHelper, Ipv4AddressHelper, PingHelper), timed from the end of
  its import to the end of Simulator::Run.

Importing the ns-3 bindings (~10 s) is excluded from both and printed separately: for nepi
it happens in the daemon, overlapping the experiment controller's own work, and the time
counted is from the end of that import (read from the daemon's log) to the end. Both runs
must report the same ping statistics. Target: nepi / hand-written <= 1.1.

nepi drives ns-3 through a small C++ shim (nepi/testbeds/ns3/shim.py): normally a library
compiled once with g++ and cached, else compiled by cling in every ns-3 process (about
1 s more). nepi is run both ways (the second with NEPI_NS3_SHIM=cling).

    python bench/bench_ns3.py [--sim SECONDS] [--keep DIR]
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ADDRESSES = {"p2p": ("10.1.1.1", "10.1.1.2"),
             "csma": ("10.1.2.1", "10.1.2.2", "10.1.2.3", "10.1.2.4")}
INTERVAL_MS = 10


# -- nepi ---------------------------------------------------------------------------------

def build_design(sim_seconds):
    from nepi.core.design import ExperimentDescription, FactoriesProvider
    exp = ExperimentDescription()
    tb = exp.add_testbed_description(FactoriesProvider("ns3"))

    def node():
        n = tb.create("ns3::Node")
        for p in ("ns3::Ipv4L3Protocol", "ns3::ArpL3Protocol", "ns3::Icmpv4L4Protocol",
                  "ns3::UdpL4Protocol"):
            n.connector("protos").connect(tb.create(p).connector("node"))
        return n

    def address(dev, a):
        addr = dev.add_address()
        addr.set_attribute_value("Address", a)

    def route(n, destination, nexthop):
        r = n.add_route()
        r.set_attribute_value("Destination", destination)
        r.set_attribute_value("NextHop", nexthop)

    nodes = [node() for _ in range(5)]
    chan = tb.create("ns3::PointToPointChannel")
    chan.set_attribute_value("Delay", "2ms")
    for n, a in zip(nodes[:2], ADDRESSES["p2p"]):
        dev = tb.create("ns3::PointToPointNetDevice")
        dev.set_attribute_value("DataRate", "5Mbps")
        n.connector("devs").connect(dev.connector("node"))
        dev.connector("queue").connect(tb.create("ns3::DropTailQueue").connector("dev"))
        chan.connector("dev2").connect(dev.connector("chan"))
        address(dev, a)
    bus = tb.create("ns3::CsmaChannel")
    bus.set_attribute_value("DataRate", "100Mbps")
    bus.set_attribute_value("Delay", "6560ns")
    for n, a in zip(nodes[1:], ADDRESSES["csma"]):
        dev = tb.create("ns3::CsmaNetDevice")
        n.connector("devs").connect(dev.connector("node"))
        dev.connector("chan").connect(bus.connector("devs"))
        address(dev, a)
    route(nodes[0], "10.1.2.0", "10.1.1.2")
    route(nodes[4], "10.1.1.0", "10.1.2.1")
    ping = tb.create("ns3::Ping")
    for name, value in (("Destination", "10.1.2.4"), ("Interval", "%dms" % INTERVAL_MS),
                        ("VerboseMode", "Quiet"), ("StartTime", "0s"),
                        ("StopTime", "%gs" % sim_seconds)):
        ping.set_attribute_value(name, value)
    nodes[0].connector("apps").connect(ping.connector("node"))
    return exp, ping.guid


def run_nepi(sim_seconds, root, shim=None):
    from nepi.util import proxy
    from nepi.util.constants import DeploymentConfiguration as DC
    exp, ping = build_design(sim_seconds)
    xml = exp.to_xml()
    access = proxy.AccessConfiguration({DC.ROOT_DIRECTORY: root})
    saved = os.environ.get("NEPI_NS3_SHIM")
    if shim:
        os.environ["NEPI_NS3_SHIM"] = shim       # inherited by the testbed daemon
    started = time.time()
    controller = proxy.create_experiment_controller(xml, access)
    try:
        controller.start()
        deployed = time.time()
        while not controller.is_finished(ping):
            time.sleep(0.01)
        finished = time.time()
        controller.stop()
    finally:
        controller.shutdown()
        if saved is None:
            os.environ.pop("NEPI_NS3_SHIM", None)
        else:
            os.environ["NEPI_NS3_SHIM"] = saved
    logs = glob.glob(os.path.join(root, "testbeds", "*", "ns3d-*", "logs", "*.log"))
    text = "".join(open(p, errors="replace").read() for p in logs)
    m = re.search(r"ns-3 bindings imported in ([\d.]+) s \(at ([\d.]+)\)", text)
    if not m:
        raise SystemExit("no import timing in the ns3 daemon log (%s)" % logs)
    imported, imported_at = float(m.group(1)), float(m.group(2))
    mode = re.search(r"ns-3 shim: (\w+)", text)
    return dict(total=finished - started, deploy=deployed - started, import_=imported,
                after_import=finished - imported_at, stats=ping_stats(text),
                shim=mode.group(1) if mode else "?")


def ping_stats(text):
    m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


# -- hand-written ns-3 --------------------------------------------------------------------

def handwritten(sim_seconds):
    """A plain ns-3 script (runs in a child process: one simulator per process)."""
    t0 = time.perf_counter()
    from ns import ns
    t1 = time.perf_counter()
    nodes = ns.NodeContainer()
    nodes.Create(5)
    ns.InternetStackHelper().Install(nodes)
    p2p = ns.PointToPointHelper()
    p2p.SetDeviceAttribute("DataRate", ns.StringValue("5Mbps"))
    p2p.SetChannelAttribute("Delay", ns.StringValue("2ms"))
    p2p_devices = p2p.Install(nodes.Get(0), nodes.Get(1))
    csma = ns.CsmaHelper()
    csma.SetChannelAttribute("DataRate", ns.StringValue("100Mbps"))
    csma.SetChannelAttribute("Delay", ns.StringValue("6560ns"))
    lan = ns.NodeContainer()
    for i in range(1, 5):
        lan.Add(nodes.Get(i))
    csma_devices = csma.Install(lan)
    addresses = ns.Ipv4AddressHelper()
    addresses.SetBase(ns.Ipv4Address("10.1.1.0"), ns.Ipv4Mask("255.255.255.0"))
    addresses.Assign(p2p_devices)
    addresses.SetBase(ns.Ipv4Address("10.1.2.0"), ns.Ipv4Mask("255.255.255.0"))
    addresses.Assign(csma_devices)
    routing = ns.Ipv4StaticRoutingHelper()
    routing.GetStaticRouting(nodes.Get(0).GetObject[ns.Ipv4]()).AddNetworkRouteTo(
        ns.Ipv4Address("10.1.2.0"), ns.Ipv4Mask("/24"), ns.Ipv4Address("10.1.1.2"), 1)
    routing.GetStaticRouting(nodes.Get(4).GetObject[ns.Ipv4]()).AddNetworkRouteTo(
        ns.Ipv4Address("10.1.1.0"), ns.Ipv4Mask("/24"), ns.Ipv4Address("10.1.2.1"), 1)
    ping = ns.PingHelper(ns.Ipv4Address("10.1.2.4").ConvertTo())
    ping.SetAttribute("Interval", ns.TimeValue(ns.MilliSeconds(INTERVAL_MS)))
    ping.SetAttribute("VerboseMode", ns.StringValue("Quiet"))
    apps = ping.Install(nodes.Get(0))
    apps.Start(ns.Seconds(0))
    apps.Stop(ns.Seconds(sim_seconds))
    t2 = time.perf_counter()
    ns.Simulator.Run()
    t3 = time.perf_counter()
    ns.Simulator.Destroy()
    sys.stdout.flush()
    return dict(import_=t1 - t0, build=t2 - t1, run=t3 - t2)


def run_handwritten(sim_seconds):
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--handwritten-child",
                           "--sim", str(sim_seconds)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit("hand-written ns-3 script failed:\n%s" % proc.stderr[-3000:])
    m = re.search(r"^TIMINGS (.*)$", proc.stdout, re.M)
    result = json.loads(m.group(1))
    result["stats"] = ping_stats(proc.stdout)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sim", type=float, default=300.0,
                        help="simulated seconds of pinging (default 300)")
    parser.add_argument("--keep", metavar="DIR", help="keep nepi's root directory here")
    parser.add_argument("--handwritten-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.handwritten_child:
        timings = handwritten(args.sim)
        print("TIMINGS " + json.dumps(timings), flush=True)
        return 0

    root = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="bench-ns3-")
    try:
        hand = run_handwritten(args.sim)
        nepi = run_nepi(args.sim, os.path.join(root, "library"))
        cling = run_nepi(args.sim, os.path.join(root, "cling"), shim="cling")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    hand_time = hand["build"] + hand["run"]
    print("ns3 bench: p2p + CSMA, 5 nodes, ping every %d ms for %g simulated s"
          % (INTERVAL_MS, args.sim))
    print("  ping statistics      hand-written %s   nepi %s (transmitted, received)"
          % (hand["stats"], nepi["stats"]))
    print("  ns-3 import          hand-written %6.2f s   nepi daemon %6.2f s   (excluded)"
          % (hand["import_"], nepi["import_"]))
    print("  hand-written ns-3    %6.2f s   (build %.2f s + run %.2f s)"
          % (hand_time, hand["build"], hand["run"]))
    for label, run in (("nepi", nepi), ("nepi, cling shim", cling)):
        print("  %-20s %6.2f s   (after the daemon's import; shim %s; %.2f s in all, "
              "deployed after %.2f s)" % (label, run["after_import"], run["shim"],
                                         run["total"], run["deploy"]))
    print("  ratio nepi / hand-written: %.2f (target <= 1.10); with the cling-compiled "
          "shim: %.2f" % (nepi["after_import"] / hand_time, cling["after_import"] / hand_time))
    if not hand["stats"] == nepi["stats"] == cling["stats"]:
        print("  WARNING: the two runs report different ping statistics")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
