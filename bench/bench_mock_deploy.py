"""Deploy and shut down a mock experiment of 100, 1,000 and 5,000 elements in-process.

Prints seconds per phase (from the experiment controller's progress events), elements
per second, and the ratio time(5,000) / time(1,000) of the engine's own work
(controller construction + start + stop + shutdown); target <= 5.5 (linear).

    python bench/bench_mock_deploy.py [SIZE ...]
"""

import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from nepi.core.design import ExperimentDescription, FactoriesProvider  # noqa: E402
from nepi.core.execute import ExperimentController  # noqa: E402

SIZES = [100, 1000, 5000]
REPEATS = {100: 5, 1000: 3, 5000: 3}
TARGET_RATIO = 5.5


def build_design(elements, testbed_id="mock"):
    """``elements`` mock boxes: groups of two Nodes, each with an Interface (node <-> devs)
    and an Application (node <-> apps, trace "fake"), the two Interfaces linked
    (iface <-> iface); the remainder are plain Nodes."""
    exp = ExperimentDescription()
    desc = exp.add_testbed_description(FactoriesProvider(testbed_id))
    desc.set_attribute_value("fake", True)
    count = 0
    while count + 6 <= elements:
        ifaces = []
        for _ in range(2):
            node = desc.create("Node")
            iface = desc.create("Interface")
            iface.set_attribute_value("fake", True)
            node.connector("devs").connect(iface.connector("node"))
            app = desc.create("Application")
            app.connector("node").connect(node.connector("apps"))
            app.enable_trace("fake")
            ifaces.append(iface)
        ifaces[0].connector("iface").connect(ifaces[1].connector("iface"))
        count += 6
    while count < elements:
        desc.create("Node")
        count += 1
    return exp


class PhaseClock:
    """Seconds per phase: the time since the previous progress event, charged to the
    phase of each 'done' event (phases run one after another)."""

    def __init__(self):
        self.last = None
        self.phases = {}
        self.active = False

    def start(self):
        self.last = time.perf_counter()
        self.active = True

    def __call__(self, event):
        now = time.perf_counter()
        if self.active and event["state"] in ("done", "failed"):
            self.phases[event["phase"]] = self.phases.get(event["phase"], 0.0) + \
                (now - self.last)
            self.last = now


def run_once(xml, elements):
    root = tempfile.mkdtemp(prefix="nepi-bench-")
    timings = {}
    persisted = []
    original = ExperimentController._persist_execute_xml

    def timed_persist(self):
        t = time.perf_counter()
        try:
            return original(self)
        finally:
            persisted.append(time.perf_counter() - t)
    ExperimentController._persist_execute_xml = timed_persist
    try:
        t0 = time.perf_counter()
        controller = ExperimentController(xml, root)
        t1 = time.perf_counter()
        clock = PhaseClock()
        controller.add_progress_listener(clock)
        clock.start()
        controller.start()
        t2 = time.perf_counter()
        clock.active = False
        controller.stop()
        t3 = time.perf_counter()
        controller.shutdown()
        t4 = time.perf_counter()
    finally:
        ExperimentController._persist_execute_xml = original
        shutil.rmtree(root, ignore_errors=True)
    phases = {}
    for phase, seconds in clock.phases.items():
        if phase == "start" and persisted:
            # the gap before 'start done' also holds the final netref pass and the
            # execute XML (design + runtime values) written to the root dir
            phases["persist execute XML"] = persisted[0]
            seconds -= persisted[0]
        phases[phase] = seconds
    timings["construct (parse + validate)"] = t1 - t0
    timings["start (all phases)"] = t2 - t1
    timings["stop"] = t3 - t2
    timings["shutdown"] = t4 - t3
    timings["engine total"] = t4 - t0
    return timings, phases


def fmt(seconds):
    return "%8.3f s" % seconds


def main(argv):
    sizes = [int(a) for a in argv] or SIZES
    print("nepi mock deployment benchmark (in-process), Python %s" % sys.version.split()[0])
    totals = {}
    for n in sizes:
        t = time.perf_counter()
        exp = build_design(n)
        build = time.perf_counter() - t
        t = time.perf_counter()
        xml = exp.to_xml()
        to_xml = time.perf_counter() - t
        runs = [run_once(xml, n) for _ in range(REPEATS.get(n, 3))]
        # the run with the median engine total represents the size
        runs.sort(key=lambda r: r[0]["engine total"])
        timings, phases = runs[len(runs) // 2]
        totals[n] = timings["engine total"]
        print()
        print("== %d elements (%d runs, median shown)" % (n, len(runs)))
        print("  %-34s %s" % ("build design (not engine)", fmt(build)))
        print("  %-34s %s" % ("to_xml (not engine)", fmt(to_xml)))
        for name in ("construct (parse + validate)",):
            print("  %-34s %s" % (name, fmt(timings[name])))
        print("  start, per phase:")
        for phase, seconds in phases.items():
            print("    %-32s %s" % (phase, fmt(seconds)))
        for name in ("start (all phases)", "stop", "shutdown", "engine total"):
            print("  %-34s %s" % (name, fmt(timings[name])))
        print("  %-34s %10.0f elements/s (deploy: construct + start)"
              % ("throughput", n / (timings["construct (parse + validate)"]
                                    + timings["start (all phases)"])))
        print("  %-34s %10.0f elements/s (engine total)" % ("", n / timings["engine total"]))
    if 1000 in totals and 5000 in totals:
        ratio = totals[5000] / totals[1000]
        print()
        print("ratio engine time 5,000 / 1,000 elements: %.2f (target <= %.1f: %s)"
              % (ratio, TARGET_RATIO, "met" if ratio <= TARGET_RATIO else "NOT met"))


if __name__ == "__main__":
    main(sys.argv[1:])
