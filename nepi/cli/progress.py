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

A deployment of BAR_THRESHOLD elements or more, on a terminal, shows instead one live bar
per phase (testbeds done of those in the phase), kept as a line once the phase is over::

      create        [##################------------]   3/5 testbeds  1.2 s

Applications ("application" events: started, finished) are counted; each one that finishes
gets a line, and once ``show_applications()`` was called (``nepi run`` waiting for them)
their counts are shown: a live line on a terminal, one line otherwise.
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
APPLICATION = "application"     # the engine's events of one application (with its guid)
BAR_WIDTH = 30
BAR_THRESHOLD = 100             # elements from which a terminal shows a bar per phase


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
                 origin: Optional[float] = None, elements: int = 0) -> None:
        """``elements``: how many the design deploys (from BAR_THRESHOLD on, a terminal
        shows one bar per phase instead of a line per phase and testbed)."""
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
        self.phase_bars = self.tty and not quiet and elements >= BAR_THRESHOLD
        self._live: Optional[str] = None          # the line kept at a terminal's bottom
        self._bar_phase: Optional[str] = None     # the phase of the live bar
        self._bar_begin: Optional[float] = None
        self._bar_time: Optional[float] = None
        self._bar_sets: Dict[str, set] = {}       # running / done / failed -> testbeds
        self.apps: Dict[int, str] = {}            # application guid -> started | finished
        self._show_apps = False

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

    def format_phase_bar(self) -> str:
        sets = self._bar_sets
        done, failed = len(sets["done"]), len(sets["failed"])
        total = max(1, len(sets["running"] | sets["done"] | sets["failed"]))
        filled = int(BAR_WIDTH * min(done + failed, total) / total)
        elapsed = max(0.0, (self._bar_time or 0.0) - (self._bar_begin or 0.0))
        return "  %-13s [%s%s] %3d/%d testbed%s%s  %.1f s" % (
            phase_name(str(self._bar_phase)), "#" * filled, "-" * (BAR_WIDTH - filled),
            done, total, "" if total == 1 else "s",
            ", %d failed" % failed if failed else "", elapsed)

    def application_counts(self) -> Dict[str, int]:
        states = list(self.apps.values())
        return {"running": states.count("started"), "finished": states.count("finished")}

    def format_applications(self) -> str:
        counts = self.application_counts()
        return "  applications: %d running, %d finished" % (counts["running"],
                                                           counts["finished"])

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
        if self._live is not None:          # a live line stays at the bottom
            self._write(self._live)
            self._bar_shown = True

    def _show_live(self, text: Optional[str]) -> None:
        self._clear_bar()
        self._live = None if text is None else printable(text)
        if self._live is not None:
            self._write(self._live)
            self._bar_shown = True

    def _live_text(self) -> Optional[str]:
        if self._bar_phase is not None:
            return self.format_phase_bar()
        if self._show_apps and self.tty and not self.quiet and self.apps:
            return self.format_applications()
        return None

    def _end_phase_bar(self) -> None:
        """The live bar's phase is over: keep its last state as a line."""
        if self._bar_phase is None:
            return
        line = printable(self.format_phase_bar())
        self._bar_phase = None
        self._show_live(None)
        self._write(line + "\n")
        self._show_live(self._live_text())

    def _phase_bar_event(self, event: dict) -> None:
        phase, state = event.get("phase"), event.get("state")
        when = event.get("time") or time.time()
        if phase != self._bar_phase:
            self._end_phase_bar()
            self._bar_phase = phase
            self._bar_begin = self._phase_begin.get(phase, when)
            self._bar_sets = {"running": set(), "done": set(), "failed": set()}
        self._bar_time = when
        sets = self._bar_sets
        testbed = event.get("testbed")
        if state in ("running", "done", "failed"):
            sets[state].add(testbed)
        if state == "failed":
            self._live = None
            self._print(self.format_line(event))
        self._show_live(self._live_text())

    def _application_event(self, event: dict) -> None:
        guid, state = event.get("guid"), event.get("state")
        before = self.apps.get(guid)
        self.apps[guid] = state
        if self._live is not None:            # redrawn below the line, up to date
            self._live = printable(self._live_text() or "") or None
        if state == "finished" and before != "finished" and not self.quiet:
            counts = self.application_counts()
            message = one_line(event.get("message"))
            self._print(printable("  application %s of %s finished%s  [%d/%d finished]" % (
                guid, self.testbed_name(event.get("testbed")),
                " (%s)" % message if message else "", counts["finished"], len(self.apps))))
        if self._live is not None or self._live_text() is not None:
            self._show_live(self._live_text())

    def show_applications(self) -> None:
        """From now on show how many applications run and finished (``nepi run`` waits
        for them): a live line on a terminal, else one line now."""
        with self._lock:
            self._show_apps = True
            if self.quiet or not self.apps:
                return
            if self.tty:
                self._show_live(self._live_text())
            else:
                self._print(self.format_applications())

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
            if event.get("phase") == APPLICATION:
                self._application_event(event)
                return
            self._track_time(event)
            state = event.get("state")
            key = (event.get("phase"), event.get("testbed"))
            if state == "failed":
                self.failures.append(event)
            if event.get("phase") == FINAL_PHASE and event.get("testbed") is None:
                self.final = event
                self._end_phase_bar()
                if not self.quiet:
                    self._print(self.format_final(event))
                return
            if self.phase_bars and event.get("testbed") is not None and \
                    event.get("phase") != "recover":
                self._running.setdefault(key, event.get("time") or time.time())
                self._phase_bar_event(event)
                if state != "running":
                    self._running.pop(key, None)
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
            self._end_phase_bar()
            self._show_apps = False
            self._live = None
            self._clear_bar()


def follow(controller, display: ProgressDisplay, until: Callable[[], bool],
           poll: float = 0.2, since: int = 0, settle: float = 2.0) -> int:
    """Poll ``controller.progress_events(since)`` into ``display`` until ``until()`` is
    true, then until the final deploy event arrived (at most ``settle`` seconds more).
    Returns the index of the next event to ask for. A controller with ``wait_progress``
    (nepid) answers as soon as an event happens, instead of after ``poll``."""
    waiter = getattr(controller, "wait_progress", None)
    finished_at = None
    while True:
        events = waiter(since, poll) if waiter else controller.progress_events(since)
        since += len(events)
        display.feed(events)
        if finished_at is None and until():
            finished_at = time.monotonic()
            if display.final is None:
                continue    # fetch what was emitted meanwhile before deciding
        if finished_at is not None and (display.final is not None
                                        or time.monotonic() - finished_at > settle):
            return since
        if waiter is None:
            time.sleep(poll)
