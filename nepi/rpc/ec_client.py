"""A client of nepid offering the in-process ExperimentController's methods."""

import os
from typing import Optional

from nepi.errors import ControllerUnreachableError, NepiError
from nepi.rpc.client import PHASE_TIMEOUT, QUERY_TIMEOUT, Connection, add_remote_methods
from nepi.rpc.ec_service import MUTATING, QUERIES
from nepi.rpc.launcher import environment_from_setup, launch
from nepi.rpc.layout import ROLE_EC, DaemonLayout
from nepi.rpc.liveness import is_same_process, kill_process, wait_exit
from nepi.rpc.security import read_secret
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.files import read_json


class ExperimentControllerProxy:
    """Same methods as nepi.core.execute.ExperimentController, served by nepid."""

    def __init__(self, record: dict, secret: str, tunnel=None) -> None:
        self.record = record
        self._tunnel = tunnel     # an SSH tunnel when nepid runs on another host
        name = "nepid (pid %s) in %s" % (record.get("pid"), record.get("root_dir"))
        self._control = Connection(record["uri"], secret, ROLE_EC, None, PHASE_TIMEOUT, name)
        self._query = Connection(record["uri"], secret, ROLE_EC, None, QUERY_TIMEOUT, name)
        self._query.call("ping")

    @property
    def pid(self) -> Optional[int]:
        return self.record.get("pid")

    @property
    def root_dir(self) -> str:
        return self.record.get("root_dir")

    started_time = property(lambda self: self._query.call("get_started_time"))
    stopped_time = property(lambda self: self._query.call("get_stopped_time"))
    guids = property(lambda self: self._query.call("get_guids"))
    experiment_design_xml = property(lambda self: self._query.call("experiment_design_xml"))
    experiment_execute_xml = property(lambda self: self._query.call("experiment_execute_xml"))

    @property
    def state(self) -> str:
        return self._query.call("state")["state"]

    @property
    def error(self) -> Optional[str]:
        return self._query.call("state")["error"]

    def submit(self, xml) -> None:
        if isinstance(xml, bytes):
            xml = xml.decode("utf-8")
        self._control.call("submit", xml)

    def start_background(self) -> None:
        self._query.call("start_background")

    def daemon_status(self) -> dict:
        return self._query.call("daemon_status")

    def ping(self, timeout: float = 5.0) -> bool:
        return self._query.ping(timeout)

    def shutdown(self) -> None:
        """Stop and shut the experiment down; nepid exits and its files are removed."""
        try:
            self._control.call("shutdown")
        finally:
            self.close()
            if self._tunnel is None:
                wait_exit(self.record.get("pid"), self.record.get("start_time"))

    def close(self) -> None:
        self._control.close()
        self._query.close()
        if self._tunnel is not None:
            self._tunnel.close()


add_remote_methods(ExperimentControllerProxy, MUTATING, QUERIES)


def attach_ec(root_dir: str) -> ExperimentControllerProxy:
    layout = DaemonLayout(root_dir, ROLE_EC)
    record = read_json(layout.record_file)
    if not record or record.get("state") != "ready":
        raise ControllerUnreachableError("no nepid is serving %s" % root_dir)
    if not is_same_process(record.get("pid"), record.get("start_time")):
        raise ControllerUnreachableError("nepid pid %s of %s is gone"
                                         % (record.get("pid"), root_dir))
    return ExperimentControllerProxy(record, read_secret(layout.secret_file))


def start_nepid(root_dir: str, log_level: str = "Error", env=None, recover: bool = False) \
        -> ExperimentControllerProxy:
    args = ["--log-level", log_level]
    if recover:
        args.append("--recover")
    record = launch(ROLE_EC, root_dir, args, env)
    try:
        return ExperimentControllerProxy(record, read_secret(DaemonLayout(root_dir, ROLE_EC)
                                                             .secret_file))
    except BaseException:
        kill_process(record.get("pid"), record.get("start_time"))
        raise


def connect_experiment_controller(xml, access_config) -> ExperimentControllerProxy:
    """DAEMON mode of create_experiment_controller: launch nepid (or, with ``recover``,
    reconnect to it, relaunching it to recover the experiment if it died)."""
    if access_config.get_attribute_value(DC.DEPLOYMENT_COMMUNICATION) == DC.ACCESS_SSH:
        from nepi.rpc.ssh import connect_ec_over_ssh
        return connect_ec_over_ssh(xml, access_config)
    root_dir = os.path.abspath(access_config.get_attribute_value(DC.ROOT_DIRECTORY))
    log_level = access_config.get_attribute_value(DC.LOG_LEVEL)
    env = environment_from_setup(
        access_config.get_attribute_value(DC.DEPLOYMENT_ENVIRONMENT_SETUP))
    if access_config.get_attribute_value(DC.RECOVER):
        try:
            return attach_ec(root_dir)
        except ControllerUnreachableError:
            return start_nepid(root_dir, log_level, env, recover=True)
    if xml is None:
        raise NepiError("no experiment XML given and recover is not set")
    proxy = start_nepid(root_dir, log_level, env)
    try:
        proxy.submit(xml)
    except Exception:
        proxy.shutdown()
        raise
    return proxy
