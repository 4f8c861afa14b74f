"""The names of the files and folders in an experiment root dir (and a daemon's root dir),
defined once: every layer that reads or writes them, and the documentation, use these."""

import os

# the experiment root dir
DESIGN_XML = "experiment.xml"        # the design as submitted
EXECUTE_XML = "execute.xml"          # design + every runtime value
DEPLOYMENT_JSON = "deployment.json"  # each testbed's resolved deployment configuration
MANIFEST = "manifest.json"           # daemons, testbeds, experiment state (0600)
MANIFEST_LOCK = ".manifest.lock"
LINK_KEYS = "link-keys.json"         # TunChannel link keys (0600; removed at shutdown)
LISTEN = "listen.json"               # nepid's remembered --listen
JOURNAL = "journal.jsonl"            # one JSON event per line, appended (0600)
LOGS_DIR = "logs"                    # 0700; one 0600 log per process
TRACES_DIR = "traces"                # trace copies
TESTBEDS_DIR = "testbeds"            # testbeds/<guid>: default testbed root dirs

# a daemon's root dir (the experiment root dir for nepid, a testbed root for a testbed)
RUN_DIR = "run"                      # 0700: socket, secret, ready record
SECRET = "secret"
READY_RECORD = "daemon.json"
SOCKET_SUFFIX = ".sock"
PID_SUFFIX = ".pid"
NEPID_NAME = "nepid"                 # nepid.pid, run/nepid.sock, logs/nepid.log
TESTBED_NAME = "testbed"             # testbed.pid, run/testbed.sock

# folders of the experiment root dir that a testbed root dir may not lie in
RESERVED_DIRS = (RUN_DIR, LOGS_DIR, TRACES_DIR)


def log_file(root_dir: str, name: str) -> str:
    """ROOT/logs/NAME.log"""
    return os.path.join(root_dir, LOGS_DIR, name + ".log")


def default_testbed_root(root_dir: str, testbed_guid: int) -> str:
    return os.path.join(root_dir, TESTBEDS_DIR, str(testbed_guid))
