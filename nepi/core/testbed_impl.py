"""TestbedController implementation base: stores programming calls, runs the phases.

Concrete testbeds subclass it and supply factory functions through their metadata,
plus ``shutdown`` and trace file naming.
"""

import concurrent.futures
import logging
import time as _time
from typing import Any, Callable, Dict, List, Optional

from nepi.core import testbed_api
from nepi.core.attributes import Attribute
from nepi.core.metadata import Metadata, Parallel
from nepi.errors import DeploymentError
from nepi.util.constants import CONNECTION_DELAY, TIME_NOW
from nepi.util.constants import ApplicationStatus as AS
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS
from nepi.util.netrefs import ADDRESS_FIELDS, ROUTE_FIELDS

# How long connection functions may keep asking to be retried (CONNECTION_DELAY).
CONNECTION_RETRY_SECONDS = 60.0


class TestbedController(testbed_api.TestbedController):
    def __init__(self, testbed_id: str, testbed_version: str) -> None:
        super().__init__(testbed_id, testbed_version)
        self._metadata = Metadata(testbed_id)
        if not self._metadata.accepts_version(testbed_version):
            raise RuntimeError("Bad testbed version on testbed %s. Asked for %s, got %s"
                               % (testbed_id, testbed_version, self._metadata.testbed_version))
        self._factories = {f.factory_id: f for f in self._metadata.build_factories()}
        self._attributes = self._metadata.testbed_attributes()
        self._status = TS.STATUS_ZERO
        self._root_directory: Optional[str] = None
        self._logger = logging.getLogger("nepi.testbeds." + testbed_id)
        self._create: Dict[int, str] = {}
        self._create_set: Dict[int, Dict[str, Any]] = {}
        self._factory_set: Dict[int, Dict[str, Any]] = {}
        self._connect: Dict[int, Dict[str, Dict[int, str]]] = {}
        self._cross_connect: Dict[int, Dict[str, List[tuple]]] = {}
        self._add_trace: Dict[int, List[str]] = {}
        self._add_address: Dict[int, List[tuple]] = {}
        self._add_route: Dict[int, List[tuple]] = {}
        self._configure: Dict[str, Any] = {}
        self._set: Dict[int, Dict[str, Any]] = {}
        self._setlog: Dict[int, Dict[str, Dict[str, Any]]] = {}
        self._live: Dict[tuple, Callable[[], Any]] = {}   # (guid, name) -> read()
        self._started = False
        self.elements: Dict[int, Any] = {}

    # -- properties -------------------------------------------------------------------

    @property
    def guids(self) -> List[int]:
        return list(self._create)

    @property
    def root_directory(self) -> Optional[str]:
        return self._root_directory

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    def _testbed_attribute(self, name: str) -> Any:
        return self._attributes.get_attribute_value(name)

    def _check_guid(self, guid: int) -> str:
        try:
            return self._create[guid]
        except KeyError:
            raise RuntimeError("Element guid %d doesn't exist in testbed %s"
                               % (guid, self._testbed_id)) from None

    def _factory_of(self, guid: int):
        return self._factories[self._check_guid(guid)]

    def _box_attribute(self, guid: int, name: str) -> Attribute:
        factory = self._factory_of(guid)
        if not factory.box_attributes.has_attribute(name):
            raise AttributeError("Invalid attribute %s for element type %s"
                                 % (name, factory.factory_id))
        return factory.box_attributes.get_attribute(name)

    @staticmethod
    def _check_value(attr: Attribute, value: Any, what: str, owner: str = "") -> Any:
        value = attr.coerce(value)
        problem = attr.check_value(value)
        if problem:
            raise AttributeError("Invalid value %r for %s %s%s: %s" % (value, what, attr.name,
                                                                         owner, problem))
        return value

    def _element_owner(self, guid: int) -> str:
        """How value errors name an element (netrefs are resolved into values here, after
        the design was validated)."""
        return " of element %d (%s)" % (guid, self._create.get(guid))

    # -- programming --------------------------------------------------------------------

    def defer_configure(self, name: str, value: Any) -> None:
        if not self._attributes.has_attribute(name):
            raise AttributeError("Invalid testbed attribute %s for testbed %s"
                                 % (name, self._testbed_id))
        value = self._check_value(self._attributes.get_attribute(name), value,
                                  "testbed attribute")
        self._attributes.set_attribute_value(name, value)
        self._configure[name] = value

    def defer_create(self, guid: int, factory_id: str) -> None:
        if factory_id not in self._factories:
            raise AttributeError("Invalid element type %s for testbed version %s"
                                 % (factory_id, self._testbed_version))
        if guid in self._create:
            raise AttributeError("Cannot add elements with the same guid: %d" % guid)
        self._create[guid] = factory_id

    def defer_create_set(self, guid: int, name: str, value: Any) -> None:
        attr = self._box_attribute(guid, name)
        self._create_set.setdefault(guid, {})[name] = self._check_value(
            attr, value, "attribute", self._element_owner(guid))

    def defer_factory_set(self, guid: int, name: str, value: Any) -> None:
        factory = self._factory_of(guid)
        if not factory.has_attribute(name):
            raise AttributeError("Invalid attribute %s for element type %s"
                                 % (name, factory.factory_id))
        attr = factory.get_attribute(name)
        self._factory_set.setdefault(guid, {})[name] = self._check_value(attr, value,
                                                                         "factory attribute")

    def _connection_count(self, guid: int, connector: str) -> int:
        return len(self._connect.get(guid, {}).get(connector, {})) + \
            len(self._cross_connect.get(guid, {}).get(connector, []))

    def _validate_connection(self, guid1, connector1, guid2, must_cross, far_type_id):
        factory = self._factory_of(guid1)
        if guid1 == guid2:
            raise AttributeError("Can't connect guid %d to self" % guid1)
        try:
            ctype = factory.connector_type(connector1)
        except KeyError:
            raise AttributeError("Element type %s has no connector %s"
                                 % (factory.factory_id, connector1)) from None
        if not ctype.can_connect(*far_type_id, must_cross=must_cross):
            raise AttributeError("Connector %s of %s (guid %d) may not be connected to %s"
                                 % (connector1, factory.factory_id, guid1,
                                    "/".join(str(x) for x in far_type_id)))
        if self._connection_count(guid1, connector1) >= ctype.max:
            raise AttributeError("Connector %s is full for guid %d" % (connector1, guid1))

    def defer_connect(self, guid1: int, connector_type_name1: str, guid2: int,
                      connector_type_name2: str) -> None:
        if self._connect.get(guid1, {}).get(connector_type_name1, {}).get(guid2) \
                == connector_type_name2:
            return  # the experiment controller sends each connection from both ends
        f1 = self._factory_of(guid1).factory_id
        f2 = self._factory_of(guid2).factory_id
        self._validate_connection(guid1, connector_type_name1, guid2, False,
                                  (self._testbed_id, f2, connector_type_name2))
        self._validate_connection(guid2, connector_type_name2, guid1, False,
                                  (self._testbed_id, f1, connector_type_name1))
        self._connect.setdefault(guid1, {}).setdefault(connector_type_name1, {})[guid2] = \
            connector_type_name2
        self._connect.setdefault(guid2, {}).setdefault(connector_type_name2, {})[guid1] = \
            connector_type_name1

    def defer_cross_connect(self, guid: int, connector_type_name: str, cross_guid: int,
                            cross_testbed_guid: int, cross_testbed_id: str,
                            cross_factory_id: str, cross_connector_type_name: str) -> None:
        entry = (cross_guid, cross_testbed_guid, cross_testbed_id, cross_factory_id,
                 cross_connector_type_name)
        existing = self._cross_connect.get(guid, {}).get(connector_type_name, [])
        if entry in existing:
            return
        self._validate_connection(guid, connector_type_name, cross_guid, True,
                                  (cross_testbed_id, cross_factory_id,
                                   cross_connector_type_name))
        self._cross_connect.setdefault(guid, {}).setdefault(connector_type_name, []) \
            .append(entry)

    def defer_add_trace(self, guid: int, trace_id: str) -> None:
        factory = self._factory_of(guid)
        if trace_id not in factory.traces_list:
            raise RuntimeError("Element type '%s' has no trace '%s'"
                               % (factory.factory_id, trace_id))
        traces = self._add_trace.setdefault(guid, [])
        if trace_id not in traces:
            traces.append(trace_id)

    def _max_addresses(self, guid: int) -> int:
        value = self._create_set.get(guid, {}).get("maxAddresses")
        if value is None:
            value = self._factory_set.get(guid, {}).get("maxAddresses")
        factory = self._factory_of(guid)
        if value is None and factory.has_attribute("maxAddresses"):
            value = factory.get_attribute_value("maxAddresses")
        if value is None and factory.box_attributes.has_attribute("maxAddresses"):
            value = factory.box_attributes.get_attribute_value("maxAddresses")
        return value if value is not None else 1

    def defer_add_address(self, guid: int, address: str, netprefix: int,
                          broadcast: Optional[str]) -> None:
        factory = self._factory_of(guid)
        if not factory.allow_addresses:
            raise RuntimeError("Element type '%s' doesn't support addresses"
                               % factory.factory_id)
        addresses = self._add_address.setdefault(guid, [])
        if len(addresses) >= self._max_addresses(guid):
            raise RuntimeError("Element guid %d of type '%s' can't accept more addresses"
                               % (guid, factory.factory_id))
        addresses.append((address, netprefix, broadcast))

    def defer_add_route(self, guid: int, destination: str, netprefix: int, nexthop: str,
                        metric: int = 0, device: Optional[str] = None) -> None:
        factory = self._factory_of(guid)
        if not factory.allow_routes:
            raise RuntimeError("Element type '%s' doesn't support routes" % factory.factory_id)
        self._add_route.setdefault(guid, []).append(
            (destination, netprefix, nexthop, metric, device))

    # -- phases -------------------------------------------------------------------------

    def _advance(self, status: int) -> None:
        """Move to a later phase; redoing an earlier phase (e.g. cross-connecting again
        after a peer restarted) never moves a running testbed back."""
        if TS.phase_index(status) > TS.phase_index(self._status):
            self._status = status

    def do_setup(self) -> None:
        self._root_directory = self._testbed_attribute(DC.ROOT_DIRECTORY)
        self._status = TS.STATUS_SETUP

    def _element_error(self, phase: str, guid: int, exc: BaseException) -> DeploymentError:
        if isinstance(exc, DeploymentError):
            return exc
        factory_id = self._create.get(guid, "?")
        return DeploymentError("%s: element %d (%s) failed in %s: %s"
                               % (self._testbed_id, guid, factory_id, phase, exc),
                               guid=guid, phase=phase)

    def _do_in_factory_order(self, phase: str, action: str, order: list,
                             postaction=None, poststep=None) -> None:
        by_factory: Dict[str, List[int]] = {}
        for guid, factory_id in self._create.items():
            by_factory.setdefault(factory_id, []).append(guid)

        def run_one(fn, guid):
            try:
                if fn is not None:
                    fn(self, guid)
                if postaction is not None:
                    postaction(guid)
            except Exception as e:
                raise self._element_error(phase, guid, e) from e

        for entry in order:
            factory_id = entry.factory if isinstance(entry, Parallel) else entry
            guids = by_factory.get(factory_id)
            if not guids:
                continue
            fn = getattr(self._factories[factory_id], action)
            if fn is None and postaction is None and poststep is None:
                continue
            steps = [(fn, g) for g in guids]
            if poststep is not None:
                post = [(lambda tb, g: poststep(g), g) for g in guids]
            else:
                post = []
            if isinstance(entry, Parallel) and len(guids) > 1:
                workers = max(1, min(entry.maxthreads, len(guids)))
                with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                    for batch in (steps, post):
                        futures = [pool.submit(run_one, f, g) for f, g in batch]
                        errors = [fut.exception() for fut in futures if fut.exception()]
                        if errors:
                            raise errors[0]
            else:
                for f, g in steps:
                    run_one(f, g)
                for f, g in post:
                    run_one(f, g)

    def _apply_create_set(self, guid: int) -> None:
        for name, value in self._create_set.get(guid, {}).items():
            self.set(guid, name, value)

    def do_create(self) -> None:
        self._do_in_factory_order("create", "create_function", self._metadata.create_order,
                                  postaction=self._apply_create_set)
        self._status = TS.STATUS_CREATED

    def _do_connect(self, init: bool) -> None:
        phase = "connect_init" if init else "connect_compl"
        pending = []
        for guid1, connectors in self._connect.items():
            factory1 = self._factory_of(guid1)
            for connector1, peers in connectors.items():
                ctype = factory1.connector_type(connector1)
                for guid2, connector2 in peers.items():
                    factory_id2 = self._create[guid2]
                    if init:
                        code = ctype.connect_to_init_code(self._testbed_id, factory_id2,
                                                          connector2, False)
                    else:
                        code = ctype.connect_to_compl_code(self._testbed_id, factory_id2,
                                                           connector2, False)
                    if code:
                        pending.append((code, guid1, guid2))
        deadline = _time.monotonic() + CONNECTION_RETRY_SECONDS
        while pending:
            delayed = []
            for code, guid1, guid2 in pending:
                try:
                    result = code(self, guid1, guid2)
                except Exception as e:
                    raise DeploymentError(
                        "%s: connecting element %d (%s) to %d (%s) failed in %s: %s"
                        % (self._testbed_id, guid1, self._create[guid1], guid2,
                           self._create[guid2], phase, e), guid=guid1, phase=phase) from e
                if result is not None and not isinstance(result, bool) \
                        and result == CONNECTION_DELAY:
                    delayed.append((code, guid1, guid2))
            if delayed and _time.monotonic() > deadline:
                code, guid1, guid2 = delayed[0]
                raise DeploymentError("%s: connection of element %d to %d still delayed "
                                      "after %.0f s in %s" % (self._testbed_id, guid1, guid2,
                                                              CONNECTION_RETRY_SECONDS, phase),
                                      guid=guid1, phase=phase)
            if len(delayed) == len(pending):
                _time.sleep(0.01)
            pending = delayed

    def do_connect_init(self) -> None:
        self._do_connect(True)

    def do_connect_compl(self) -> None:
        self._do_connect(False)
        self._status = TS.STATUS_CONNECTED

    def do_poststep_preconfigure(self, guid: int) -> None:
        """Per-element hook run after each factory group's preconfigure function."""

    def do_poststep_configure(self, guid: int) -> None:
        """Per-element hook run after each factory group's configure function."""

    def do_preconfigure(self) -> None:
        self._do_in_factory_order("preconfigure", "preconfigure_function",
                                  self._metadata.preconfigure_order,
                                  poststep=self.do_poststep_preconfigure)

    def do_configure(self) -> None:
        self._do_in_factory_order("configure", "configure_function",
                                  self._metadata.configure_order,
                                  poststep=self.do_poststep_configure)
        self._status = TS.STATUS_CONFIGURED

    def _do_cross_connect(self, cross_data: Dict[int, Dict[int, dict]], init: bool) -> None:
        phase = "cross_connect_init" if init else "cross_connect_compl"
        for guid, connectors in self._cross_connect.items():
            factory = self._factory_of(guid)
            for connector, entries in connectors.items():
                ctype = factory.connector_type(connector)
                for (cross_guid, cross_tb_guid, cross_tb_id, cross_factory_id,
                     cross_connector) in entries:
                    if init:
                        code = ctype.connect_to_init_code(cross_tb_id, cross_factory_id,
                                                          cross_connector, True)
                    else:
                        code = ctype.connect_to_compl_code(cross_tb_id, cross_factory_id,
                                                           cross_connector, True)
                    if not code:
                        continue
                    peer = _lookup(cross_data, cross_tb_guid, cross_guid)
                    if peer is None:
                        raise DeploymentError(
                            "%s: no cross data for element %d of testbed %d (peer of %d)"
                            % (self._testbed_id, cross_guid, cross_tb_guid, guid),
                            guid=guid, phase=phase)
                    try:
                        code(self, guid, peer)
                    except Exception as e:
                        raise DeploymentError(
                            "%s: cross connection of element %d (%s) to %s element %d "
                            "failed in %s: %s" % (self._testbed_id, guid, factory.factory_id,
                                                  cross_tb_id, cross_guid, phase, e),
                            guid=guid, phase=phase) from e

    def do_cross_connect_init(self, cross_data: Dict[int, Dict[int, dict]]) -> None:
        self._do_cross_connect(cross_data, True)

    def do_cross_connect_compl(self, cross_data: Dict[int, Dict[int, dict]]) -> None:
        self._do_cross_connect(cross_data, False)
        self._advance(TS.STATUS_CROSS_CONNECTED)

    def do_prestart(self) -> None:
        self._do_in_factory_order("prestart", "prestart_function",
                                  self._metadata.prestart_order)

    def start(self, time: str = TIME_NOW) -> None:
        self._do_in_factory_order("start", "start_function", self._metadata.start_order)
        self._started = True
        self._status = TS.STATUS_STARTED

    def stop(self, time: str = TIME_NOW) -> None:
        self._do_in_factory_order("stop", "stop_function",
                                  list(reversed(self._metadata.start_order)))
        self._status = TS.STATUS_STOPPED

    def recover(self) -> None:
        raise NotImplementedError("testbed %s cannot re-attach to a running deployment"
                                  % self._testbed_id)

    def action(self, time: str, guid: int, action: str) -> None:
        raise NotImplementedError("testbed %s has no actions" % self._testbed_id)

    def shutdown(self) -> None:
        raise NotImplementedError

    # -- runtime ------------------------------------------------------------------------

    def set(self, guid: int, name: str, value: Any, time: str = TIME_NOW) -> None:
        attr = self._box_attribute(guid, name)
        value = self._check_value(attr, value, "attribute", self._element_owner(guid))
        if self._started and (attr.is_exec_read_only or attr.is_exec_immutable):
            raise AttributeError("Attribute %s can only be modified during experiment design"
                                 % name)
        self._setlog.setdefault(guid, {}).setdefault(time, {})[name] = value
        self._set.setdefault(guid, {})[name] = value

    def provide(self, guid: int, name: str, read: Callable[[], Any]) -> None:
        """Answer ``get(guid, name)`` with ``read()``: a value the testbed keeps live (a
        TunChannel's counters), never stored, so not in the execute XML."""
        self._live[(guid, name)] = read

    def get(self, guid: int, name: str, time: str = TIME_NOW) -> Any:
        attr = self._box_attribute(guid, name)
        read = self._live.get((guid, name))
        if read is not None:
            return read()
        if name in self._set.get(guid, {}):
            return self._set[guid][name]
        if name in self._create_set.get(guid, {}):
            return self._create_set[guid][name]
        return attr.value

    def get_values(self, requests: List[list]) -> List[Any]:
        values = []
        for guid, name in requests:
            try:
                values.append(self.get(guid, name))
            except Exception:
                values.append(None)
        return values

    def get_modified_values(self) -> Dict[int, Dict[str, Any]]:
        values: Dict[int, Dict[str, Any]] = {}
        for source in (self._create_set, self._set):
            for guid, attrs in source.items():
                values.setdefault(guid, {}).update(attrs)
        return values

    def _indexed(self, table: Dict[int, List[tuple]], fields: tuple, what: str, guid: int,
                 index: int, attribute: str) -> Any:
        if attribute not in fields:
            raise AttributeError("Invalid %s attribute %r (expected one of %s)"
                                 % (what, attribute, ", ".join(fields)))
        entries = table.get(guid)
        if not entries:
            raise KeyError("GUID %d not found in %s" % (guid, self._testbed_id))
        if not 0 <= index < len(entries):
            raise AttributeError("GUID %d at %s does not have %s #%d"
                                 % (guid, self._testbed_id,
                                    "an address" if what == "address" else "a route", index))
        return entries[index][fields.index(attribute)]

    def get_address(self, guid: int, index: int, attribute: str = "Address") -> Any:
        return self._indexed(self._add_address, ADDRESS_FIELDS, "address", guid, index,
                             attribute)

    def get_route(self, guid: int, index: int, attribute: str) -> Any:
        return self._indexed(self._add_route, ROUTE_FIELDS, "route", guid, index, attribute)

    def get_attribute_list(self, guid: int, filter_flags: Optional[int] = None,
                           exclude: bool = False) -> List[str]:
        return self._factory_of(guid).box_attributes.get_attribute_list(filter_flags, exclude)

    def get_factory_id(self, guid: int) -> str:
        if guid not in self._create:
            raise KeyError("Element guid %d doesn't exist in testbed %s"
                           % (guid, self._testbed_id))
        return self._create[guid]

    def get_connected(self, guid: int, connector_type_name: str,
                      other_connector_type_name: str) -> List[int]:
        peers = self._connect.get(guid, {}).get(connector_type_name, {})
        return [g for g, c in peers.items() if c == other_connector_type_name]

    def status(self, guid: Optional[int] = None) -> int:
        if guid is None:
            return self._status
        factory = self._factory_of(guid)
        if factory.status_function is None:
            return AS.STATUS_UNDETERMINED
        return factory.status_function(self, guid)

    def testbed_status(self) -> int:
        return self._status

    def trace_filepath(self, guid: int, trace_id: str) -> str:
        raise NotImplementedError

    def trace_filename(self, guid: int, trace_id: str) -> str:
        raise NotImplementedError

    def trace(self, guid: int, trace_id: str, attribute: str = "value") -> Any:
        if attribute == "value":
            with open(self.trace_filepath(guid, trace_id), errors="replace") as f:
                return f.read()
        if attribute == "path":
            return self.trace_filepath(guid, trace_id)
        if attribute == "filename":
            return self.trace_filename(guid, trace_id)
        return None

    def traces_info(self) -> Dict[int, Dict[str, dict]]:
        host = self._testbed_attribute(DC.DEPLOYMENT_HOST)
        user = self._testbed_attribute(DC.DEPLOYMENT_USER)
        return {guid: {trace_id: {"host": host, "user": user,
                                  "filepath": self.trace(guid, trace_id, "path")}
                       for trace_id in traces}
                for guid, traces in self._add_trace.items()}


def _lookup(cross_data, testbed_guid, guid) -> Optional[dict]:
    """Cross data may arrive with int or (after some serialisers) str keys."""
    for tb_key in (testbed_guid, str(testbed_guid)):
        inner = cross_data.get(tb_key)
        if inner is not None:
            for key in (guid, str(guid)):
                if key in inner:
                    return inner[key]
    return None

