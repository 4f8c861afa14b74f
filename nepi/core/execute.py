"""Execution: the ExperimentController that deploys a design on its testbeds, and the
ExperimentSuite that repeats an experiment.

The controller coordinates; each concern is a module of its own, mixed in here:
deployment phases and rollback (nepi.core.deployment), cross-testbed connections and
netrefs (nepi.core.cross), persistence of the root dir (nepi.core.persistence), recovery
policies and the liveness watcher (nepi.core.recovery). Testbeds are driven through the
TestbedController contract (nepi.core.testbed_api) with plain values only, so each may be
in this process or a daemon behind a Pyro5 proxy; the controller gets them from the
TestbedLauncher (nepi.core.launcher) it is handed, by default the in-process one.
"""

import concurrent.futures
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from nepi.core import suite
from nepi.core.access import deployment_mode
from nepi.core.checks import check_data
from nepi.core.cross import Catalog, CrossConnections
from nepi.core.deployment import SETUP_PHASES, Deployment
from nepi.core.journal import JournalEvents, set_message
from nepi.core.launcher import InProcessLauncher, TestbedLauncher
from nepi.core.live import LiveAccess
from nepi.core.manifest import SHUTTING_DOWN
from nepi.core.netref_resolution import NetrefResolver
from nepi.core.persistence import (Persistence, RootDirStore, check_ssh_targets,
                                   check_testbed_roots)
from nepi.core.recovery import Recovery
from nepi.core.testbed_api import TestbedController  # NEPI 2's import path
from nepi.core.tunnels import STATS, channel_counters, forget_link_keys
from nepi.errors import DesignError, NepiError
from nepi.util.constants import TIME_NOW
from nepi.util.constants import ApplicationStatus as AS
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS
from nepi.util.parser._xml import XmlExperimentParser
from nepi.util.gcpause import gc_paused
from nepi.util.rootfiles import DEPLOYMENT_JSON, DESIGN_XML, EXECUTE_XML

__all__ = ["DEPLOYMENT_JSON", "DESIGN_XML", "EXECUTE_XML", "SETUP_PHASES",
           "ExperimentController", "ExperimentSuite", "TestbedController"]

_logger = logging.getLogger("nepi.core.execute")


