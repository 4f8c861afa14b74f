"""What daemon mode costs.

1. Start-up: from asking for a testbed daemon (mock, netns) to its first answer, forked
   from nepi's preloaded launcher process (nepi.rpc.zygote) and the old way (python -m,
   NEPI_NO_ZYGOTE=1); target <= 50 ms.
2. The same 2,000-element mock experiment deployed in-process (EC and testbed in this
   process), with a testbed daemon (EC in this process), and with the EC daemon (nepid)
   and a testbed daemon: seconds and the ratio daemon / in-process (target <= 1.3).
3. `nepid run` of a small netns design (2 nodes on a switch, testbed daemon), end to end
   as a user types it (CLI start-up included), then `nepid stop`; target <= 0.3 s. Needs
   root; skipped otherwise.
4. The time from kill -9 of the EC daemon to answering again via recover=True (<= 2 s).

    python bench/bench_daemon_overhead.py [ELEMENTS]
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from bench_mock_deploy import build_design  # noqa: E402

from nepi.util import proxy  # noqa: E402
from nepi.util.constants import DeploymentConfiguration as DC  # noqa: E402

ELEMENTS = 2000
REPEATS = 3
RECOVERY_TRIALS = 3
TARGET_RATIO = 1.3
TARGET_STARTUP_MS = 50.0
TARGET_NEPID_RUN = 0.3
STARTUP_TRIALS = 7
TARGET_RECOVERY = 2.0
MODES = [("in-process", False, False), ("testbed daemon", True, False),
         ("EC + testbed daemons", True, True)]


def design_xml(elements, testbed_daemon):
    exp = build_design(elements)
    if testbed_daemon:
        desc = exp.testbed_descriptions[0]
        desc.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
    return exp.to_xml()


def access_config(root, ec_daemon):
    config = proxy.AccessConfiguration()
    config.set_attribute_value(DC.ROOT_DIRECTORY, root)
    if ec_daemon:
        config.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
    return config


def first_app_guid(elements):
    return 4 if elements >= 6 else None      # testbed 1, node 2, iface 3, app 4


def run_once(xml, ec_daemon, app_guid):
    root = tempfile.mkdtemp(prefix="nepi-bench-")
    controller = None
    try:
        t0 = time.perf_counter()
        controller = proxy.create_experiment_controller(xml, access_config(root, ec_daemon))
        t1 = time.perf_counter()
        controller.start()
        t2 = time.perf_counter()
        finished = controller.is_finished(app_guid)
        t3 = time.perf_counter()
        controller.stop()
        controller.shutdown()
        t4 = time.perf_counter()
        controller = None
        return {"create": t1 - t0, "start": t2 - t1, "query": t3 - t2,
                "stop + shutdown": t4 - t3, "total": t4 - t0, "ok": finished is True}
    finally:
        if controller is not None:
            try:
                controller.shutdown()
            except Exception:
                kill_daemons(root)
        shutil.rmtree(root, ignore_errors=True)


def wait_gone(pid, timeout=5.0):
    """Until the killed process is reaped, or a zombie whose threads have all exited
    (only then are its files, e.g. the pid-file lock, released)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state == "Z" and len(os.listdir("/proc/%d/task" % pid)) <= 1:
                return
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(0.002)


def recovery_trial(xml, app_guid):
    """Seconds from kill -9 of nepid to the first answer via recover=True."""
    root = tempfile.mkdtemp(prefix="nepi-bench-")
    config = access_config(root, True)
    controller = proxy.create_experiment_controller(xml, config)
    try:
        controller.start()
        pid = controller.pid
        t0 = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)            # counted: recovering starts once the daemon is dead
        config.set_attribute_value(DC.RECOVER, True)
        controller = proxy.create_experiment_controller(xml, config)
        answer = controller.is_finished(app_guid)
        elapsed = time.perf_counter() - t0
        same_testbeds = not controller.failed_testbeds()
        return elapsed, answer is True and same_testbeds and controller.pid != pid
    finally:
        try:
            controller.stop()
            controller.shutdown()
        except Exception as e:
            print("  (clean-up after the recovery trial failed: %s; killing its daemons)" % e)
            kill_daemons(root)
        shutil.rmtree(root, ignore_errors=True)


