"""Copying an experiment's traces into ``ROOT/traces/<testbed guid>/<guid>-<trace>.txt``.

Works with an in-process ExperimentController and with a proxy to nepid alike: the
content is read with ``trace(guid, trace_id, "value")``, so testbeds in daemons (or on
other hosts) are covered too.
"""

import os
import re
from typing import List, NamedTuple

from nepi.util.rootfiles import TRACES_DIR


class TraceCopy(NamedTuple):
    written: List[str]      # files written
    errors: List[str]       # one line per trace that could not be read or written


def _safe(name) -> str:
    """A file-name-safe form of a guid or trace id (no separators, no leading dots)."""
    text = re.sub(r"[^A-Za-z0-9_.+-]", "_", str(name)).lstrip(".")
    return text or "_"


def trace_path(root_dir: str, testbed_guid, guid, trace_id) -> str:
    return os.path.join(root_dir, TRACES_DIR, _safe(testbed_guid),
                        "%s-%s.txt" % (_safe(guid), _safe(trace_id)))


def copy_traces(controller, root_dir: str) -> TraceCopy:
    """Write every trace listed by ``controller.traces_info()`` under ``root_dir``."""
    written, errors = [], []
    try:
        info = controller.traces_info() or {}
    except Exception as e:
        return TraceCopy([], ["cannot list traces: %s" % e])
    for testbed_guid, elements in sorted(info.items(), key=lambda i: str(i[0])):
        for guid, traces in sorted((elements or {}).items(), key=lambda i: str(i[0])):
            for trace_id in sorted(traces or {}):
                path = trace_path(root_dir, testbed_guid, guid, trace_id)
                try:
                    value = controller.trace(int(guid), trace_id, "value")
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
