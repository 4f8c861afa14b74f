"""The real ns3 testbed controller: it owns the ns-3 simulator of its process.

ns-3 is driven through the C++ shim (see ``shim``: commands sent with ctypes, no Python
bindings on the normal path). One thread touches ns-3 (``_NsThread``): it loads ns-3 and
the shim (started as soon as the controller exists, so that it overlaps the experiment
controller's calls), runs every deployment phase, then runs ``Simulator::Run`` with the
GIL released. Calls arriving from other threads (Pyro) are queued to that thread while the
simulator is idle, and run as simulator events (the shim's ``wake`` runs ``_pump``) while
it runs, so get/set/status are answered during a simulation and ns-3 is never used from
two threads. ns-3 aborts the whole process on many bad inputs, so values are validated
before they get there (see ``values``).

This module does not load ns-3 at import time; ``DaemonTestbedController`` is what a
testbed daemon runs (nepi.util.proxy.build_testbed_controller(..., in_daemon=True)).
"""

import collections
import concurrent.futures
import functools
import ipaddress
import logging
import os
import queue
import signal
import socket
import threading
import time as _time
from typing import Any, Callable, Dict, Optional

from nepi.core import testbed_impl
from nepi.errors import DeploymentError
from nepi.testbeds.ns3 import shim, spec, values
from nepi.testbeds.ns3.constants import TESTBED_ID, TESTBED_VERSION
from nepi.testbeds.ns3.metadata import ATTR_CONSTRUCT, ATTR_GET, ATTR_SET, ns3_attribute_info
from nepi.util.constants import CONNECTION_DELAY, TIME_NOW
from nepi.util.constants import ApplicationStatus as AS
from nepi.util.constants import TestbedStatus as TS

_logger = logging.getLogger("nepi.testbeds.ns3")

# Environment variable naming the process that owns a private (SINGLE-mode) ns3 daemon:
# "pid:start_time". When that process disappears, the daemon shuts itself down.
PARENT_ENV = "NEPI_NS3_PARENT"

SIM_CALL_TIMEOUT = 30.0      # a get/set marshalled into a running simulation
STOP_TIMEOUT = 60.0          # Simulator::Stop until Run returns
FD_TIMEOUT = 60.0            # cross connection: waiting for the peer's file descriptor
SOCKETPAIR_BUFFER = 1 << 20  # TunChannel <-> FdNetDevice socketpair buffers (bytes)

_PCAP_TRACES = {"P2PPcapTrace", "CsmaPcapTrace", "CsmaPromiscPcapTrace", "FdPcapTrace",
                "YansWifiPhyPcapTrace"}



def _on_ns3_thread(method: Callable) -> Callable:
    """The method, run on the testbed's ns-3 thread (queued while the simulator is idle,
    as a simulator event while it runs: see ``_call``)."""
    @functools.wraps(method)
    def on_thread(self, *args, **kwargs):
        return self._call(functools.partial(method, self, *args, **kwargs))
    return on_thread

class _NsThread:
    """The single thread allowed to call ns-3."""

    def __init__(self) -> None:
        self._queue: "queue.Queue" = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="ns3", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as e:          # delivered to the caller
                future.set_exception(e)

    def submit(self, fn) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((fn, future))
        return future

    def call(self, fn, timeout: Optional[float] = None):
        if threading.current_thread() is self.thread:
            return fn()
        return self.submit(fn).result(timeout)

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout)


def check_emulation(create: Dict[int, str], attribute) -> None:
    """FdNetDevice, TunChannel and TapBridge exchange frames with the real world: the
    simulator must follow the wall clock (RealtimeSimulatorImpl) and fill in checksums
    (ChecksumEnabled), or the kernel drops what ns-3 sends. ``attribute(name)`` reads a
    testbed attribute."""
    users = sorted(g for g, f in create.items() if f in spec.EMULATION_FACTORIES)
    if not users:
        return
    missing = []
    if attribute("SimulatorImplementationType") != "ns3::RealtimeSimulatorImpl":
        missing.append("SimulatorImplementationType = ns3::RealtimeSimulatorImpl")
    if not attribute("ChecksumEnabled"):
        missing.append("ChecksumEnabled = True")
    if missing:
        raise DeploymentError(
            "ns3 testbed: %s exchange%s frames with real network stacks, which needs the "
            "testbed attribute%s %s" % (
                ", ".join("%s %d" % (create[g], g) for g in users),
                "s" if len(users) == 1 else "", "s" if len(missing) > 1 else "",
                " and ".join(missing)), guid=users[0], phase="setup")


def refuse_exec() -> None:
    """``nepid exec``/``shell`` on an ns-3 node: why not."""
    raise NotImplementedError("ns-3 nodes are simulated: there is no process or shell "
                              "inside them to run a command in (read their traces, or "
                              "get/set their attributes at run time)")