def kill_daemons(root):
    """Last resort: SIGKILL every daemon the manifest of ``root`` lists (pid verified by
    its start time)."""
    from nepi.rpc.liveness import is_same_process
    from nepi.rpc.manifest import Manifest
    for entry in Manifest(root).daemons().values():
        pid = entry.get("pid")
        if is_same_process(pid, entry.get("start_time")):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def startup_trial(testbed_id):
    """Milliseconds from asking for a testbed daemon to its first answer (launch, ready
    record, connection, ping), and from asking to its ready record alone."""
    from nepi.core.metadata import Metadata
    from nepi.rpc.tc_client import launch_testbed_daemon
    root = tempfile.mkdtemp(prefix="nepi-bench-")
    config = proxy.AccessConfiguration()
    config.set_attribute_value(DC.ROOT_DIRECTORY, root)
    version = Metadata(testbed_id).testbed_version
    try:
        t0 = time.perf_counter()
        controller = launch_testbed_daemon(testbed_id, version, config, 1)
        controller.ping()
        elapsed = (time.perf_counter() - t0) * 1000
        controller.shutdown()
        return elapsed
    finally:
        shutil.rmtree(root, ignore_errors=True)


def startup_section():
    from nepi.rpc import zygote
    testbeds = ["mock"] + (["netns"] if os.geteuid() == 0 else [])
    print("\n== daemon start-up: asked -> first answer (median of %d, ms; target <= %.0f)"
          % (STARTUP_TRIALS, TARGET_STARTUP_MS))
    zygote.preload()
    time.sleep(3.0)                 # let it finish preloading: the steady state of nepid
    rows = {}
    for testbed_id in testbeds:
        forked = statistics.median(startup_trial(testbed_id) for _ in range(STARTUP_TRIALS))
        os.environ["NEPI_NO_ZYGOTE"] = "1"
        try:
            plain = statistics.median(startup_trial(testbed_id)
                                      for _ in range(STARTUP_TRIALS))
        finally:
            del os.environ["NEPI_NO_ZYGOTE"]
        rows[testbed_id] = forked, plain
        print("  %-6s forked %6.1f ms  python -m %6.1f ms  ratio %.2f  %s"
              % (testbed_id, forked, plain, forked / plain,
                 "met" if forked <= TARGET_STARTUP_MS else "NOT met"))
    zygote.shutdown()
    return rows


def small_netns_design(path):
    from nepi.core.design import ExperimentDescription, FactoriesProvider
    exp = ExperimentDescription()
    netns = exp.add_testbed_description(FactoriesProvider("netns"))
    netns.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
    switch = netns.create("Switch")
    for i in range(2):
        node = netns.create("Node")
        iface = netns.create("NodeInterface")
        iface.set_attribute_value("up", True)
        node.connector("devs").connect(iface.connector("node"))
        iface.connector("switch").connect(switch.connector("devs"))
        ip = iface.add_address()
        ip.set_attribute_value("Address", "10.213.0.%d" % (i + 1))
        ip.set_attribute_value("NetPrefix", 24)
    with open(path, "w") as f:
        f.write(exp.to_xml())


def nepid_run_trial(design, env):
    """Seconds of `nepid run` and of `nepid stop`. nepid is stopped (its testbed daemon's
    namespaces removed) before the root dir is, also when the run failed."""
    root = tempfile.mkdtemp(prefix="nepi-bench-")
    nepid = [sys.executable, "-m", "nepi.cli.nepid_cmd"]
    try:
        t0 = time.perf_counter()
        run = subprocess.run(nepid + ["run", "-q", "--root-dir", root, design],
                             capture_output=True, text=True, env=env)
        elapsed = time.perf_counter() - t0
    finally:
        t1 = time.perf_counter()
        stop = subprocess.run(nepid + ["stop", "--root-dir", root],
                              capture_output=True, text=True, env=env)
        stopped = time.perf_counter() - t1
        if stop.returncode == 0:
            shutil.rmtree(root, ignore_errors=True)
    if run.returncode or stop.returncode:
        raise RuntimeError("nepid run/stop failed (root dir %s kept for `nepid clean`): %s%s"
                           % (root, run.stderr, stop.stderr))
    return elapsed, stopped


