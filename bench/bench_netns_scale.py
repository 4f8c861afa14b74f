#!/usr/bin/env python3
"""Scale benchmark of the netns testbed (issue 6 item 7, issue 16).

A star of N nodes on one switch -- each node a network namespace with one interface
holding one address, all attached to one Linux bridge -- is deployed and torn down by

  * nepi, in-process ExperimentController: time ``start()`` and ``shutdown()``; peak RSS
    of this process (psutil polling; ru_maxrss as well);
  * nepi with the netns testbed as a daemon (deployment_mode DAEMON): same times, and the
    testbed daemon's peak RSS (psutil memory_info polling and the kernel's VmHWM);
  * plain iproute2, the floor: one ``ip -batch`` in the root namespace (namespaces,
    bridge, veth pairs with the peer created in its namespace, enslaved and up), then one
    small ``ip -n NS -batch`` per namespace (lo up, address, eth0 up); teardown is one
    ``ip -batch`` deleting namespaces and bridge, until the links are gone;
  * Mininet 2.3 (Debian package ``mininet``): ``Mininet(topo=..., switch=LinuxBridge,
    controller=None)``; deploy = construction (which builds the network) + ``net.start()``,
    teardown = ``net.stop()``;

for N = 100 and 500 (or --sizes, e.g. 2000), on the same machine in the same run, and
prints seconds, the ratios nepi/ip-batch, nepi/Mininet and teardown/deploy, and the
targets beside them.

A Linux bridge takes at most 1023 ports (one more is refused with EXFULL), so above
SEGMENT nodes the star is split over several switches of SEGMENT nodes each, for
nepi and ip-batch alike; the ping check then runs within the first and the last segment.
Mininet is skipped above MININET_MAX nodes: it is far too slow there (and meets the same
port limit).

Requirements: root; Debian packages ``iproute2``, ``iputils-ping``, ``mininet`` and
``bridge-utils`` (Mininet's LinuxBridge runs ``brctl``):

    apt-get install -y iproute2 iputils-ping mininet bridge-utils

Debian installs Mininet for the system python3 (/usr/lib/python3/dist-packages); when this
interpreter cannot ``import mininet`` directly, that directory is tried as well. If Mininet
still cannot be imported, "mininet not installed" is printed and its column is skipped.

Everything the bench creates is removed again, also when a step fails or the run is
interrupted: nepi's namespaces/bridges/veths (shutdown, then the testbed's cleanup hook),
the ip-batch namespaces and links (prefix ``ipb<pid>``/``ib<pid>``/``iv<pid>``), Mininet's
hosts, bridge and links (``net.stop()``, then names ``mbh*``/``mbs1*``), testbed daemons
and temporary directories.

Usage: python bench/bench_netns_scale.py [--sizes 100,500] [--no-mininet] [--no-daemon]
       python bench/bench_netns_scale.py --sizes 2000 --no-mininet
"""

import argparse
import gc
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))     # netns_experiments
sys.path.insert(0, os.path.join(HERE, ".."))              # nepi from this checkout

import psutil  # noqa: E402

import netns_experiments as nx  # noqa: E402

DEBIAN_PYTHON_DIST = "/usr/lib/python3/dist-packages"
MB = 1024.0 * 1024.0

SEGMENT = 1000          # nodes per switch (a Linux bridge takes at most 1023 ports)
MININET_MAX = 1000      # Mininet is skipped above this many nodes

# name: (limit, the sizes it is a target at)
TARGETS = {
    "deploy_vs_ipbatch": (1.0, (500,)),
    "deploy_vs_mininet": (0.33, (500,)),
    "teardown_vs_mininet": (0.2, (500,)),
    "teardown_vs_ipbatch": (1.5, (500, 2000)),
    "teardown_vs_deploy": (1.0, (500, 2000)),
    "daemon_rss_mb": (150.0, (500, 2000)),
}


class Interrupted(Exception):
    pass


def _on_signal(signum, frame):
    raise Interrupted("signal %d" % signum)


# ---------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------

