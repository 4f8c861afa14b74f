"""Progress display for deployments, fed by the experiment controller's progress events.

An event is a plain dict ``{time, phase, testbed, state, message, done, total}`` (see
``ExperimentController.progress_events``). In-process, a ProgressDisplay is registered with
``controller.add_progress_listener(display)``; for a controller in nepid, ``follow()`` polls
``progress_events(since)`` and feeds the display.

Output: one line per phase and testbed once that testbed finished the phase::

      create        testbed 1 (mock)        done     0.02 s

failures with their message, and a final line when the whole deployment is done or failed.
When the output is a terminal and an event carries ``total > 0``, an updating bar shows
how far the phase is. Quiet mode prints nothing (errors are reported by the command).
"""

import sys
import threading
import time
from typing import Callable, Dict, Iterable, List, Optional

from nepi.cli.common import printable

# Readable names for the engine's phase identifiers.
PHASE_NAMES = {
    "create_controller": "controller",
    "do_setup": "setup",
    "do_create": "create",
    "do_connect_init": "connect",
    "do_connect_compl": "connect_compl",
    "do_preconfigure": "preconfigure",
    "program_cross": "program_cross",
    "do_configure": "configure",
    "do_cross_connect_init": "cross_init",
    "do_cross_connect_compl": "cross_compl",
    "do_prestart": "prestart",
}

FINAL_PHASE = "deploy"          # the engine's event for the whole deployment (testbed None)
BAR_WIDTH = 30


def phase_name(phase: str) -> str:
    return PHASE_NAMES.get(phase, phase[3:] if phase.startswith("do_") else phase)


def one_line(text) -> str:
    """A message on a single line (multi-line errors joined with ' | ')."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    # a message ending in ":" has lost its detail (e.g. a command's empty stderr)
    return printable(" | ".join(lines).rstrip(":").rstrip())


class ProgressDisplay:
    """Callable progress listener; thread-safe (events may come from worker threads)."""

    def __init__(self, testbeds: Optional[Dict[int, str]] = None, stream=None,
                 quiet: bool = False, tty: Optional[bool] = None,
                 origin: Optional[float] = None) -> None:
        self.testbeds = dict(testbeds or {})
        self.stream = stream if stream is not None else sys.stdout
        self.quiet = quiet
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self.origin = origin if origin is not None else time.time()
        self._lock = threading.Lock()
        self._phase_begin: Dict[str, float] = {}         # phase -> when it began
        self._running: Dict[tuple, float] = {}           # (phase, testbed) -> running since
        self._last_phase: Optional[str] = None
        self._last_time: Optional[float] = None
        self._bar_shown = False
        self._broken = False
        self.final: Optional[dict] = None                # the final deploy event, once seen
        self.failures: List[dict] = []
        self.count = 0

    # -- formatting ----------------------------------------------------------------------

    def testbed_name(self, guid) -> str:
        if guid is None:
            return "experiment"
        testbed_id = self.testbeds.get(guid)
        return "testbed %s (%s)" % (guid, testbed_id) if testbed_id else "testbed %s" % guid

    def _duration(self, event: dict) -> Optional[float]:
        key = (event.get("phase"), event.get("testbed"))
        begin = self._running.get(key, self._phase_begin.get(event.get("phase")))
        if begin is None or event.get("time") is None:
            return None
        return max(0.0, event["time"] - begin)

    def format_line(self, event: dict) -> str:
        phase = phase_name(str(event.get("phase")))
        state = str(event.get("state") or "")
        duration = self._duration(event)
        line = "  %-13s %-23s %-6s" % (phase, self.testbed_name(event.get("testbed")),
                                       "FAILED" if state == "failed" else state)
        if duration is not None and state in ("done", "failed"):
            line += " %5.2f s" % duration
        message = one_line(event.get("message"))
        if message and state != "done":
            line = line.rstrip() + ": " + message
        return printable(line.rstrip())

    def format_final(self, event: dict) -> str:
        elapsed = max(0.0, (event.get("time") or time.time()) - self.origin)
        if event.get("state") == "failed":
            message = one_line(event.get("message")) or "interrupted"
            return "deployment FAILED after %.2f s: %s" % (elapsed, message)
        what = one_line(event.get("message")) or "deployment %s" % event.get("state")
        return "%s in %.2f s" % (what, elapsed)

    def format_bar(self, event: dict) -> str:
        done, total = int(event.get("done") or 0), int(event.get("total") or 0)
        filled = int(BAR_WIDTH * min(done, total) / total) if total else 0
        return "  %-13s %-23s [%s%s] %d/%d" % (
            phase_name(str(event.get("phase"))), self.testbed_name(event.get("testbed")),
            "#" * filled, "-" * (BAR_WIDTH - filled), done, total)

    # -- output --------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        if self._broken:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            # the reader went away (`nepi run x | head`) or the stream was closed: the
            # deployment must go on (and be shut down cleanly), just without progress
            self._broken = True

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self._write("\r\033[K")
            self._bar_shown = False

    def _print(self, line: str) -> None:
        self._clear_bar()
        self._write(line + "\n")

    # -- events --------------------------------------------------------------------------

    def _track_time(self, event: dict) -> None:
        phase, when = event.get("phase"), event.get("time")
        if phase != self._last_phase:
            # a phase begins when the previous one ended (testbeds run phases in parallel)
            self._phase_begin[phase] = self._last_time if self._last_time is not None \
                else self.origin
            self._last_phase = phase
        if when is not None:
            self._last_time = when

    def __call__(self, event: dict) -> None:
        with self._lock:
            self.count += 1
            self._track_time(event)
            state = event.get("state")
            key = (event.get("phase"), event.get("testbed"))
            if state == "failed":
                self.failures.append(event)
            if event.get("phase") == FINAL_PHASE and event.get("testbed") is None:
                self.final = event
                if not self.quiet:
                    self._print(self.format_final(event))
                return
            if state == "running":
                self._running.setdefault(key, event.get("time") or time.time())
                total = int(event.get("total") or 0)
                if self.tty and total > 0 and not self.quiet:
                    self._clear_bar()
                    self._write(printable(self.format_bar(event)))
                    self._bar_shown = True
                return
            if not self.quiet:
                self._print(self.format_line(event))
            self._running.pop(key, None)

    def begin(self, phase: str, when: Optional[float] = None) -> None:
        """Say that ``phase`` begins now (e.g. the shutdown after a long wait), so that its
        lines show its own duration."""
        with self._lock:
            when = time.time() if when is None else when
            self._phase_begin[phase] = when
            self._last_phase = phase
            self._last_time = when

    def feed(self, events: Iterable[dict]) -> None:
        for event in events:
            self(event)

    def close(self) -> None:
        with self._lock:
            self._clear_bar()


def follow(controller, display: ProgressDisplay, until: Callable[[], bool],
           poll: float = 0.2, since: int = 0, settle: float = 2.0) -> int:
    """Poll ``controller.progress_events(since)`` into ``display`` until ``until()`` is
    true, then until the final deploy event arrived (at most ``settle`` seconds more).
    Returns the index of the next event to ask for."""
    finished_at = None
    while True:
        events = controller.progress_events(since)
        since += len(events)
        display.feed(events)
        if finished_at is None and until():
            finished_at = time.monotonic()
            continue        # fetch what was emitted meanwhile before deciding
        if finished_at is not None and (display.final is not None
                                        or time.monotonic() - finished_at > settle):
            return since
        time.sleep(poll)