def nepid_run_section():
    if os.geteuid() != 0:
        print("\n== nepid run of a small netns design: skipped (needs root)")
        return
    folder = tempfile.mkdtemp(prefix="nepi-bench-")
    design = os.path.join(folder, "small.xml")
    small_netns_design(design)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    print("\n== `nepid run` of a 2-node netns design, end to end (median of 3; target "
          "<= %.1f s)" % TARGET_NEPID_RUN)
    try:
        for name, extra in (("forked daemons", {}), ("python -m", {"NEPI_NO_ZYGOTE": "1"})):
            runs = sorted(nepid_run_trial(design, dict(env, **extra)) for _ in range(3))
            run, stop = runs[1]
            print("  %-15s run %.3f s  stop %.3f s  %s" % (
                name, run, stop, "" if extra else
                ("met" if run <= TARGET_NEPID_RUN else "NOT met")))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv):
    elements = int(argv[0]) if argv else ELEMENTS
    app_guid = first_app_guid(elements)
    print("nepi daemon overhead benchmark: %d-element mock experiment, %d runs per mode "
          "(median), Python %s" % (elements, REPEATS, sys.version.split()[0]))
    startup_section()
    nepid_run_section()
    medians = {}
    for name, testbed_daemon, ec_daemon in MODES:
        xml = design_xml(elements, testbed_daemon)
        runs = [run_once(xml, ec_daemon, app_guid) for _ in range(REPEATS)]
        runs.sort(key=lambda r: r["total"])
        median = runs[len(runs) // 2]
        medians[name] = median
        print()
        print("== %s%s" % (name, "" if all(r["ok"] for r in runs)
                           else "  (WARNING: is_finished was not True)"))
        for key in ("create", "start", "query", "stop + shutdown", "total"):
            print("  %-18s %8.3f s" % (key, median[key]))
        print("  %-18s %s" % ("all totals", ", ".join("%.3f" % r["total"] for r in runs)))
    fixed = {}
    for name, testbed_daemon, ec_daemon in MODES:
        xml = design_xml(6, testbed_daemon)
        runs = sorted((run_once(xml, ec_daemon, 4) for _ in range(REPEATS)),
                      key=lambda r: r["total"])
        fixed[name] = runs[len(runs) // 2]
    print()
    print("fixed cost per mode (6-element experiment, median): "
          + ", ".join("%s %.3f s (deploy %.3f s)" % (n, r["total"], r["create"] + r["start"])
                      for n, r in fixed.items()))

    def deploy(r):
        return r["create"] + r["start"]
    base = medians["in-process"]
    print()
    print("ratios to in-process (target <= %.1f):" % TARGET_RATIO)
    for name, _, _ in MODES[1:]:
        ratio = deploy(medians[name]) / deploy(base)
        total = medians[name]["total"] / base["total"]
        variable = (deploy(medians[name]) - deploy(fixed[name])) / \
            max(deploy(base) - deploy(fixed["in-process"]), 1e-9)
        print("  %-22s deploy (create + start) %.2f  %s" % (
            name, ratio, "met" if ratio <= TARGET_RATIO else "NOT met"))
        print("  %-22s total (incl. stop + shutdown) %.2f" % ("", total))
        print("  %-22s deploy without the fixed cost (per-element part) %.2f" % ("", variable))

    print()
    print("EC kill -9 -> answering again via recover=True (target <= %.1f s):"
          % TARGET_RECOVERY)
    xml = design_xml(elements, True)
    times = []
    for i in range(RECOVERY_TRIALS):
        try:
            elapsed, ok = recovery_trial(xml, app_guid)
        except Exception as e:
            print("  trial %d: FAILED: %s: %s" % (i + 1, type(e).__name__, e))
            continue
        times.append(elapsed)
        print("  trial %d: %.3f s%s" % (i + 1, elapsed, "" if ok else
                                        "  (WARNING: answer or testbeds not as before)"))
    if times:
        median = statistics.median(times)
        print("  median %.3f s (%s)" % (median, "met" if median <= TARGET_RECOVERY
                                        else "NOT met"))


if __name__ == "__main__":
    main(sys.argv[1:])
