"""Recovery policies and the liveness watcher (a mixin of the ExperimentController).

``recover()`` re-attaches a new experiment controller to a deployment whose controller
was lost; a testbed that cannot be re-attached, or whose daemon dies while the experiment
runs (the watcher notices within about a second), is handled by its ``recoveryPolicy``:
Fail marks it failed, Recover starts a new controller that re-attaches to the resources
the lost one left, Restart redeploys it from the execute XML. What a lost testbed left is
removed through the launcher (by record: never anything of another experiment).
"""

import logging
import os
import threading
from typing import Callable, Dict, List, Optional

from nepi.core.access import AccessConfiguration
from nepi.core.deployment import SETUP_PHASES
from nepi.core.launcher import TestbedLauncher, TestbedSpec
from nepi.core.manifest import EC_KEY, SHUTTING_DOWN, testbed_key
from nepi.core.netref_resolution import NetrefResolver
from nepi.core.tunnels import forget_link_keys
from nepi.errors import NepiError
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.rootfiles import EXECUTE_XML

_logger = logging.getLogger("nepi.core.execute")

# experiment states the manifest keeps while a deployment (or its resumption) is under
# way: a controller found dead in one of them left a partial deployment to resume
RESUMABLE_STATES = ("deploying",)


def _guid_list(guids) -> str:
    return ", ".join("testbed %d" % g for g in sorted(guids)) or "none"


