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
from typing import Optional

from nepi.cli.common import (EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEMS, CliError,
                             allow_root_argument, err, load_valid_design, out, plural)
from nepi.cli.progress import ProgressDisplay, one_line
from nepi.rpc.local_run import WaitResult


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


def cmd_run(args: argparse.Namespace) -> int:
    from nepi.rpc.local_run import LocalRun

    loaded = load_valid_design(args.file)
    if loaded is None:
        return EXIT_PROBLEMS
    xml, data = loaded
    run = LocalRun(xml, args.root_dir, args.allow_root)
    root_dir = run.root_dir
    run.prepare(args.debug)
    testbeds = {g: data.get_testbed_data(g)[0] for g in data.testbed_guids()}
    quiet = args.quiet
    say = (lambda line="": None) if quiet else out
    say("deploying %s (%s, %s) in %s" % (args.file, plural(len(testbeds), "testbed"),
                                         plural(len(data.box_guids()), "element"), root_dir))

    signals = _Signals()
    signals.install()
    display = ProgressDisplay(testbeds, quiet=quiet, elements=len(data.box_guids()))
    failure: Optional[str] = None
    code = EXIT_OK
    traces_line = None

    def deployed(event):
        # from here on a signal means "stop the running experiment", not "roll back"
        if event["phase"] == "deploy" and event["state"] == "done" \
                and signals.stage == "deploy":
            signals.stage = "wait"
    try:
        try:
            run.deploy([display, deployed])
        except KeyboardInterrupt:
            display.close()
            code = signals.exit_code
            failure = "interrupted during deployment; what was deployed has been removed"
        except Exception as e:
            display.close()
            raise CliError("deployment failed: %s" % one_line(e)) from e
        else:
            signals.stage = "wait"
            display.show_applications()     # running/finished counts, each app finishing
            if signals.event.is_set():      # a signal between start() and here
                result = WaitResult("interrupted")
            else:
                result = run.wait(signals.event, args.duration, args.timeout, one_line)
            display.close()                 # the live counts line ends here
            outcome = result.outcome
            signals.stage = "cleanup"
            say({"finished": "all applications finished",
                 "nothing": "no application to wait for",
                 "duration": "--duration of %g s elapsed" % (args.duration or 0),
                 "timeout": "timed out",
                 "failed": "the experiment failed",
                 "interrupted": "interrupted: stopping the experiment"}[outcome])
            if outcome in ("failed", "timeout"):
                failure = result.reason
                code = EXIT_PROBLEMS
            elif outcome == "interrupted":
                code = signals.exit_code
                failure = "interrupted; the experiment was stopped and shut down"
            try:
                display.begin("stop")
                run.stop()
            except Exception as e:
                failure = failure or "stopping the experiment failed: %s" % one_line(e)
                code = code or EXIT_PROBLEMS
            copied = run.copy_traces()
            for problem in copied.errors:
                err("nepi: %s" % problem)
            if copied.errors and code == EXIT_OK:
                failure = "%s could not be copied" % plural(len(copied.errors), "trace")
                code = EXIT_PROBLEMS
            traces_line = "traces: %s (%s)" % (run.traces_dir,
                                               plural(len(copied.written), "file"))
            say("shutting down")
    finally:
        signals.stage = "cleanup"
        try:
            if run.controller is not None:
                display.begin("shutdown")
                run.shutdown()
        finally:
            display.close()
            signals.restore()
    if traces_line:
        say(traces_line)
    if os.path.isdir(run.logs_dir):
        say("logs:   %s" % run.logs_dir)
    say("state:  %s (%s)" % (root_dir, ", ".join(run.state_files())))
    if failure:
        err("nepi: %s" % failure)
    elif not quiet:
        say("done: experiment shut down")
    return code
