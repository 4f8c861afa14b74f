"""``nepid events --root-dir DIR [--follow] [--json]``: the experiment's event journal
(DIR/journal.jsonl, nepi.core.journal), one readable line per event::

    00:51:58.219  testbed 1   do_create               done
    00:51:58.467  testbed 1   application 6           started
    00:51:58.491  experiment                          started
    00:51:59.494  testbed 1   application 6           finished
    00:51:59.674  testbed 1   element 4               set            up=False
    00:52:00.496  testbed 1   daemon                  lost           daemon process 1820 died; ...
    00:52:02.231  testbed 1   policy Restart          applied        what the lost daemon ...
    00:52:03.870  nepid       daemon                  recovered      nepid restarted (pid ...

Only the file is read: it works with nepid running, dead or gone. ``--follow`` keeps
printing new events until Ctrl-C (exit 0) or until the experiment is shut down;
``--json`` prints the journal's lines as they are.
"""

import json
import os
import sys
import time
from typing import Optional

from nepi.cli.common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, CliError, err, printable

HELP = ("print the experiment's event journal (phases, applications, runtime sets, "
        "daemons lost and recovered, policies applied); --follow keeps printing")
POLL_INTERVAL = 0.2
SUBJECT_WIDTH = 10
WHAT_WIDTH = 22
STATE_WIDTH = 13


def add_arguments(parser) -> None:
    parser.add_argument("--follow", "-f", action="store_true",
                        help="keep printing new events until Ctrl-C or until the "
                             "experiment is shut down")
    parser.add_argument("--json", action="store_true",
                        help="print the journal's JSON lines as they are")


def clock(when) -> str:
    """Local wall-clock time of an event: ``14:02:11.316``."""
    try:
        when = float(when)
    except (TypeError, ValueError):
        return "??:??:??.???"
    return time.strftime("%H:%M:%S", time.localtime(when)) + ".%03d" % int(
        (when % 1) * 1000)


def _subject(event: dict) -> str:
    testbed = event.get("testbed")
    if testbed is not None:
        return "testbed %s" % testbed
    if event.get("event") == "daemon":
        return "nepid"
    return "experiment"


def _what(event: dict) -> tuple:
    """(what, state, message) of an event, for its columns."""
    kind = event.get("event")
    state = event.get("state") or ""
    message = event.get("message") or ""
    if kind == "experiment":
        return "", state, message
    if kind == "phase":
        return str(event.get("phase") or "?"), state, message
    if kind == "application":
        return "application %s" % event.get("guid"), state, message
    if kind == "set":
        return "element %s" % event.get("guid"), "set", message
    if kind == "daemon":
        return "daemon", state, message
    if kind == "policy":
        return "policy %s" % state, "applied", message
    return str(kind), state, message


def format_event(event: dict) -> str:
    """One readable, aligned line for a journal event (control characters escaped)."""
    what, state, message = _what(event)
    message = " | ".join(line.strip() for line in str(message).splitlines() if line.strip())
    line = "%s  %-*s  %-*s  %-*s  %s" % (clock(event.get("time")), SUBJECT_WIDTH,
                                        _subject(event), WHAT_WIDTH, what, STATE_WIDTH,
                                        state, message)
    return printable(line.rstrip())


def _print(events, as_json: bool) -> None:
    for event in events:
        if as_json:
            sys.stdout.write(json.dumps(event) + "\n")
        else:
            sys.stdout.write(format_event(event) + "\n")
    sys.stdout.flush()


def _shut_down(event: dict) -> bool:
    return event.get("event") == "experiment" and event.get("state") == "shutdown"


def follow(path: str, as_json: bool, poll: float = POLL_INTERVAL,
           offset: int = 0, stop_at_shutdown: bool = True) -> int:
    """Print the journal's events from ``offset`` and every new one, until the last event
    read is the experiment's shutdown (or Ctrl-C)."""
    from nepi.core.journal import read
    try:
        while True:
            events, offset = read(path, offset)
            _print(events, as_json)
            if stop_at_shutdown and events and _shut_down(events[-1]):
                return EXIT_OK
            time.sleep(poll)
    except KeyboardInterrupt:
        sys.stdout.flush()
        return EXIT_OK


def run(args) -> int:
    from nepi.core.journal import journal_path, read
    root_dir: Optional[str] = getattr(args, "root_dir", None)
    if getattr(args, "connect", None):
        raise CliError("events reads DIR/journal.jsonl: give --root-dir (on nepid's host)",
                       EXIT_USAGE)
    if root_dir is None:
        raise CliError("--root-dir DIR is required", EXIT_USAGE)
    root_dir = os.path.abspath(root_dir)
    if not os.path.isdir(root_dir):
        raise CliError("%s is not a directory" % root_dir, EXIT_USAGE)
    path = journal_path(root_dir)
    if args.follow:
        return follow(path, args.json)
    if not os.path.exists(path):
        err("nepid: no journal in %s (no experiment ran there yet)" % root_dir)
        return EXIT_PROBLEMS
    events, _ = read(path)
    _print(events, args.json)
    return EXIT_OK
