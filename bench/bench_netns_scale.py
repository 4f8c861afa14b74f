#!/usr/bin/env python3
"""Scale benchmark of the netns testbed (issue 6, item 7).

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

for N = 100 and 500, on the same machine in the same run, and prints seconds, the ratios
nepi/ip-batch and nepi/Mininet, and the targets beside them.

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
"""

import argparse
import gc
import os
import resource
import shutil
import signal
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

TARGETS = {          # at N = 500
    "deploy_vs_ipbatch": 1.0,
    "deploy_vs_mininet": 0.33,
    "teardown_vs_mininet": 0.2,
    "daemon_rss_mb": 150.0,
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
    """Namespace removal frees interfaces asynchronously: wait until none is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(n.startswith(prefixes) for n in nx.links()):
            return True
        time.sleep(0.01)
    return False


def star_address(k):
    """Node k's address, as netns_experiments.make_star assigns it."""
    return "10.%d.%d.1" % (k // 250, k % 250)


# ---------------------------------------------------------------------------------------
# nepi
# ---------------------------------------------------------------------------------------

def run_nepi(n, daemon=False):
    """Deploy and tear down the star with nepi; returns a result dict."""
    from nepi.rpc.manifest import Manifest
    from nepi.testbeds.netns.execute import cleanup as netns_cleanup
    from nepi.util import proxy
    from nepi.util.constants import DeploymentConfiguration as DC

    exp_desc, boxes = nx.make_star(n)
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
        # sanity (not timed): the first and the last node reach each other
        ns1, nsn = nx.ns_name(token, 2), nx.ns_name(token, 2 * n)
        result["ping_ok"] = nx.ping_from(ns1, star_address(n), wait=2) and \
            nx.ns_exec(nsn, "true").returncode == 0
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
        self.bridge = "ib%s" % tag
        self.veth_prefix = "iv%s" % tag
        self.tmp = tempfile.mkdtemp(prefix="ipbatch-")

    def ns(self, k):
        return "%s%d" % (self.ns_prefix, k)

    def _run(self, args, text):
        proc = subprocess.run(args, input=text, text=True, capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError("%s failed: %s" % (" ".join(args), proc.stderr.strip()))

    def deploy(self):
        root = ["netns add %s" % self.ns(k) for k in range(1, self.n + 1)]
        root += ["link add %s type bridge" % self.bridge, "link set %s up" % self.bridge]
        for k in range(1, self.n + 1):
            veth = "%s%d" % (self.veth_prefix, k)
            root.append("link add %s type veth peer name eth0 netns %s" % (veth, self.ns(k)))
            root.append("link set %s master %s up" % (veth, self.bridge))
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
        text += "link del %s\n" % self.bridge
        t0 = time.perf_counter()
        self._run(["ip", "-batch", "-"], text)
        wait_links_gone((self.veth_prefix, self.bridge))
        return time.perf_counter() - t0

    def remove_everything(self):
        """Whatever is left, by name (after a failure)."""
        for ns in nx.namespaces():
            if ns.startswith(self.ns_prefix):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for link in nx.links():
            if link.startswith((self.veth_prefix, self.bridge)):
                subprocess.run(["ip", "link", "del", link], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_ipbatch(n):
    bench = IpBatch(n)
    result = {}
    try:
        result["deploy"] = bench.deploy()
        result["ping_ok"] = nx.ping_from(bench.ns(1), star_address(n), wait=2)
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


def report(n, results, self_rss_note):
    print()
    print("N = %d nodes (star on one switch)" % n)
    print("  %-28s %10s %12s %14s  %s" % ("", "deploy s", "teardown s", "peak RSS MB",
                                          "checks"))
    rows = (("nepi, in-process EC", "nepi"), ("nepi, testbed daemon", "nepi_daemon"),
            ("ip -batch (floor)", "ipbatch"), ("Mininet 2.3 LinuxBridge", "mininet"))
    for label, key in rows:
        r = results.get(key)
        if r is None:
            print("  %-28s %10s %12s %14s  %s" % (label, "-", "-", "-", "skipped"))
            continue
        if "error" in r:
            print("  %-28s %10s %12s %14s  FAILED: %s" % (label, "-", "-", "-", r["error"]))
            continue
        rss = fmt(r["rss_peak"] / MB, "%.1f") if r.get("rss_peak") else "-"
        checks = "ping %s, %s" % ("ok" if r.get("ping_ok") else "FAILED",
                                  "clean" if r.get("clean") else "LEFTOVERS")
        extra = ""
        if key == "mininet":
            extra = " (construct %.2f + start %.2f)" % (r["construct"], r["start"])
        print("  %-28s %10s %12s %14s  %s%s" % (label, fmt(r.get("deploy")),
                                                 fmt(r.get("teardown")), rss, checks, extra))

    def get(key, field):
        r = results.get(key)
        return None if r is None or "error" in r else r.get(field)

    at_target = n == 500
    lines = []
    for key, label in (("nepi", "nepi"), ("nepi_daemon", "nepi (daemon)")):
        d_ip = ratio(get(key, "deploy"), get("ipbatch", "deploy"))
        d_mn = ratio(get(key, "deploy"), get("mininet", "deploy"))
        t_ip = ratio(get(key, "teardown"), get("ipbatch", "teardown"))
        t_mn = ratio(get(key, "teardown"), get("mininet", "teardown"))
        if key == "nepi" and at_target:
            lines.append("  %-14s deploy   / ip-batch = %5s   target <= %.2f at N=500: %s"
                         % (label, fmt(d_ip), TARGETS["deploy_vs_ipbatch"],
                            verdict(d_ip, TARGETS["deploy_vs_ipbatch"])))
            lines.append("  %-14s deploy   / Mininet  = %5s   target <= %.2f at N=500: %s"
                         % (label, fmt(d_mn), TARGETS["deploy_vs_mininet"],
                            verdict(d_mn, TARGETS["deploy_vs_mininet"])))
            lines.append("  %-14s teardown / ip-batch = %5s" % (label, fmt(t_ip)))
            lines.append("  %-14s teardown / Mininet  = %5s   target <= %.2f at N=500: %s"
                         % (label, fmt(t_mn), TARGETS["teardown_vs_mininet"],
                            verdict(t_mn, TARGETS["teardown_vs_mininet"])))
        else:
            lines.append("  %-14s deploy / ip-batch = %s, / Mininet = %s; teardown / "
                         "ip-batch = %s, / Mininet = %s" % (label, fmt(d_ip), fmt(d_mn),
                                                            fmt(t_ip), fmt(t_mn)))
    rss = get("nepi_daemon", "rss_peak")
    rss_mb = rss / MB if rss else None
    lines.append("  testbed daemon peak RSS = %s MB   target <= %.0f MB%s" % (
        fmt(rss_mb, "%.1f"), TARGETS["daemon_rss_mb"],
        " at N=500: %s" % verdict(rss_mb, TARGETS["daemon_rss_mb"]) if at_target else ""))
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
    try:
        # nepi in-process first, for every size, so that this process's peak RSS is
        # nepi's and not Mininet's
        for key, step in steps:
            for n in sizes:
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
