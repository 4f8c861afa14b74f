"""Execution: the ExperimentController that deploys a design on its testbeds, and the
ExperimentSuite that repeats an experiment.

Testbeds are driven through the TestbedController contract (nepi.core.testbed_api) with
plain values only, so each may be in this process or a daemon behind a Pyro5 proxy.
"""

import concurrent.futures
import copy
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from nepi.core.checks import check_data
from nepi.core.netref_resolution import NetrefResolver, describe_location
from nepi.core.testbed_api import TestbedController  # noqa: F401  (NEPI 2 import path)
from nepi.core.tunnels import STATS, channel_counters, deliver_link_keys, forget_link_keys
from nepi.errors import DeploymentError, DesignError, NepiError, Problem
from nepi.util import netrefs, rootfiles, validation
from nepi.util.constants import TIME_NOW
from nepi.util.constants import ApplicationStatus as AS
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS
from nepi.util.files import read_json, write_atomic, write_json_atomic
from nepi.util.parser._xml import XmlExperimentParser
from nepi.util.rootdirs import normalise_allowed, resolve_testbed_root

from nepi.util.rootfiles import DEPLOYMENT_JSON, DESIGN_XML, EXECUTE_XML  # noqa: E402

# Phases before cross-connection, run on every testbed of a creation round.
SETUP_PHASES = ("do_setup", "do_create", "do_connect_init", "do_connect_compl",
                "do_preconfigure")

_logger = logging.getLogger("nepi.core.execute")


class _Catalog:
    """Local metadata per testbed id (attribute types, ExecImmutable lists)."""

    def __init__(self) -> None:
        self._providers: Dict[str, Any] = {}

    def factory(self, testbed_id: str, factory_id: str):
        from nepi.core.design import FactoriesProvider
        if testbed_id not in self._providers:
            self._providers[testbed_id] = FactoriesProvider(testbed_id)
        return self._providers[testbed_id].factory(factory_id)


def _check_ssh_targets(data) -> List[Problem]:
    """Host and login of SSH-deployed testbeds reach ssh's command line: nothing there
    may read as an option. (Other modes never use them: NEPI 2 designs put anything.)"""
    problems = []
    for g in data.testbed_guids():
        if data.get_attribute_data(g, DC.DEPLOYMENT_COMMUNICATION) != DC.ACCESS_SSH:
            continue
        for name, valid in ((DC.DEPLOYMENT_HOST, validation.is_host_name),
                            (DC.DEPLOYMENT_USER, validation.is_login_name)):
            value = data.get_attribute_data(g, name)
            if value is not None and not netrefs.has_netref(value) and \
                    not valid(None, value):
                problems.append(Problem("%r is not %s" % (value, valid.expected), guid=g,
                                        testbed=data.get_testbed_data(g)[0], attribute=name))
    return problems


