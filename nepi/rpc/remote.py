"""Run on a remote host through SSH: launch (or find) a daemon there and print, as one
JSON line on stdout, its ready record and secret for the client at the other end.

    python3 -m nepi.rpc.remote launch ROLE ROOT_DIR [daemon args...]
    python3 -m nepi.rpc.remote attach ROLE ROOT_DIR
    python3 -m nepi.rpc.remote clean testbed ROOT_DIR TESTBED_ID OWNER [--keep-resources]
    python3 -m nepi.rpc.remote wait PID START_TIME

``wait`` returns once the daemon told to shut down (that pid, that start time) is gone,
killing it if it lingers. ``clean`` removes what a testbed of experiment OWNER left in ROOT_DIR on this host, by
record: its daemon if its ready record carries OWNER, its runtime files and (unless
--keep-resources) its resources through the testbed's cleanup hook.
"""

import json
import sys

from nepi.rpc.cleanup import clean_testbed_here
from nepi.rpc.launcher import launch
from nepi.rpc.layout import DaemonLayout
from nepi.rpc.liveness import is_same_process, wait_exit
from nepi.rpc.security import read_secret
from nepi.util.files import read_json


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 3 and argv[0] == "wait":
        try:
            pid, start_time = int(argv[1]), float(argv[2])
        except ValueError:
            print(json.dumps({"error": "wait expects PID START_TIME, got %r" % argv[1:]}))
            return 2
        print(json.dumps({"gone": wait_exit(pid, start_time)}))
        return 0
    if len(argv) < 3 or argv[0] not in ("launch", "attach", "clean") or \
            (argv[0] == "clean" and len(argv) < 5):
        print(__doc__, file=sys.stderr)
        return 2
    action, role, root_dir, rest = argv[0], argv[1], argv[2], argv[3:]
    layout = DaemonLayout(root_dir, role)
    try:
        if action == "clean":
            report = clean_testbed_here(root_dir, rest[0], rest[1],
                                        resources="--keep-resources" not in rest[2:])
            print(json.dumps({"report": report.__dict__}))
            return 0
        if action == "launch":
            record = launch(role, root_dir, rest)
        else:
            record = read_json(layout.record_file)
            if not record or not is_same_process(record.get("pid"), record.get("start_time")):
                raise RuntimeError("no live %s daemon in %s" % (layout.name, root_dir))
        print(json.dumps({"record": record, "secret": read_secret(layout.secret_file)}))
        return 0
    except Exception as e:
        print(json.dumps({"error": str(e)}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
