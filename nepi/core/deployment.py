"""Deployment phases and their rollback (a mixin of the ExperimentController).

Testbeds are created round by round (a testbed whose attributes hold netrefs waits for
the testbeds they point into), each through the controller's TestbedLauncher; every phase
runs on all testbeds of a round at once and a failure names each testbed that failed. A
failed deployment is rolled back by shutting down every testbed created so far, last
round first.
"""

import concurrent.futures
import copy
import logging
import os
from typing import Any, Callable, List

from nepi.core.access import AccessConfiguration
from nepi.core.launcher import TestbedSpec
from nepi.core.manifest import testbed_key
from nepi.core.netref_resolution import NetrefResolver
from nepi.errors import DeploymentError, NepiError
from nepi.util import netrefs, rootfiles
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.rootdirs import resolve_testbed_root

# Phases before cross-connection, run on every testbed of a creation round.
SETUP_PHASES = ("do_setup", "do_create", "do_connect_init", "do_connect_compl",
                "do_preconfigure")

_logger = logging.getLogger("nepi.core.execute")


class Deployment:
    """Uses the controller's ``_launcher`` (a TestbedLauncher), ``_data``,
    ``_design_data``, ``_testbeds``, ``_testbed_order``, ``_deployment_config``,
    ``_prelaunched``, ``_launch_pool``, ``_store`` and ``_event``."""

    # -- running a phase on many testbeds -------------------------------------------------

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

    # -- deploying ------------------------------------------------------------------------

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

    def _deploy_rounds(self, testbed_guids: List[int]) -> None:
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

    # -- creating testbed controllers -----------------------------------------------------

    def _testbed_root(self, testbed_guid: int, value) -> str:
        return resolve_testbed_root(self._root_dir, value, testbed_guid, self._allowed_roots)

    def _access_config(self, testbed_guid: int, recover: bool, data=None):
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

    def _testbed_spec(self, testbed_guid: int, config, data=None, owner=None) -> TestbedSpec:
        testbed_id, version = (data or self._data).get_testbed_data(testbed_guid)
        return TestbedSpec(self._root_dir, testbed_guid, testbed_id, version, config,
                           self._log_file(testbed_guid), owner)

    def _launch_testbed_controller(self, testbed_guid: int, config, data=None):
        """Record where the testbed keeps its files before anything exists, so cleanup can
        always find it; then have the launcher create (or, recovering, find) it."""
        manifest = self._store.manifest
        spec = self._testbed_spec(testbed_guid, config, data, manifest.experiment_id())
        manifest.record_testbed(testbed_guid, spec.testbed_id, spec.root_dir,
                                config.get_attribute_value(DC.DEPLOYMENT_MODE))
        os.makedirs(spec.root_dir, exist_ok=True)
        if config.get_attribute_value(DC.RECOVER):
            return self._launcher.attach(spec)
        return self._launcher.create(spec)

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
            self._prelaunched[g] = (config, self._launch_pool.submit(
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
        record = self._launcher.process(controller)
        if record is not None:           # a process of its own: the manifest keeps it
            self._store.manifest.update(
                testbed_key(testbed_guid), role="testbed", testbed_guid=testbed_guid,
                testbed_id=testbed_id, testbed_version=version, pid=record.get("pid"),
                start_time=record.get("start_time"), socket=record.get("socket"),
                root_dir=record.get("root_dir"), log_file=self._log_file(testbed_guid),
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

    # -- programming ----------------------------------------------------------------------

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

    @staticmethod
    def _require_resolved(guid: int, what: str, fields) -> None:
        for value in fields:
            if netrefs.has_netref(value):
                raise DeploymentError("element %d: netref %r in %s cannot be resolved before "
                                      "the element is deployed (it must point to a value of "
                                      "the design or of a testbed deployed earlier)"
                                      % (guid, value, what), guid=guid, phase="program")

    # -- rollback and shutdown ------------------------------------------------------------

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
        """Shut every testbed down, last round first; forget their manifest entries."""
        self._discard_prelaunched()
        own_process = [g for g, tb in self._testbeds.items()
                       if self._launcher.process(tb) is not None]
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
        manifest = self._store.manifest
        for g in set(own_process) | set(self._failed_testbeds):
            manifest.remove(testbed_key(g))
        if errors:
            raise NepiError("shutdown failed: " + "; ".join(errors))