class ExperimentController:
    """Deploys an experiment design on its testbeds and answers queries about it."""

    def __init__(self, experiment_xml, root_dir: Optional[str],
                 allowed_roots: Optional[List[str]] = None) -> None:
        """``allowed_roots``: places outside ``root_dir`` where the design's testbeds may
        keep their files (by default only inside ``root_dir``)."""
        if root_dir is None:
            raise ValueError("ExperimentController needs a root directory for its state "
                             "(design, execute XML, traces)")
        self._root_dir = os.path.abspath(root_dir)
        os.makedirs(self._root_dir, exist_ok=True)
        self._allowed_roots = self._load_allowed_roots(experiment_xml is None, allowed_roots)
        self._parser = XmlExperimentParser()
        self._execute_xml: Optional[str] = None
        if experiment_xml is None:
            self._design_xml = self._read_root_file(DESIGN_XML, required=True)
            self._execute_xml = self._read_root_file(EXECUTE_XML, required=False)
        else:
            if isinstance(experiment_xml, bytes):
                experiment_xml = experiment_xml.decode("utf-8")
            self._design_xml = experiment_xml
        design_data = self._parser.from_xml_to_data(self._design_xml, source=DESIGN_XML)
        problems = check_data(design_data) or self._check_testbed_roots(design_data) or \
            _check_ssh_targets(design_data)
        if problems:
            raise DesignError(problems)
        self._design_data = design_data
        if experiment_xml is not None:
            write_atomic(os.path.join(self._root_dir, DESIGN_XML), self._design_xml)
        self._catalog = _Catalog()
        self._lock = threading.RLock()
        self._testbeds: Dict[int, Any] = {}
        self._deployment_config: Dict[int, Any] = {}
        self._testbed_order: List[List[int]] = []
        self._failed_testbeds: Dict[int, str] = {}
        self._guid_testbed: Dict[int, int] = {}
        self._data = None
        self._resolver: Optional[NetrefResolver] = None
        self._held_back: Dict[int, set] = {}       # guid -> attributes not yet sent
        self._started_time: Optional[float] = None
        self._stopped_time: Optional[float] = None
        self._state = "created"
        self._error: Optional[str] = None
        self._events: List[dict] = []
        self._listeners: List[Callable[[dict], None]] = []
        self._shut_down = False
        self._prelaunched: Dict[int, tuple] = {}
        self._launcher = concurrent.futures.ThreadPoolExecutor(4, "nepi-launch")

    # -- where testbeds keep their files -----------------------------------------------

    def _load_allowed_roots(self, recovering: bool, given: Optional[List[str]]) -> List[str]:
        """Allowed roots are kept in the manifest, so a recovered controller resolves the
        testbed roots the person who started the experiment allowed."""
        from nepi.rpc.manifest import Manifest
        allowed = normalise_allowed(given)
        if recovering:
            saved = Manifest(self._root_dir).read().get("allowed_roots") or []
            allowed += [a for a in normalise_allowed(saved) if a not in allowed]
        return allowed

    def _testbed_root(self, testbed_guid: int, value: Optional[str]) -> str:
        return resolve_testbed_root(self._root_dir, value, testbed_guid, self._allowed_roots)

    def _check_testbed_roots(self, data) -> List[Problem]:
        """Every literal testbed root is confined and no two testbeds share one."""
        problems, seen = [], {}
        for g in data.testbed_guids():
            value = data.get_attribute_data(g, DC.ROOT_DIRECTORY)
            if netrefs.has_netref(value):
                continue        # checked once resolved, before its controller is made
            try:
                root = self._testbed_root(g, value)
            except ValueError as e:
                problems.append(Problem(str(e), guid=g, testbed=data.get_testbed_data(g)[0],
                                        attribute=DC.ROOT_DIRECTORY))
                continue
            if root in seen:
                problems.append(Problem("testbed %d already keeps its files in %s; each "
                                        "testbed needs its own root dir" % (seen[root], root),
                                        guid=g, testbed=data.get_testbed_data(g)[0],
                                        attribute=DC.ROOT_DIRECTORY))
            seen.setdefault(root, g)
        return problems

    # -- properties ---------------------------------------------------------------------

    experiment_design_xml = property(lambda self: self._design_xml)
    experiment_execute_xml = property(lambda self: self._execute_xml)
    started_time = property(lambda self: self._started_time)
    stopped_time = property(lambda self: self._stopped_time)
    root_dir = property(lambda self: self._root_dir)

    @property
    def guids(self) -> List[int]:
        return [g for tb in self._testbeds.values() for g in tb.guids]

    @property
    def state(self) -> str:
        """created, deploying, started, stopped, failed, shutdown."""
        return self._state

    @property
    def error(self) -> Optional[str]:
        return self._error

    def _read_root_file(self, name: str, required: bool) -> Optional[str]:
        path = os.path.join(self._root_dir, name)
        if not os.path.exists(path):
            if required:
                raise FileNotFoundError("no %s in %s: nothing to recover" % (name,
                                                                            self._root_dir))
            return None
        with open(path, encoding="utf-8") as f:
            return f.read()

    # -- progress -----------------------------------------------------------------------

    def add_progress_listener(self, listener: Callable[[dict], None]) -> None:
        """In-process only: ``listener(event)`` is called for each progress event."""
        self._listeners.append(listener)

    def progress_events(self, since: int = 0) -> List[dict]:
        """Progress events from index ``since`` (for remote clients that poll)."""
        return self._events[since:]

    def _event(self, phase: str, testbed_guid: Optional[int], state: str,
               message: str = "", done: int = 0, total: int = 0) -> None:
        event = {"time": time.time(), "phase": phase, "testbed": testbed_guid,
                 "state": state, "message": message, "done": done, "total": total}
        self._events.append(event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                _logger.exception("progress listener failed")

    # -- helpers ------------------------------------------------------------------------

    def _testbed_id(self, testbed_guid: int) -> str:
        return self._data.get_testbed_data(testbed_guid)[0]

    def _attribute_type(self, guid: int, name: str) -> Optional[str]:
        data = self._data
        try:
            if data.is_testbed_data(guid):
                from nepi.core.metadata import Metadata
                amap = Metadata(data.get_testbed_data(guid)[0]).testbed_attributes()
            else:
                testbed_guid, factory_id = data.get_box_data(guid)
                amap = self._catalog.factory(self._testbed_id(testbed_guid),
                                             factory_id).box_attributes
            return amap.get_attribute_type(name)
        except (KeyError, ValueError):
            return None

    def _parallel(self, phase: str, guids: List[int], fn: Callable[[int], Any]) -> None:
        """Run fn(testbed_guid) for every testbed at once; raise naming each failure."""
        if not guids:
            return
        errors = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(guids)) as pool:
            futures = {pool.submit(fn, g): g for g in guids}
            for future in concurrent.futures.as_completed(futures):
                g = futures[future]
                exc = future.exception()
                if exc is None:
                    self._event(phase, g, "done")
                else:
                    errors.append((g, exc))
                    self._event(phase, g, "failed", str(exc))
        if errors:
            raise self._phase_error(phase, errors)

    def _phase_error(self, phase: str, errors) -> DeploymentError:
        lines = []
        for g, exc in sorted(errors, key=lambda e: e[0]):
            lines.append("testbed %d (%s) failed in %s: %s"
                         % (g, self._testbed_id(g), phase.replace("do_", ""), exc))
        first_guid, first_exc = sorted(errors, key=lambda e: e[0])[0]
        err = DeploymentError("; ".join(lines), testbed_guid=first_guid,
                              guid=getattr(first_exc, "guid", None), phase=phase)
        err.__cause__ = first_exc
        return err

    # -- deployment ---------------------------------------------------------------------

    def start(self) -> None:
        """Deploy and start every testbed; on failure shut everything down and raise."""
        with self._lock:
            if self._state not in ("created",):
                raise NepiError("experiment already %s; create a new controller to run it "
                                "again" % self._state)
            self._state = "deploying"
            self._started_time = time.time()
            self._save_state()
            try:
                self._deploy()
            except BaseException as e:
                self._error = str(e)
                self._rollback()
                self._event("deploy", None, "failed", str(e))
                self._state = "failed"
                self._save_state()
                raise
            self._state = "started"
            self._save_state()
            self._start_watcher()
            self._event("deploy", None, "done", "experiment started")

    def _deploy(self) -> None:
        self._prelaunch_daemons()
        data = copy.deepcopy(self._design_data)
        self._data = data
        for guid in data.box_guids():
            self._guid_testbed[guid] = data.get_box_data(guid)[0]
        resolver = NetrefResolver(data, self._attribute_type)
        self._resolver = resolver
        resolver.resolve(resolver.static_getter)
        self._deploy_rounds(data.testbed_guids())
        self._resolve_dynamic(final=False)
        self._program_cross_connections(self._all_testbed_guids())
        all_guids = self._all_testbed_guids()
        self._parallel("do_configure", all_guids, lambda g: self._testbeds[g].do_configure())
        self._cross_connect(all_guids)
        self._parallel("do_prestart", all_guids, lambda g: self._testbeds[g].do_prestart())
        self._resolve_dynamic(final=True)
        self._persist_execute_xml()
        self._parallel("start", all_guids, lambda g: self._testbeds[g].start())

    def _all_testbed_guids(self) -> List[int]:
        return [g for rnd in self._testbed_order for g in rnd if g in self._testbeds]

    def _deploy_rounds(self, testbed_guids: List[int], recover_data: bool = False) -> None:
        """Create testbeds round by round: a testbed whose own attributes hold netrefs
        waits until the testbeds those netrefs point into are deployed."""
        waiting = list(testbed_guids)
        while waiting:
            ready = [g for g in waiting
                     if not any(netrefs.has_netref(v)
                                for _, v in self._data.get_attribute_data(g))]
            if not ready:
                refs = ["testbed %d attribute %r = %r" % (g, n, v) for g in waiting
                        for n, v in self._data.get_attribute_data(g) if netrefs.has_netref(v)]
                raise DeploymentError("cannot resolve netrefs in testbed attributes "
                                      "(circular or unresolvable): " + "; ".join(refs),
                                      testbed_guid=waiting[0], phase="create")
            self._create_round(ready)
            waiting = [g for g in waiting if g not in ready]
            if waiting:
                self._resolve_dynamic(final=False)

    def _create_round(self, guids: List[int]) -> None:
        self._testbed_order.append(list(guids))
        for g in guids:
            self._event("create_controller", g, "running")
        self._parallel("create_controller", guids, self._create_testbed_controller)
        self._persist_deployment_config()
        self._parallel("program", guids, self._program_testbed)
        for phase in SETUP_PHASES:
            self._parallel(phase, guids, lambda g, p=phase: getattr(self._testbeds[g], p)())

    def _access_config(self, testbed_guid: int, recover: bool, data=None):
        from nepi.util.proxy import AccessConfiguration
        data = data or self._data
        config = AccessConfiguration()
        for name, value in data.get_attribute_data(testbed_guid):
            if config.has_attribute(name) and value is not None:
                config.set_attribute_value(name, value)
        try:
            root = self._testbed_root(testbed_guid,
                                      data.get_attribute_data(testbed_guid, DC.ROOT_DIRECTORY))
        except ValueError as e:
            raise DeploymentError("testbed %d, attribute %r: %s" % (
                testbed_guid, DC.ROOT_DIRECTORY, e), testbed_guid=testbed_guid,
                phase="create") from None
        config.set_attribute_value(DC.ROOT_DIRECTORY, root)
        config.set_attribute_value(DC.RECOVER, recover)
        return config

    def _log_file(self, testbed_guid: int) -> str:
        return rootfiles.log_file(self._root_dir, "testbed-%d" % testbed_guid)

    def _launch_testbed_controller(self, testbed_guid: int, config, data=None):
        """Record where the testbed keeps its files (and, for a local daemon, that one is
        being launched) before anything exists, so cleanup can always find it."""
        from nepi.rpc.manifest import Manifest, testbed_key
        from nepi.util.proxy import create_testbed_controller
        testbed_id, version = (data or self._data).get_testbed_data(testbed_guid)
        root = config.get_attribute_value(DC.ROOT_DIRECTORY)
        mode = config.get_attribute_value(DC.DEPLOYMENT_MODE)
        manifest = Manifest(self._root_dir)
        owner = manifest.experiment_id()
        manifest.record_testbed(testbed_guid, testbed_id, root, mode)
        remote = config.get_attribute_value(DC.DEPLOYMENT_COMMUNICATION) == DC.ACCESS_SSH
        if mode == DC.MODE_DAEMON and not remote and \
                not config.get_attribute_value(DC.RECOVER):
            manifest.update(testbed_key(testbed_guid), role="testbed", state="launching",
                            testbed_guid=testbed_guid, testbed_id=testbed_id, root_dir=root,
                            host="localhost")
        os.makedirs(root, exist_ok=True)
        return create_testbed_controller(testbed_id, version, config, testbed_guid,
                                         self._log_file(testbed_guid), owner)

    def _prelaunch_daemons(self) -> None:
        """Start launching the testbed daemons that need nothing resolved, so that their
        process start-up overlaps with parsing and programming."""
        data = self._design_data
        for g in data.testbed_guids():
            attrs = data.get_attribute_data(g)
            if data.get_attribute_data(g, DC.DEPLOYMENT_MODE) != DC.MODE_DAEMON or \
                    any(netrefs.has_netref(v) for _, v in attrs):
                continue
            config = self._access_config(g, False, data)
            self._prelaunched[g] = (config, self._launcher.submit(
                self._launch_testbed_controller, g, config, data))

    def _create_testbed_controller(self, testbed_guid: int, recover: bool = False):
        testbed_id, version = self._data.get_testbed_data(testbed_guid)
        prelaunched = self._prelaunched.pop(testbed_guid, None) if not recover else None
        if prelaunched is not None:
            config, future = prelaunched
            controller = future.result()
        else:
            config = self._access_config(testbed_guid, recover)
            controller = self._launch_testbed_controller(testbed_guid, config)
        self._deployment_config[testbed_guid] = config
        log_file = self._log_file(testbed_guid)
        record = getattr(controller, "record", None)
        if record is not None:
            from nepi.rpc.manifest import Manifest, testbed_key
            Manifest(self._root_dir).update(
                testbed_key(testbed_guid), role="testbed", testbed_guid=testbed_guid,
                testbed_id=testbed_id, testbed_version=version, pid=record.get("pid"),
                start_time=record.get("start_time"), socket=record.get("socket"),
                root_dir=record.get("root_dir"), log_file=log_file,
                host=record.get("host", "localhost"),
                recovery_policy=self._policy(testbed_guid), state="running")
        calls = [["defer_configure", name, value]
                 for name, value in self._data.get_attribute_data(testbed_guid)
                 if value is not None and name != DC.ROOT_DIRECTORY]
        calls.append(["defer_configure", DC.ROOT_DIRECTORY,
                      config.get_attribute_value(DC.ROOT_DIRECTORY)])
        if not recover:
            controller.program(calls)
        self._testbeds[testbed_guid] = controller
        return controller

    def _program_testbed(self, testbed_guid: int) -> None:
        self._testbeds[testbed_guid].program(self._programming_calls(testbed_guid))

    def _programming_calls(self, testbed_guid: int) -> List[list]:
        data = self._data
        # addresses and routes are sent now: resolve what earlier testbeds can answer
        self._resolve_dynamic(final=False, only=lambda g, loc: isinstance(loc, tuple)
                              and self._guid_testbed.get(g) == testbed_guid)
        creates, rest = [], []
        for guid in data.box_guids(testbed_guid):
            factory_id = data.get_box_data(guid)[1]
            creates.append(["defer_create", guid, factory_id])
            for name, value in data.get_factory_attribute_data(guid):
                if value is not None:
                    creates.append(["defer_factory_set", guid, name, value])
            for name, value in data.get_attribute_data(guid):
                if value is None:
                    continue
                if netrefs.has_netref(value):
                    self._held_back.setdefault(guid, set()).add(name)
                    continue
                creates.append(["defer_create_set", guid, name, value])
            for trace in data.get_trace_data(guid):
                rest.append(["defer_add_trace", guid, trace])
            for (address, prefix, broadcast) in data.get_address_data(guid):
                if address is None:
                    continue
                self._require_resolved(guid, "address", (address, prefix, broadcast))
                rest.append(["defer_add_address", guid, address, prefix, broadcast])
            for route in data.get_route_data(guid):
                self._require_resolved(guid, "route", route)
                rest.append(["defer_add_route", guid] + list(route))
            for (connector, other_guid, other_connector) in data.get_connection_data(guid):
                if self._guid_testbed.get(other_guid) == testbed_guid:
                    rest.append(["defer_connect", guid, connector, other_guid, other_connector])
        return creates + rest

    def _require_resolved(self, guid: int, what: str, fields) -> None:
        for value in fields:
            if netrefs.has_netref(value):
                raise DeploymentError("element %d: netref %r in %s cannot be resolved before "
                                      "the element is deployed (it must point to a value of "
                                      "the design or of a testbed deployed earlier)"
                                      % (guid, value, what), guid=guid, phase="program")

    def _dynamic_getter(self, ref: netrefs.Netref, guid: int) -> Any:
        testbed_guid = self._guid_testbed.get(guid)
        testbed = self._testbeds.get(testbed_guid)
        if testbed is None or testbed_guid in self._failed_testbeds:
            return None
        try:
            if ref.kind == "":
                return testbed.get(guid, ref.attribute)
            if ref.kind == "addr":
                return testbed.get_address(guid, int(ref.index), ref.attribute)
            if ref.kind == "route":
                return testbed.get_route(guid, int(ref.index), ref.attribute)
            return testbed.trace(guid, ref.index, ref.attribute)
        except Exception:
            return None   # not yet available; the final pass reports what is left

    def _resolve_dynamic(self, final: bool, only=None) -> None:
        resolver = self._resolver
        for guid, location, value in resolver.resolve(self._dynamic_getter, only):
            if isinstance(location, tuple) or not self._data.is_box_data(guid):
                continue
            testbed = self._testbeds.get(self._guid_testbed[guid])
            if testbed is not None:
                testbed.set(guid, location, value)
                self._held_back.get(guid, set()).discard(location)
        if final:
            left = [(g, loc, v) for g, loc, v in resolver.pending() if only is None
                    or only(g, loc)]
            if left:
                raise DeploymentError(
                    "Unresolvable netref in: " + "; ".join(
                        "element %d %s = %r" % (g, describe_location(loc), v)
                        for g, loc, v in left), guid=left[0][0], phase="netrefs")

    def _program_cross_connections(self, testbed_guids: List[int]) -> None:
        data = self._data
        calls: Dict[int, List[list]] = {}
        for guid in data.box_guids():
            testbed_guid = self._guid_testbed[guid]
            if testbed_guid not in testbed_guids or testbed_guid not in self._testbeds:
                continue
            for (connector, other_guid, other_connector) in data.get_connection_data(guid):
                other_tb = self._guid_testbed.get(other_guid)
                if other_tb == testbed_guid or other_tb in self._failed_testbeds:
                    continue
                calls.setdefault(testbed_guid, []).append(
                    ["defer_cross_connect", guid, connector, other_guid, other_tb,
                     self._testbed_id(other_tb), data.get_box_data(other_guid)[1],
                     other_connector])
        self._parallel("program_cross", list(calls),
                       lambda g: self._testbeds[g].program(calls[g]))

    def _cross_peers(self, testbed_guid: int) -> Dict[int, List[int]]:
        peers: Dict[int, List[int]] = {}
        data = self._data
        for guid in data.box_guids(testbed_guid):
            for (_, other_guid, _) in data.get_connection_data(guid):
                other_tb = self._guid_testbed.get(other_guid)
                if other_tb != testbed_guid and other_tb in self._testbeds \
                        and other_tb not in self._failed_testbeds:
                    peers.setdefault(other_tb, []).append(other_guid)
        return peers

    def _cross_data(self, testbed_guid: int) -> Dict[int, Dict[int, dict]]:
        """Every attribute of every peer element, as its testbed reports it now."""
        result: Dict[int, Dict[int, dict]] = {}
        for other_tb, guids in self._cross_peers(testbed_guid).items():
            testbed = self._testbeds[other_tb]
            testbed_id, version = self._data.get_testbed_data(other_tb)
            requests = []
            for guid in guids:
                factory = self._catalog.factory(testbed_id, self._data.get_box_data(guid)[1])
                requests += [[guid, name] for name in
                             factory.box_attributes.get_attribute_list()]
            values = testbed.get_values(requests)
            inner = result.setdefault(other_tb, {})
            for (guid, name), value in zip(requests, values):
                entry = inner.setdefault(guid, {"_guid": guid, "_testbed_guid": other_tb,
                                                "_testbed_id": testbed_id,
                                                "_testbed_version": version})
                entry[name] = value
        deliver_link_keys(self._root_dir, self._design_data, testbed_guid, result)
        return result

    def _cross_connect(self, testbed_guids: List[int]) -> None:
        """Sequential, as in NEPI 2: each testbed sees what the previous ones produced."""
        involved = [g for g in testbed_guids if self._cross_peers(g)]
        for phase in ("do_cross_connect_init", "do_cross_connect_compl"):
            for g in involved:
                try:
                    getattr(self._testbeds[g], phase)(self._cross_data(g))
                except Exception as e:
                    raise self._phase_error(phase, [(g, e)]) from e
                self._event(phase, g, "done")

    # -- persistence --------------------------------------------------------------------

    def _persist_deployment_config(self) -> None:
        write_json_atomic(os.path.join(self._root_dir, DEPLOYMENT_JSON),
                          {str(g): c.to_dict() for g, c in self._deployment_config.items()})

    def deployment_config(self, testbed_guid: int) -> dict:
        """The resolved deployment configuration a testbed was created with."""
        config = self._deployment_config.get(testbed_guid)
        if config is None:
            saved = read_json(os.path.join(self._root_dir, DEPLOYMENT_JSON), {})
            if str(testbed_guid) in saved:
                return saved[str(testbed_guid)]
            raise KeyError("testbed %d has no deployment configuration" % testbed_guid)
        return config.to_dict()

    def _persist_execute_xml(self) -> None:
        """Design + every value the running experiment has (resolved, testbed-generated)."""
        data = copy.deepcopy(self._data)
        for testbed_guid in self._all_testbed_guids():
            testbed = self._testbeds[testbed_guid]
            testbed_id = self._testbed_id(testbed_guid)
            for name, value in self._deployment_config[testbed_guid].to_dict().items():
                if name == DC.ROOT_DIRECTORY or data.get_attribute_data(testbed_guid, name) \
                        is not None or value != self._default_testbed_value(testbed_id, name):
                    data.add_attribute_data(testbed_guid, name, value)
            for guid, values in testbed.get_modified_values().items():
                guid = int(guid)
                if guid not in data.data:
                    continue
                for name, value in values.items():   # (a tun_key here is no link key)
                    if isinstance(value, (str, int, float, bool)) and name != "tun_key":
                        data.add_attribute_data(guid, name, value)
        self._execute_xml = self._parser.data_to_xml(data)
        write_atomic(os.path.join(self._root_dir, EXECUTE_XML), self._execute_xml)

    @staticmethod
    def _default_testbed_value(testbed_id: str, name: str) -> Any:
        from nepi.core.metadata import Metadata
        amap = Metadata(testbed_id).testbed_attributes()
        return amap.get_attribute_value(name) if amap.has_attribute(name) else None

    # -- rollback, stop, shutdown -------------------------------------------------------

    def _rollback(self) -> None:
        """Undo a failed deployment: shut down every testbed created so far."""
        try:
            self._shutdown_testbeds()
        except Exception as e:
            _logger.error("rollback after failed deployment also failed: %s", e)

    def _discard_prelaunched(self) -> None:
        for g, (config, future) in list(self._prelaunched.items()):
            try:
                future.result().shutdown()
            except Exception as e:
                _logger.error("shutting down the unused daemon of testbed %d: %s", g, e)
        self._prelaunched.clear()

    def _shutdown_testbeds(self) -> None:
        self._discard_prelaunched()
        from nepi.rpc.manifest import Manifest, testbed_key
        remote = [g for g, tb in self._testbeds.items() if hasattr(tb, "record")]
        errors = []
        done = set()
        for rnd in reversed(self._testbed_order):
            guids = [g for g in rnd if g in self._testbeds and g not in done]
            done.update(guids)
            try:
                self._parallel("shutdown", guids, lambda g: self._testbeds[g].shutdown())
            except DeploymentError as e:
                errors.append(str(e))
        rest = [g for g in self._testbeds if g not in done]
        if rest:
            try:
                self._parallel("shutdown", rest, lambda g: self._testbeds[g].shutdown())
            except DeploymentError as e:
                errors.append(str(e))
        self._testbeds.clear()
        manifest = Manifest(self._root_dir)
        for g in set(remote) | set(self._failed_testbeds):
            manifest.remove(testbed_key(g))
        if errors:
            raise NepiError("shutdown failed: " + "; ".join(errors))

    def stop(self) -> None:
        """Stop every testbed (all are tried; failures are reported together)."""
        with self._lock:
            errors = []
            for g in self._all_testbed_guids():
                if g in self._failed_testbeds:
                    continue
                try:
                    self._testbeds[g].stop()
                except Exception as e:
                    errors.append("testbed %d: %s" % (g, e))
            self._stop_watcher()
            self._stopped_time = time.time()
            if self._state == "started":
                self._state = "stopped"
                self._save_state()
            if errors:
                raise NepiError("stop failed: " + "; ".join(errors))

    def shutdown(self) -> None:
        """Release every testbed; safe to call more than once."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            self._stop_watcher()
            try:
                self._shutdown_testbeds()
                forget_link_keys(self._root_dir)
            finally:
                self._state = "shutdown" if self._state != "failed" else self._state
                self._save_state(shutdown=True)

    # -- queries ------------------------------------------------------------------------

    def _testbed_for_guid(self, guid: int):
        testbed_guid = self._guid_testbed.get(guid)
        if testbed_guid is None or testbed_guid in self._failed_testbeds:
            return None
        return self._testbeds.get(testbed_guid)

    def _owner(self, guid: int):
        testbed = self._testbed_for_guid(guid)
        if testbed is None:
            raise RuntimeError("No element exists with guid %d" % guid)
        return testbed

    def set(self, guid: int, name: str, value: Any, time: str = TIME_NOW) -> None:
        self._owner(guid).set(guid, name, value, time)

    def get(self, guid: int, name: str, time: str = TIME_NOW) -> Any:
        return self._owner(guid).get(guid, name, time)

    def get_factory_id(self, guid: int) -> str:
        return self._owner(guid).get_factory_id(guid)

    def action(self, guid: int, action: str, time: str = TIME_NOW) -> None:
        """Act on a running element, e.g. ``action(app_guid, "start")`` or ``"stop"``."""
        self._owner(guid).action(time, guid, action)

    def get_testbed_id(self, guid: int) -> str:
        return self._owner(guid).testbed_id

    def get_testbed_version(self, guid: int) -> str:
        return self._owner(guid).testbed_version

    def trace(self, guid: int, trace_id: str, attribute: str = "value") -> Any:
        return self._owner(guid).trace(guid, trace_id, attribute)

    def traces_info(self) -> Dict[int, dict]:
        info = {}
        for g in self._all_testbed_guids():
            if g in self._failed_testbeds:
                continue
            tinfo = self._testbeds[g].traces_info()
            if tinfo:
                info[g] = tinfo
        return info

    def is_finished(self, guid: int) -> bool:
        return self._owner(guid).status(guid) == AS.STATUS_FINISHED

    def status(self, guid: Optional[int] = None) -> int:
        if guid is None:
            return {"failed": TS.STATUS_FAILED, "started": TS.STATUS_STARTED,
                    "stopped": TS.STATUS_STOPPED}.get(self._state, TS.STATUS_ZERO)
        data = self._data or self._design_data
        if data.is_testbed_data(guid) or guid in self._testbeds:
            if guid in self._failed_testbeds or (self._state == "failed"
                                                 and guid not in self._testbeds):
                return TS.STATUS_FAILED
            testbed = self._testbeds.get(guid)
            if testbed is None:
                return TS.STATUS_ZERO
            try:
                return testbed.status()
            except Exception:
                return TS.STATUS_UNRESPONSIVE
        testbed = self._testbed_for_guid(guid)
        if testbed is None:
            return AS.STATUS_UNDETERMINED
        return testbed.status(guid)

    def failed_testbeds(self) -> Dict[int, str]:
        """testbed guid -> why it failed (after recovery with the Fail policy)."""
        return dict(self._failed_testbeds)

    # -- persistence of the run state ---------------------------------------------------

    def _save_state(self, shutdown: bool = False) -> None:
        from nepi.rpc.manifest import Manifest
        Manifest(self._root_dir).set_meta(
            experiment_state="shutdown" if shutdown else self._state,
            allowed_roots=self._allowed_roots,
            started_time=self._started_time, stopped_time=self._stopped_time)

    def was_shut_down(self) -> bool:
        """True if the experiment in this root dir was shut down (nothing to recover)."""
        from nepi.rpc.manifest import Manifest
        return Manifest(self._root_dir).read().get("experiment_state") in ("shutdown", None)

    def _policy(self, testbed_guid: int) -> str:
        return self._data.get_attribute_data(testbed_guid, DC.RECOVERY_POLICY) \
            or DC.POLICY_FAIL

    def testbeds_summary(self) -> List[dict]:
        """One line of facts per testbed, for ``nepid status``."""
        summary = []
        if self._data is None:
            return summary
        for g in self._data.testbed_guids():
            testbed = self._testbeds.get(g)
            record = getattr(testbed, "record", None) or {}
            summary.append({
                "guid": g, "testbed_id": self._testbed_id(g),
                "mode": "daemon" if record else "in-process", "pid": record.get("pid"),
                "status": self.status(g), "elements": len(self._data.box_guids(g)),
                "policy": self._policy(g), "failed": self._failed_testbeds.get(g),
                "channels": channel_counters(testbed, [
                    guid for guid in self._data.box_guids(g)
                    if self._attribute_type(guid, STATS)])})
        return summary

    # -- recovery -----------------------------------------------------------------------

    def recover(self) -> None:
        """Re-attach to a deployment whose controller state was lost.

        Each testbed is reconnected; one that cannot be is handled by its
        ``recoveryPolicy``: Fail marks it failed, Recover starts a new controller that
        re-attaches to surviving resources, Restart redeploys it from the execute XML."""
        from nepi.rpc.manifest import Manifest
        with self._lock:
            xml = self._execute_xml or self._read_root_file(EXECUTE_XML, required=False)
            if xml is None:
                raise NepiError("cannot recover: %s has no %s (the experiment never finished "
                                "deploying)" % (self._root_dir, EXECUTE_XML))
            self._execute_xml = xml
            self._data = self._parser.from_xml_to_data(xml, source=EXECUTE_XML)
            data = self._data
            for guid in data.box_guids():
                self._guid_testbed[guid] = data.get_box_data(guid)[0]
            self._resolver = NetrefResolver(data, self._attribute_type)
            self._failed_testbeds.clear()
            meta = Manifest(self._root_dir).read()
            self._started_time = meta.get("started_time") or self._started_time
            self._stopped_time = meta.get("stopped_time")
            self._testbed_order = [list(data.testbed_guids())]
            lost = {}
            for g in data.testbed_guids():
                if data.get_attribute_data(g, DC.DEPLOYMENT_MODE, DC.MODE_SINGLE_PROCESS) \
                        == DC.MODE_SINGLE_PROCESS:
                    lost[g] = "its controller ran inside the experiment controller that died"
                    continue
                try:
                    self._create_testbed_controller(g, recover=True)
                    self._event("recover", g, "reconnected")
                except Exception as e:
                    lost[g] = str(e)
            self._state = meta.get("experiment_state") if meta.get("experiment_state") in (
                "started", "stopped") else "started"
            self._handle_lost(lost)
            self._save_state()
            self._start_watcher()

    def _handle_lost(self, lost: Dict[int, str]) -> None:
        """Apply each lost testbed's recovery policy (called with the lock held)."""
        running = self._state == "started"
        restart, recovered = [], []
        for g, reason in sorted(lost.items()):
            policy = self._policy(g)
            self._event("recover", g, "lost", "%s; policy %s" % (reason, policy))
            _logger.warning("testbed %d lost (%s); applying policy %s", g, reason, policy)
            self._testbeds.pop(g, None)
            # Recover re-attaches to what the testbed left: do not clean it up first
            self._remove_leftovers(g, clean_testbed=policy != DC.POLICY_RECOVER)
            if policy == DC.POLICY_FAIL:
                self._failed_testbeds[g] = "testbed controller lost (%s)" % reason
                self._error = "testbed %d (%s) lost and its recovery policy is Fail: %s" % (
                    g, self._testbed_id(g), reason)
                self._state = "failed"
                continue
            try:
                self._create_testbed_controller(g, recover=False)
                self._program_testbed(g)
                if policy == DC.POLICY_RECOVER:
                    self._testbeds[g].do_setup()
                    self._testbeds[g].recover()
                    recovered.append(g)
                else:
                    restart.append(g)
            except Exception as e:
                self._failed_testbeds[g] = "%s policy failed: %s" % (policy, e)
                self._error = "testbed %d (%s) lost; %s policy failed: %s" % (
                    g, self._testbed_id(g), policy, e)
                self._state = "failed"
                bad = self._testbeds.pop(g, None)
                if bad is not None:
                    try:
                        bad.shutdown()
                    except Exception:
                        pass
                self._remove_leftovers(g)
        if restart:
            for phase in SETUP_PHASES:
                self._parallel(phase, restart,
                               lambda g, p=phase: getattr(self._testbeds[g], p)())
        changed = set(restart) | set(recovered)
        if not changed:
            return
        alive = [g for g in self._all_testbed_guids() if g not in self._failed_testbeds]
        self._program_cross_connections(alive)
        self._parallel("do_configure", restart, lambda g: self._testbeds[g].do_configure())
        self._cross_connect([g for g in alive if g in changed
                             or set(self._cross_peers(g)) & changed])
        self._parallel("do_prestart", restart, lambda g: self._testbeds[g].do_prestart())
        if running:
            self._parallel("start", restart, lambda g: self._testbeds[g].start())

    def _remove_leftovers(self, testbed_guid: int, clean_testbed: bool = True) -> None:
        """Kill what is left of a lost testbed daemon (by record), remove its runtime
        files and (unless its resources are to be re-attached) its resources."""
        from nepi.rpc.cleanup import clean_testbed as clean
        root_dir = self._access_config(testbed_guid, False).get_attribute_value(
            DC.ROOT_DIRECTORY)
        report = clean(self._root_dir, testbed_guid, self._testbed_id(testbed_guid),
                       root_dir, resources=clean_testbed)
        for problem in report.problems:
            _logger.error("cleaning up after testbed %d: %s", testbed_guid, problem)

    # -- liveness -----------------------------------------------------------------------

    WATCH_INTERVAL = 1.0

    def _start_watcher(self) -> None:
        if getattr(self, "_watcher", None) is not None:
            return
        if not any(hasattr(tb, "is_alive") for tb in self._testbeds.values()):
            return
        self._watch_stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="nepi-liveness",
                                         daemon=True)
        self._watcher.start()

    def _stop_watcher(self) -> None:
        watcher = getattr(self, "_watcher", None)
        if watcher is not None:
            self._watch_stop.set()
            if watcher is not threading.current_thread():
                watcher.join(5)
            self._watcher = None

    def _watch(self) -> None:
        """Notice a testbed daemon dying mid-run within about a second, not at next use."""
        misses: Dict[int, int] = {}
        while not self._watch_stop.wait(self.WATCH_INTERVAL):
            lost = {}
            for g, testbed in list(self._testbeds.items()):
                if not hasattr(testbed, "is_alive") or g in self._failed_testbeds:
                    continue
                if not testbed.is_alive():
                    lost[g] = "daemon process %s died" % testbed.pid
                elif not testbed.ping(timeout=5.0):
                    misses[g] = misses.get(g, 0) + 1
                    if misses[g] >= 3:
                        lost[g] = "daemon process %s stopped answering" % testbed.pid
                else:
                    misses.pop(g, None)
            if lost and not self._watch_stop.is_set():
                with self._lock:
                    if not self._watch_stop.is_set():
                        try:
                            self._handle_lost(lost)
                        except Exception:
                            _logger.exception("handling lost testbeds %s failed", list(lost))
                        self._save_state()


