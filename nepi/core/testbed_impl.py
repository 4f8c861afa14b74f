"""TestbedController implementation base: stores programming calls, runs the phases.

Concrete testbeds subclass it and supply factory functions through their metadata,
plus ``shutdown`` and trace file naming. Programming (the ``defer_*`` calls) is
nepi.core.testbed_programming, run-time queries nepi.core.testbed_runtime; this module
holds the controller's state and its deployment phases.
"""

import concurrent.futures
import logging
import time as _time
from typing import Any, Callable, Dict, List, Optional

from nepi.core import testbed_api
from nepi.core.attributes import Attribute
from nepi.core.metadata import Metadata, Parallel
from nepi.core.testbed_programming import Programming
from nepi.core.testbed_runtime import Runtime
from nepi.errors import DeploymentError, brief
from nepi.util.constants import CONNECTION_DELAY, TIME_NOW
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS
from nepi.util.gcpause import gc_paused

# How long connection functions may keep asking to be retried (CONNECTION_DELAY).
CONNECTION_RETRY_SECONDS = 60.0


class TestbedController(Programming, Runtime, testbed_api.TestbedController):
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
            raise AttributeError("Invalid value %s for %s %s%s: %s" % (
                brief(value), what, attr.name, owner, problem))
        return value

    def _element_owner(self, guid: int) -> str:
        """How value errors name an element (netrefs are resolved into values here, after
        the design was validated)."""
        return " of element %d (%s)" % (guid, self._create.get(guid))

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

    @gc_paused()      # a phase goes through every element (see gc_paused)
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

    @gc_paused()
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


def _lookup(cross_data, testbed_guid, guid) -> Optional[dict]:
    """Cross data may arrive with int or (after some serialisers) str keys."""
    for tb_key in (testbed_guid, str(testbed_guid)):
        inner = cross_data.get(tb_key)
        if inner is not None:
            for key in (guid, str(guid)):
                if key in inner:
                    return inner[key]
    return None