class LivenessWatcher:
    """Polls the testbeds that run in processes of their own: one whose process is gone,
    or that has not answered three times in a row, is reported lost (once per poll, with
    ``lock`` held, unless the watcher is being stopped)."""

    MISSES = 3
    PING_TIMEOUT = 5.0

    def __init__(self, launcher: TestbedLauncher, testbeds: Callable[[], Dict[int, object]],
                 ignore: Callable[[int], bool], lock, on_lost: Callable[[Dict[int, str]], None],
                 interval: float,
                 on_poll: Optional[Callable[[Callable[[], bool]], None]] = None) -> None:
        """``on_poll(stopping)``: called every ``interval`` too, in a thread of its own
        (a slow answer there never delays noticing a lost testbed), without ``lock``
        (the controller asks about its applications there)."""
        self._launcher = launcher
        self._on_poll = on_poll
        self._poll_thread = None if on_poll is None else threading.Thread(
            target=self._run_on_poll, name="nepi-app-poll", daemon=True)
        self._testbeds = testbeds
        self._ignore = ignore
        self._lock = lock
        self._on_lost = on_lost
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nepi-liveness", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if self._poll_thread is not None:
            self._poll_thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(5)
        if self._poll_thread is not None and \
                self._poll_thread is not threading.current_thread():
            self._poll_thread.join(1)     # a call still in flight ends on its own

    def _run_on_poll(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._on_poll(self._stop.is_set)
            except Exception:
                _logger.exception("polling the applications failed")

    @staticmethod
    def _failure(testbed) -> Optional[str]:
        try:
            failure = testbed.failure()
        except Exception as e:           # an older or busy daemon: liveness decides
            _logger.debug("cannot ask a testbed whether it failed: %s", e)
            return None
        return "it failed: %s" % failure if failure else None

    def _run(self) -> None:
        misses: Dict[int, int] = {}
        while not self._stop.wait(self._interval):
            lost = {}
            for g, testbed in list(self._testbeds().items()):
                if self._ignore(g):
                    continue
                record = self._launcher.process(testbed)
                if record is None:         # in-process: it can only report its own failure
                    failure = self._failure(testbed)
                    if failure:
                        lost[g] = failure
                    continue
                if not self._launcher.is_alive(testbed):
                    lost[g] = "daemon process %s died" % record.get("pid")
                elif not self._launcher.responds(testbed, self.PING_TIMEOUT):
                    misses[g] = misses.get(g, 0) + 1
                    if misses[g] >= self.MISSES:
                        lost[g] = "daemon process %s stopped answering" % record.get("pid")
                else:
                    misses.pop(g, None)
                    failure = self._failure(testbed)
                    if failure:
                        lost[g] = failure
            if lost and not self._stop.is_set():
                with self._lock:
                    if not self._stop.is_set():
                        self._on_lost(lost)


class Recovery:
    """Uses the controller's ``_launcher``, ``_store``, ``_parser``, ``_data``,
    ``_testbeds``, ``_failed_testbeds`` and the run state."""

    WATCH_INTERVAL = 1.0

    def recover(self) -> None:
        """Re-attach to a deployment whose controller state was lost.

        Each testbed is reconnected; one that cannot be is handled by its
        ``recoveryPolicy``: Fail marks it failed, Recover starts a new controller that
        re-attaches to surviving resources, Restart redeploys it from the execute XML."""
        with self._lock:
            if self._store.saved_state().get("experiment_state") in RESUMABLE_STATES:
                # the controller died while deploying: execute.xml (if any) is not this
                # deployment's finished state; roll back and deploy again
                self.resume_deployment()
                return
            if self._store.saved_state().get("experiment_state") == SHUTTING_DOWN:
                self._finish_shutdown()
                return
            xml = self._execute_xml or self._store.read(EXECUTE_XML, required=False)
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
            meta = self._store.saved_state()
            self._started_time = meta.get("started_time") or self._started_time
            self._stopped_time = meta.get("stopped_time")
            self._testbed_order = [list(data.testbed_guids())]
            lost = {}
            for g in data.testbed_guids():
                try:      # the launcher refuses what cannot survive (in-process testbeds)
                    self._create_testbed_controller(g, recover=True)
                    self._event("recover", g, "reconnected")
                except Exception as e:
                    lost[g] = str(e)
            self._state = meta.get("experiment_state") if meta.get("experiment_state") in (
                "started", "stopped") else "started"
            self._restore_applications()
            self._journal("daemon", "recovered", message="nepid restarted (pid %d): "
                          "reconnected to %s, lost %s" % (
                              os.getpid(), _guid_list(self._testbeds), _guid_list(lost)))
            self._handle_lost(lost)
            self._save_state()
            self._start_watcher()
            self._journal("experiment", "recovered", message="experiment %s%s" % (
                self._state, "; failed testbeds: %s" % _guid_list(self._failed_testbeds)
                if self._failed_testbeds else ""))

    def _handle_lost(self, lost: Dict[int, str]) -> None:
        """Apply each lost testbed's recovery policy (called with the lock held)."""
        running = self._state == "started"
        restart, recovered = [], []
        for g, reason in sorted(lost.items()):
            policy = self._policy(g)
            self._event("recover", g, "lost", "%s; policy %s" % (reason, policy))
            _logger.warning("testbed %d lost (%s); applying policy %s", g, reason, policy)
            gone = self._testbeds.pop(g, None)
            if gone is not None and self._launcher.process(gone) is None and \
                    policy != DC.POLICY_RECOVER:
                # in-process, it reported its own failure: its shutdown removes what it
                # can reach and keeps the rest in its record for `nepid clean`
                self._shut_down_failed(g, gone)
            else:
                # Recover re-attaches to what the testbed left: do not clean it up first
                self._remove_leftovers(g, clean_testbed=policy != DC.POLICY_RECOVER)
            if gone is not None:      # its daemon is dead or killed: close what is left
                self._launcher.forget(gone)
            if policy == DC.POLICY_FAIL:
                self._failed_testbeds[g] = "testbed controller lost (%s)" % reason
                self._error = "testbed %d (%s) lost and its recovery policy is Fail: %s" % (
                    g, self._testbed_id(g), reason)
                was_failed, self._state = self._state == "failed", "failed"
                self._journal("policy", policy, g, message="testbed marked failed, what "
                              "it left removed; the experiment failed")
                if not was_failed:
                    self._journal("experiment", "failed", message=self._error)
                continue
            try:
                self._create_testbed_controller(g, recover=False)
                self._program_testbed(g)
                if policy == DC.POLICY_RECOVER:
                    self._testbeds[g].do_setup()
                    self._testbeds[g].recover()
                    recovered.append(g)
                    self._journal("daemon", "recovered", g, message="a new daemon "
                                  "re-attached to the resources the lost one left")
                    self._journal("policy", policy, g, message="new controller re-attached "
                                  "to the testbed's resources")
                else:
                    restart.append(g)
                    self._journal("daemon", "restarted", g, message="a new daemon, "
                                  "redeployed from %s" % EXECUTE_XML)
                    self._journal("policy", policy, g, message="what the lost daemon left "
                                  "removed; testbed redeployed on a new daemon%s"
                                  % (" and started" if running else ""))
            except Exception as e:
                self._failed_testbeds[g] = "%s policy failed: %s" % (policy, e)
                self._error = "testbed %d (%s) lost; %s policy failed: %s" % (
                    g, self._testbed_id(g), policy, e)
                was_failed, self._state = self._state == "failed", "failed"
                self._journal("policy", policy, g, message="failed: %s" % e)
                if not was_failed:
                    self._journal("experiment", "failed", message=self._error)
                bad = self._testbeds.pop(g, None)
                if bad is not None:
                    try:
                        bad.shutdown()
                    except Exception as e2:
                        _logger.warning("shutting down the new controller of testbed %d "
                                        "after its %s policy failed: %s (its leftovers are "
                                        "removed next)", g, policy, e2)
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

    # -- a deployment whose controller died ------------------------------------------------

    SURVIVOR_SHUTDOWN_TIMEOUT = 10.0

    def deploy_phase_of_dead_controller(self) -> str:
        """The phase the dead controller's deployment was in, as the manifest says."""
        meta = self._store.saved_state()
        phase = meta.get("deploy_phase")
        if not phase:
            phases = [info.get("phase") for info in (meta.get("testbeds") or {}).values()
                      if isinstance(info, dict) and info.get("phase")]
            phase = ", ".join(sorted(set(phases))) if phases else None
        return str(phase or "unknown")

    def _recorded_testbed_guids(self, doc: dict) -> List[int]:
        guids = {int(k) for k in (doc.get("testbeds") or {}) if str(k).isdigit()}
        for key, entry in (doc.get("daemons") or {}).items():
            if key != EC_KEY and isinstance(entry, dict) and \
                    isinstance(entry.get("testbed_guid"), int):
                guids.add(entry["testbed_guid"])
        return sorted(guids)

    def _recorded_spec(self, testbed_guid: int, doc: dict) -> Optional[TestbedSpec]:
        """A testbed as the manifest recorded it (its root dir, mode, daemon), completed
        with the design's deployment values; None if nothing says where it lived."""
        recorded = (doc.get("testbeds") or {}).get(str(testbed_guid)) or {}
        daemon = (doc.get("daemons") or {}).get(testbed_key(testbed_guid)) or {}
        data = self._design_data
        if testbed_guid in data.testbed_guids():
            testbed_id, version = data.get_testbed_data(testbed_guid)
            try:
                config = self._access_config(testbed_guid, True, data)
            except Exception as e:       # a root dir given by a netref: use the record
                _logger.info("testbed %d: %s (its recorded root dir is used)",
                             testbed_guid, e)
                config = AccessConfiguration()
                config.set_attribute_value(DC.RECOVER, True)
        else:
            testbed_id = recorded.get("testbed_id") or daemon.get("testbed_id")
            version = daemon.get("testbed_version") or ""
            config = AccessConfiguration()
            config.set_attribute_value(DC.RECOVER, True)
        root = recorded.get("root_dir") or daemon.get("root_dir") or \
            config.get_attribute_value(DC.ROOT_DIRECTORY)
        if not root or not testbed_id:
            return None
        config.set_attribute_value(DC.ROOT_DIRECTORY, root)
        mode = recorded.get("mode") or (DC.MODE_DAEMON if daemon else None)
        if mode:
            config.set_attribute_value(DC.DEPLOYMENT_MODE, mode)
        return TestbedSpec(self._root_dir, testbed_guid, testbed_id, version, config,
                           self._log_file(testbed_guid), doc.get("experiment_id"))

    def _shutdown_survivor(self, spec: TestbedSpec) -> Optional[str]:
        """Shut a surviving testbed daemon of this experiment down over RPC (found by
        record and owner id): it releases its own resources. Bounded: a daemon still in
        the dead controller's call is killed by the cleanup that follows."""
        outcome: Dict[str, str] = {}

        def run():
            try:
                testbed = self._launcher.attach(spec)
            except Exception as e:
                outcome["result"] = "not reachable (%s)" % e
                return
            try:
                testbed.shutdown()
                outcome["result"] = "shut down"
            except Exception as e:
                outcome["result"] = "shutdown failed (%s)" % e
        worker = threading.Thread(target=run, name="nepi-rollback-%d" % spec.testbed_guid,
                                  daemon=True)
        worker.start()
        worker.join(self.SURVIVOR_SHUTDOWN_TIMEOUT)
        return outcome.get("result", "did not shut down within %.0f s"
                           % self.SURVIVOR_SHUTDOWN_TIMEOUT)

    def _finish_shutdown(self) -> None:
        """The controller died while shutting the experiment down: shut down (by record)
        what it had not, and end shut down, as the dead controller would have."""
        done = self._rollback_recorded()
        self._recovery_note = ("nepid died while shutting the experiment down; finished "
                               "the shutdown (%s)" % ("; ".join(done) or "nothing was left"))
        _logger.warning("%s", self._recovery_note)
        self._event("recover", None, "done", self._recovery_note)
        self._shut_down = True
        self._state = "shutdown"
        forget_link_keys(self._root_dir)
        self._applications_ended("shut down with the experiment")
        self._save_state(shutdown=True)
        self._journal("experiment", "shutdown", message=self._recovery_note)

    def _rollback_recorded(self) -> List[str]:
        """Roll back what a dead controller's deployment left, by record: every testbed
        the manifest records -- its surviving daemon shut down over RPC, else killed by
        record; its runtime files and resources removed (by its token). Returns one line
        per testbed saying what was done."""
        manifest = self._store.manifest
        doc = manifest.read()
        done = []
        for g in self._recorded_testbed_guids(doc):
            spec = self._recorded_spec(g, doc)
            if spec is None:
                _logger.error("testbed %d: the manifest does not say where it kept its "
                              "files; nothing of it can be cleaned", g)
                continue
            how = []
            if (doc.get("daemons") or {}).get(testbed_key(g)) and \
                    spec.mode == DC.MODE_DAEMON:
                how.append("daemon %s" % self._shutdown_survivor(spec))
            problems = self._launcher.cleanup(spec, resources=True)
            for problem in problems:
                _logger.error("rolling back testbed %d: %s", g, problem)
            how.append("resources removed" if not problems else "; ".join(problems))
            manifest.remove(testbed_key(g))
            done.append("testbed %d (%s): %s" % (g, spec.testbed_id, ", ".join(how)))
            _logger.warning("rolled back testbed %d (%s): %s", g, spec.testbed_id,
                            ", ".join(how))
        return done

    @staticmethod
    def _shut_down_failed(testbed_guid: int, testbed) -> None:
        """An in-process testbed that failed on its own still runs here: shut it down (what
        it cannot reach is cleaned up by record next)."""
        try:
            testbed.shutdown()
        except Exception as e:
            _logger.warning("shutting down failed testbed %d: %s (its leftovers are removed "
                            "by record next)", testbed_guid, e)

    def _remove_leftovers(self, testbed_guid: int, clean_testbed: bool = True) -> None:
        """Kill what is left of a lost testbed daemon (by record), remove its runtime
        files and (unless its resources are to be re-attached) its resources."""
        spec = self._testbed_spec(testbed_guid, self._access_config(testbed_guid, False))
        for problem in self._launcher.cleanup(spec, resources=clean_testbed):
            _logger.error("cleaning up after testbed %d: %s", testbed_guid, problem)

    # -- the liveness watcher -------------------------------------------------------------

    def _start_watcher(self) -> None:
        if self._watcher is not None or not self._testbeds:
            return
        self._watcher = LivenessWatcher(self._launcher, lambda: self._testbeds,
                                        lambda g: g in self._failed_testbeds, self._lock,
                                        self._lost_while_running, self.WATCH_INTERVAL,
                                        self._poll_applications)
        self._watcher.start()

    def _stop_watcher(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def _lost_while_running(self, lost: Dict[int, str]) -> None:
        try:
            self._handle_lost(lost)
        except Exception:
            _logger.exception("handling lost testbeds %s failed", list(lost))
        self._save_state()
