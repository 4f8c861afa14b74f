"""The ns3 controller used in SINGLE mode: the simulator still gets a process of its own.

ns-3 keeps one simulator per process and cannot be reset, so an in-process
ExperimentController gets this proxy instead: programming calls are checked here (no ns-3
needed) and recorded; a private testbed daemon is launched through nepi.rpc as soon as the
root directory is known (so its start and its loading of ns-3 overlap the rest of the
programming); from ``do_setup`` on, every call is forwarded to it. ``shutdown()`` shuts the
daemon down and waits until its process is gone. The daemon watches this process and shuts
itself down if it disappears.
"""

import logging
import os
import shutil
import tempfile
import threading
from typing import Any, List, Optional

from nepi.core import testbed_impl
from nepi.core.access import AccessConfiguration
from nepi.testbeds.ns3.constants import TESTBED_ID, TESTBED_VERSION
from nepi.testbeds.ns3.execute import refuse_exec
from nepi.util.constants import TIME_NOW
from nepi.util.constants import ApplicationStatus as AS
from nepi.util.constants import DeploymentConfiguration as DC

_logger = logging.getLogger("nepi.testbeds.ns3.single")

CHILD_PREFIX = "ns3d-"


class TestbedController(testbed_impl.TestbedController):
    def __init__(self) -> None:
        super().__init__(TESTBED_ID, TESTBED_VERSION)
        self._calls: List[list] = []          # programming, replayed in the daemon
        self._remote = None
        self._launcher: Optional[threading.Thread] = None
        self._launch_error: Optional[BaseException] = None
        self._launch_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._child_root: Optional[str] = None
        self._own_tempdir: Optional[str] = None
        self._closed = False

    def _exec_process(self, *_):
        refuse_exec()

    # -- the private daemon -------------------------------------------------------------

    @property
    def daemon_pid(self) -> Optional[int]:
        return self._remote.pid if self._remote is not None else None

    @property
    def daemon_root(self) -> Optional[str]:
        return self._child_root

    def _start_launch(self) -> None:
        with self._launch_lock:
            if self._launcher is not None or self._closed:
                return
            root = self._attributes.get_attribute_value(DC.ROOT_DIRECTORY)
            if not root or root == ".":
                root = self._own_tempdir = tempfile.mkdtemp(prefix="nepi-ns3-")
                self._calls.append(["defer_configure", DC.ROOT_DIRECTORY, root])
            os.makedirs(root, exist_ok=True)
            self._child_root = tempfile.mkdtemp(prefix=CHILD_PREFIX, dir=root)
            self._launcher = threading.Thread(target=self._launch, name="ns3-launcher",
                                              daemon=True)
            self._launcher.start()

    def _launch(self) -> None:
        try:
            from nepi.rpc.liveness import process_start_time
            from nepi.rpc.tc_client import connect_testbed_controller
            from nepi.testbeds.ns3.execute import PARENT_ENV
            config = AccessConfiguration()
            config.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
            config.set_attribute_value(DC.ROOT_DIRECTORY, self._child_root)
            config.set_attribute_value(DC.LOG_LEVEL,
                                       self._attributes.get_attribute_value(DC.LOG_LEVEL))
            setup = self._attributes.get_attribute_value(DC.DEPLOYMENT_ENVIRONMENT_SETUP)
            owner = "export %s=%d:%r" % (PARENT_ENV, os.getpid(),
                                         process_start_time(os.getpid()))
            config.set_attribute_value(DC.DEPLOYMENT_ENVIRONMENT_SETUP,
                                       "%s\n%s" % (setup, owner) if setup else owner)
            remote = connect_testbed_controller(TESTBED_ID, TESTBED_VERSION, config)
            if self._closed:
                remote.shutdown()
                return
            self._remote = remote
        except BaseException as e:
            self._launch_error = e

    def _ensure_remote(self):
        if self._remote is None:
            self._start_launch()
            self._launcher.join()
            if self._remote is None:
                raise RuntimeError("could not start the ns3 testbed daemon: %s"
                                   % (self._launch_error or "shut down"))
        return self._running_remote()

    def _running_remote(self):
        """The daemon, with the programming replayed, once it runs; else None."""
        if self._remote is None:
            return None
        self._send_calls()
        return self._remote

    def _send_calls(self) -> None:
        """Replay the recorded programming in the daemon, in order, before anything else
        reaches it (the daemon may have become ready before or after the first call)."""
        with self._send_lock:
            calls, self._calls = self._calls, []
            if calls:
                self._remote.program(calls)

    # -- programming: checked here, recorded for the daemon ---------------------------

    def program(self, calls: List[list]) -> None:
        super().program(calls)                # each defer_* below validates and records
        self._running_remote()

    def _record(self, name, *args) -> None:
        self._calls.append([name] + list(args))

    def defer_configure(self, name, value):
        super().defer_configure(name, value)
        self._record("defer_configure", name, value)
        if name == DC.ROOT_DIRECTORY:
            self._start_launch()

    def defer_create(self, guid, factory_id):
        super().defer_create(guid, factory_id)
        self._record("defer_create", guid, factory_id)

    def defer_create_set(self, guid, name, value):
        super().defer_create_set(guid, name, value)
        self._record("defer_create_set", guid, name, value)

    def defer_factory_set(self, guid, name, value):
        super().defer_factory_set(guid, name, value)
        self._record("defer_factory_set", guid, name, value)

    def defer_connect(self, guid1, connector1, guid2, connector2):
        super().defer_connect(guid1, connector1, guid2, connector2)
        self._record("defer_connect", guid1, connector1, guid2, connector2)

    def defer_cross_connect(self, guid, connector, cross_guid, cross_testbed_guid,
                            cross_testbed_id, cross_factory_id, cross_connector):
        super().defer_cross_connect(guid, connector, cross_guid, cross_testbed_guid,
                                    cross_testbed_id, cross_factory_id, cross_connector)
        self._record("defer_cross_connect", guid, connector, cross_guid, cross_testbed_guid,
                     cross_testbed_id, cross_factory_id, cross_connector)

    def defer_add_trace(self, guid, trace_id):
        super().defer_add_trace(guid, trace_id)
        self._record("defer_add_trace", guid, trace_id)

    def defer_add_address(self, guid, address, netprefix, broadcast):
        super().defer_add_address(guid, address, netprefix, broadcast)
        self._record("defer_add_address", guid, address, netprefix, broadcast)

    def defer_add_route(self, guid, destination, netprefix, nexthop, metric=0, device=None):
        super().defer_add_route(guid, destination, netprefix, nexthop, metric, device)
        self._record("defer_add_route", guid, destination, netprefix, nexthop, metric, device)

    # -- phases and queries: forwarded once the daemon runs -------------------------------

    def do_setup(self) -> None:
        super().do_setup()
        from nepi.testbeds.ns3.execute import check_emulation
        check_emulation(self._create, self._testbed_attribute)   # before waiting for ns-3
        self._ensure_remote().do_setup()

    def _forward(name):
        def method(self, *args, **kwargs):
            return getattr(self._ensure_remote(), name)(*args, **kwargs)
        method.__name__ = name
        return method

    do_create = _forward("do_create")
    do_connect_init = _forward("do_connect_init")
    do_connect_compl = _forward("do_connect_compl")
    do_preconfigure = _forward("do_preconfigure")
    do_configure = _forward("do_configure")
    do_prestart = _forward("do_prestart")
    do_cross_connect_init = _forward("do_cross_connect_init")
    do_cross_connect_compl = _forward("do_cross_connect_compl")
    start = _forward("start")
    stop = _forward("stop")
    recover = _forward("recover")
    action = _forward("action")
    del _forward

    def _query(name):
        def method(self, *args, **kwargs):
            remote = self._running_remote()
            if remote is None:
                return getattr(testbed_impl.TestbedController, name)(self, *args, **kwargs)
            return getattr(remote, name)(*args, **kwargs)
        method.__name__ = name
        return method

    get = _query("get")
    get_values = _query("get_values")
    get_address = _query("get_address")
    get_route = _query("get_route")
    testbed_status = _query("testbed_status")
    trace = _query("trace")
    traces_info = _query("traces_info")
    del _query

    def status(self, guid: Optional[int] = None) -> int:
        remote = self._running_remote()
        if remote is not None:
            return remote.status(guid)
        if guid is None:
            return self._status
        if self._factory_of(guid).status_function is None:
            return AS.STATUS_UNDETERMINED
        return AS.STATUS_NOT_STARTED                 # nothing runs before do_setup

    def set(self, guid: int, name: str, value: Any, time: str = TIME_NOW) -> None:
        remote = self._running_remote()
        if remote is None:
            super().set(guid, name, value, time)
            self._record("defer_create_set", guid, name, value)
        else:
            remote.set(guid, name, value, time)

    def trace_filepath(self, guid: int, trace_id: str) -> str:
        return self.trace(guid, trace_id, "path")

    def trace_filename(self, guid: int, trace_id: str) -> str:
        return self.trace(guid, trace_id, "filename")

    def shutdown(self) -> None:
        """Shut the daemon down and wait until its process has exited."""
        with self._launch_lock:
            self._closed = True
            launcher = self._launcher
        if launcher is not None:
            launcher.join()
        remote, self._remote = self._remote, None
        try:
            if remote is not None:
                remote.shutdown()
        finally:
            if self._own_tempdir:
                shutil.rmtree(self._own_tempdir, ignore_errors=True)
                self._own_tempdir = None


def cleanup(root_dir: str) -> None:
    """Kill private ns3 daemons a dead controller left under ``root_dir``."""
    from nepi.rpc.layout import ROLE_TESTBED, DaemonLayout
    from nepi.rpc.liveness import kill_process
    from nepi.util.files import read_json
    if not root_dir or not os.path.isdir(root_dir):
        return
    for entry in os.listdir(root_dir):
        if not entry.startswith(CHILD_PREFIX):
            continue
        record = read_json(DaemonLayout(os.path.join(root_dir, entry), ROLE_TESTBED)
                           .record_file) or {}
        if record.get("state") == "ready":
            kill_process(record.get("pid"), record.get("start_time"))