class RssPoller:
    """Peak RSS of a process, polled every ``interval`` s in a thread. ``pid_source`` is
    a pid or a callable that returns one once the process exists (e.g. a daemon that is
    launched while we measure)."""

    def __init__(self, pid_source, interval=0.01):
        self._source = pid_source
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0
        self.pid = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        proc = None
        while not self._stop.is_set():
            if proc is None:
                pid = self._source() if callable(self._source) else self._source
                if pid:
                    try:
                        proc = psutil.Process(pid)
                        self.pid = pid
                    except psutil.Error:
                        proc = None
            if proc is not None:
                try:
                    self.peak = max(self.peak, proc.memory_info().rss)
                except psutil.Error:
                    proc = None
            self._stop.wait(self._interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(2)


def vm_hwm(pid):
    """The kernel's peak resident set size of ``pid`` (bytes), or 0."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, TypeError):
        pass
    return 0


def wait_links_gone(prefixes, timeout=10.0):
    """Namespace removal frees interfaces asynchronously: wait until none is left (the
    root namespace's links, from one netlink dump each time, not an ``ip`` process, so
    that polling adds little to the time measured)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(name.startswith(prefixes) for _, name in socket.if_nameindex()):
            return True
        time.sleep(0.005)
    return False


def star_address(k):
    """Node k's address, as netns_experiments.make_star assigns it."""
    return "10.%d.%d.1" % (k // 250, k % 250)


def segments(n):
    """The nodes (1-based, first and last) of each switch of the star."""
    return [(first, min(first + SEGMENT - 1, n)) for first in range(1, n + 1, SEGMENT)]


def ping_pairs(n):
    """(from node, to node) checked after deployment: the ends of the first segment and,
    if there are more, of the last one."""
    parts = segments(n)
    return [parts[0]] + ([parts[-1][::-1]] if len(parts) > 1 else [])


def reaches(ns, k, timeout=30.0):
    """Does namespace ``ns`` get a reply from node k within ``timeout`` s? Pinged again
    until then: a bridge copies each broadcast (an ARP request) to all its ports through
    the host's backlog of net.core.netdev_max_backlog packets (1000 by default), and in
    the first seconds after a large star comes up, when every node's IPv6 DAD, MLD and
    router solicitations are flooded too, the copy for node k may be dropped."""
    deadline = time.monotonic() + timeout
    while not nx.ping_from(ns, star_address(k), count=1, wait=1):
        if time.monotonic() >= deadline:
            return False
    return True


def all_reach(ns_of, n, result):
    """Ping check of the star (``ns_of(k)``: node k's namespace); sets ``ping_ok`` and
    ``ping_s``, the seconds it took."""
    t0 = time.monotonic()
    result["ping_ok"] = all(reaches(ns_of(a), b) for a, b in ping_pairs(n))
    result["ping_s"] = time.monotonic() - t0


def star_design(n):
    """netns_experiments.make_star's star, its interfaces moved to one switch per
    segment above SEGMENT nodes (node k keeps guid 2k)."""
    exp_desc, boxes = nx.make_star(n)
    for first, last in segments(n)[1:]:
        moved = boxes["ifaces"][first - 1:last]
        for iface in moved:
            boxes["switch"].connector("devs").disconnect(iface.connector("switch"))
        nx.add_switch(boxes["desc"], *moved)
    return exp_desc, boxes


# ---------------------------------------------------------------------------------------
# nepi
# ---------------------------------------------------------------------------------------

def run_nepi(n, daemon=False):
    """Deploy and tear down the star with nepi; returns a result dict."""
    from nepi.rpc.manifest import Manifest
    from nepi.testbeds.netns.execute import cleanup as netns_cleanup
    from nepi.util import proxy
    from nepi.util.constants import DeploymentConfiguration as DC

    exp_desc, boxes = star_design(n)
    if daemon:
        nx.as_daemon(boxes["desc"])
    xml = exp_desc.to_xml()
    del exp_desc, boxes
    gc.collect()
    root = tempfile.mkdtemp(prefix="nepi-bench-")
    testbed_root = os.path.join(root, "testbeds", "1")
    config = proxy.AccessConfiguration()
    config.set_attribute_value(DC.ROOT_DIRECTORY, root)
    controller = None
    daemon_pid = [None]

    def find_daemon():
        if daemon_pid[0] is None:
            entry = (Manifest(root).read().get("daemons") or {}).get("testbed-1") or {}
            daemon_pid[0] = entry.get("pid")
        return daemon_pid[0]

    result = {}
    try:
        controller = proxy.create_experiment_controller(xml, config)
        poller = RssPoller(find_daemon if daemon else os.getpid())
        with poller:
            t0 = time.perf_counter()
            controller.start()
            result["deploy"] = time.perf_counter() - t0
            pid = find_daemon() if daemon else os.getpid()
            hwm = vm_hwm(pid) if daemon else 0
        result["rss_peak"] = max(poller.peak, hwm)
        result["rss_pid"] = pid
        token = nx.testbed_token(testbed_root)
        # sanity (not timed): the ends of the first (and last) segment reach each other
        all_reach(lambda k: nx.ns_name(token, 2 * k), n, result)
        result["ping_ok"] &= nx.ns_exec(nx.ns_name(token, 2 * n), "true").returncode == 0
        t0 = time.perf_counter()
        controller.shutdown()
        result["teardown"] = time.perf_counter() - t0
        controller = None
        result["clean"] = wait_links_gone(("nb" + token, "nv" + token), 5) and not [
            ns for ns in nx.namespaces() if ns.startswith("nepi-%s-" % token)]
        return result
    finally:
        if controller is not None:
            try:
                controller.shutdown()
            except Exception as e:
                print("  (nepi shutdown after failure: %s)" % e, file=sys.stderr)
        if daemon and daemon_pid[0]:
            try:
                psutil.Process(daemon_pid[0]).kill()
            except psutil.Error:
                pass
        try:
            netns_cleanup(testbed_root)
        except Exception as e:
            print("  (netns cleanup of %s: %s)" % (testbed_root, e), file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# plain iproute2
# ---------------------------------------------------------------------------------------

class IpBatch:
    """The same star with ``ip -batch``: the floor."""

    def __init__(self, n):
        self.n = n
        tag = "%x" % (os.getpid() & 0xFFFF)
        self.ns_prefix = "ipb%s-" % tag
        self.bridge_prefix = "ib%s" % tag
        self.veth_prefix = "iv%s" % tag
        self.tmp = tempfile.mkdtemp(prefix="ipbatch-")

    def ns(self, k):
        return "%s%d" % (self.ns_prefix, k)

    def bridge(self, segment):
        return "%ss%d" % (self.bridge_prefix, segment)

    def _run(self, args, text):
        proc = subprocess.run(args, input=text, text=True, capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError("%s failed: %s" % (" ".join(args), proc.stderr.strip()))

    def deploy(self):
        root = ["netns add %s" % self.ns(k) for k in range(1, self.n + 1)]
        for s, (first, last) in enumerate(segments(self.n)):
            root += ["link add %s type bridge" % self.bridge(s),
                     "link set %s up" % self.bridge(s)]
            for k in range(first, last + 1):
                veth = "%s%d" % (self.veth_prefix, k)
                root.append("link add %s type veth peer name eth0 netns %s"
                            % (veth, self.ns(k)))
                root.append("link set %s master %s up" % (veth, self.bridge(s)))
        root_text = "\n".join(root) + "\n"
        inner = {k: "link set lo up\naddr add %s/8 dev eth0\nlink set eth0 up\n"
                 % star_address(k) for k in range(1, self.n + 1)}
        t0 = time.perf_counter()
        self._run(["ip", "-batch", "-"], root_text)
        for k in range(1, self.n + 1):
            self._run(["ip", "-n", self.ns(k), "-batch", "-"], inner[k])
        return time.perf_counter() - t0

    def teardown(self):
        text = "".join("netns del %s\n" % self.ns(k) for k in range(1, self.n + 1))
        text += "".join("link del %s\n" % self.bridge(s)
                        for s in range(len(segments(self.n))))
        t0 = time.perf_counter()
        self._run(["ip", "-batch", "-"], text)
        wait_links_gone((self.veth_prefix, self.bridge_prefix))
        return time.perf_counter() - t0

    def remove_everything(self):
        """Whatever is left, by name (after a failure)."""
        for ns in nx.namespaces():
            if ns.startswith(self.ns_prefix):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for link in nx.links():
            if link.startswith((self.veth_prefix, self.bridge_prefix)):
                subprocess.run(["ip", "link", "del", link], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_ipbatch(n):
    bench = IpBatch(n)
    result = {}
    try:
        result["deploy"] = bench.deploy()
        all_reach(bench.ns, n, result)
        result["teardown"] = bench.teardown()
        result["clean"] = not [ns for ns in nx.namespaces()
                               if ns.startswith(bench.ns_prefix)]
        return result
    finally:
        bench.remove_everything()


# ---------------------------------------------------------------------------------------
# Mininet
# ---------------------------------------------------------------------------------------

def import_mininet():
    try:
        import mininet  # noqa: F401
    except ImportError:
        if os.path.isdir(os.path.join(DEBIAN_PYTHON_DIST, "mininet")):
            sys.path.append(DEBIAN_PYTHON_DIST)
        try:
            import mininet  # noqa: F401,F811
        except ImportError:
            return None
    if shutil.which("mnexec") is None or shutil.which("brctl") is None:
        return None
    from mininet.log import setLogLevel
    setLogLevel("error")
    return mininet


def run_mininet(n):
    from mininet.net import Mininet
    from mininet.nodelib import LinuxBridge
    from mininet.topo import Topo

    class Star(Topo):
        def build(self, n=2):
            switch = self.addSwitch("mbs1")
            for k in range(1, n + 1):
                self.addLink(self.addHost("mbh%d" % k), switch)

    topo = Star(n=n)
    net = None
    result = {}
    try:
        t0 = time.perf_counter()
        net = Mininet(topo=topo, switch=LinuxBridge, controller=None)
        t1 = time.perf_counter()
        net.start()
        t2 = time.perf_counter()
        result["deploy"] = t2 - t0
        result["construct"], result["start"] = t1 - t0, t2 - t1
        h1, hn = net.get("mbh1"), net.get("mbh%d" % n)
        result["ping_ok"] = " 0% packet loss" in h1.cmd("ping -c1 -W2 %s" % hn.IP())
        t0 = time.perf_counter()
        net.stop()
        result["teardown"] = time.perf_counter() - t0
        net = None
        result["clean"] = wait_links_gone(("mbs1", "mbh"), 5)
        return result
    finally:
        if net is not None:
            try:
                net.stop()
            except Exception as e:
                print("  (mininet stop after failure: %s)" % e, file=sys.stderr)
                for host in net.hosts:
                    try:
                        host.terminate()
                    except Exception:
                        pass
        for link in nx.links():
            if link.startswith(("mbs1", "mbh")):
                subprocess.run(["ip", "link", "del", link], capture_output=True)


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------

def fmt(value, spec="%.2f"):
    return spec % value if value is not None else "-"


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def verdict(value, target):
    if value is None:
        return "n/a"
    return "OK" if value <= target else "MISSED"


def target_note(name, n, value):
    """'   target <= X at N=n: OK' where ``name`` is a target at this size, else ''."""
    limit, sizes = TARGETS[name]
    if n not in sizes:
        return ""
    return "   target <= %.2f at N=%d: %s" % (limit, n, verdict(value, limit))


def report(n, results, self_rss_note):
    print()
    shape = "one switch" if n <= SEGMENT else "%d switches of <= %d nodes (Linux bridge " \
        "port limit)" % (len(segments(n)), SEGMENT)
    print("N = %d nodes (star on %s)" % (n, shape))
    print("  %-28s %10s %12s %14s  %s" % ("", "deploy s", "teardown s", "peak RSS MB",
                                          "checks"))
    rows = (("nepi, in-process EC", "nepi"), ("nepi, testbed daemon", "nepi_daemon"),
            ("ip -batch (floor)", "ipbatch"), ("Mininet 2.3 LinuxBridge", "mininet"))
    for label, key in rows:
        r = results.get(key)
        if r is None:
            why = "skipped (too slow above N=%d)" % MININET_MAX \
                if key == "mininet" and n > MININET_MAX else "skipped"
            print("  %-28s %10s %12s %14s  %s" % (label, "-", "-", "-", why))
            continue
        if "error" in r:
            print("  %-28s %10s %12s %14s  FAILED: %s" % (label, "-", "-", "-", r["error"]))
            continue
        rss = fmt(r["rss_peak"] / MB, "%.1f") if r.get("rss_peak") else "-"
        ping = "ok" if r.get("ping_ok") else "FAILED"
        if r.get("ping_s", 0) > 5:
            ping += " after %.0f s" % r["ping_s"]
        checks = "ping %s, %s" % (ping,
                                  "clean" if r.get("clean") else "LEFTOVERS")
        extra = ""
        if key == "mininet":
            extra = " (construct %.2f + start %.2f)" % (r["construct"], r["start"])
        print("  %-28s %10s %12s %14s  %s%s" % (label, fmt(r.get("deploy")),
                                                 fmt(r.get("teardown")), rss, checks, extra))

    def get(key, field):
        r = results.get(key)
        return None if r is None or "error" in r else r.get(field)

    lines = []
    for key, label in (("nepi", "nepi"), ("nepi_daemon", "nepi (daemon)")):
        for value, what, name in (
                (ratio(get(key, "deploy"), get("ipbatch", "deploy")),
                 "deploy   / ip-batch", "deploy_vs_ipbatch"),
                (ratio(get(key, "deploy"), get("mininet", "deploy")),
                 "deploy   / Mininet ", "deploy_vs_mininet"),
                (ratio(get(key, "teardown"), get("ipbatch", "teardown")),
                 "teardown / ip-batch", "teardown_vs_ipbatch"),
                (ratio(get(key, "teardown"), get("mininet", "teardown")),
                 "teardown / Mininet ", "teardown_vs_mininet"),
                (ratio(get(key, "teardown"), get(key, "deploy")),
                 "teardown / deploy  ", "teardown_vs_deploy")):
            if what.endswith("Mininet ") and get("mininet", "deploy") is None:
                continue
            lines.append("  %-14s %s = %5s%s" % (label, what, fmt(value),
                                                  target_note(name, n, value)))
    rss = get("nepi_daemon", "rss_peak")
    rss_mb = rss / MB if rss else None
    lines.append("  testbed daemon peak RSS = %s MB%s" % (
        fmt(rss_mb, "%.1f"), target_note("daemon_rss_mb", n, rss_mb)))
    print("  ratios:")
    for line in lines:
        print(line)
    if self_rss_note:
        print("  " + self_rss_note)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,500")
    parser.add_argument("--no-mininet", action="store_true")
    parser.add_argument("--no-daemon", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_netns_scale: needs root (network namespaces)", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",") if s]
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    mininet = None if args.no_mininet else import_mininet()
    print("netns scale benchmark: %d CPUs, kernel %s, python %s"
          % (os.cpu_count(), os.uname().release, sys.version.split()[0]))
    if mininet is None and not args.no_mininet:
        print("mininet not installed (apt-get install -y mininet bridge-utils): "
              "Mininet column skipped")

    before = nx.host_state()
    results = {n: {} for n in sizes}
    rss_notes = {}
    base_rss = psutil.Process().memory_info().rss
    steps = [("nepi", lambda n: run_nepi(n))]
    if not args.no_daemon:
        steps.append(("nepi_daemon", lambda n: run_nepi(n, daemon=True)))
    steps.append(("ipbatch", run_ipbatch))
    if mininet is not None:
        steps.append(("mininet", run_mininet))
        if max(sizes) > MININET_MAX:
            print("Mininet skipped at N > %d: far too slow there" % MININET_MAX)
    try:
        # nepi in-process first, for every size, so that this process's peak RSS is
        # nepi's and not Mininet's
        for key, step in steps:
            for n in sizes:
                if key == "mininet" and n > MININET_MAX:
                    continue
                print("  running %-12s N=%d ..." % (key, n), flush=True)
                try:
                    results[n][key] = step(n)
                except Interrupted:
                    raise
                except Exception as e:
                    results[n][key] = {"error": "%s: %s" % (type(e).__name__, e)}
            if key == "nepi":
                maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                for n in sizes:
                    rss_notes[n] = ("bench process (in-process nepi): RSS before %.1f MB, "
                                    "ru_maxrss after all in-process runs %.1f MB"
                                    % (base_rss / MB, maxrss / MB))
        for n in sizes:
            report(n, results[n], rss_notes.get(n))
    finally:
        left = nx.wait_nothing_new(before, timeout=5.0)
        if any(left.values()):
            print("\nleftovers found and removed: %s" % left)
            nx.remove_leftovers(left)
        else:
            print("\nnothing left behind (namespaces, links, processes)")
    failed = [(n, k) for n in sizes for k, r in results[n].items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
