#!/usr/bin/env python3
"""Cross-testbed link performance: ping RTT and iperf3 TCP throughput between two network
namespaces whose path crosses an ns-3 simulation, built by nepi and by hand.

Topology (every run):

    netns A 10.0.1.2 ==TAP/FdNetDevice== r1 10.0.1.1 --p2p 100 Mbps, 1 ms-- r2 10.0.2.1
        ==FdNetDevice/TAP== 10.0.2.2 netns B

r1 and r2 are ns-3 nodes (realtime simulator, checksums on) that route between the TAPs;
ns-3 nodes cannot run iperf3, so the traffic is between the namespaces. The measurement,
the same in every run: one warm-up ping, then ``ping -c 20 -i 0.2`` A -> B (RTT
min/avg/max) and ``iperf3 -c B -t 5`` (TCP, A sends; receiver's rate).

* nepi (fd): the design (an ns3 and a netns testbed, each TAP's file descriptor passed to
  its FdNetDevice) run by an in-process ExperimentController (ns-3 in its private daemon);
  the measurement runs as netns Applications.
* nepi (TunChannel udp): the same, but each FdNetDevice is fed by an ns3::Nepi::TunChannel
  joined over UDP (or TCP, ``--tun-proto``) to a netns TunChannel on the TAP (two Python
  forwarders per direction); run twice: authenticated (the default tun_cipher: every frame
  sealed with AES-256-GCM under the controller's link key) and PLAIN (the opt-out).
* hand-written: a plain Python script with ``from ns import ns`` (helpers, FdNetDevice on
  TAP devices it creates itself and moves into namespaces it creates), run in a
  subprocess; the measurement runs through ``ip netns exec``.

Printed side by side with the ratios nepi / hand-written (for RTT lower is better, for
throughput higher is better), and the cost of authentication: TunChannel authenticated /
PLAIN. Needs root, the ns3 wheel, iperf3.

    sudo python bench/bench_cross.py [--pings N] [--seconds S] [--rate 1Gbps]
                                     [--delay 1ms] [--no-tunchannel] [--tun-proto tcp]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

A, R1A, R1P, R2P, R2B, B = ("10.0.1.2", "10.0.1.1", "10.0.0.1", "10.0.0.2", "10.0.2.1",
                            "10.0.2.2")
DATA_RATE, DELAY = "100Mbps", "1ms"
MARK = "=====iperf3====="


def measure_command(pings, seconds):
    """What netns A runs (nepi: as one Application; by hand: through ip netns exec)."""
    return ("sleep 0.5; ping -n -c 1 -W 2 {b} >/dev/null; "
            "ping -n -q -c {n} -i 0.2 {b}; echo {mark}; "
            "iperf3 -c {b} -t {s} -J").format(b=B, n=pings, s=seconds, mark=MARK)


def parse(output):
    """{'rtt': (min, avg, max) ms, 'loss': '0%', 'mbps': receiver Mbit/s}."""
    ping_text, _, iperf_text = output.partition(MARK)
    m = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/", ping_text)
    lost = re.search(r"(\d+(?:\.\d+)?)% packet loss", ping_text)
    result = {"rtt": tuple(float(x) for x in m.groups()) if m else None,
              "loss": lost.group(1) + "%" if lost else "?", "mbps": None}
    try:
        data = json.loads(iperf_text[iperf_text.index("{"):])
        result["mbps"] = data["end"]["sum_received"]["bits_per_second"] / 1e6
    except (ValueError, KeyError):
        result["error"] = iperf_text.strip()[-500:] or ping_text.strip()[-500:]
    return result


# -- nepi ---------------------------------------------------------------------------------

def build_design(pings, seconds, tunchannel, rate=DATA_RATE, delay=DELAY, cipher="AES",
                 proto="udp"):
    """``tunchannel``: TunChannels (``proto``, ``cipher``) instead of fd passing."""
    from nepi.core.design import ExperimentDescription, FactoriesProvider
    exp = ExperimentDescription()
    ns3 = exp.add_testbed_description(FactoriesProvider("ns3"))
    ns3.set_attribute_value("SimulatorImplementationType", "ns3::RealtimeSimulatorImpl")
    ns3.set_attribute_value("ChecksumEnabled", True)
    netns = exp.add_testbed_description(FactoriesProvider("netns"))

    def connect(a, ca, b, cb):
        a.connector(ca).connect(b.connector(cb))

    def address(dev, value):
        addr = dev.add_address()
        addr.set_attribute_value("Address", value)
        addr.set_attribute_value("NetPrefix", 24)

    def route(node, destination, nexthop):
        r = node.add_route()
        r.set_attribute_value("Destination", destination)
        r.set_attribute_value("NetPrefix", 24)
        r.set_attribute_value("NextHop", nexthop)

    def router():
        node = ns3.create("ns3::Node")
        for p in ("ns3::Ipv4L3Protocol", "ns3::ArpL3Protocol", "ns3::Icmpv4L4Protocol",
                  "ns3::UdpL4Protocol", "ns3::TcpL4Protocol"):
            connect(node, "protos", ns3.create(p), "node")
        return node

    def device(node, factory, value):
        dev = ns3.create(factory)
        connect(node, "devs", dev, "node")
        address(dev, value)
        return dev

    def host(router_node, fd_address, tap_address):
        fd = device(router_node, "ns3::FdNetDevice", fd_address)
        node = netns.create("Node")
        tap = netns.create("TapNodeInterface")
        tap.set_attribute_value("up", True)
        connect(node, "devs", tap, "node")
        address(tap, tap_address)
        if tunchannel:
            mine, theirs = ns3.create("ns3::Nepi::TunChannel"), netns.create("TunChannel")
            for channel in (mine, theirs):
                channel.set_attribute_value("tun_cipher", cipher)
            connect(mine, "fd->", fd, "->fd")
            connect(theirs, "->fd", tap, "fd->")
            connect(mine, proto, theirs, proto)
        else:
            connect(fd, "->fd", tap, "fd->")
        return node

    r1, r2 = router(), router()
    link = ns3.create("ns3::PointToPointChannel")
    link.set_attribute_value("Delay", delay)
    for node, value in ((r1, R1P), (r2, R2P)):
        dev = device(node, "ns3::PointToPointNetDevice", value)
        dev.set_attribute_value("DataRate", rate)
        connect(dev, "queue", ns3.create("ns3::DropTailQueue"), "dev")
        connect(link, "dev2", dev, "chan")
    a = host(r1, R1A, A)
    b = host(r2, R2B, B)
    route(r1, "10.0.2.0", R2P)
    route(r2, "10.0.1.0", R1P)
    route(a, "10.0.2.0", R1A)
    route(b, "10.0.1.0", R2B)
    server = netns.create("Application")
    server.set_attribute_value("command", "iperf3 -s -1")
    connect(server, "node", b, "apps")
    client = netns.create("Application")
    client.set_attribute_value("command", measure_command(pings, seconds))
    client.enable_trace("stdout")
    connect(client, "node", a, "apps")
    return exp, client.guid


def run_nepi(pings, seconds, root, tunchannel, rate=DATA_RATE, delay=DELAY, cipher="AES",
             proto="udp"):
    from nepi.util import proxy
    from nepi.util.constants import DeploymentConfiguration as DC
    exp, client = build_design(pings, seconds, tunchannel, rate, delay, cipher, proto)
    started = time.time()
    controller = proxy.create_experiment_controller(
        exp.to_xml(), proxy.AccessConfiguration({DC.ROOT_DIRECTORY: root}))
    try:
        controller.start()
        deployed = time.time() - started
        deadline = time.time() + seconds + pings * 0.2 + 60
        while not controller.is_finished(client):
            if time.time() > deadline:
                raise SystemExit("the measurement did not finish")
            time.sleep(0.2)
        result = parse(controller.trace(client, "stdout"))
        controller.stop()
    finally:
        controller.shutdown()
    result["deploy"] = deployed
    return result


# -- hand-written ns-3 + TAP --------------------------------------------------------------

HANDWRITTEN = r'''
import fcntl, os, struct, subprocess, sys, threading, time
pings, seconds, command = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tag = "bx%d" % (os.getpid() % 100000)
TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0002, 0x1000

def sh(*args):
    subprocess.run(args, check=True)

def tap_in_namespace(ns, name, address, peer_net, gateway):
    sh("ip", "netns", "add", ns)
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    sh("ip", "link", "set", name, "netns", ns)
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", ns, "addr", "add", address + "/24", "dev", name)
    sh("ip", "-n", ns, "link", "set", name, "up")
    sh("ip", "-n", ns, "route", "add", peer_net, "via", gateway)
    return fd

namespaces = [tag + "a", tag + "b"]
try:
    fd_a = tap_in_namespace(namespaces[0], tag + "ta", "@A@", "10.0.2.0/24", "@R1A@")
    fd_b = tap_in_namespace(namespaces[1], tag + "tb", "@B@", "10.0.1.0/24", "@R2B@")
    from ns import ns
    ns.GlobalValue.Bind("SimulatorImplementationType",
                        ns.StringValue("ns3::RealtimeSimulatorImpl"))
    ns.GlobalValue.Bind("ChecksumEnabled", ns.BooleanValue(True))
    routers = ns.NodeContainer()
    routers.Create(2)
    ns.InternetStackHelper().Install(routers)
    p2p = ns.PointToPointHelper()
    p2p.SetDeviceAttribute("DataRate", ns.StringValue("@DATA_RATE@"))
    p2p.SetChannelAttribute("Delay", ns.StringValue("@DELAY@"))
    link = p2p.Install(routers.Get(0), routers.Get(1))
    addresses = ns.Ipv4AddressHelper()
    addresses.SetBase(ns.Ipv4Address("10.0.0.0"), ns.Ipv4Mask("255.255.255.0"))
    addresses.Assign(link)
    def fd_device(node, fd, address):
        dev = ns.CreateObject[ns.FdNetDevice]()
        dev.SetAddress(ns.Mac48Address.Allocate().ConvertTo())
        node.AddDevice(dev)
        dev.SetFileDescriptor(fd)
        ipv4 = node.GetObject[ns.Ipv4]()
        index = ipv4.AddInterface(dev)
        ipv4.AddAddress(index, ns.Ipv4InterfaceAddress(ns.Ipv4Address(address),
                                                       ns.Ipv4Mask("255.255.255.0")))
        ipv4.SetMetric(index, 1)
        ipv4.SetUp(index)
        return dev
    devices = [fd_device(routers.Get(0), fd_a, "@R1A@"),
               fd_device(routers.Get(1), fd_b, "@R2B@")]
    static = ns.Ipv4StaticRoutingHelper()
    static.GetStaticRouting(routers.Get(0).GetObject[ns.Ipv4]()).AddNetworkRouteTo(
        ns.Ipv4Address("10.0.2.0"), ns.Ipv4Mask("/24"), ns.Ipv4Address("@R2P@"), 1)
    static.GetStaticRouting(routers.Get(1).GetObject[ns.Ipv4]()).AddNetworkRouteTo(
        ns.Ipv4Address("10.0.1.0"), ns.Ipv4Mask("/24"), ns.Ipv4Address("@R1P@"), 1)
    ns.Simulator.Run.__release_gil__ = True
    simulator = threading.Thread(target=ns.Simulator.Run, daemon=True)
    simulator.start()
    server = subprocess.Popen(["ip", "netns", "exec", namespaces[1], "iperf3", "-s", "-1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = subprocess.run(["ip", "netns", "exec", namespaces[0], "sh", "-c", command],
                         capture_output=True, text=True).stdout
    server.wait(10)
    print("OUTPUT-BEGIN\n" + out, flush=True)
    ns.Simulator.Stop()          # after Run started; the realtime simulator stops promptly
    simulator.join(10)
finally:
    for ns_name in namespaces:
        subprocess.run(["ip", "netns", "del", ns_name], stderr=subprocess.DEVNULL)
os._exit(0)                      # skip ns-3's static destructors after an early Stop
'''


def handwritten_source(rate, delay):
    source = HANDWRITTEN
    for name, value in dict(A=A, B=B, R1A=R1A, R2B=R2B, R1P=R1P, R2P=R2P, DATA_RATE=rate,
                            DELAY=delay).items():
        source = source.replace("@%s@" % name, value)
    return source


def run_handwritten(pings, seconds, workdir, rate=DATA_RATE, delay=DELAY):
    script = os.path.join(workdir, "handwritten_ns3_tap.py")
    with open(script, "w") as f:
        f.write(handwritten_source(rate, delay))
    proc = subprocess.run([sys.executable, script, str(pings), str(seconds),
                           measure_command(pings, seconds)], capture_output=True, text=True,
                          timeout=seconds + pings * 0.2 + 120)
    if "OUTPUT-BEGIN" not in proc.stdout:
        raise SystemExit("hand-written ns-3 script failed (exit %s):\n%s"
                         % (proc.returncode, proc.stderr[-3000:]))
    return parse(proc.stdout.split("OUTPUT-BEGIN", 1)[1])


# -- report ---------------------------------------------------------------------------

def fmt_rtt(result):
    rtt = result.get("rtt")
    return "%.3f / %.3f / %.3f ms" % rtt if rtt else "n/a"


def fmt_mbps(result):
    return "%.1f Mbit/s" % result["mbps"] if result.get("mbps") else "n/a"


def avg_rtt(result):
    return result["rtt"][1] if result.get("rtt") else None


def fmt_avg(result):
    return "%.3f ms" % avg_rtt(result) if result.get("rtt") else "n/a"


def ratio(a, b):
    return "%.2f" % (a / b) if a and b else "n/a"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pings", type=int, default=20, help="echoes measured (default 20)")
    parser.add_argument("--seconds", type=int, default=5, help="iperf3 seconds (default 5)")
    parser.add_argument("--rate", default=DATA_RATE,
                        help="simulated p2p DataRate (default %s)" % DATA_RATE)
    parser.add_argument("--delay", default=DELAY,
                        help="simulated p2p Delay (default %s)" % DELAY)
    parser.add_argument("--no-tunchannel", action="store_true",
                        help="skip the TunChannel variants")
    parser.add_argument("--tun-proto", choices=("udp", "tcp"), default="udp",
                        help="TunChannel transport (default udp)")
    parser.add_argument("--keep", metavar="DIR", help="keep nepi's root directories here")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("this benchmark builds network namespaces and TAP devices: run it as root",
              file=sys.stderr)
        return 1
    if shutil.which("iperf3") is None:
        print("iperf3 is not installed", file=sys.stderr)
        return 1
    root = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="bench-cross-")
    try:
        link = (args.rate, args.delay)
        runs = [("hand-written ns-3+TAP",
                 run_handwritten(args.pings, args.seconds, root, *link))]
        runs.append(("nepi (fd passing)", run_nepi(args.pings, args.seconds,
                                                   os.path.join(root, "fd"), False, *link)))
        if not args.no_tunchannel:
            for cipher, name in (("AES", "AES-GCM"), ("PLAIN", "PLAIN")):
                runs.append(("nepi (TunChannel %s %s)" % (args.tun_proto, name),
                             run_nepi(args.pings, args.seconds,
                                      os.path.join(root, "tun-" + cipher), True, *link,
                                      cipher=cipher, proto=args.tun_proto)))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    hand = runs[0][1]
    print("cross-testbed bench: netns A ==fd== ns-3 r1 --p2p %s, %s-- r2 ==fd== netns B"
          % (args.rate, args.delay))
    print("  %d pings (-i 0.2) A -> B, then iperf3 TCP %d s A -> B" % (args.pings, args.seconds))
    print("  %-32s %-30s %-8s %-16s %s" % ("", "ping rtt min/avg/max", "loss", "iperf3 TCP",
                                          "deploy"))
    for label, r in runs:
        print("  %-32s %-30s %-8s %-16s %s" % (label, fmt_rtt(r), r["loss"], fmt_mbps(r),
                                              "%.1f s" % r["deploy"] if "deploy" in r
                                              else "-"))
        if r.get("error"):
            print("    error: %s" % r["error"])
    for label, r in runs[1:]:
        print("  ratio %s / hand-written: rtt avg %s, throughput %s"
              % (label, ratio(avg_rtt(r), avg_rtt(hand)),
                 ratio(r.get("mbps"), hand.get("mbps"))))
    if not args.no_tunchannel:
        (_, sealed), (_, plain) = runs[-2:]
        print("  cost of authentication, TunChannel AES-GCM / PLAIN: rtt avg %s (%s vs %s), "
              "throughput %s (%s vs %s)"
              % (ratio(avg_rtt(sealed), avg_rtt(plain)), fmt_avg(sealed), fmt_avg(plain),
                 ratio(sealed.get("mbps"), plain.get("mbps")), fmt_mbps(sealed),
                 fmt_mbps(plain)))
    return 0 if all(r.get("mbps") and r.get("rtt") for _, r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
