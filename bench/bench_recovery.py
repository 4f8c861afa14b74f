"""Time from kill -9 to a working experiment again, at each kill point.

A netns star of N nodes (default 200) runs as one testbed daemon under nepid (`nepid run`).
Each node runs an application (as in tests/test_crash_matrix.py). For each kill point
(during do_create, do_connect_init, do_configure, start; after start; during shutdown)
and each target (the testbed daemon under the Restart policy, nepid followed by `nepid
recover`), the daemon is killed with SIGKILL at the moment the manifest says so, and the
time until a ping crosses the star again is printed beside the time a plain deployment of
the same star takes (goal: <= that deployment time + 0.5 s); for a kill during shutdown,
the time until the shutdown is finished. After each run `nepid stop` must leave nothing:
the last column says what was left, if anything.

    sudo python bench/bench_recovery.py [--nodes N] [--points P ...] [--targets T ...]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from crash_matrix import POINTS, TARGETS, CrashRun, nepid  # noqa: E402
from nepi.util.constants import DeploymentConfiguration as DC  # noqa: E402


def deploy_time(base: str, nodes: int) -> float:
    """Seconds of a plain `nepid run` of the star (start to started), then stopped."""
    run = CrashRun(os.path.join(base, "plain"), nodes, DC.POLICY_RESTART)
    began = time.monotonic()
    proc = nepid("run", "-q", run.design, "--root-dir", run.root)
    took = time.monotonic() - began
    if proc.returncode != 0:
        raise SystemExit("plain deployment failed: %s" % proc.stderr.strip())
    nepid("stop", "--root-dir", run.root, "--no-traces")
    return took


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--points", nargs="+", default=list(POINTS), choices=POINTS)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (network namespaces)")
        return 1
    base = tempfile.mkdtemp(prefix="nepi-bench-recovery-")
    try:
        plain = deploy_time(base, args.nodes)
        print("netns star of %d nodes, testbed daemon under nepid" % args.nodes)
        print("plain deployment (nepid run, start to started): %.2f s; goal per kill: "
              "<= %.2f s" % (plain, plain + 0.5))
        print("%-16s %-8s %-10s %12s %8s  %s" % ("kill point", "target", "outcome",
                                                 "to the end", "ratio", "left after stop"))
        worst = 0.0
        for point in args.points:
            for target in args.targets:
                root = os.path.join(base, "%s-%s" % (point, target))
                result = CrashRun(root, args.nodes, DC.POLICY_RESTART).run(point, target)
                seconds = result.get("seconds")
                if seconds is not None and result["outcome"] == "working":
                    worst = max(worst, seconds)
                print("%-16s %-8s %-10s %12s %8s  %s" % (
                    point, target, result["outcome"],
                    "%.2f s" % seconds if seconds is not None else "-",
                    "%.2f" % (seconds / plain) if result["outcome"] == "working" else "-",
                    ", ".join(result["left"]) or "nothing"))
                sys.stdout.flush()
        print("worst kill -> working: %.2f s (goal <= %.2f s: %s)"
              % (worst, plain + 0.5, "met" if worst <= plain + 0.5 else "NOT met"))
        return 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
