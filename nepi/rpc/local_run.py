"""``nepi run``: an experiment deployed in this process and seen through — deploy, wait for
its applications (or a duration, a timeout, a failure, a signal), stop, copy the traces,
shut everything down. The command line (nepi.cli.run_cmd) decides when, handles signals
and prints; this module does each step.
"""

import os
import threading
import time
from typing import Callable, Iterable, List, NamedTuple, Optional

from nepi.core.execute import ExperimentController
from nepi.rpc.rootdir import refuse_busy_root
from nepi.rpc.testbed_launchers import default_launcher
from nepi.rpc.traces import TraceCopy, copy_traces
from nepi.util import rootfiles
from nepi.util.constants import ApplicationStatus as AS
from nepi.util.logfile import log_to_file

POLL_INTERVAL = 0.2
STATUS_ERRORS_TOLERATED = 25        # consecutive failing polls (5 s) before giving up

# what a finished run leaves in its root dir besides logs and traces
STATE_FILES = (rootfiles.DESIGN_XML, rootfiles.EXECUTE_XML, rootfiles.MANIFEST)


class WaitResult(NamedTuple):
    outcome: str          # finished | nothing | duration | timeout | failed | interrupted
    reason: str = ""      # for failed and timeout


class Waiter:
    """Polls element statuses until the applications are done (or another end)."""

    def __init__(self, controller, stop: threading.Event, duration: Optional[float],
                 timeout: Optional[float], describe_error: Callable[[Exception], str] = str,
                 poll_interval: float = POLL_INTERVAL) -> None:
        self.controller = controller
        self.stop = stop
        self.duration = duration
        self.timeout = timeout
        self.describe_error = describe_error
        self.poll_interval = poll_interval
        self.pending: List[int] = []
        self.watched = 0

    def _initial(self) -> None:
        self.watched, self.pending = 0, []
        for guid in self.controller.guids:
            status = self.controller.status(guid)
            if status != AS.STATUS_UNDETERMINED:
                self.watched += 1
                if status != AS.STATUS_FINISHED:
                    self.pending.append(guid)

    def _poll(self) -> None:
        self.pending = [g for g in self.pending
                        if self.controller.status(g) not in (AS.STATUS_FINISHED,
                                                             AS.STATUS_UNDETERMINED)]

    def _failed(self) -> Optional[str]:
        failed = self.controller.failed_testbeds()
        if failed:
            return "; ".join("testbed %s: %s" % (g, why) for g, why in sorted(failed.items()))
        if self.controller.state == "failed":
            return self.controller.error or "experiment failed"
        return None

    def wait(self) -> WaitResult:
        began = time.monotonic()
        errors = 0
        first = True
        while True:
            try:
                if first:
                    self._initial()
                    first = False
                else:
                    self._poll()
                failure = self._failed()
                errors = 0
            except Exception as e:    # a testbed daemon died: the watcher applies its policy
                errors += 1
                failure = None
                if errors >= STATUS_ERRORS_TOLERATED:
                    return WaitResult("failed", "lost contact with the experiment: %s"
                                      % self.describe_error(e))
            if failure:
                return WaitResult("failed", failure)
            if not first and errors == 0:
                if self.watched and not self.pending:
                    return WaitResult("finished")
                if not self.watched and self.duration is None:
                    return WaitResult("nothing")
            elapsed = time.monotonic() - began
            if self.duration is not None and elapsed >= self.duration:
                return WaitResult("duration")
            if self.timeout is not None and elapsed >= self.timeout and self.pending:
                n = len(self.pending)
                return WaitResult("timeout", "%d application%s still running after %g s "
                                  "(--timeout): element%s %s" % (
                                      n, "" if n == 1 else "s", self.timeout,
                                      "" if n == 1 else "s",
                                      ", ".join(str(g) for g in self.pending[:20])
                                      + (" ..." if n > 20 else "")))
            if self.stop.wait(self.poll_interval):
                return WaitResult("interrupted")


class LocalRun:
    """One ``nepi run`` of a design in ``root_dir``, its testbeds launched as the design
    says (in-process, as daemons, over SSH)."""

    def __init__(self, xml, root_dir: str, allowed_roots: Optional[List[str]] = None) -> None:
        self.xml = xml
        self.root_dir = os.path.abspath(root_dir)
        self.allowed_roots = allowed_roots
        self.controller: Optional[ExperimentController] = None

    @property
    def logs_dir(self) -> str:
        return os.path.join(self.root_dir, rootfiles.LOGS_DIR)

    @property
    def traces_dir(self) -> str:
        return os.path.join(self.root_dir, rootfiles.TRACES_DIR)

    def prepare(self, debug: bool = False) -> None:
        """Make the root dir (refusing one a nepid or live daemons use) and log there."""
        os.makedirs(self.root_dir, exist_ok=True)
        refuse_busy_root(self.root_dir)
        log_to_file(rootfiles.log_file(self.root_dir, "nepi-run"), debug)

    def deploy(self, listeners: Iterable[Callable[[dict], None]] = ()) -> None:
        """Validate and deploy; ``listeners`` get every progress event. A failed or
        interrupted deployment is rolled back before this raises."""
        self.controller = ExperimentController(self.xml, self.root_dir, self.allowed_roots,
                                               launcher=default_launcher())
        for listener in listeners:
            self.controller.add_progress_listener(listener)
        self.controller.start()

    def wait(self, stop: threading.Event, duration: Optional[float] = None,
             timeout: Optional[float] = None,
             describe_error: Callable[[Exception], str] = str) -> WaitResult:
        return Waiter(self.controller, stop, duration, timeout, describe_error).wait()

    def stop(self) -> None:
        self.controller.stop()

    def copy_traces(self) -> TraceCopy:
        return copy_traces(self.controller, self.root_dir)

    def shutdown(self) -> None:
        if self.controller is not None:
            self.controller.shutdown()

    def state_files(self) -> List[str]:
        """The state files the root dir keeps (experiment.xml, execute.xml, manifest)."""
        return [name for name in STATE_FILES
                if os.path.exists(os.path.join(self.root_dir, name))]
