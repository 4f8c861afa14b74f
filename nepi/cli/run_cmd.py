"""``nepi run FILE.xml --root-dir DIR``: deploy an experiment in this process and see it
through: progress while deploying, wait for the applications, copy the traces, stop and
shut everything down — also after a failure, Ctrl-C or SIGTERM.

Exit status: 0 success; 1 invalid design, failed deployment, failed testbed or timeout;
130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

import argparse
import os
import signal
import threading
import time
from typing import List, Optional

from nepi.cli.common import (EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEMS, CliError,
                             allow_root_argument, err, load_valid_design, out, plural)
from nepi.cli.progress import ProgressDisplay, one_line
from nepi.cli.traces import TRACES_DIR, copy_traces
from nepi.util.logfile import log_to_file

POLL_INTERVAL = 0.2
STATUS_ERRORS_TOLERATED = 25        # consecutive failing polls (5 s) before giving up


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE.xml", help="experiment design file ('-' reads stdin)")
    allow_root_argument(parser)
    parser.add_argument("--root-dir", required=True, metavar="DIR",
                        help="directory for the experiment's state, logs and traces "
                             "(created if needed)")
    parser.add_argument("--duration", type=_seconds, metavar="S",
                        help="stop after S seconds even if applications still run "
                             "(a normal end)")
    parser.add_argument("--timeout", type=_seconds, metavar="S",
                        help="fail if the applications have not finished after S seconds")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print nothing but errors")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number of seconds: %r" % text) from None
    if value < 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError("seconds must be a finite number >= 0: %r" % text)
    return value


class _Signals:
    """SIGINT/SIGTERM handling across the run's stages.

    deploy:  the first signal raises KeyboardInterrupt (start() rolls back what it made);
    wait:    the first signal ends the wait (graceful stop, traces copied);
    cleanup: further signals are refused with a message; the third one gives up.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.stage = "deploy"
        self.received: Optional[int] = None
        self.count = 0
        self.event = threading.Event()
        self._previous = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        self.count += 1
        if self.received is None:
            self.received = signum
        self.event.set()
        if self.count == 1:
            if self.stage == "deploy":
                self.stage = "cleanup"
                raise KeyboardInterrupt
            if self.stage == "wait":
                return
        if self.count >= 3:
            raise KeyboardInterrupt
        err("nepi: shutting the experiment down cleanly, please wait (interrupt again to "
            "abandon it; `nepid clean --root-dir DIR` then removes what is left)")

    @property
    def exit_code(self) -> int:
        if self.received == signal.SIGTERM:
            return 128 + signal.SIGTERM
        return EXIT_INTERRUPTED


def _refuse_busy_root(root_dir: str) -> None:
    """Never deploy over a running experiment of the same root directory."""
    from nepi.cli.rootdir import daemon_entries, nepid_lock_pid
    pid = nepid_lock_pid(root_dir)
    if pid is not None:
        raise CliError("nepid (pid %s) is serving %s; use another root directory, or "
                       "`nepid stop --root-dir %s` first" % (pid, root_dir, root_dir))
    alive = [d for d in daemon_entries(root_dir) if d.alive]
    if alive:
        raise CliError("%s still has running daemons of an earlier experiment (%s); "
                       "`nepid recover`, `nepid stop` or `nepid clean --root-dir %s` first"
                       % (root_dir, "; ".join(d.describe() for d in alive), root_dir))


class _Waiter:
    """Polls element statuses until the applications are done (or another end)."""

    def __init__(self, controller, signals: _Signals, duration: Optional[float],
                 timeout: Optional[float]) -> None:
        self.controller = controller
        self.signals = signals
        self.duration = duration
        self.timeout = timeout
        self.pending: List[int] = []
        self.watched = 0
        self.reason = ""

    def _initial(self) -> None:
        from nepi.util.constants import ApplicationStatus as AS
        self.watched, self.pending = 0, []
        for guid in self.controller.guids:
            status = self.controller.status(guid)
            if status != AS.STATUS_UNDETERMINED:
                self.watched += 1
                if status != AS.STATUS_FINISHED:
                    self.pending.append(guid)

    def _poll(self) -> None:
        from nepi.util.constants import ApplicationStatus as AS
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

    def wait(self) -> str:
        """finished | nothing | duration | timeout | failed | interrupted"""
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
                    self.reason = "lost contact with the experiment: %s" % one_line(e)
                    return "failed"
            if failure:
                self.reason = failure
                return "failed"
            if not first and errors == 0:
                if self.watched and not self.pending:
                    return "finished"
                if not self.watched and self.duration is None:
                    return "nothing"
            elapsed = time.monotonic() - began
            if self.duration is not None and elapsed >= self.duration:
                return "duration"
            if self.timeout is not None and elapsed >= self.timeout and self.pending:
                self.reason = "%s still running after %g s (--timeout): element%s %s" % (
                    plural(len(self.pending), "application"), self.timeout,
                    "" if len(self.pending) == 1 else "s",
                    ", ".join(str(g) for g in self.pending[:20])
                    + (" ..." if len(self.pending) > 20 else ""))
                return "timeout"
            if self.signals.event.wait(POLL_INTERVAL):
                return "interrupted"


