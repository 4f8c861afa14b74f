#!/usr/bin/env python3
"""Upload, build and run a small C program on N hosts: nepi vs ssh/scp by hand vs pssh
(issue 14, point 6).

The hosts are simulated (tests/simhosts.py: network namespaces on a private bridge, each
with its own sshd and its own home directory), brought up once for the largest N; a run
on N hosts uses the first N. The source folder is one file, ``hellosrc/hello.c``, which
prints ``hello from <the host's IPv4 address>`` (read with getifaddrs on the host, so an
output also says *where* the program ran). Each method uploads the folder to every host,
builds it there with ``gcc -O2``, runs ``./hello``, brings its stdout back, and removes
what it put on the hosts:

  * sequential: a hand-written loop, host after host: ``ssh mkdir``, ``scp -r`` the
    folder, ``ssh 'cd ... && gcc ... && ./hello'`` (stdout captured), ``ssh rm -rf``;
  * parallel-ssh (Debian ``pssh``): ``parallel-scp -r`` the folder to all hosts, then
    ``parallel-ssh -o OUTDIR`` build+run (one output file per host), then
    ``parallel-ssh rm -rf``; ``-p N`` (all hosts at once);
  * nepi: one ``linux`` testbed (sshKey, sshKnownHosts), one Node per host, one
    Application per node (sources = the folder, build = gcc, command = ./hello); timed
    from ``create_experiment_controller`` through ``start()``, waiting for every
    application to finish (``is_finished`` polled every 50 ms), ``trace(stdout)`` of each,
    ``stop()`` and ``shutdown()`` (which removes the experiment folder from every host).
    Its start() is split by the controller's progress events: connect (do_create: log
    in, make the folder), upload+build (do_prestart), launch (start), other phases.

All three use the same SSH client options (key, known_hosts checked strictly, batch
mode). Cleanup on the hosts is INCLUDED in every time (nepi cannot do without it: its
shutdown removes ~/nepi-<token>). Every output is checked (one line per host, naming that
host's address) and every home directory checked empty again afterwards; a method with a
wrong output or leftovers is reported FAILED for that N and its times are not used.
Methods take turns within each repetition; the table shows the median of ``--repeat``
runs, then nepi/parallel-ssh and nepi/sequential and whether the target (nepi <=
parallel-ssh) is met.

Needs root (simulated hosts), sshd, gcc and pssh (``make bench-deps`` installs it):

    sudo python bench/bench_multi_host.py [--hosts 2,8,16] [--repeat 3] [--no-pssh]
                                          [--profile] [--verbose]
"""

import argparse
import cProfile
import io
import logging
import os
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))     # simhosts
sys.path.insert(0, REPO)                            # nepi from this checkout, first
# the linux testbed is not an installed entry point in a plain checkout
os.environ["NEPI_TESTBEDS"] = "linux:nepi.testbeds.linux"

import simhosts  # noqa: E402
from nepi.core.design import ExperimentDescription, FactoriesProvider  # noqa: E402
from nepi.util import proxy  # noqa: E402
from nepi.util.constants import DeploymentConfiguration as DC  # noqa: E402

SOURCE_DIR = "hellosrc"
HELLO_C = r"""#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* "hello from <first non-loopback IPv4 address>": says which host it ran on */
int main(void) {
    struct ifaddrs *all, *ifa;
    char address[INET_ADDRSTRLEN] = "unknown";
    if (getifaddrs(&all) == 0) {
        for (ifa = all; ifa; ifa = ifa->ifa_next) {
            if (ifa->ifa_addr && ifa->ifa_addr->sa_family == AF_INET &&
                    strcmp(ifa->ifa_name, "lo") != 0) {
                inet_ntop(AF_INET, &((struct sockaddr_in *)ifa->ifa_addr)->sin_addr,
                          address, sizeof address);
                break;
            }
        }
        freeifaddrs(all);
    }
    printf("hello from %s\n", address);
    return 0;
}
"""
BUILD = "gcc -O2 -o hello %s/hello.c" % SOURCE_DIR
RUN = "./hello"
POLL = 0.05                 # seconds between is_finished rounds (as tests/helpers.py)
STEP_TIMEOUT = 300          # seconds any one baseline command may take
NEPI_TIMEOUT = 300.0


