"""A client of nepid offering the in-process ExperimentController's methods: nepid on
this host (its owner-only socket and secret), on another one through SSH, or on another
one over TCP with mutual TLS (``nepid start --listen``)."""

import os
import ssl
from typing import Optional, Sequence

from nepi.core.live import LiveAccess
from nepi.core.manifest import Manifest
from nepi.errors import ControllerUnreachableError, NepiError
from nepi.rpc.client import PHASE_TIMEOUT, QUERY_TIMEOUT, Connection, add_remote_methods
from nepi.rpc.ec_service import MUTATING, QUERIES
from nepi.rpc.launcher import environment_from_setup, launch
from nepi.rpc.layout import ROLE_EC, DaemonLayout
from nepi.rpc.liveness import is_same_process, kill_process
from nepi.rpc.security import read_secret
from nepi.rpc.ssh import remote_daemon, wait_gone
from nepi.rpc.tls import ClientFiles, client_context, format_address, parse_address
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.files import read_json
from nepi.util.rootdirs import normalise_allowed


class ExperimentControllerProxy:
    """Same methods as nepi.core.execute.ExperimentController, served by nepid."""

    def __init__(self, record: dict, secret: Optional[str], tunnel=None,
                 tls: Optional[ssl.SSLContext] = None) -> None:
        """``tunnel``: an SSH tunnel to nepid on another host; ``tls``: the client context
        for nepid's TLS listener at ``record["uri"]`` (no secret then)."""
        self.record = dict(record)
        self._tunnel = tunnel
        self._local = tunnel is None and tls is None
        name = "nepid at %s" % record["address"] if "address" in record else \
            "nepid (pid %s) in %s" % (record.get("pid"), record.get("root_dir"))
        self._control = Connection(record["uri"], secret, ROLE_EC, None, PHASE_TIMEOUT, name,
                                   tls)
        self._query = Connection(record["uri"], secret, ROLE_EC, None, QUERY_TIMEOUT, name,
                                 tls)
        self._query.call("ping")
        for key in ("pid", "root_dir"):     # a remote nepid says who it is in its handshake
            self.record.setdefault(key, self._query.hello.get(key))

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

    def submit(self, xml, allowed_roots=None) -> None:
        if isinstance(xml, bytes):
            xml = xml.decode("utf-8")
        self._control.call("submit", xml, list(allowed_roots or []))

    def start_background(self) -> None:
        self._query.call("start_background")

    def wait_progress(self, since: int = 0, timeout: float = 0.5) -> list:
        """Progress events from ``since``, waiting up to ``timeout`` s for one."""
        return self._query.call("wait_progress", since, timeout)

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
            if self._local or self._tunnel is not None:
                wait_gone(self.record, self._tunnel)

    def close(self) -> None:
        self._control.close()
        self._query.close()
        if self._tunnel is not None:
            self._tunnel.close()


add_remote_methods(ExperimentControllerProxy, MUTATING, QUERIES)
# the same loop over exec_* calls as in-process: no single call outlives a query timeout
ExperimentControllerProxy.run_in_node = LiveAccess.run_in_node


def attach_ec(root_dir: str) -> ExperimentControllerProxy:
    layout = DaemonLayout(root_dir, ROLE_EC)
    record = read_json(layout.record_file)
    if not record or record.get("state") != "ready":
        raise ControllerUnreachableError("no nepid is serving %s" % root_dir)
    if not is_same_process(record.get("pid"), record.get("start_time")):
        raise ControllerUnreachableError("nepid pid %s of %s is gone"
                                         % (record.get("pid"), root_dir))
    return ExperimentControllerProxy(record, read_secret(layout.secret_file))


def nepid_arguments(root_dir: str, log_level: str = "Error", recover: bool = False,
                    allowed_roots=None, preload: Sequence[str] = ()) -> list:
    """The daemon arguments of a nepid for ``root_dir`` (after ``ec --root-dir DIR``);
    ``preload``: the testbed ids it will launch daemons of first."""
    os.makedirs(root_dir, exist_ok=True)
    args = ["--log-level", log_level, "--owner", Manifest(root_dir).experiment_id()]
    for path in normalise_allowed(allowed_roots):
        args += ["--allow-root", path]
    if recover:
        args.append("--recover")
    if preload:
        args += ["--preload", ",".join(preload)]
    return args