class ExperimentController(Deployment, CrossConnections, Persistence, Recovery,
                           JournalEvents, LiveAccess):
    """Deploys an experiment design on its testbeds and answers queries about it."""

    def __init__(self, experiment_xml, root_dir: Optional[str],
                 allowed_roots: Optional[List[str]] = None,
                 launcher: Optional[TestbedLauncher] = None) -> None:
        """``allowed_roots``: places outside ``root_dir`` where the design's testbeds may
        keep their files (by default only inside ``root_dir``). ``launcher``: how testbed
        controllers are made (by default in this process only; nepi.util.proxy's
        create_experiment_controller hands one that launches testbed daemons too)."""
        if root_dir is None:
            raise ValueError("ExperimentController needs a root directory for its state "
                             "(design, execute XML, traces)")
        self._root_dir = os.path.abspath(root_dir)
        os.makedirs(self._root_dir, exist_ok=True)
        self._store = RootDirStore(self._root_dir)
        self._allowed_roots = self._store.allowed_roots(experiment_xml is None, allowed_roots)
        self._parser = XmlExperimentParser()
        self._execute_xml: Optional[str] = None
        if experiment_xml is None:
            self._design_xml = self._store.read(DESIGN_XML, required=True)
            self._execute_xml = self._store.read(EXECUTE_XML, required=False)
        else:
            if isinstance(experiment_xml, bytes):
                experiment_xml = experiment_xml.decode("utf-8")
            self._design_xml = experiment_xml
        with gc_paused():     # parse and check as one bulk job (see gc_paused)
            design_data = self._parser.from_xml_to_data(self._design_xml, source=DESIGN_XML)
            problems = check_data(design_data) or \
                check_testbed_roots(design_data, self._testbed_root) or \
                check_ssh_targets(design_data)
        if problems:
            raise DesignError(problems)
        self._design_data = design_data
        if experiment_xml is not None:
            self._store.write(DESIGN_XML, self._design_xml)
        self._launcher = launcher if launcher is not None else InProcessLauncher()
        self._catalog = Catalog()
        self._lock = threading.RLock()
        self._testbeds: Dict[int, Any] = {}
        self._deployment_config: Dict[int, Any] = {}
        self._testbed_order: List[List[int]] = []
        self._failed_testbeds: Dict[int, str] = {}
        self._dead_testbeds: Dict[int, str] = {}   # died in deployment: cleaned by record
        self._redeployed: set = set()               # redeployed once during deployment
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
        self._launch_pool = concurrent.futures.ThreadPoolExecutor(4, "nepi-launch")
        self._watcher = None
        self._recovery_note: Optional[str] = None   # what a recovery found and did
        self._journal_init()                        # ROOT/journal.jsonl (nepi.core.journal)

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

    @property
    def recovery_note(self) -> Optional[str]:
        """What the last recovery found and did, when it was more than a reconnection."""
        return self._recovery_note

    def _testbed_id(self, testbed_guid: int) -> str:
        return self._data.get_testbed_data(testbed_guid)[0]

    def _policy(self, testbed_guid: int) -> str:
        return self._data.get_attribute_data(testbed_guid, DC.RECOVERY_POLICY) \
            or DC.POLICY_FAIL

    # -- progress -----------------------------------------------------------------------

    def add_progress_listener(self, listener: Callable[[dict], None]) -> None:
        """In-process only: ``listener(event)`` is called for each progress event."""
        self._listeners.append(listener)

    def progress_events(self, since: int = 0) -> List[dict]:
        """Progress events from index ``since`` (for remote clients that poll)."""
        return self._events[since:]

    def _event(self, phase: str, testbed_guid: Optional[int], state: str,
               message: str = "", done: int = 0, total: int = 0,
               guid: Optional[int] = None, journal: bool = True) -> None:
        """A progress event (``guid``: the element of an "application" event), also
        appended to the journal unless ``journal`` is false."""
        event = {"time": time.time(), "phase": phase, "testbed": testbed_guid,
                 "state": state, "message": message, "done": done, "total": total}
        if guid is not None:
            event["guid"] = guid
        self._events.append(event)
        if journal:
            self._journal_progress(event)
        _logger.info("%s%s: %s%s", phase, "" if testbed_guid is None else
                     " testbed %s" % testbed_guid, state, message and " (%s)" % message)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                _logger.exception("progress listener failed")

    # -- the experiment's life ------------------------------------------------------------

    def start(self) -> None:
        """Deploy and start every testbed; on failure shut everything down and raise."""
        with self._lock:
            if self._state not in ("created",):
                raise NepiError("experiment already %s; create a new controller to run it "
                                "again" % self._state)
            self._state = "deploying"
            self._started_time = time.time()
            self._save_state()
            self._journal("experiment", "deploying")
            try:
                self._deploy()
            except BaseException as e:
                self._error = str(e)
                self._rollback()
                self._applications_ended("the deployment failed and was rolled back")
                self._event("deploy", None, "failed", str(e))
                self._state = "failed"
                self._save_state()
                raise
            self._state = "started"
            self._save_state()
            self._start_watcher()
            self._event("deploy", None, "done", "experiment started")

    def resume_deployment(self) -> None:
        """Finish a deployment whose controller died while deploying (the manifest says
        "deploying"): roll back what it left -- every recorded testbed's surviving daemon
        shut down and its resources removed, by record -- then deploy the design
        (experiment.xml) again. The manifest keeps "deploying" until this ends, so a
        death meanwhile leaves a root dir the next recovery handles the same way. If the
        new deployment fails, it is rolled back too and the error says why."""
        with self._lock:
            if self._state != "created":
                raise NepiError("cannot resume a deployment: this controller's experiment "
                                "is already %s" % self._state)
            phase = self.deploy_phase_of_dead_controller()
            _logger.warning("nepid died while deploying (phase %s): rolling back the "
                            "partial deployment", phase)
            self._event("recover", None, "running", "nepid died while deploying (phase "
                        "%s); rolling back the partial deployment" % phase)
            rolled_back = self._rollback_recorded()
            try:
                self.start()
            except Exception as e:
                self._error = ("nepid died while deploying (phase %s); rolled back the "
                               "partial deployment (%s), but deploying again failed and "
                               "was rolled back too: %s"
                               % (phase, "; ".join(rolled_back) or "nothing left", e))
                self._recovery_note = self._error
                self._save_state()
                _logger.error("%s", self._error)
                raise NepiError(self._error) from e
            self._recovery_note = ("nepid died while deploying (phase %s); rolled back the "
                                   "partial deployment and deployed again" % phase)
            _logger.warning("%s (%s)", self._recovery_note,
                            "; ".join(rolled_back) or "nothing was left")
            self._event("recover", None, "done", self._recovery_note)
            self._journal("experiment", "recovered", message=self._recovery_note)

    def stop(self) -> None:
        """Stop every testbed (all are tried; failures are reported together)."""
        with self._lock:
            errors = []
            journaled = self._state == "started"
            if journaled:
                self._journal("experiment", "stopping")
                self._poll_applications()       # what finished on its own, as such
            for g in self._all_testbed_guids():
                if g in self._failed_testbeds:
                    continue
                try:
                    self._testbeds[g].stop()
                except Exception as e:
                    errors.append("testbed %d: %s" % (g, e))
            self._stop_watcher()
            self._stopped_time = time.time()
            self._applications_ended("stopped with the experiment")
            if self._state == "started":
                self._state = "stopped"
                self._save_state()
            if journaled:
                self._journal("experiment", "stopped", message="; ".join(errors))
            if errors:
                raise NepiError("stop failed: " + "; ".join(errors))

    def shutdown(self) -> None:
        """Release every testbed; safe to call more than once."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            self._stop_watcher()
            # a controller found dead in this state left a shutdown to finish, by record
            self._store.manifest.set_meta(experiment_state=SHUTTING_DOWN)
            self._journal("experiment", "shutting_down")
            try:
                self._shutdown_testbeds()
                forget_link_keys(self._root_dir)
            finally:
                self._applications_ended("shut down with the experiment")
                self._state = "shutdown" if self._state != "failed" else self._state
                self._save_state(shutdown=True)
                self._journal("experiment", "shutdown")

    def release(self) -> None:
        """Let go of every testbed without shutting it down (nepid exiting, not told to
        shut down): testbed daemons keep running for a later ``recover()``."""
        with self._lock:
            self._stop_watcher()
            for testbed in self._testbeds.values():
                self._launcher.forget(testbed)

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
        self._journal("set", testbed=self._guid_testbed.get(guid), guid=guid,
                      message=set_message(name, value))

    def get(self, guid: int, name: str, time: str = TIME_NOW) -> Any:
        return self._owner(guid).get(guid, name, time)

    def get_factory_id(self, guid: int) -> str:
        return self._owner(guid).get_factory_id(guid)

    def action(self, guid: int, action: str, time: str = TIME_NOW) -> None:
        """Act on a running element, e.g. ``action(app_guid, "start")`` or ``"stop"``."""
        self._owner(guid).action(time, guid, action)
        if action == "start":
            self._application_started(guid)

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

    def labels(self) -> Dict[int, str]:
        """guid -> label of every labelled testbed and element (readable trace names)."""
        data = self._data or self._design_data
        found = {}
        for guid in list(data.testbed_guids()) + list(data.box_guids()):
            label = data.get_attribute_data(guid, "label")
            if label:
                found[guid] = label
        return found

    def is_finished(self, guid: int) -> bool:
        status = self._owner(guid).status(guid)
        self._application_status(guid, status)
        return status == AS.STATUS_FINISHED

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
            except Exception as e:
                _logger.debug("testbed %d does not answer its status: %s", guid, e)
                return TS.STATUS_UNRESPONSIVE
        testbed = self._testbed_for_guid(guid)
        if testbed is None:
            return AS.STATUS_UNDETERMINED
        status = testbed.status(guid)
        self._application_status(guid, status)
        return status

    def failed_testbeds(self) -> Dict[int, str]:
        """testbed guid -> why it failed (after recovery with the Fail policy)."""
        return dict(self._failed_testbeds)

    def testbeds_summary(self) -> List[dict]:
        """One line of facts per testbed, for ``nepid status``."""
        summary = []
        if self._data is None:
            return summary
        for g in self._data.testbed_guids():
            testbed = self._testbeds.get(g)
            record = (self._launcher.process(testbed) if testbed is not None else None) or {}
            summary.append({
                "guid": g, "testbed_id": self._testbed_id(g),
                "mode": "daemon" if record else "in-process", "pid": record.get("pid"),
                "host": self._testbed_host(g) or "local",
                "status": self.status(g), "elements": len(self._data.box_guids(g)),
                "policy": self._policy(g), "failed": self._failed_testbeds.get(g),
                "channels": channel_counters(testbed, [
                    guid for guid in self._data.box_guids(g)
                    if self._attribute_type(guid, STATS)])})
        return summary


class ExperimentSuite(suite.ExperimentSuite):
    """Runs one experiment ``repetitions`` times, each in its own root subdirectory; made
    directly, each run is an in-process ExperimentController (nepi.util.proxy's
    create_experiment_suite hands it create_experiment_controller instead)."""

    def _default_controller(self, xml, access_config):
        if deployment_mode(access_config) != DC.MODE_SINGLE_PROCESS:
            raise NepiError("this ExperimentSuite runs its experiments in this process; for "
                            "deployment_mode %s create it with "
                            "nepi.util.proxy.create_experiment_suite"
                            % deployment_mode(access_config))
        return ExperimentController(xml, access_config.get_attribute_value(DC.ROOT_DIRECTORY))