class Interrupted(Exception):
    pass


def _on_signal(signum, frame):
    raise Interrupted("signal %d" % signum)


class MethodFailed(Exception):
    pass


def expected(host):
    return "hello from %s\n" % host.address


# ---------------------------------------------------------------------------------------
# the common pieces
# ---------------------------------------------------------------------------------------

def ssh_options(sim):
    """What every method passes to ssh (nepi sets the same through its attributes)."""
    return ["-i", sim.key, "-o", "IdentitiesOnly=yes",
            "-o", "UserKnownHostsFile=%s" % sim.known_hosts,
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR"]


def run(argv, what):
    """Run a baseline command; its stdout, or MethodFailed saying what failed."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise MethodFailed("%s: no end within %d s" % (what, STEP_TIMEOUT)) from None
    if done.returncode != 0:
        raise MethodFailed("%s: exit %d: %s" % (what, done.returncode,
                                                (done.stderr or done.stdout).strip()[-300:]))
    return done.stdout


def home_entries(host, shared):
    """What the host's home holds (looked at from here: it is a local directory), minus
    the mount points of the paths shared with every host."""
    return sorted(set(os.listdir(host.home)) - shared)


def check_outputs(hosts, outputs):
    wrong = ["%s: %r (expected %r)" % (h.name, outputs.get(h.name), expected(h))
             for h in hosts if outputs.get(h.name) != expected(h)]
    if wrong:
        raise MethodFailed("wrong output: " + "; ".join(wrong[:3]) +
                           (" (and %d more)" % (len(wrong) - 3) if len(wrong) > 3 else ""))


def check_clean(hosts, shared, method):
    left = {h.name: home_entries(h, shared) for h in hosts}
    left = {k: v for k, v in left.items() if v}
    if left:
        raise MethodFailed("%s left files on the hosts: %s" % (method, left))


# ---------------------------------------------------------------------------------------
# the three methods; each returns (seconds, outputs by host name, phase seconds)
# ---------------------------------------------------------------------------------------

def run_sequential(sim, hosts, source, folder):
    opts = ssh_options(sim)
    outputs, phases = {}, {"upload": 0.0, "build+run": 0.0, "cleanup": 0.0}
    began = time.monotonic()
    try:
        for h in hosts:
            login = "%s@%s" % (h.user, h.address)
            t0 = time.monotonic()
            run(["ssh"] + opts + ["-p", str(h.port), "--", login, "mkdir -p " + folder],
                "ssh mkdir on %s" % h.name)
            run(["scp", "-q", "-r"] + opts + ["-P", str(h.port), source,
                                              "%s:%s/" % (login, folder)],
                "scp on %s" % h.name)
            t1 = time.monotonic()
            outputs[h.name] = run(["ssh"] + opts + [
                "-p", str(h.port), "--", login,
                "cd %s && %s && %s" % (folder, BUILD, RUN)], "build+run on %s" % h.name)
            t2 = time.monotonic()
            run(["ssh"] + opts + ["-p", str(h.port), "--", login, "rm -rf " + folder],
                "cleanup on %s" % h.name)
            phases["upload"] += t1 - t0
            phases["build+run"] += t2 - t1
            phases["cleanup"] += time.monotonic() - t2
        return time.monotonic() - began, outputs, phases
    except BaseException:
        cleanup_baseline(sim, hosts, folder)
        raise


def run_pssh(sim, hosts, source, folder, work):
    hosts_file = os.path.join(work, "hosts-%d" % len(hosts))
    with open(hosts_file, "w") as f:
        f.write("".join(h.spec() + "\n" for h in hosts))
    outdir = tempfile.mkdtemp(prefix="out-", dir=work)
    common = ["-h", hosts_file, "-p", str(len(hosts)), "-t", str(STEP_TIMEOUT)]
    for option in ssh_options(sim):
        common += ["-X", option]
    phases = {}
    began = time.monotonic()
    try:
        t0 = time.monotonic()
        # folder does not exist yet: scp -r creates it as the copy of the source folder,
        # so the layout matches (folder/hellosrc/hello.c) with one mkdir less
        run(["parallel-scp", "-r"] + common + [source, folder], "parallel-scp")
        t1 = time.monotonic()
        run(["parallel-ssh", "-o", outdir] + common +
            ["cd %s && %s && %s" % (folder, BUILD.replace(SOURCE_DIR + "/", ""), RUN)],
            "parallel-ssh build+run")
        outputs = {}
        for h in hosts:
            try:
                with open(os.path.join(outdir, h.spec())) as f:
                    outputs[h.name] = f.read()
            except OSError:
                outputs[h.name] = None
        t2 = time.monotonic()
        run(["parallel-ssh"] + common + ["rm -rf " + folder], "parallel-ssh cleanup")
        phases = {"upload": t1 - t0, "build+run": t2 - t1, "cleanup": time.monotonic() - t2}
        return time.monotonic() - began, outputs, phases
    except BaseException:
        cleanup_baseline(sim, hosts, folder)
        raise
    finally:
        shutil.rmtree(outdir, ignore_errors=True)


def cleanup_baseline(sim, hosts, folder):
    """After a failed or interrupted baseline: remove its folder from every host (untimed,
    best effort)."""
    for h in hosts:
        try:
            subprocess.run(sim.ssh_argv(h, "rm -rf " + folder), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=30)
        except Exception:
            pass


def scrub(hosts, shared):
    """Remove whatever a failed method left in the hosts' homes (local directories of
    our own simulated hosts; the shared mount points stay)."""
    for h in hosts:
        for name in home_entries(h, shared):
            simhosts.remove_path(os.path.join(h.home, name))


def nepi_design(sim, hosts, source):
    exp = ExperimentDescription()
    tb = exp.add_testbed_description(FactoriesProvider("linux"))
    tb.set_attribute_value("sshKey", sim.key)
    tb.set_attribute_value("sshKnownHosts", sim.known_hosts)
    apps = {}
    for h in hosts:
        node = tb.create("Node")
        node.set_attribute_value("hostname", h.address)
        node.set_attribute_value("sshUser", h.user)
        node.set_attribute_value("sshPort", h.port)
        app = tb.create("Application")
        app.set_attribute_value("sources", source)
        app.set_attribute_value("build", BUILD)
        app.set_attribute_value("command", RUN)
        app.enable_trace("stdout")
        node.connector("apps").connect(app.connector("node"))
        apps[h.name] = app.guid
    return exp.to_xml(), apps


# start()'s phases (progress events of the controller) as the table names them
DEPLOY_PHASES = (("do_create", "connect"), ("do_prestart", "upload+build"),
                 ("start", "launch"))


def deploy_phases(events):
    """Seconds of the deployment phases that matter here, from the controller's progress
    events (first "running" to last "done" of each phase)."""
    found = {}
    for phase, label in DEPLOY_PHASES:
        began = [e["time"] for e in events if e["phase"] == phase and e["state"] == "running"]
        done = [e["time"] for e in events if e["phase"] == phase and e["state"] == "done"]
        if began and done:
            found[label] = max(done) - min(began)
    return found


def run_nepi(sim, hosts, source, root, profile=None):
    xml, apps = nepi_design(sim, hosts, source)
    access = proxy.AccessConfiguration()
    access.set_attribute_value(DC.ROOT_DIRECTORY, root)
    controller = None
    phases = {}
    if profile is not None:
        profile.enable()
    began = time.monotonic()
    try:
        controller = proxy.create_experiment_controller(xml, access)
        t0 = time.monotonic()
        controller.start()
        t1 = time.monotonic()
        events = controller.progress_events()
        pending = set(apps.values())
        deadline = t1 + NEPI_TIMEOUT
        while pending:
            pending = {g for g in pending if not controller.is_finished(g)}
            if pending:
                if time.monotonic() > deadline:
                    raise MethodFailed("nepi: applications %s not finished after %d s"
                                       % (sorted(pending), NEPI_TIMEOUT))
                time.sleep(POLL)
        t2 = time.monotonic()
        outputs = {name: controller.trace(guid, "stdout") for name, guid in apps.items()}
        t3 = time.monotonic()
        controller.stop()
        t4 = time.monotonic()
        controller.shutdown()
        controller = None
        end = time.monotonic()
        phases = {"create": t0 - began}
        deploy = deploy_phases(events)
        phases.update(deploy)
        phases["other deploy"] = max(0.0, (t1 - t0) - sum(deploy.values()))
        phases.update({"wait finished": t2 - t1, "traces": t3 - t2, "stop": t4 - t3,
                       "shutdown": end - t4})
        return end - began, outputs, phases
    finally:
        if profile is not None:
            profile.disable()
        if controller is not None:
            try:
                controller.shutdown()
            except Exception as e:
                print("    nepi shutdown after a failure failed: %s" % e, file=sys.stderr)


# ---------------------------------------------------------------------------------------
# the bench
# ---------------------------------------------------------------------------------------

def missing_tools(want_pssh):
    why = simhosts.missing()
    if why:
        return why
    for tool in ("gcc", "scp"):
        if shutil.which(tool) is None:
            return "%s is not installed (make install-deb installs it)" % tool
    if want_pssh and shutil.which("parallel-ssh") is None:
        return ("parallel-ssh is not installed (make bench-deps, or apt-get install pssh; "
                "--no-pssh skips it)")
    return None


def fmt(value, pattern="%.2f"):
    return "-" if value is None else pattern % value


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def measure(sim, n, args, work, source, shared, results, phase_log, profile):
    hosts = sim.hosts[:n]
    methods = ["sequential"] + (["pssh"] if not args.no_pssh else []) + ["nepi"]
    times = {m: [] for m in methods}
    errors = {}
    for rep in range(args.repeat):
        for method in methods:
            if method in errors:
                continue
            tag = "bench-%d-%d-%d" % (os.getpid(), n, rep)
            try:
                if method == "sequential":
                    took, outputs, phases = run_sequential(sim, hosts, source, tag)
                elif method == "pssh":
                    took, outputs, phases = run_pssh(sim, hosts, source, tag, work)
                else:
                    root = os.path.join(work, "nepi-%d-%d" % (n, rep))
                    took, outputs, phases = run_nepi(
                        sim, hosts, source, root,
                        profile if n == max(args.sizes) else None)
                check_outputs(hosts, outputs)
                check_clean(hosts, shared, method)
            except (Interrupted, KeyboardInterrupt):
                raise
            except Exception as e:
                errors[method] = "%s%s" % ("" if isinstance(e, MethodFailed)
                                           else type(e).__name__ + ": ", e)
                print("    N=%d %-10s run %d FAILED: %s" % (n, method, rep + 1,
                                                            errors[method]), flush=True)
                # whatever it left must not spoil the other methods' checks
                cleanup_baseline(sim, hosts, tag)
                scrub(hosts, shared)
                continue
            times[method].append(took)
            phase_log.setdefault((n, method), []).append(phases)
            if args.verbose:
                print("    N=%d %-10s run %d: %.2f s  (%s)" % (
                    n, method, rep + 1, took, ", ".join(
                        "%s %.2f" % kv for kv in phases.items())), flush=True)
    results[n] = {m: (None if m in errors else statistics.median(times[m]))
                  for m in methods}
    results[n]["errors"] = errors


def print_table(sizes, results, repeat, no_pssh):
    print()
    print("upload + gcc build + run + stdout back + cleanup, median of %d run(s), seconds"
          % repeat)
    header = "%4s %12s %12s %10s %11s %11s  %s" % (
        "N", "sequential", "parallel-ssh", "nepi", "nepi/pssh", "nepi/seq",
        "target nepi <= pssh")
    print(header)
    print("-" * len(header))
    met_all = True
    for n in sizes:
        r = results.get(n)
        if r is None:
            continue
        seq, pssh, nepi = r.get("sequential"), r.get("pssh"), r.get("nepi")
        errors = r["errors"]

        def cell(method, value, width):
            if method in errors:
                return "%*s" % (width, "FAILED")
            if method == "pssh" and no_pssh:
                return "%*s" % (width, "skipped")
            return "%*s" % (width, fmt(value))
        rp = ratio(nepi, pssh)
        if rp is None:
            verdict = "n/a"
            met_all = False
        elif nepi <= pssh:
            verdict = "met"
        else:
            verdict = "NOT met (+%.2f s)" % (nepi - pssh)
            met_all = False
        print("%4d %s %s %s %11s %11s  %s" % (
            n, cell("sequential", seq, 12), cell("pssh", pssh, 12), cell("nepi", nepi, 10),
            fmt(rp), fmt(ratio(nepi, seq)), verdict))
    for n in sizes:
        for method, why in sorted(results.get(n, {}).get("errors", {}).items()):
            print("  N=%d %s FAILED: %s" % (n, method, why))
    return met_all


def print_phases(sizes, phase_log):
    print()
    print("where the time goes (median seconds per phase; sequential phases are summed "
          "over the hosts)")
    for n in sizes:
        for method in ("sequential", "pssh", "nepi"):
            runs = phase_log.get((n, method))
            if not runs:
                continue
            names = list(runs[0])
            print("  N=%-3d %-10s %s" % (n, method, ", ".join(
                "%s %.2f" % (name, statistics.median(r[name] for r in runs))
                for name in names)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", default="2,8,16",
                        help="comma-separated host counts (default 2,8,16)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per method and N; the median is shown (default 3)")
    parser.add_argument("--no-pssh", action="store_true", help="skip parallel-ssh")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile nepi's runs at the largest N (the calling thread only: per-host "
                        "work runs in nepi's threads); print the top entries")
    parser.add_argument("--verbose", action="store_true",
                        help="print every run's time and phases; nepi's log at INFO")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(s) for s in args.hosts.split(",") if s.strip()})
    except ValueError:
        parser.error("--hosts takes comma-separated integers, e.g. 2,8,16")
    if not args.sizes or min(args.sizes) < 1 or max(args.sizes) > simhosts.MAX_HOSTS:
        parser.error("host counts must be 1..%d" % simhosts.MAX_HOSTS)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if os.geteuid() != 0:
        print("bench_multi_host: needs root (simulated hosts are network and mount "
              "namespaces); run it with sudo", file=sys.stderr)
        return 2
    why = missing_tools(not args.no_pssh)
    if why:
        print("bench_multi_host: %s" % why, file=sys.stderr)
        return 2
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="      %(relativeCreated)8.0f ms "
                            "%(name)s %(levelname)s %(message)s")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    # outside the home (each host mounts its own over it); short, for socket paths
    work = tempfile.mkdtemp(prefix="nbmh-", dir="/tmp")
    source = os.path.join(work, SOURCE_DIR)
    os.mkdir(source)
    with open(os.path.join(source, "hello.c"), "w") as f:
        f.write(HELLO_C)
    print("multi-host benchmark: %d CPUs, kernel %s, python %s, %s"
          % (os.cpu_count(), os.uname().release, sys.version.split()[0],
             subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()))
    sim = None
    load_start = os.getloadavg()[0]
    results, phase_log = {}, {}
    profile = cProfile.Profile() if args.profile else None
    try:
        began = time.monotonic()
        sim = simhosts.SimHosts.up(os.path.join(work, "hosts"), max(args.sizes))
        print("%d simulated hosts up in %.1f s (%s)" % (max(args.sizes),
                                                        time.monotonic() - began,
                                                        sim.subnet), flush=True)
        shared = {h: set(os.listdir(h.home)) for h in sim.hosts}
        shared = set().union(*shared.values())
        for n in args.sizes:
            print("  N=%d ..." % n, flush=True)
            measure(sim, n, args, work, source, shared, results, phase_log, profile)
        print_table(args.sizes, results, args.repeat, args.no_pssh)
        print_phases(args.sizes, phase_log)
        print("load average (1 min) at start %.2f, at end %.2f on %d CPUs: the methods "
              "share the machine with whatever else runs" % (load_start, os.getloadavg()[0],
                                                             os.cpu_count()))
        if profile is not None:
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out)
            stats.sort_stats("cumulative").print_stats(35)
            print()
            print("cProfile of nepi at N=%d (cumulative, %d run(s)):" % (max(args.sizes),
                                                                        args.repeat))
            print(out.getvalue())
    except (Interrupted, KeyboardInterrupt) as e:
        print("\ninterrupted (%s); removing the simulated hosts" % (e or "^C"),
              file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)      # let the cleanup finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if sim is not None:
                sim.down()
        finally:
            shutil.rmtree(work, ignore_errors=True)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # a missed target is reported, not an error; a failed method is
    return 1 if any(r["errors"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
