#!/usr/bin/env python3
"""ns3 testbed overhead: the same simulation run by nepi and by a hand-written ns-3 script.

Topology (both runs): n0 --p2p 5 Mbps, 2 ms-- n1 ==CSMA 100 Mbps== n2, n3, n4, static
routes, and a ping from n0 to n4 every 10 ms for SIM simulated seconds (default 300, i.e.
30 000 echoes), quiet, no per-packet traces.

Each run is a process of its own, timed from its start (once the interpreter is up) until
it has exited -- everything its user waits for -- minus the import of the ns-3 Python
bindings, which takes ~10 s and is excluded from both (printed apart):

* hand-written: a plain ns-3 Python script with the usual helpers (InternetStackHelper,
  PointToPointHelper, CsmaHelper, Ipv4AddressHelper, PingHelper) building the network
  the nepi design describes: IPv4 only, devices without flow control (hence without
  queue discs), as nepi's protocol boxes and devices are, so that both simulate the same
  events. Counted: building, Simulator::Run, Simulator::Destroy, exiting.
* nepi: the design built with the public API and run by an in-process
  ExperimentController; ns-3 runs in the testbed's private daemon. Counted: importing
  nepi, building the design, deploying (daemon launch included), running until the
  controller reports the ping finished, stop, shutdown (it returns once the daemon has
  exited), exiting. nepi drives ns-3 through a C++ shim (nepi/testbeds/ns3/shim.py): a
  library compiled once with g++ and cached, loaded with ctypes -- the bindings are not
  imported at all -- else compiled by cling after importing the bindings (that import is
  then the part not counted). nepi is run both ways (cling once: NEPI_NS3_SHIM=cling).

Both runs must report the same ping statistics. The machine's load adds noise, always as
extra time, so each side runs --repeat times, alternately, and the best of each is
compared. Target: nepi / hand-written <= 1.1.

    python bench/bench_ns3.py [--sim SECONDS] [--repeat N] [--keep DIR]
"""

import time

STARTED = time.monotonic()      # a run's clock starts here, with its process

import argparse  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from typing import Optional  # noqa: E402

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


def nepi_run(sim_seconds: float, root: str) -> dict:
    """One nepi run, in a child process: what its user waits for, stop and shutdown
    included."""
    from nepi.util import proxy
    from nepi.util.constants import DeploymentConfiguration as DC
    exp, ping = build_design(sim_seconds)
    access = proxy.AccessConfiguration({DC.ROOT_DIRECTORY: root})
    controller = proxy.create_experiment_controller(exp.to_xml(), access)
    try:
        controller.start()
        deployed = time.monotonic()
        while not controller.is_finished(ping):
            time.sleep(0.01)
        finished = time.monotonic()
        controller.stop()
    finally:
        controller.shutdown()
    shut_down = time.monotonic()
    logs = glob.glob(os.path.join(root, "testbeds", "*", "ns3d-*", "logs", "*.log"))
    text = "".join(open(p, errors="replace").read() for p in logs)
    mode = re.search(r"ns-3 shim: (\w+)", text)
    if not mode:
        raise SystemExit("the ns3 daemon log says nothing of its shim (%s)" % logs)
    imported = re.search(r"ns-3 bindings imported in ([\d.]+) s", text)
    return dict(import_=float(imported.group(1)) if imported else 0.0, shim=mode.group(1),
                deployed=deployed - STARTED, finished=finished - STARTED,
                shut_down=shut_down - STARTED, stats=ping_stats(text))


def ping_stats(text: str) -> Optional[tuple]:
    m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


# -- hand-written ns-3 --------------------------------------------------------------------

def handwritten(sim_seconds: float) -> dict:
    """A plain ns-3 script (a child process: one simulator per process)."""
    t0 = time.monotonic()
    from ns import ns
    t1 = time.monotonic()
    nodes = ns.NodeContainer()
    nodes.Create(5)
    stack = ns.InternetStackHelper()
    stack.SetIpv6StackInstall(False)             # the design has IPv4 only
    stack.Install(nodes)
    p2p = ns.PointToPointHelper()
    p2p.SetDeviceAttribute("DataRate", ns.StringValue("5Mbps"))
    p2p.SetChannelAttribute("Delay", ns.StringValue("2ms"))
    p2p.DisableFlowControl()                     # as nepi's devices: no queue discs
    p2p_devices = p2p.Install(nodes.Get(0), nodes.Get(1))
    csma = ns.CsmaHelper()
    csma.SetChannelAttribute("DataRate", ns.StringValue("100Mbps"))
    csma.SetChannelAttribute("Delay", ns.StringValue("6560ns"))
    csma.DisableFlowControl()
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
    t2 = time.monotonic()
    ns.Simulator.Run()
    t3 = time.monotonic()
    ns.Simulator.Destroy()                       # prints the ping statistics
    sys.stdout.flush()
    return dict(import_=t1 - t0, build=t2 - t1, run=t3 - t2,
                destroyed=time.monotonic() - STARTED)


