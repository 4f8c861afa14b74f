"""Where a daemon keeps its files inside its root directory."""

import os
from typing import Optional

from nepi.rpc.security import socket_path

ROLE_EC = "ec"
ROLE_TESTBED = "testbed"

_NAMES = {ROLE_EC: "nepid", ROLE_TESTBED: "testbed"}


class DaemonLayout:
    def __init__(self, root_dir: str, role: str) -> None:
        self.root_dir = os.path.abspath(root_dir)
        self.role = role
        self.name = _NAMES[role]

    @property
    def run_dir(self) -> str:
        return os.path.join(self.root_dir, "run")

    @property
    def pid_file(self) -> str:
        return os.path.join(self.root_dir, self.name + ".pid")

    @property
    def secret_file(self) -> str:
        return os.path.join(self.run_dir, "secret")

    @property
    def record_file(self) -> str:
        return os.path.join(self.run_dir, "daemon.json")

    @property
    def socket_name(self) -> str:
        return self.name + ".sock"

    def socket(self) -> str:
        return socket_path(self.run_dir, self.socket_name)

    def default_log_file(self, testbed_guid: Optional[int] = None) -> str:
        return os.path.join(self.root_dir, "logs", self.name + ".log")

    @property
    def object_id(self) -> str:
        return "nepi." + self.role
