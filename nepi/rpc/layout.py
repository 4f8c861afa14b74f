"""Where a daemon keeps its files inside its root directory."""

import os
from typing import Optional

from nepi.rpc.security import socket_path
from nepi.util import rootfiles

ROLE_EC = "ec"
ROLE_TESTBED = "testbed"

_NAMES = {ROLE_EC: rootfiles.NEPID_NAME, ROLE_TESTBED: rootfiles.TESTBED_NAME}


class DaemonLayout:
    def __init__(self, root_dir: str, role: str) -> None:
        self.root_dir = os.path.abspath(root_dir)
        self.role = role
        self.name = _NAMES[role]

    @property
    def run_dir(self) -> str:
        return os.path.join(self.root_dir, rootfiles.RUN_DIR)

    @property
    def pid_file(self) -> str:
        return os.path.join(self.root_dir, self.name + rootfiles.PID_SUFFIX)

    @property
    def secret_file(self) -> str:
        return os.path.join(self.run_dir, rootfiles.SECRET)

    @property
    def record_file(self) -> str:
        return os.path.join(self.run_dir, rootfiles.READY_RECORD)

    @property
    def socket_name(self) -> str:
        return self.name + rootfiles.SOCKET_SUFFIX

    def socket(self) -> str:
        return socket_path(self.run_dir, self.socket_name)

    def default_log_file(self, testbed_guid: Optional[int] = None) -> str:
        return rootfiles.log_file(self.root_dir, self.name)

    @property
    def object_id(self) -> str:
        return "nepi." + self.role