# -- the runs -----------------------------------------------------------------------------

def child(kind: str, sim_seconds: float, root: Optional[str] = None,
          shim: Optional[str] = None) -> dict:
    """Run one side in a process of its own; its timings, and ``cost``: from its start to
    its exit, less the bindings import."""
    env = dict(os.environ)
    env.pop("NEPI_NS3_SHIM", None)
    if shim:
        env["NEPI_NS3_SHIM"] = shim              # inherited by the testbed daemon
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind,
           "--sim", str(sim_seconds)]
    if root:
        cmd += ["--root", root]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    exited = time.monotonic()
    if proc.returncode != 0:
        raise SystemExit("the %s run failed:\n%s" % (kind, proc.stderr[-3000:]))
    result = json.loads(re.search(r"^TIMINGS (.*)$", proc.stdout, re.M).group(1))
    if result.get("stats") is None:
        result["stats"] = ping_stats(proc.stdout)
    result["stats"] = tuple(result["stats"] or ())
    result["total"] = exited - result.pop("started")   # its STARTED: what its user waits for
    result["cost"] = result["total"] - result["import_"]
    return result


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sim", type=float, default=300.0,
                        help="simulated seconds of pinging (default 300)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs of each side; the best counts (default 5)")
    parser.add_argument("--keep", metavar="DIR", help="keep nepi's root directories here")
    parser.add_argument("--child", choices=("hand", "nepi"), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = (handwritten(args.sim) if args.child == "hand"
                  else nepi_run(args.sim, args.root))
        result["started"] = STARTED
        print("TIMINGS " + json.dumps(result), flush=True)
        return 0

    root = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="bench-ns3-")
    hands, nepis = [], []
    try:
        for i in range(args.repeat):
            hands.append(child("hand", args.sim))
            nepis.append(child("nepi", args.sim, os.path.join(root, "library-%d" % i)))
        cling = child("nepi", args.sim, os.path.join(root, "cling"), shim="cling")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    hand = min(hands, key=lambda r: r["cost"])
    nepi = min(nepis, key=lambda r: r["cost"])

    def costs(runs):
        return " ".join("%.2f" % r["cost"] for r in runs)

    print("ns3 bench: p2p + CSMA, 5 nodes, ping every %d ms for %g simulated s; best of %d"
          % (INTERVAL_MS, args.sim, args.repeat))
    print("  ping statistics      hand-written %s   nepi %s   nepi/cling %s" %
          (hand["stats"], nepi["stats"], cling["stats"]))
    print("  bindings import      hand-written %6.2f s   nepi %.2f s (shim %s)   nepi/cling "
          "%.2f s   (excluded)" % (hand["import_"], nepi["import_"], nepi["shim"],
                                     cling["import_"]))
    print("  hand-written ns-3    %6.2f s   (build %.2f + run %.2f + destroy and exit %.2f; "
          "runs: %s)" % (hand["cost"], hand["build"], hand["run"],
                         hand["total"] - hand["destroyed"], costs(hands)))
    print("  nepi                 %6.2f s   (deployed after %.2f, finished after %.2f, shut "
          "down and exited after %.2f; runs: %s)" % (nepi["cost"], nepi["deployed"],
                                                     nepi["finished"], nepi["total"],
                                                     costs(nepis)))
    print("  nepi, cling shim     %6.2f s   (shim %s, %.2f s in all with the import)"
          % (cling["cost"], cling["shim"], cling["total"]))
    print("  in all, import included: hand-written %.2f s, nepi %.2f s"
          % (hand["total"], nepi["total"]))
    print("  ratio nepi / hand-written: %.2f (target <= 1.10); with the cling-compiled "
          "shim: %.2f" % (nepi["cost"] / hand["cost"], cling["cost"] / hand["cost"]))
    print("  (up to the end of the simulation, teardown left out on both sides: %.2f)"
          % ((nepi["finished"] - nepi["import_"]) / (hand["build"] + hand["run"])))
    if not hand["stats"] == nepi["stats"] == cling["stats"]:
        print("  WARNING: the runs report different ping statistics")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
