"""Copying an experiment's traces into its root dir, in their own format under readable
names: ``ROOT/traces/<testbed label or guid>/<element label or guid>-<trace>.<ext>`` (a pcap
trace arrives as the binary pcap tshark opens, text as text).

Works with an in-process ExperimentController and with a proxy to nepid alike: the
content is read with ``trace(guid, trace_id, "base64")`` (exact bytes), so testbeds in
daemons (or on other hosts) are covered too.
"""

import base64
import binascii
import os
import re
from typing import Dict, List, NamedTuple, Optional

from nepi.util.rootfiles import TRACES_DIR

# file extensions kept from where a testbed writes a trace; anything else is text (.txt)
NATIVE_EXTENSIONS = ("pcap", "pcapng", "tr", "txt", "log", "csv", "json")


class TraceCopy(NamedTuple):
    written: List[str]      # files written
    errors: List[str]       # one line per trace that could not be read or written


def _safe(name) -> str:
    """A file-name-safe form of a label, guid or trace id (no separators, no leading
    dots)."""
    text = re.sub(r"[^A-Za-z0-9_.+-]", "_", str(name)).lstrip(".")
    return text or "_"


def extension(details: Optional[dict]) -> str:
    """The copy's extension: that of the file the testbed writes, if it is a known one."""
    path = str((details or {}).get("filepath") or "")
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    return ext if ext in NATIVE_EXTENSIONS else "txt"


def trace_path(root_dir: str, testbed, element, trace_id, ext: str = "txt") -> str:
    """Where the copy of one trace goes; ``testbed`` and ``element`` are labels or guids."""
    return os.path.join(root_dir, TRACES_DIR, _safe(testbed),
                        "%s-%s.%s" % (_safe(element), _safe(trace_id), ext))


def labels_of(controller) -> Dict[int, str]:
    """guid -> label (``controller.labels()``; none from a controller without it)."""
    try:
        return {int(g): str(label) for g, label in (controller.labels() or {}).items()}
    except Exception:
        return {}


def element_names(elements: Dict, labels: Dict[int, str]) -> Dict[object, str]:
    """guid -> the name of its copies: its label, or its guid when it has none or shares
    it with another element of the testbed."""
    mine = {guid: labels.get(int(guid)) for guid in elements}
    counts: Dict[str, int] = {}
    for label in mine.values():
        if label:
            counts[label] = counts.get(label, 0) + 1
    return {guid: label if label and counts[label] == 1 else str(guid)
            for guid, label in mine.items()}


def testbed_name(testbed_guid, labels: Dict[int, str]) -> str:
    return labels.get(int(testbed_guid)) or str(testbed_guid)


def read_trace(controller, guid: int, trace_id: str):
    """A trace's exact bytes (``base64``); a testbed that cannot give them gives text."""
    try:
        encoded = controller.trace(guid, trace_id, "base64")
    except Exception:
        encoded = None
    if isinstance(encoded, str):
        try:
            return base64.b64decode(encoded.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            pass
    return controller.trace(guid, trace_id, "value")


def copy_traces(controller, root_dir: str) -> TraceCopy:
    """Write every trace listed by ``controller.traces_info()`` under ``root_dir``."""
    written, errors = [], []
    try:
        info = controller.traces_info() or {}
    except Exception as e:
        return TraceCopy([], ["cannot list traces: %s" % e])
    labels = labels_of(controller)
    for testbed_guid, elements in sorted(info.items(), key=lambda i: str(i[0])):
        elements = elements or {}
        names = element_names(elements, labels)
        testbed = testbed_name(testbed_guid, labels)
        for guid, traces in sorted(elements.items(), key=lambda i: str(i[0])):
            for trace_id in sorted(traces or {}):
                details = traces[trace_id] if isinstance(traces, dict) else None
                path = trace_path(root_dir, testbed, names[guid], trace_id,
                                  extension(details))
                try:
                    value = read_trace(controller, int(guid), trace_id)
                except Exception as e:
                    errors.append("trace %r of element %s: %s" % (trace_id, guid, e))
                    continue
                if value is None:
                    value = ""
                if not isinstance(value, (bytes, str)):
                    value = str(value)
                try:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    mode = "wb" if isinstance(value, bytes) else "w"
                    with open(path, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) \
                            as f:
                        f.write(value)
                except OSError as e:
                    errors.append("cannot write %s: %s" % (path, e.strerror or e))
                    continue
                written.append(path)
    return TraceCopy(written, errors)