def start_nepid(root_dir: str, log_level: str = "Error", env=None, recover: bool = False,
                allowed_roots=None, preload: Sequence[str] = ()) -> ExperimentControllerProxy:
    record = launch(ROLE_EC, root_dir, nepid_arguments(root_dir, log_level, recover,
                                                       allowed_roots, preload), env)
    try:
        return ExperimentControllerProxy(record, read_secret(DaemonLayout(root_dir, ROLE_EC)
                                                             .secret_file))
    except BaseException:
        kill_process(record.get("pid"), record.get("start_time"))
        raise


def connect_ec_over_ssh(xml, access_config) -> ExperimentControllerProxy:
    """nepid on deployment_host, launched over SSH (recovering what its root dir holds)
    and reached through an SSH tunnel; ``xml`` is submitted unless ``recover`` is set."""
    record, secret, tunnel = remote_daemon(ROLE_EC, access_config, ["--recover"])
    try:
        proxy = ExperimentControllerProxy(record, secret, tunnel=tunnel)
        if not access_config.get_attribute_value(DC.RECOVER):
            proxy.submit(xml)
    except BaseException:
        tunnel.close()
        raise
    return proxy


def connect_experiment_controller(xml, access_config,
                                  allowed_roots=None) -> ExperimentControllerProxy:
    """DAEMON mode of create_experiment_controller: launch nepid (or, with ``recover``,
    reconnect to it, relaunching it to recover the experiment if it died)."""
    if access_config.get_attribute_value(DC.DEPLOYMENT_COMMUNICATION) == DC.ACCESS_SSH:
        return connect_ec_over_ssh(xml, access_config)
    if access_config.get_attribute_value(DC.DEPLOYMENT_COMMUNICATION) == DC.ACCESS_TLS:
        return connect_ec_over_tls(xml, access_config, allowed_roots)
    root_dir = os.path.abspath(access_config.get_attribute_value(DC.ROOT_DIRECTORY))
    log_level = access_config.get_attribute_value(DC.LOG_LEVEL)
    env = environment_from_setup(
        access_config.get_attribute_value(DC.DEPLOYMENT_ENVIRONMENT_SETUP))
    if access_config.get_attribute_value(DC.RECOVER):
        try:
            return attach_ec(root_dir)
        except ControllerUnreachableError:
            return start_nepid(root_dir, log_level, env, recover=True,
                               allowed_roots=allowed_roots)
    if xml is None:
        raise NepiError("no experiment XML given and recover is not set")
    proxy = start_nepid(root_dir, log_level, env, allowed_roots=allowed_roots)
    try:
        proxy.submit(xml)
    except Exception:
        proxy.shutdown()
        raise
    return proxy


def attach_ec_over_tls(address: str, files: ClientFiles) -> ExperimentControllerProxy:
    """A proxy to the nepid listening at ``address`` (HOST:PORT) with mutual TLS; ``files``
    are the CA certificate and this client's certificate and key."""
    host, port = parse_address(address)
    uri = "PYRO:%s@%s" % (DaemonLayout(".", ROLE_EC).object_id, format_address(host, port))
    return ExperimentControllerProxy({"uri": uri, "address": format_address(host, port)},
                                     None, tls=client_context(*files))


def connect_ec_over_tls(xml, access_config, allowed_roots=None) -> ExperimentControllerProxy:
    """deployment_communication TLS: nepid already runs (``nepid start --listen``) at
    deployment_host:deployment_port; submit ``xml`` to it unless ``recover`` is set."""
    get = access_config.get_attribute_value
    files = ClientFiles(get(DC.TLS_CA), get(DC.TLS_CERT), get(DC.TLS_KEY))
    if not all(files):
        raise NepiError("deployment_communication TLS needs %s, %s and %s"
                        % (DC.TLS_CA, DC.TLS_CERT, DC.TLS_KEY))
    proxy = attach_ec_over_tls(format_address(get(DC.DEPLOYMENT_HOST),
                                              get(DC.DEPLOYMENT_PORT)), files)
    if get(DC.RECOVER):
        return proxy
    try:
        if xml is None:
            raise NepiError("no experiment XML given and recover is not set")
        proxy.submit(xml, allowed_roots)
    except BaseException:
        proxy.close()
        raise
    return proxy
