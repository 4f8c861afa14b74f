"""Build, write, read and deploy mock designs of 5,000 and 50,000 elements in-process.

For each size: the total and per-element time (wall clock, and CPU of this process in
brackets) of building the design, writing its XML, reading the XML back into a design,
deploying it (controller construction: parse and validate, then start) and shutting it
down (stop and shutdown). Then, for each, the ratio per-element(largest) /
per-element(smallest): the engine stays linear if deploy + shutdown is within 1.2; and the
XML round trip (write + read back into a design) at the largest size, target <= 2 s.

    python bench/bench_mock_deploy.py [--phases] [--repeat N] [SIZE ...]

--phases adds the seconds of each deployment phase (from the controller's progress
events). Figures from a busy machine are noisy: compare ratios within one run.
"""

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from typing import Callable, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from nepi.core.design import ExperimentDescription, FactoriesProvider  # noqa: E402
from nepi.core.execute import ExperimentController  # noqa: E402

SIZES = [5000, 50000]
TARGET_RATIO = 1.2          # per-element deploy + shutdown, largest / smallest size
TARGET_ROUND_TRIP = 2.0     # seconds, XML write + read at the largest size
STEPS = ("design build", "XML write", "XML read", "deploy", "shutdown")
ENGINE = ("deploy", "shutdown")


def build_design(elements: int, testbed_id: str = "mock") -> ExperimentDescription:
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

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.phases: Dict[str, float] = {}

    def __call__(self, event: dict) -> None:
        now = time.perf_counter()
        if event["state"] in ("done", "failed"):
            self.phases[event["phase"]] = self.phases.get(event["phase"], 0.0) + \
                (now - self.last)
            self.last = now


Timing = Tuple[float, float]     # (wall seconds, CPU seconds)


def timed(fn: Callable[[], object]) -> Tuple[object, Timing]:
    """fn()'s result and how long it took; garbage from earlier steps is collected
    first, so that no step pays for another."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, (time.perf_counter() - wall, time.process_time() - cpu)


def run_once(elements: int) -> Tuple[Dict[str, Timing], Dict[str, float]]:
    """One build, write, read, deploy and shutdown of a design of ``elements`` boxes."""
    timings: Dict[str, Timing] = {}
    exp, timings["design build"] = timed(lambda: build_design(elements))
    xml, timings["XML write"] = timed(exp.to_xml)
    del exp

    def read_back() -> ExperimentDescription:
        design = ExperimentDescription()
        design.from_xml(xml)
        return design

    design, timings["XML read"] = timed(read_back)
    del design
    root = tempfile.mkdtemp(prefix="nepi-bench-")
    clock = PhaseClock()
    try:
        def deploy() -> ExperimentController:
            controller = ExperimentController(xml, root)
            controller.add_progress_listener(clock)
            clock.last = time.perf_counter()
            controller.start()
            return controller

        controller, timings["deploy"] = timed(deploy)

        def shutdown() -> None:
            controller.stop()
            controller.shutdown()

        _, timings["shutdown"] = timed(shutdown)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return timings, clock.phases


def median_run(runs: List[Tuple[Dict[str, Timing], Dict[str, float]]]):
    """The run whose engine time (deploy + shutdown) is the median."""
    runs = sorted(runs, key=lambda r: sum(r[0][s][0] for s in ENGINE))
    return runs[len(runs) // 2]


def engine_sum(timings: Dict[str, Timing]) -> Timing:
    """(wall, CPU) of deploy + shutdown."""
    return (sum(timings[s][0] for s in ENGINE), sum(timings[s][1] for s in ENGINE))


def per_element_us(seconds: float, elements: int) -> float:
    return seconds / elements * 1e6


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=SIZES)
    parser.add_argument("--phases", action="store_true",
                        help="also show the seconds of each deployment phase")
    parser.add_argument("--repeat", type=int, default=0,
                        help="runs per size (default: 3 below 20,000 elements, else 1)")
    args = parser.parse_args(argv)
    sizes = sorted(args.sizes)
    print("nepi mock benchmark (in-process), Python %s; wall seconds [CPU seconds]"
          % sys.version.split()[0])
    results = {}
    for n in sizes:
        repeat = args.repeat or (3 if n < 20000 else 1)
        timings, phases = median_run([run_once(n) for _ in range(repeat)])
        results[n] = timings
        print()
        print("== %d elements (%d run%s%s)" % (n, repeat, "s" if repeat > 1 else "",
                                               ", median shown" if repeat > 1 else ""))
        print("  %-24s %9s %9s %13s" % ("", "total s", "[CPU s]", "per element"))
        for step in STEPS + ("deploy + shutdown",):
            wall, cpu = engine_sum(timings) if step == "deploy + shutdown" else timings[step]
            print("  %-24s %9.3f [%7.3f] %10.1f us" % (step, wall, cpu,
                                                      per_element_us(wall, n)))
        if args.phases:
            print("  deployment phases:")
            for phase, seconds in phases.items():
                print("    %-30s %8.3f s" % (phase, seconds))
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        print()
        print("per-element ratio %d / %d elements (1.0 = linear):" % (large, small))
        for step in STEPS + ("deploy + shutdown",):
            pick = engine_sum if step == "deploy + shutdown" else (lambda t, s=step: t[s])
            (wl, cl), (ws, cs) = pick(results[large]), pick(results[small])
            print("  %-24s %6.2f [%5.2f]" % (step, (wl / large) / (ws / small),
                                              (cl / large) / (cs / small)))
        wl, ws = engine_sum(results[large])[0], engine_sum(results[small])[0]
        ratio = (wl / large) / (ws / small)
        print("deploy + shutdown ratio %.2f (target <= %.1f: %s)"
              % (ratio, TARGET_RATIO, "met" if ratio <= TARGET_RATIO else "NOT met"))
    largest = sizes[-1]
    trip = sum(results[largest][s][0] for s in ("XML write", "XML read"))
    print("XML round trip at %d elements: %.3f s (target <= %.1f s: %s)"
          % (largest, trip, TARGET_ROUND_TRIP, "met" if trip <= TARGET_ROUND_TRIP else
             "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