def cmd_run(args: argparse.Namespace) -> int:
    from nepi.core.execute import ExperimentController

    loaded = load_valid_design(args.file)
    if loaded is None:
        return EXIT_PROBLEMS
    xml, data = loaded
    root_dir = os.path.abspath(args.root_dir)
    os.makedirs(root_dir, exist_ok=True)
    _refuse_busy_root(root_dir)
    log_to_file(os.path.join(root_dir, "logs", "nepi-run.log"), args.debug)
    testbeds = {g: data.get_testbed_data(g)[0] for g in data.testbed_guids()}
    quiet = args.quiet
    say = (lambda line="": None) if quiet else out
    say("deploying %s (%s, %s) in %s" % (args.file, plural(len(testbeds), "testbed"),
                                         plural(len(data.box_guids()), "element"), root_dir))

    signals = _Signals()
    signals.install()
    display = ProgressDisplay(testbeds, quiet=quiet)
    controller = None
    failure: Optional[str] = None
    code = EXIT_OK
    traces_line = None
    try:
        controller = ExperimentController(xml, root_dir, args.allow_root)
        controller.add_progress_listener(display)

        def deployed(event):
            # from here on a signal means "stop the running experiment", not "roll back"
            if event["phase"] == "deploy" and event["state"] == "done" \
                    and signals.stage == "deploy":
                signals.stage = "wait"
        controller.add_progress_listener(deployed)
        try:
            controller.start()
        except KeyboardInterrupt:
            display.close()
            code = signals.exit_code
            failure = "interrupted during deployment; what was deployed has been removed"
        except Exception as e:
            display.close()
            raise CliError("deployment failed: %s" % one_line(e)) from e
        else:
            signals.stage = "wait"
            if signals.event.is_set():      # a signal between start() and here
                outcome = "interrupted"
            else:
                waiter = _Waiter(controller, signals, args.duration, args.timeout)
                outcome = waiter.wait()
            signals.stage = "cleanup"
            say({"finished": "all applications finished",
                 "nothing": "no application to wait for",
                 "duration": "--duration of %g s elapsed" % (args.duration or 0),
                 "timeout": "timed out",
                 "failed": "the experiment failed",
                 "interrupted": "interrupted: stopping the experiment"}[outcome])
            if outcome in ("failed", "timeout"):
                failure = waiter.reason
                code = EXIT_PROBLEMS
            elif outcome == "interrupted":
                code = signals.exit_code
                failure = "interrupted; the experiment was stopped and shut down"
            try:
                display.begin("stop")
                controller.stop()
            except Exception as e:
                failure = failure or "stopping the experiment failed: %s" % one_line(e)
                code = code or EXIT_PROBLEMS
            copied = copy_traces(controller, root_dir)
            for problem in copied.errors:
                err("nepi: %s" % problem)
            if copied.errors and code == EXIT_OK:
                failure = "%s could not be copied" % plural(len(copied.errors), "trace")
                code = EXIT_PROBLEMS
            traces_line = "traces: %s (%s)" % (os.path.join(root_dir, TRACES_DIR),
                                               plural(len(copied.written), "file"))
            say("shutting down")
    finally:
        signals.stage = "cleanup"
        try:
            if controller is not None:
                display.begin("shutdown")
                controller.shutdown()
        finally:
            display.close()
            signals.restore()
    if traces_line:
        say(traces_line)
    logs = os.path.join(root_dir, "logs")
    if os.path.isdir(logs):
        say("logs:   %s" % logs)
    kept = [name for name in ("experiment.xml", "execute.xml", "manifest.json")
            if os.path.exists(os.path.join(root_dir, name))]
    say("state:  %s (%s)" % (root_dir, ", ".join(kept)))
    if failure:
        err("nepi: %s" % failure)
    elif not quiet:
        say("done: experiment shut down")
    return code