class DaemonTestbedController(testbed_impl.TestbedController):
    """ns-3 in this process. Use it only inside a testbed daemon: one simulator per process."""

    def _exec_process(self, *_):
        refuse_exec()

    def __init__(self) -> None:
        # loading ns-3 comes first: it runs while the rest is set up and the daemon starts
        self._native: Optional[shim.Native] = None
        self._load_error: Optional[BaseException] = None
        self._shim_build: Optional[shim.Build] = None
        self._sim_tasks: "collections.deque" = collections.deque()   # for the next pump
        self._ns_thread = _NsThread()
        self._loaded = self._ns_thread.submit(self._load_ns)
        super().__init__(TESTBED_ID, TESTBED_VERSION)
        self._state_lock = threading.Lock()
        self._sim_state = "idle"                 # idle -> running -> done
        self._sim_done = threading.Event()
        self._sim_error: Optional[BaseException] = None
        self._constructed: Dict[int, Dict[str, Any]] = {}
        self._stack_done: set = set()
        self._channels_done: set = set()
        self._traces: Dict[tuple, str] = {}
        self._traces_closed = False
        self._fd_sockets: Dict[int, socket.socket] = {}
        self._fd_received: Dict[int, threading.Event] = {}
        self._fd_errors: Dict[int, str] = {}
        self._fd_paths: Dict[int, str] = {}
        self._tunchannels: Dict[int, Any] = {}
        self._shutdown_lock = threading.Lock()
        self._shut_down = False
        self._watch_parent()

    # -- the ns-3 thread --------------------------------------------------------------

    def _load_ns(self) -> None:
        """Load ns-3 and the shim (started with the controller: the EC's calls overlap)."""
        try:
            started = _time.monotonic()
            self._shim_build = shim.Build()
            native = shim.load(self._shim_build)
            native.set_pump(self._pump)
            _logger.info("ns-3 shim: %s (ns-3 ready %.3f s after the controller started "
                         "loading it)", native.mode, _time.monotonic() - started)
            self._native = native
        except BaseException as e:              # reported at do_setup
            self._load_error = e
            _logger.error("cannot load ns-3: %s", e)

    def _require_ns(self) -> shim.Native:
        if self._native is None:
            self._loaded.result()
            if self._native is None:
                raise RuntimeError("ns-3 cannot be loaded (pip install ns3): %s"
                                   % self._load_error)
        return self._native

    def _pump(self) -> None:
        """On the simulator thread, as an event: the calls queued for the simulation."""
        while self._sim_tasks:
            try:
                task = self._sim_tasks.popleft()
            except IndexError:                   # taken back by a caller meanwhile
                return
            task()

    def _call(self, fn, timeout: Optional[float] = None):
        """Run ``fn`` on the ns-3 thread: queued while idle, as an event while running."""
        if threading.current_thread() is self._ns_thread.thread:
            return fn()
        with self._state_lock:
            future = None if self._sim_state == "running" else self._ns_thread.submit(fn)
        if future is not None:
            return future.result(timeout)
        return self._call_on_simulator(fn)

    def _call_on_simulator(self, fn):
        done = threading.Event()
        box: Dict[str, Any] = {}

        def task():
            try:
                box["value"] = fn()
            except BaseException as e:
                box["error"] = e
            finally:
                done.set()

        self._sim_tasks.append(task)
        self._x("wake")
        deadline = _time.monotonic() + SIM_CALL_TIMEOUT
        while not done.wait(0.02):
            if self._sim_done.is_set():
                break
            if _time.monotonic() > deadline:
                raise TimeoutError("the ns-3 simulator did not run a call within %.0f s"
                                   % SIM_CALL_TIMEOUT)
        if not done.is_set():
            # The simulation ended before our event ran: the thread is free again.
            try:
                self._sim_tasks.remove(task)
            except ValueError:
                pass
            return self._ns_thread.call(fn)
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def _sim_running(self) -> bool:
        return self._sim_state == "running"

    # -- phases ---------------------------------------------------------------------------

    def do_setup(self) -> None:
        super().do_setup()
        check_emulation(self._create, self._testbed_attribute)
        self._call(self._setup_ns)

    def _setup_ns(self) -> None:
        self._require_ns()
        for name in ("SimulatorImplementationType", "SchedulerType"):
            self._x("bind", name, "t", self._testbed_attribute(name))
        if self._testbed_attribute("ChecksumEnabled"):
            self._x("bind", "ChecksumEnabled", "s", "true")
        os.makedirs(self._trace_dir(), exist_ok=True)

    # ns-3 objects are only touched from the ns-3 thread: the generic phases run there
    _base = testbed_impl.TestbedController
    do_create = _on_ns3_thread(_base.do_create)
    do_connect_init = _on_ns3_thread(_base.do_connect_init)
    do_connect_compl = _on_ns3_thread(_base.do_connect_compl)
    do_preconfigure = _on_ns3_thread(_base.do_preconfigure)
    do_configure = _on_ns3_thread(_base.do_configure)
    do_cross_connect_init = _on_ns3_thread(_base.do_cross_connect_init)
    do_cross_connect_compl = _on_ns3_thread(_base.do_cross_connect_compl)
    _base_start = _on_ns3_thread(_base.start)
    _base_stop = _on_ns3_thread(_base.stop)
    _base_get_values = _on_ns3_thread(_base.get_values)

    def do_prestart(self) -> None:
        self._wait_for_file_descriptors()
        self._wait_for_tunchannels()
        self._call(self._prestart)

    def _prestart(self) -> None:
        testbed_impl.TestbedController.do_prestart(self)
        if self._testbed_attribute("GlobalRouting"):
            self._x("populate")

    def start(self, time: str = TIME_NOW) -> None:
        self._base_start(time)
        self._call(self._prepare_run)
        with self._state_lock:
            self._sim_state = "running"
            self._ns_thread.submit(self._run_simulator)

    def _prepare_run(self) -> None:
        stop_time = self._testbed_attribute("StopTime")
        if stop_time:
            self._x("stopat", values.canonical_time(stop_time))

    def _run_simulator(self) -> None:
        try:
            self._x("run")                      # the GIL is released meanwhile
        except BaseException as e:
            self._sim_error = e
            _logger.error("ns-3 simulation failed: %s", e)
        finally:
            with self._state_lock:
                self._sim_state = "done"
            try:
                self._finish_traces()
            finally:
                self._sim_done.set()

    def stop(self, time: str = TIME_NOW) -> None:
        if self._sim_running():
            def stop_on_simulator():
                testbed_impl.TestbedController.stop(self, time)
                self._x("stop")
            self._call(stop_on_simulator)
            if not self._sim_done.wait(STOP_TIMEOUT):
                raise RuntimeError("the ns-3 simulator did not stop within %.0f s"
                                   % STOP_TIMEOUT)
        else:
            self._base_stop(time)
            if self._native is not None:
                self._call(self._finish_traces)
        self._status = TS.STATUS_STOPPED

    def recover(self) -> None:
        raise NotImplementedError("an ns-3 simulation cannot be re-attached to; use the "
                                  "Restart recovery policy")

    def shutdown(self) -> None:
        with self._shutdown_lock:
            if self._shut_down:
                return
            self._shut_down = True
        try:
            if self._sim_running():
                try:
                    self.stop()
                except Exception as e:
                    _logger.error("stopping the simulator at shutdown failed: %s", e)
            self._close_tunchannels()
            try:
                self._ns_thread.call(self._destroy, timeout=120)
            except Exception as e:
                _logger.error("destroying the simulator failed: %s", e)
        finally:
            if self._shim_build is not None:
                self._shim_build.cancel()
            for guid in list(self._fd_sockets):
                self._close_fd_socket(guid)
            self._close_tunchannels()
            self._ns_thread.close()

    def _destroy(self) -> None:
        if self._native is None:
            return
        self._finish_traces()
        self._x("silence")
        self._x("clear")
        self.elements.clear()
        self._x("destroy")
        self._sim_tasks.clear()

    # -- runtime values -------------------------------------------------------------------

    def _x(self, *command) -> str:
        """One command for the C++ side (nepi_ns3::Exec); RuntimeError if it fails."""
        return self._native.exec(command)

    def set(self, guid: int, name: str, value: Any, time: str = TIME_NOW) -> None:
        super().set(guid, name, value, time)   # validates and records (no ns-3 involved)
        if self.elements.get(guid) is not None:
            self._call(functools.partial(self._push, guid, name, value))

    def get(self, guid: int, name: str, time: str = TIME_NOW) -> Any:
        attr = self._box_attribute(guid, name)
        if self.elements.get(guid) is None or attr.is_metadata:
            return super().get(guid, name, time)
        return self._call(functools.partial(self._pull, guid, name, attr))

    def get_values(self, requests):
        if not self.elements:
            return super().get_values(requests)
        return self._base_get_values(requests)

    def _alias(self, factory_id: str, name: str, value: Any):
        target = ns3_attribute_info(factory_id, name)["alias"]
        if name == "Verbose":
            value = "Verbose" if value else "Quiet"
        elif name == "MaxPackets":
            value = "%dp" % value
        elif name == "MaxBytes":
            value = "%dB" % value
        return target, value, ns3_attribute_info(factory_id, target)

    @staticmethod
    def _kind_text(vtype: str, name: str, value: Any):
        """('a', address text), ('t', TypeId name) or ('s', text ns-3 parses itself)."""
        if vtype == "Address":
            return "a", "" if value is None else str(value)
        return "t" if vtype == "TypeId" else "s", values.ns3_text(vtype, value, name)

    def _push(self, guid: int, name: str, value: Any) -> None:
        """Apply a nepi attribute value to the live ns-3 object (on the ns-3 thread)."""
        factory_id = self._create[guid]
        attr = self._box_attribute(guid, name)
        if self.elements.get(guid) is None or attr.is_metadata:
            return
        if factory_id == "ns3::Node" and name == "Up":
            self._x("up", guid, int(bool(value)))
            return
        info = ns3_attribute_info(factory_id, name)
        if info is None:
            return
        if "alias" in info:
            name, value, info = self._alias(factory_id, name, value)
        if not info["flags"] & ATTR_SET:
            if not info["flags"] & ATTR_CONSTRUCT:
                return                               # read-only in ns-3
            if self._constructed.get(guid, {}).get(name, object()) == value:
                return                               # already given at construction
            raise AttributeError("ns-3 attribute %s of %s (guid %d) can only be given "
                                 "before the element is created" % (name, factory_id, guid))
        kind, text = self._kind_text(info["type"], name, value)
        self._x("set", guid, name, kind, text)

    def _pull(self, guid: int, name: str, attr) -> Any:
        """Read a nepi attribute from the live ns-3 object (on the ns-3 thread)."""
        factory_id = self._create[guid]
        if factory_id == "ns3::Node" and name == "Up":
            up = self._x("isup", guid)
            return up == "1" if up else testbed_impl.TestbedController.get(self, guid, name)
        info = ns3_attribute_info(factory_id, name)
        if self.elements.get(guid) is None or info is None:
            return testbed_impl.TestbedController.get(self, guid, name)
        if "alias" in info:
            target = info["alias"]
            target_type = ns3_attribute_info(factory_id, target)["type"]
            text = self._x("get", guid, target, "a" if target_type == "Address" else "s")
            if name == "Remote":
                return text.split(":")[0] if text else None
            if name == "Verbose":
                return text == "Verbose"
            unit = {"MaxPackets": "p", "MaxBytes": "B"}[name]
            return int(text[:-1]) if text.endswith(unit) and text[:-1].isdigit() else None
        vtype = info["type"]
        if vtype.startswith("Object:") or not info["flags"] & ATTR_GET:
            # ns-3 serialises object pointers as addresses: report what was given
            return testbed_impl.TestbedController.get(self, guid, name)
        text = self._x("get", guid, name, "a" if vtype == "Address" else "s")
        if vtype == "Address":
            return text
        return values.nepi_value_from_ns3(vtype, attr.type, text)

    # -- creation ---------------------------------------------------------------------

    def _user_values(self, guid: int) -> Dict[str, Any]:
        merged = dict(self._create_set.get(guid, {}))
        merged.update(self._set.get(guid, {}))
        return merged

    def _construct_args(self, guid: int) -> list:
        """[name, kind, text, ...] of the user's construct-time ns-3 attributes."""
        factory_id = self._create[guid]
        args = []
        for name, value in self._user_values(guid).items():
            info = ns3_attribute_info(factory_id, name)
            if not info:
                continue
            if "alias" in info:
                name, value, info = self._alias(factory_id, name, value)
            if info.get("flags", 0) & ATTR_CONSTRUCT:
                args += [name] + list(self._kind_text(info["type"], name, value))
                self._constructed.setdefault(guid, {})[name] = value
        return args

    def create_object(self, guid: int) -> None:
        self._require_ns()
        typeid = spec.FACTORIES[self._create[guid]]["typeid"]
        self._x("create", guid, typeid, *self._construct_args(guid))
        self.elements[guid] = True

    def create_node(self, guid: int) -> None:
        self.create_object(guid)
        self._x("node", guid)

    def create_mobility(self, guid: int) -> None:
        self.create_object(guid)
        waypoints = self._user_values(guid).get("WaypointList")
        if waypoints:
            for t, x, y, z in values.parse_waypoints(waypoints):
                self._x("waypoint", guid, values.canonical_time(t), x, y, z)

    def create_deferred(self, guid: int) -> None:
        self.elements[guid] = None

    # -- connections ------------------------------------------------------------------

    def connect_node_device(self, node: int, dev: int) -> None:
        allocate = self._create[dev] != "ns3::TapBridge" and \
            "Address" not in self._user_values(dev)
        self._x("adddev", node, dev, int(allocate))

    def connect_node_application(self, node: int, app: int) -> None:
        self._x("addapp", node, app)

    def connect_node_protocol(self, node: int, proto: int) -> None:
        if self._create[proto] == "ns3::Ipv4L3Protocol":
            # with the routing NEPI 2 installed: list routing holding static routing
            self._x("ipv4", node, proto, int(bool(self._testbed_attribute("GlobalRouting"))))
        else:
            self._x("aggregate", node, proto)

    def connect_node_mobility(self, node: int, mobility: int) -> None:
        self._x("aggregate", node, mobility)

    def connect_queue_device(self, queue_guid: int, dev: int) -> None:
        self._x("queue", dev, queue_guid)

    def connect_error_model_device(self, model: int, dev: int) -> None:
        self._x("err", dev, model)

    def connect_channel_device(self, chan: int, dev: int) -> None:
        self._x("attach", dev, chan)

    def connect_loss_channel(self, loss: int, chan: int) -> None:
        self._x("loss", chan, loss)

    def connect_loss_chain(self, model: int, previous: int) -> None:
        self._x("next", previous, model)

    def connect_delay_channel(self, delay: int, chan: int) -> None:
        self._x("delay", chan, delay)

    def connect_mobility_pair(self, pair: int, matrix: int) -> None:
        ma = self.get_connected(pair, "ma", "mp")
        mb = self.get_connected(pair, "mb", "mp")
        if len(ma) != 1 or len(mb) != 1:
            raise RuntimeError("mobility pair %d needs one mobility model on ma and one on mb"
                               % pair)
        given = self._user_values(pair)
        self._x("pairloss", matrix, ma[0], mb[0], repr(float(given.get("Loss", 0.0))),
                int(bool(given.get("Symmetric", True))))

    def connect_tap_bridge(self, bridge: int, dev: int):
        if self.elements.get(dev) is None:
            return CONNECTION_DELAY          # a wifi device is built later in this phase
        self._x("bridge", bridge, dev)

    def _complete_wifi_channel(self, chan: int) -> None:
        """ns-3 needs a loss and a delay model on a YANS channel; add the usual ones."""
        if chan in self._channels_done:
            return
        self._channels_done.add(chan)
        has_loss = bool(self.get_connected(chan, "loss", "prev") or
                        self.get_connected(chan, "loss", "chan"))
        has_delay = bool(self.get_connected(chan, "delay", "chan"))
        self._x("wifichannel", chan, int(has_loss), int(has_delay))

    def connect_node_wifi(self, node: int, dev: int) -> None:
        """Build the wifi device of ``dev`` with ns-3's helpers from its PHY, MAC, manager,
        channel and error rate model boxes (raw wifi objects cannot be wired in 3.44)."""
        phys = self.get_connected(dev, "phy", "dev")
        macs = self.get_connected(dev, "mac", "dev")
        managers = self.get_connected(dev, "manager", "dev")
        if len(phys) != 1 or len(macs) != 1:
            raise RuntimeError("wifi device %d needs one PHY (phy) and one MAC (mac)" % dev)
        phy, mac = phys[0], macs[0]
        manager = managers[0] if managers else -1
        self._native.need("WIFI")
        chans = self.get_connected(phy, "chan", "phys")
        if chans:
            self._complete_wifi_channel(chans[0])
        errors = self.get_connected(phy, "err", "phy")
        standard = self._user_values(phy).get("Standard") or super().get(phy, "Standard")
        # a YANS channel needs positions: a node without mobility model stays at 0,0,0
        self._x("mobility", node)
        self._x("wifi", node, dev, phy, mac, manager, chans[0] if chans else -1,
                spec.OLD_WIFI_STANDARDS.get(standard, standard),
                spec.FACTORIES[self._create[errors[0]]]["typeid"] if errors else "",
                *self._helper_part(phy), *self._helper_part(mac),
                *(self._helper_part(manager) if managers else ("", 0)))
        self.elements[dev] = self.elements[phy] = self.elements[mac] = True
        parts = [dev, mac]
        if managers:
            self.elements[manager] = True
            parts.append(manager)
        for guid in parts:
            for name, value in self._user_values(guid).items():
                self._push(guid, name, value)

    def _helper_part(self, guid: int) -> list:
        """[typeid, n, name, text, ...]: a box's construct-time values for ns-3's wifi
        helpers (wifi.cc's ReadPart parses them)."""
        factory_id = self._create[guid]
        pairs = []
        for name, value in self._user_values(guid).items():
            info = ns3_attribute_info(factory_id, name)
            if not info or "alias" in info or not info.get("flags", 0) & ATTR_CONSTRUCT:
                continue
            pairs += [name, values.ns3_text(info["type"], value, name)]
            self._constructed.setdefault(guid, {})[name] = value
        return [spec.FACTORIES[factory_id]["typeid"], len(pairs) // 2] + pairs

    # -- configuration ----------------------------------------------------------------

    def _node_of(self, dev: int) -> Optional[int]:
        nodes = self.get_connected(dev, "node", "devs")
        return nodes[0] if nodes else None

    def _finalize_stack(self, node: int) -> None:
        if node not in self._stack_done:
            self._x("stack", node)
            self._stack_done.add(node)

    def configure_device(self, dev: int) -> None:
        if self._create[dev] in ("ns3::PointToPointNetDevice", "ns3::CsmaNetDevice"):
            self._x("defaultqueue", dev)
        for trace in self._add_trace.get(dev, []):
            self._enable_trace(dev, trace)
        self._add_addresses(dev)

    def _add_addresses(self, dev: int) -> None:
        addresses = self._add_address.get(dev)
        if not addresses:
            return
        node = self._node_of(dev)
        if node is None:
            raise RuntimeError("device %d has addresses but no node" % dev)
        self._finalize_stack(node)
        for address, prefix, _broadcast in addresses:
            if ipaddress.ip_address(address).version != 4:
                raise RuntimeError("device %d: only IPv4 addresses are supported (%s)"
                                   % (dev, address))
            self._x("addr", node, dev, address, 24 if prefix is None else int(prefix))

    def configure_node(self, node: int) -> None:
        self._finalize_stack(node)
        for route in self._add_route.get(node, []):
            self._add_static_route(node, *route)
        if self._user_values(node).get("Up", True) is False:
            self._x("up", node, 0)

    def _add_static_route(self, node, destination, prefix, nexthop, metric=0, device=None):
        prefix = 24 if prefix is None else int(prefix)
        network = ipaddress.IPv4Network("%s/%d" % (destination, prefix), strict=False)
        via = nexthop if nexthop and nexthop != "None" else ""
        self._x("route", node, network.network_address, prefix, via, int(metric or 0))

    def configure_wifi_phy(self, phy: int) -> None:
        for trace in self._add_trace.get(phy, []):
            self._enable_trace(phy, trace)

    _REQUIRED = {"ns3::Ping": ["Destination"], "ns3::OnOffApplication": ["Remote"]}

    def configure_application(self, app: int) -> None:
        factory_id = self._create[app]
        typeid = spec.FACTORIES[factory_id]["typeid"]
        for name in self._REQUIRED.get(typeid, []):
            if not self._x("get", app, name, "a"):
                raise RuntimeError("%s %d needs its %s attribute (the address to send to)"
                                   % (factory_id, app,
                                      "Remote" if factory_id == "ns3::V4Ping" else name))
        if typeid in ("ns3::UdpEchoClient", "ns3::UdpClient"):
            if not self._x("get", app, "Remote", "a") and \
                    not self._x("get", app, "RemoteAddress", "a"):
                raise RuntimeError("%s %d needs Remote ('a.b.c.d:port') or RemoteAddress"
                                   % (factory_id, app))
        for trace in self._add_trace.get(app, []):
            self._enable_trace(app, trace)

    # -- applications ---------------------------------------------------------------------

    def start_application(self, app: int) -> None:
        """Nothing to do: ns-3 starts an application at its StartTime."""

    def stop_application(self, app: int) -> None:
        if self._sim_running() and self.elements.get(app) is not None:
            self._x("stopapp", app)

    def status_application(self, app: int) -> int:
        state = self._sim_state
        if state == "idle" or self.elements.get(app) is None:
            return AS.STATUS_NOT_STARTED
        if state == "done":
            return AS.STATUS_FINISHED
        # Read straight from this thread: status is polled often and must not stall the
        # simulation; the realtime simulator locks its clock, the default one is read as
        # one integer, and start/stop times change only through set() on the sim thread.
        status = int(self._x("status", app))
        if self._sim_state == "done":
            return AS.STATUS_FINISHED
        return status

    # -- traces ---------------------------------------------------------------------------

    def _trace_dir(self) -> str:
        root = self._root_directory or os.getcwd()
        home = self._testbed_attribute("homeDirectory")
        return os.path.join(root, home) if home else root

    def _device_position(self, dev: int):
        node = self._node_of(dev)
        if node is None:
            return -1, -1
        devices = self.get_connected(node, "devs", "node")
        return node, devices.index(dev) if dev in devices else -1

    def _enable_trace(self, guid: int, trace: str) -> None:
        factory_id = self._create[guid]
        if trace == "Rtt":
            path = self._trace_path(guid, trace, "trace-app-%d-Rtt.txt" % guid)
            self._native.need("RTT")
            self._x("rtt", guid, path)
            return
        if trace == "YansWifiPhyPcapTrace":
            devs = self.get_connected(guid, "dev", "phy")
            node, pos = self._device_position(devs[0]) if devs else (-1, -1)
            path = self._trace_path(guid, trace,
                                    "trace-yanswifi-node-%d-dev-%d.pcap" % (node, pos))
            self._native.need("WIFI")
            self._x("wifipcap", guid, path)
            return
        node, pos = self._device_position(guid)
        kind = {"ns3::PointToPointNetDevice": "p2p", "ns3::CsmaNetDevice": "csma",
                "ns3::FdNetDevice": "fd"}[factory_id]
        if trace in _PCAP_TRACES:
            promisc = trace == "CsmaPromiscPcapTrace"
            name = "trace-%s%s-node-%d-dev-%d.pcap" % (kind, "-promisc" if promisc else "",
                                                       node, pos)
            self._x("pcap", guid, kind, self._trace_path(guid, trace, name), int(promisc))
            return
        path = self._trace_path(guid, trace, "trace-%s-node-%d-dev-%d.tr" % (kind, node, pos))
        self._x("ascii", guid, kind, path)

    def _trace_path(self, guid: int, trace: str, filename: str) -> str:
        path = os.path.join(self._trace_dir(), filename)
        self._traces[(guid, trace)] = path
        return path

    def _flush_traces(self) -> None:
        if self._native is not None:
            self._x("flush")

    def _finish_traces(self) -> None:
        """Close the trace files (end of the run)."""
        if self._traces_closed or self._native is None:
            return
        self._traces_closed = True
        self._x("close")

    def trace_filepath(self, guid: int, trace_id: str) -> str:
        self._check_guid(guid)
        try:
            return self._traces[(guid, trace_id)]
        except KeyError:
            if trace_id in self._add_trace.get(guid, []):
                raise RuntimeError("trace %s of element %d is not written yet (traces start "
                                   "at configure)" % (trace_id, guid)) from None
            raise RuntimeError("trace %s is not enabled on element %d"
                               % (trace_id, guid)) from None

    def trace_filename(self, guid: int, trace_id: str) -> str:
        return os.path.basename(self.trace_filepath(guid, trace_id))

    def trace(self, guid: int, trace_id: str, attribute: str = "value") -> Any:
        if attribute not in ("value", "base64"):
            return super().trace(guid, trace_id, attribute)
        path = self.trace_filepath(guid, trace_id)
        if not self._traces_closed and self._native is not None:
            self._call(self._flush_traces)
        if attribute == "base64":
            return super().trace(guid, trace_id, attribute)
        if trace_id in _PCAP_TRACES:
            # binary: one str character per byte (value.encode("latin-1") gives the bytes);
            # while the simulation runs, up to the last packet written
            with open(path, "rb") as f:
                return f.read().decode("latin-1")
        with open(path, errors="replace") as f:
            return f.read()

    # -- cross connection with a netns TAP (file descriptor passing) ------------------

    def connect_fd_cross_init(self, guid: int, cross_data: dict) -> None:
        """Publish a private Unix socket; the peer (netns, at its cross-connect completion)
        sends its TAP file descriptor there; it goes to the FdNetDevice before start.

        Run again while the simulation runs (the peer's testbed was restarted: a new TAP
        behind a new fd), the device is stopped, given the new fd and started again."""
        from nepi.rpc.security import ensure_private_dir, socket_path
        run_dir = ensure_private_dir(os.path.join(self._root_directory or os.getcwd(),
                                                  "run-fd"))
        path = socket_path(run_dir, "fd-%d.sock" % guid)
        if os.path.exists(path):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        os.chmod(path, 0o600)
        sock.settimeout(FD_TIMEOUT)
        self._close_fd_socket(guid)              # an earlier attempt's
        self._fd_sockets[guid] = sock
        self._fd_paths[guid] = path
        self._fd_errors.pop(guid, None)
        received = self._fd_received[guid] = threading.Event()
        self._publish(guid, tun_addr=path, tun_proto="fd", tun_port=0,
                      tun_key="fd-" + str(guid))

        def receive():
            try:
                _msg, fds, _flags, _addr = socket.recv_fds(sock, 16, 1)
                if not fds:
                    raise RuntimeError("the peer sent no file descriptor")
                fd = fds[0]
                if self._sim_running():
                    self._call(functools.partial(self._replace_fd, guid, fd))
                else:
                    self._call(functools.partial(self._x, "fd", guid, fd))
            except Exception as e:
                self._fd_errors[guid] = str(e)
            finally:
                if self._fd_sockets.get(guid) is sock:
                    self._close_fd_socket(guid)  # one fd per connection: nothing left
                received.set()
        threading.Thread(target=receive, name="ns3-fd-%d" % guid, daemon=True).start()

    def _replace_fd(self, guid: int, fd: int) -> None:
        """On the simulator thread: stop the device (ns-3 closes its old fd), then give it
        the new one and start it again, and forget the old peer's MAC address."""
        node = self._node_of(guid)
        self._x("refd", guid, fd, -1 if node is None else node)

    def _flush_arp(self, dev: int) -> None:
        """Forget the ARP entries learnt on ``dev``: the peer behind it was replaced (a
        restarted testbed's new TAP has a new MAC address, and ns-3 only learns from
        replies to its own requests)."""
        node = self._node_of(dev)
        if node is not None:
            self._x("flusharp", node, dev)

    def _close_fd_socket(self, guid: int) -> None:
        sock = self._fd_sockets.pop(guid, None)
        path = self._fd_paths.pop(guid, None)
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        if path:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def _wait_for_file_descriptors(self) -> None:
        for guid, event in self._fd_received.items():
            if not event.wait(FD_TIMEOUT + 5):
                raise RuntimeError("FdNetDevice %d: no file descriptor received" % guid)
            if guid in self._fd_errors:
                raise RuntimeError("FdNetDevice %d: receiving the file descriptor failed: %s"
                                   % (guid, self._fd_errors[guid]))

    # -- TunChannel: an FdNetDevice's frames over UDP/TCP to another testbed ----------

    def create_tunchannel(self, guid: int) -> None:
        from nepi.util.tunchannel import STATS, TunChannel
        channel = self._tunchannels[guid] = TunChannel()    # FdNetDevice: 1500-byte MTU
        self.provide(guid, STATS, channel.stats_text)
        self.elements[guid] = None                  # no ns-3 object: nepi's own element

    def connect_tunchannel_fd(self, channel: int, dev: int) -> None:
        """The FdNetDevice gets one end of a SEQPACKET socketpair (ns-3 owns and closes
        it), the channel forwards the other end's frames (Ethernet, no PI: Dix mode)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for s in (ours, theirs):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKETPAIR_BUFFER)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKETPAIR_BUFFER)
        fd = theirs.detach()
        try:
            self._x("fd", dev, fd)
        except BaseException:
            os.close(fd)
            ours.close()
            raise
        self._tunchannels[channel].attach_socket(ours)

    def _publish(self, guid: int, **published) -> None:
        """Record the tunnel contract values (tun_*) the peer reads from this element,
        also while running: a restarted peer needs them again."""
        for name, value in published.items():
            attr = self._box_attribute(guid, name)
            self._set.setdefault(guid, {})[name] = self._check_value(attr, value,
                                                                     "attribute")

    def tunchannel_cross_init(self, guid: int, cross_data: dict, proto: str) -> None:
        """Open the local UDP socket / TCP listener and publish address and port (the link
        key comes from the controller). Run again (the peer's testbed restarted), the
        endpoint and its values stay."""
        channel = self._tunchannels[guid]
        if channel.tun_fd is None:
            raise RuntimeError("ns3::Nepi::TunChannel %d is not connected to an FdNetDevice "
                               "(connector fd->)" % guid)
        if channel.tun_port is not None:
            return
        base = testbed_impl.TestbedController
        cipher = base.get(self, guid, "tun_cipher")
        if cipher:
            channel.tun_cipher = cipher
        from nepi.util.tunchannel import endpoint_addresses
        bind_to, advertise = endpoint_addresses(cross_data)
        channel.bind(proto, bind_to, base.get(self, guid, "tun_port") or 0, advertise)
        self._publish(guid, tun_proto=proto, tun_addr=channel.tun_addr,
                      tun_port=channel.tun_port)

    def tunchannel_cross_compl(self, guid: int, cross_data: dict, proto: str) -> None:
        """Connect to the peer's published endpoint and start forwarding. Connected again
        (a restarted peer), the device forgets the old peer's MAC address."""
        from nepi.util.tunchannel import connect_cross_peer
        channel = self._tunchannels[guid]
        again = channel.connections > 0
        connect_cross_peer(channel, guid, cross_data, proto)
        if again:
            for dev in self.get_connected(guid, "fd->", "->fd"):
                self._flush_arp(dev)

    def _wait_for_tunchannels(self) -> None:
        for guid, channel in self._tunchannels.items():
            if channel.peer_addr is None:
                continue                              # not cross connected: idle
            try:
                channel.wait()
            except Exception as e:
                raise RuntimeError("ns3::Nepi::TunChannel %d: %s" % (guid, e)) from e

    def _close_tunchannels(self) -> None:
        for channel in list(self._tunchannels.values()):
            try:
                channel.close()
            except Exception as e:
                _logger.error("closing a TunChannel failed: %s", e)

    # -- the owner of a private daemon ------------------------------------------------

    def _watch_parent(self) -> None:
        value = os.environ.get(PARENT_ENV)
        if not value:
            return
        try:
            pid_text, _, start_text = value.partition(":")
            pid, start = int(pid_text), float(start_text) if start_text else None
        except ValueError:
            return
        from nepi.rpc.liveness import is_same_process

        def watch():
            while not self._shut_down:
                _time.sleep(1.0)
                if not is_same_process(pid, start):
                    _logger.warning("owner process %d is gone: shutting down", pid)
                    try:
                        self.shutdown()
                    finally:
                        os.kill(os.getpid(), signal.SIGTERM)
                    return
        threading.Thread(target=watch, name="ns3-owner-watch", daemon=True).start()
