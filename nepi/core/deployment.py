"""Deployment phases and their rollback (a mixin of the ExperimentController).

Testbeds are created round by round (a testbed whose attributes hold netrefs waits for
the testbeds they point into), each through the controller's TestbedLauncher; every phase
runs on all testbeds of a round at once and a failure names each testbed that failed. A
failed deployment is rolled back by shutting down every testbed created so far, last
round first.

A testbed daemon that dies during a phase (its call cannot reach it, or its process is
gone after any error) is handled by its recoveryPolicy there and then: Fail rolls the
deployment back, removing what the dead daemon left by record and token (the launcher's
cleanup); Restart and Recover (there is nothing to re-attach to yet) redeploy it from the
design on a new daemon through the phases it had done, cross-connections included, and
retry the phase; a second death fails as Fail does. Each phase is recorded in the
manifest as it begins (meta "deploy_phase") and as each testbed completes it
(testbeds[guid]["phase"], DEPLOY_PHASES), for ``nepid status`` and recovery.
"""

import concurrent.futures
import logging
import os
from typing import Any, Callable, Dict, List, Optional

from nepi.core.access import AccessConfiguration
from nepi.core.launcher import TestbedSpec
from nepi.core.manifest import testbed_key
from nepi.core.netref_resolution import NetrefResolver
from nepi.errors import ControllerUnreachableError, DeploymentError, NepiError
from nepi.util import netrefs, rootfiles
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.gcpause import gc_paused
from nepi.util.rootdirs import resolve_testbed_root

# Phases before cross-connection, run on every testbed of a creation round.
SETUP_PHASES = ("do_setup", "do_create", "do_connect_init", "do_connect_compl",
                "do_preconfigure")

# Every step of a deployment, in order: what the manifest records as each testbed's
# "phase" once done (and as the experiment's "deploy_phase" while it runs).
CROSS_CONNECT = "do_cross_connect"
DEPLOY_PHASES = ("create_controller", "program") + SETUP_PHASES + (
    "program_cross", "do_configure", CROSS_CONNECT, "do_prestart", "start")
DEPLOYED = "started"            # deploy_phase once the deployment is complete

_logger = logging.getLogger("nepi.core.execute")


