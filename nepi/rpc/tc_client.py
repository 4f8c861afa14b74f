"""The experiment controller's view of a testbed daemon: the TestbedController contract,
each call forwarded over Pyro5 (phases with a long timeout, queries with a short one)."""

import json
import os
from typing import List, Optional

from nepi.core.testbed_api import TestbedController
from nepi.errors import ControllerUnreachableError
from nepi.rpc.client import PHASE_TIMEOUT, QUERY_TIMEOUT, Connection, add_remote_methods
from nepi.rpc.launcher import environment_from_setup, launch
from nepi.rpc.layout import ROLE_TESTBED, DaemonLayout
from nepi.rpc.liveness import is_same_process, kill_process
from nepi.rpc.security import read_secret
from nepi.rpc.ssh import remote_daemon, wait_gone
from nepi.rpc.testbed_service import MUTATING, QUERIES
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.files import read_json


class RemoteTestbedController(TestbedController):
    def __init__(self, record: dict, secret: str, testbed_id: str, testbed_version: str,
                 testbed_guid: Optional[int], tunnel=None) -> None:
        super().__init__(testbed_id, testbed_version)
        self.record = record
        self._tunnel = tunnel     # an SSH tunnel when the daemon runs on another host
        expect = {"testbed_guid": testbed_guid} if testbed_guid is not None else {}
        name = "testbed %s daemon (pid %s)" % (testbed_guid if testbed_guid is not None
                                               else testbed_id, record.get("pid"))
        self._control = Connection(record["uri"], secret, ROLE_TESTBED, expect,
                                   PHASE_TIMEOUT, name)
        self._query = Connection(record["uri"], secret, ROLE_TESTBED, expect,
                                 QUERY_TIMEOUT, name)
        identity = self._query.call("identity")
        from nepi.core.metadata import Metadata
        if identity["testbed_id"] != testbed_id or \
                not Metadata(testbed_id).accepts_version(testbed_version):
            raise ControllerUnreachableError(
                "%s runs %s %s, expected %s %s" % (name, identity["testbed_id"],
                                                   identity["testbed_version"], testbed_id,
                                                   testbed_version))

    @property
    def pid(self) -> Optional[int]:
        return self.record.get("pid")

    @property
    def guids(self) -> List[int]:
        return self._query.call("guids")

    def ping(self, timeout: float = 5.0) -> bool:
        return self._query.ping(timeout)

    def close(self) -> None:
        """Close the connections (the SSH tunnel first: a call still waiting on a hung
        remote daemon then ends instead of holding its connection)."""
        if self._tunnel is not None:
            self._tunnel.close()
        self._control.close()
        self._query.close()

    def shutdown(self):
        try:
            self._control.call("shutdown")
        finally:
            self.close()
            wait_gone(self.record, self._tunnel)

    def is_alive(self) -> bool:
        if self._tunnel is not None:   # the pid is on another host: ask the daemon
            return self._tunnel.proc.poll() is None and self.ping()
        return is_same_process(self.record.get("pid"), self.record.get("start_time"))


# Same names as the contract; defaults are applied by the controller in the daemon.
add_remote_methods(RemoteTestbedController, MUTATING, QUERIES)


def _program(self, calls: List[list]) -> None:
    """The design's programming calls as one JSON text when they survive the round trip
    unchanged (lists, str keys, finite numbers): far cheaper to decode than serpent."""
    text = json.dumps(calls)
    if json.loads(text) == calls:
        return self._control.call("program_json", text)
    return self._control.call("program", calls)


RemoteTestbedController.program = _program


def attach(root_dir: str, testbed_id: str, testbed_version: str,
           testbed_guid: Optional[int], owner: Optional[str] = None) -> RemoteTestbedController:
    """Reconnect to the testbed daemon serving ``root_dir`` (pid, start time, secret);
    with ``owner``, only to one launched by that experiment (never a neighbour's)."""
    layout = DaemonLayout(root_dir, ROLE_TESTBED)
    record = read_json(layout.record_file)
    if not record or record.get("state") != "ready":
        raise ControllerUnreachableError("no testbed daemon record in %s" % layout.run_dir)
    if owner is not None and record.get("owner") != owner:
        raise ControllerUnreachableError("the testbed daemon in %s belongs to another "
                                         "experiment" % root_dir)
    if not is_same_process(record.get("pid"), record.get("start_time")):
        raise ControllerUnreachableError("testbed daemon pid %s of %s is gone"
                                         % (record.get("pid"), root_dir))
    return RemoteTestbedController(record, read_secret(layout.secret_file), testbed_id,
                                   testbed_version, testbed_guid)


def launch_testbed_daemon(testbed_id: str, testbed_version: str, access_config,
                         testbed_guid: Optional[int] = None, log_file: Optional[str] = None,
                         owner: Optional[str] = None) -> RemoteTestbedController:
    """Launch a testbed daemon on this host in the configuration's root dir; its client."""
    root_dir = os.path.abspath(access_config.get_attribute_value(DC.ROOT_DIRECTORY))
    env = environment_from_setup(
        access_config.get_attribute_value(DC.DEPLOYMENT_ENVIRONMENT_SETUP))
    args = ["--testbed-id", testbed_id, "--testbed-version", testbed_version,
            "--log-level", access_config.get_attribute_value(DC.LOG_LEVEL)]
    if testbed_guid is not None:
        args += ["--testbed-guid", str(testbed_guid)]
    if log_file:
        args += ["--log-file", log_file]
    record = launch(ROLE_TESTBED, root_dir, args, env, owner=owner)
    try:
        return RemoteTestbedController(record, read_secret(DaemonLayout(root_dir, ROLE_TESTBED)
                                                           .secret_file),
                                       testbed_id, testbed_version, testbed_guid)
    except BaseException:
        kill_process(record.get("pid"), record.get("start_time"))
        raise


def connect_testbed_over_ssh(testbed_id: str, testbed_version: str, access_config,
                             testbed_guid: Optional[int] = None,
                             log_file: Optional[str] = None) -> RemoteTestbedController:
    """A testbed daemon on deployment_host, launched (or, with ``recover``, found) over
    SSH and reached through an SSH tunnel."""
    args = ["--testbed-id", testbed_id, "--testbed-version", testbed_version]
    if testbed_guid is not None:
        args += ["--testbed-guid", str(testbed_guid)]
    record, secret, tunnel = remote_daemon(ROLE_TESTBED, access_config, args)
    try:
        return RemoteTestbedController(record, secret, testbed_id, testbed_version,
                                       testbed_guid, tunnel=tunnel)
    except BaseException:
        tunnel.close()
        raise


def connect_testbed_controller(testbed_id: str, testbed_version: str, access_config,
                               testbed_guid: Optional[int] = None,
                               log_file: Optional[str] = None,
                               owner: Optional[str] = None) -> RemoteTestbedController:
    """Launch (or with ``recover`` reconnect to) a testbed daemon; return its client."""
    if access_config.get_attribute_value(DC.DEPLOYMENT_COMMUNICATION) == DC.ACCESS_SSH:
        return connect_testbed_over_ssh(testbed_id, testbed_version, access_config,
                                        testbed_guid, log_file)
    if access_config.get_attribute_value(DC.RECOVER):
        root_dir = os.path.abspath(access_config.get_attribute_value(DC.ROOT_DIRECTORY))
        return attach(root_dir, testbed_id, testbed_version, testbed_guid, owner)
    return launch_testbed_daemon(testbed_id, testbed_version, access_config, testbed_guid,
                                 log_file, owner)