class ExperimentSuite:
    """Runs one experiment ``repetitions`` times, each in its own root subdirectory."""

    def __init__(self, experiment_xml, access_config=None, repetitions: Optional[int] = None,
                 duration: Optional[float] = None, wait_guids: Optional[List[int]] = None,
                 poll_interval: float = 0.5) -> None:
        self._experiment_xml = experiment_xml
        self._access_config = access_config
        self._repetitions = repetitions or 1
        self._duration = duration
        self._wait_guids = list(wait_guids or [])
        self._poll_interval = poll_interval
        self._status = TS.STATUS_ZERO
        self._current: Optional[int] = None
        self._access_configs: Dict[int, Any] = {}
        self._controllers: Dict[int, Any] = {}
        self._run_status: Dict[int, str] = {}
        self._errors: Dict[int, str] = {}
        self._thread: Optional[threading.Thread] = None
        self._stop_requested = threading.Event()

    def current(self) -> Optional[int]:
        return self._current

    def status(self) -> int:
        return self._status

    def run_status(self) -> Dict[int, str]:
        """repetition -> pending, running, finished or failed."""
        return dict(self._run_status)

    def errors(self) -> Dict[int, str]:
        return dict(self._errors)

    def is_finished(self) -> bool:
        return self._status in (TS.STATUS_STOPPED, TS.STATUS_FAILED)

    def get_access_configurations(self) -> list:
        return [self._access_configs[i] for i in sorted(self._access_configs)]

    def get_current_access_config(self):
        return self._access_configs[self._current]

    def controllers(self) -> list:
        return [self._controllers[i] for i in sorted(self._controllers)]

    def start(self) -> None:
        self._status = TS.STATUS_STARTED
        for i in range(1, self._repetitions + 1):
            self._run_status[i] = "pending"
        self._thread = threading.Thread(target=self._run, name="nepi-suite", daemon=True)
        self._thread.start()

    def _config_for(self, i: int):
        from nepi.util.proxy import AccessConfiguration
        config = AccessConfiguration()
        base = "."
        if self._access_config is not None:
            for name in self._access_config.get_attribute_list():
                value = self._access_config.get_attribute_value(name)
                if value is not None and name != DC.RECOVER:
                    config.set_attribute_value(name, value)
            base = self._access_config.get_attribute_value(DC.ROOT_DIRECTORY)
        config.set_attribute_value(DC.ROOT_DIRECTORY, os.path.abspath("%s_%d" % (base, i)))
        return config

    def _run(self) -> None:
        from nepi.util.proxy import create_experiment_controller
        failed = False
        for i in range(1, self._repetitions + 1):
            if self._stop_requested.is_set():
                break
            self._current = i
            self._run_status[i] = "running"
            config = self._config_for(i)
            self._access_configs[i] = config
            try:
                controller = create_experiment_controller(self._experiment_xml, config)
                self._controllers[i] = controller
                controller.start()
                started = time.time()
                while not self._stop_requested.is_set():
                    done_waiting = all(controller.is_finished(g) for g in self._wait_guids)
                    timed_out = self._duration is not None and \
                        time.time() - started >= self._duration
                    if (self._wait_guids and done_waiting) or timed_out or \
                            (not self._wait_guids and self._duration is None):
                        break
                    time.sleep(self._poll_interval)
                controller.stop()
                self._run_status[i] = "finished"
            except Exception as e:
                failed = True
                self._errors[i] = str(e)
                self._run_status[i] = "failed"
                _logger.error("suite repetition %d failed: %s", i, e)
        self._status = TS.STATUS_FAILED if failed else TS.STATUS_STOPPED

    def wait(self, timeout: Optional[float] = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.is_finished()

    def traces(self) -> Dict[int, Dict[int, dict]]:
        """repetition -> traces_info of that run."""
        return {i: c.traces_info() for i, c in sorted(self._controllers.items())
                if self._run_status.get(i) == "finished"}

    def shutdown(self) -> None:
        self._stop_requested.set()
        if self._thread is not None:
            self._thread.join()
        for controller in self._controllers.values():
            try:
                controller.shutdown()
            except Exception as e:
                _logger.error("suite shutdown: %s", e)
