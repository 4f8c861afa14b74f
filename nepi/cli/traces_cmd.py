"""``nepid traces``: list the traces of the running experiment, print one, or follow it.

    nepid traces --root-dir D                         every trace: testbed, element, trace
    nepid traces --root-dir D ELEMENT TRACE [-f]      one trace (ELEMENT: label or guid)

A text trace is printed as text; a binary one (pcap) is written as is, so it can be piped
into ``tshark -r -`` (refused on a terminal). ``--follow`` prints what is added until
Ctrl-C or the experiment ends.
"""

import sys
import time
from typing import Callable, Dict, List, NamedTuple, Optional

from nepi.cli.common import EXIT_OK, EXIT_USAGE, CliError, out
from nepi.rpc.traces import (element_names, extension, labels_of, read_trace,
                             testbed_name)

BINARY = ("pcap", "pcapng")
FOLLOW_POLL = 0.5


class TraceEntry(NamedTuple):
    testbed: str        # the testbed's label, or its guid
    testbed_guid: int
    element: str        # the element's label, or its guid
    guid: int
    trace: str
    ext: str            # the copy's extension: pcap, txt, tr...


def add_arguments(parser) -> None:
    parser.add_argument("element", nargs="?", metavar="ELEMENT",
                        help="label or guid of the element whose trace to print")
    parser.add_argument("trace", nargs="?", metavar="TRACE", help="trace name (e.g. stdout)")
    parser.add_argument("-f", "--follow", action="store_true",
                        help="keep printing what is added (Ctrl-C ends)")


def entries(info: Dict, labels: Dict[int, str]) -> List[TraceEntry]:
    """Every trace of ``traces_info()``, named as in the root dir's traces/ copies."""
    found = []
    for testbed_guid, elements in sorted((info or {}).items(), key=lambda i: str(i[0])):
        elements = elements or {}
        names = element_names(elements, labels)
        testbed = testbed_name(testbed_guid, labels)
        for guid, traces in sorted(elements.items(), key=lambda i: int(i[0])):
            for trace_id, details in sorted((traces or {}).items()):
                found.append(TraceEntry(testbed, int(testbed_guid), names[guid], int(guid),
                                        trace_id, extension(details)))
    return found


def find(all_entries: List[TraceEntry], element: str, trace: str) -> TraceEntry:
    matches = [e for e in all_entries if element in (e.element, str(e.guid))]
    if not matches:
        known = sorted({e.element for e in all_entries})
        raise CliError("no element %r has traces (elements with traces: %s)"
                       % (element, ", ".join(known) or "none"), EXIT_USAGE)
    for entry in matches:
        if entry.trace == trace:
            return entry
    raise CliError("element %r has no trace %r (it has %s)"
                   % (element, trace, ", ".join(sorted(e.trace for e in matches))), EXIT_USAGE)


def run(args, target: Callable) -> int:
    """``target(args)`` -> (proxy or None, root dir): nepid_cmd's way to reach nepid."""
    proxy, root_dir = target(args)
    if proxy is None:
        raise CliError("nepid is not running in %s: the traces copied at stop are in its "
                       "traces/ folder" % root_dir)
    try:
        all_entries = entries(proxy.traces_info(), labels_of(proxy))
        if args.element is None:
            return _list(all_entries)
        if args.trace is None:
            raise CliError("give both ELEMENT and TRACE (or neither, to list them)",
                           EXIT_USAGE)
        entry = find(all_entries, args.element, args.trace)
        binary = entry.ext in BINARY
        if binary and sys.stdout.isatty():
            raise CliError("trace %r of %s is binary (%s): redirect it to a file or pipe it "
                           "into `tshark -r -`" % (entry.trace, entry.element, entry.ext),
                           EXIT_USAGE)
        return _print(proxy, entry, binary, args.follow)
    finally:
        proxy.close()


def _list(all_entries: List[TraceEntry]) -> int:
    if not all_entries:
        out("no traces are enabled in this experiment")
        return EXIT_OK
    rows = [("testbed", "element", "guid", "trace", "format")] + [
        (e.testbed, e.element, str(e.guid), e.trace, e.ext) for e in all_entries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return EXIT_OK


def _print(proxy, entry: TraceEntry, binary: bool, follow: bool) -> int:
    written = 0
    stream = sys.stdout.buffer
    while True:
        content = _content(proxy, entry)
        if content is not None and len(content) > written:
            stream.write(content[written:])
            stream.flush()
            written = len(content)
        if not follow or _ended(proxy):
            return EXIT_OK
        try:
            time.sleep(FOLLOW_POLL)
        except KeyboardInterrupt:
            return EXIT_OK


def _content(proxy, entry: TraceEntry) -> Optional[bytes]:
    value = read_trace(proxy, entry.guid, entry.trace)
    if value is None:
        return None
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _ended(proxy) -> bool:
    try:
        return proxy.state in ("shutdown", "failed")
    except Exception:              # nepid went away: nothing more will come
        return True