class Deployment:
    """Uses the controller's ``_launcher`` (a TestbedLauncher), ``_data``,
    ``_design_data``, ``_testbeds``, ``_testbed_order``, ``_deployment_config``,
    ``_prelaunched``, ``_launch_pool``, ``_store`` and ``_event``."""

    # -- running a phase on many testbeds -------------------------------------------------

    def _parallel(self, phase: str, guids: List[int], fn: Callable[[int], Any]) -> None:
        """Run fn(testbed_guid) for every testbed at once; raise naming each failure."""
        self._phase_running(phase, guids)
        errors = self._run_each(phase, guids, fn)
        if errors:
            raise self._phase_error(phase, errors)

    def _run_each(self, phase: str, guids: List[int], fn: Callable[[int], Any],
                  done: Callable[[int], None] = None) -> list:
        """Run fn(testbed_guid) for every testbed at once; [(guid, exception)] of those
        that failed (``done(guid)`` is called for each that succeeded)."""
        if not guids:
            return []
        errors = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(guids)) as pool:
            futures = {pool.submit(fn, g): g for g in guids}
            for future in concurrent.futures.as_completed(futures):
                g = futures[future]
                exc = future.exception()
                if exc is None:
                    if done is not None:
                        done(g)
                    self._event(phase, g, "done")
                else:
                    errors.append((g, exc))
                    self._event(phase, g, "failed", str(exc))
        return errors

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
        with gc_paused():
            data = self._design_data.copy()
            self._data = data
            for guid in data.box_guids():
                self._guid_testbed[guid] = data.get_box_data(guid)[0]
            resolver = NetrefResolver(data, self._attribute_type)
            self._resolver = resolver
            resolver.resolve(resolver.static_getter)
        self._deploy_rounds(data.testbed_guids())
        self._resolve_dynamic(final=False)
        all_guids = self._all_testbed_guids()
        calls = self._cross_connection_calls(all_guids)
        self._deploy_phase("program_cross", all_guids,
                           lambda g: calls.get(g) and self._testbeds[g].program(calls[g]))
        self._deploy_phase("do_configure", all_guids,
                           lambda g: self._testbeds[g].do_configure())
        self._deploy_cross_connect(all_guids)
        self._deploy_phase("do_prestart", all_guids, lambda g: self._testbeds[g].do_prestart())
        self._resolve_dynamic(final=True)
        self._persist_execute_xml()
        self._deploy_phase("start", all_guids, lambda g: self._testbeds[g].start())
        self._store.manifest.record_phase(running=DEPLOYED)

    # -- phases that survive a testbed daemon dying ---------------------------------------

    def _phase_done(self, phase: str, testbed_guid: int) -> None:
        self._store.manifest.record_phase(testbed_guid, done=phase)

    def _deploy_phase(self, phase: str, guids: List[int], fn: Callable[[int], Any]) -> None:
        """Run a deployment phase on every testbed at once, recording its progress in the
        manifest. A testbed whose daemon died in it is handled by its recovery policy:
        Fail raises (and rollback removes what it left), Restart and Recover redeploy it
        on a new daemon up to this phase and retry the phase for it."""
        if not guids:
            return
        self._store.manifest.record_phase(running=phase)
        self._phase_running(phase, guids)
        errors = self._run_each(phase, guids, fn, lambda g: self._phase_done(phase, g))
        if not errors:
            return
        dead = self._dead_testbeds_now(dict(errors))
        others = [(g, e) for g, e in errors if g not in dead]
        if not dead or others:
            for g, reason in dead.items():      # rollback cleans up after them
                self._dead_testbeds[g] = reason
            raise self._phase_error(phase, errors)
        for g, reason in sorted(dead.items()):
            self._restart_during_deploy(g, phase, reason)
            try:
                fn(g)
            except Exception as e:
                self._after_redeploy_failure(g, phase, e)
            self._phase_done(phase, g)
            self._event(phase, g, "done", "on a new daemon")

    def _deploy_cross_connect(self, guids: List[int]) -> None:
        """The cross-connect phases (sequential): a testbed whose daemon died in them, or
        whose death made a peer's cross-connection fail, is handled by its policy; after a
        redeploy every cross-connection is redone."""
        self._store.manifest.record_phase(running=CROSS_CONNECT)
        while True:
            try:
                self._cross_connect(self._all_testbed_guids())
                break
            except DeploymentError as err:
                failed = {err.testbed_guid: err.__cause__ or err}
                dead = self._dead_testbeds_now(failed)
                if not dead:
                    raise
                for g, reason in sorted(dead.items()):
                    self._restart_during_deploy(g, err.phase or CROSS_CONNECT, reason,
                                                upto=CROSS_CONNECT)
        for g in guids:
            if g in self._testbeds:
                self._phase_done(CROSS_CONNECT, g)

    def _process_dead(self, testbed_guid: int) -> bool:
        testbed = self._testbeds.get(testbed_guid)
        if testbed is None or self._launcher.process(testbed) is None:
            return False
        try:
            return not self._launcher.is_alive(testbed)
        except Exception as e:
            _logger.debug("cannot tell whether testbed %d lives: %s", testbed_guid, e)
            return True

    def _dead_testbeds_now(self, errors: Dict[int, BaseException]) -> Dict[int, str]:
        """Testbeds whose daemon is gone after ``errors`` (guid -> exception): a call
        that could not reach its daemon, or any daemon whose process is no more."""
        dead = {}
        for g, exc in errors.items():
            if g is not None and (isinstance(exc, ControllerUnreachableError)
                                  or self._process_dead(g)):
                dead[g] = str(exc)
        for g in list(self._testbeds):
            if g not in dead and self._process_dead(g):
                record = self._launcher.process(self._testbeds[g]) or {}
                dead[g] = "daemon process %s died" % record.get("pid")
        return dead

    def _dead_error(self, testbed_guid: int, phase: str, reason: str,
                    why: str) -> DeploymentError:
        self._dead_testbeds[testbed_guid] = reason
        return DeploymentError(
            "testbed %d (%s) died in %s (%s); %s: the deployment is rolled back"
            % (testbed_guid, self._testbed_id(testbed_guid), phase.replace("do_", ""),
               reason, why), testbed_guid=testbed_guid, phase=phase)

    def _restart_during_deploy(self, testbed_guid: int, phase: str, reason: str,
                               upto: Optional[str] = None) -> None:
        """Apply the policy of a testbed whose daemon died in deployment ``phase``: Fail
        raises; Restart and Recover (there is nothing to re-attach to yet) remove what the
        dead daemon left (by record and token) and redeploy the testbed on a new daemon
        up to ``upto`` (default: ``phase``). A second death raises."""
        g = testbed_guid
        policy = self._policy(g)
        self._event("recover", g, "lost", "%s in %s; policy %s" % (reason, phase, policy))
        _logger.warning("testbed %d died in %s (%s); applying policy %s", g, phase, reason,
                        policy)
        if policy == DC.POLICY_FAIL:
            self._journal("policy", policy, g, message="the deployment is rolled back")
            raise self._dead_error(g, phase, reason, "its recovery policy is Fail")
        if g in self._redeployed:
            self._journal("policy", policy, g, message="already redeployed once: the "
                          "deployment is rolled back")
            raise self._dead_error(g, phase, reason, "it had already been redeployed once "
                                   "during this deployment (policy %s)" % policy)
        self._redeployed.add(g)
        gone = self._testbeds.pop(g, None)
        if gone is not None:
            self._launcher.forget(gone)
        self._remove_leftovers(g)
        try:
            self._redeploy_testbed(g, upto or phase)
        except Exception as e:
            self._after_redeploy_failure(g, phase, e)
        self._event("recover", g, "redeployed", "policy %s: new daemon up to %s"
                    % (policy, (upto or phase).replace("do_", "")))
        self._journal("policy", policy, g, message="what the dead daemon left removed; "
                      "testbed redeployed on a new daemon up to %s" % (upto or phase))

    def _after_redeploy_failure(self, testbed_guid: int, phase: str, exc: Exception) -> None:
        """Redeploying (or retrying the phase on) a new daemon failed: raise, marking the
        testbed for cleanup by record if its new daemon died too."""
        g = testbed_guid
        if isinstance(exc, DeploymentError) and g in self._dead_testbeds:
            raise exc
        if self._dead_testbeds_now({g: exc}).get(g) is not None or g not in self._testbeds:
            raise self._dead_error(g, phase, str(exc), "it died again after being "
                                   "redeployed on a new daemon (policy %s)"
                                   % self._policy(g)) from exc
        raise self._phase_error(phase, [(g, exc)]) from exc

    def _redeploy_testbed(self, testbed_guid: int, upto: str) -> None:
        """Deploy testbed ``testbed_guid`` from the design on a new controller, through
        every deployment phase before ``upto`` (DEPLOY_PHASES), cross-connections
        included (its peers' redone too); the phases' progress is recorded."""
        g = testbed_guid
        limit = DEPLOY_PHASES.index(upto)

        def before(phase):
            return DEPLOY_PHASES.index(phase) < limit

        if not before("create_controller"):
            return
        self._create_testbed_controller(g)
        self._phase_done("create_controller", g)
        self._persist_deployment_config()
        if before("program"):
            self._program_testbed(g)
            self._phase_done("program", g)
        for phase in SETUP_PHASES:
            if before(phase):
                getattr(self._testbeds[g], phase)()
                self._phase_done(phase, g)
        if before("program_cross"):
            calls = self._cross_connection_calls([g]).get(g)
            if calls:
                self._testbeds[g].program(calls)
            self._phase_done("program_cross", g)
        if before("do_configure"):
            self._testbeds[g].do_configure()
            self._phase_done("do_configure", g)
        if before(CROSS_CONNECT):
            self._cross_connect(sorted({g} | set(self._cross_peers(g))))
            self._phase_done(CROSS_CONNECT, g)
        if before("do_prestart"):
            self._testbeds[g].do_prestart()
            self._phase_done("do_prestart", g)

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
        self._deploy_phase("create_controller", guids, self._create_testbed_controller)
        self._persist_deployment_config()
        self._deploy_phase("program", guids, self._program_testbed)
        for phase in SETUP_PHASES:
            self._deploy_phase(phase, guids,
                               lambda g, p=phase: getattr(self._testbeds[g], p)())

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
        recover = config.get_attribute_value(DC.RECOVER)
        # a new controller of a deployment has done nothing yet (one restarted while the
        # experiment runs is brought back to where the others are: its record stays)
        fresh = {"phase": None} if not recover and self._state == "deploying" else {}
        if spec.mode == DC.MODE_DAEMON and spec.communication == DC.ACCESS_SSH:
            fresh["access"] = config.to_dict()    # how cleanup reaches its host, by record
        manifest.record_testbed(testbed_guid, spec.testbed_id, spec.root_dir,
                                config.get_attribute_value(DC.DEPLOYMENT_MODE), **fresh)
        os.makedirs(spec.root_dir, exist_ok=True)
        if recover:
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
        self._testbeds[testbed_guid] = controller     # from now on rollback shuts it down
        if not recover:
            controller.program(calls)
        return controller

    # -- programming ----------------------------------------------------------------------

    @gc_paused()
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
                self._parallel("shutdown", guids, self._shutdown_testbed)
            except DeploymentError as e:
                errors.append(str(e))
        rest = [g for g in self._testbeds if g not in done]
        if rest:
            try:
                self._parallel("shutdown", rest, self._shutdown_testbed)
            except DeploymentError as e:
                errors.append(str(e))
        for g in [g for g in self._dead_testbeds if g not in done and g not in rest]:
            try:                 # died before it had a controller here: by record only
                self._clean_dead_testbed(g, None)
            except NepiError as e:
                errors.append(str(e))
        self._testbeds.clear()
        manifest = self._store.manifest
        for g in set(own_process) | set(self._failed_testbeds) | set(self._dead_testbeds):
            manifest.remove(testbed_key(g))
        self._dead_testbeds.clear()
        if errors:
            raise NepiError("shutdown failed: " + "; ".join(errors))

    def _shutdown_testbed(self, testbed_guid: int) -> None:
        """Shut one testbed down; if its daemon is dead (or does not answer and is killed),
        remove what it left by record and token instead."""
        testbed = self._testbeds[testbed_guid]
        if testbed_guid not in self._dead_testbeds:
            try:
                testbed.shutdown()
                return
            except Exception as e:
                if self._launcher.process(testbed) is None or not (
                        isinstance(e, ControllerUnreachableError)
                        or self._process_dead(testbed_guid)):
                    raise
                _logger.warning("testbed %d cannot be shut down (%s): removing what its "
                                "daemon left by record", testbed_guid, e)
        self._clean_dead_testbed(testbed_guid, testbed)

    def _clean_dead_testbed(self, testbed_guid: int, testbed) -> None:
        if testbed is not None:
            self._launcher.forget(testbed)
        data = self._data or self._design_data
        spec = self._testbed_spec(testbed_guid, self._access_config(testbed_guid, False,
                                                                    data), data)
        problems = self._launcher.cleanup(spec)
        if problems:
            raise NepiError("testbed %d: its daemon is gone; cleaning up after it: %s"
                            % (testbed_guid, "; ".join(problems)))
        self._event("cleanup", testbed_guid, "done", "removed what its daemon left")
