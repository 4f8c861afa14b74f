"""``nepid``: the experiment-controller daemon (placeholder).

The daemon (start, stop, status, run, recover, clean on a root directory) is not
implemented yet; for now this command only explains its usage and exits with status 2.
"""

import sys
from typing import List, Optional

from nepi.cli.common import EXIT_OK, EXIT_USAGE, err

PROG = "nepid"
USAGE = "usage: nepid start|stop|status|run|recover|clean --root-dir DIR"


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        print("The experiment-controller daemon is not implemented yet.")
        return EXIT_OK
    err(USAGE)
    err("%s: the experiment-controller daemon is not implemented yet" % PROG)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
