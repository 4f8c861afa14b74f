"""The object nepid serves: an ExperimentController with the same methods as in-process,
plus submission, progress polling and daemon status."""

import logging
import os
import threading
import time
from typing import Optional

import Pyro5.api

from nepi.core.execute import ExperimentController
from nepi.core.manifest import Manifest
from nepi.core.recovery import RESUMABLE_STATES
from nepi.errors import NepiError
from nepi.rpc.service import ServiceBase, forwarding_class
from nepi.rpc.testbed_launchers import default_launcher
from nepi.util.rootfiles import DESIGN_XML, EXECUTE_XML

MUTATING = ("start", "stop", "recover", "set", "action")
QUERIES = ("get", "get_factory_id", "get_testbed_id", "get_testbed_version", "trace",
           "traces_info", "is_finished", "status", "progress_events", "deployment_config",
           "failed_testbeds", "find_element", "exec_start", "exec_read", "exec_write",
           "exec_resize", "exec_close", "labels")

_logger = logging.getLogger("nepi.rpc.ec_service")


class _ExperimentServiceBase(ServiceBase):
    def __init__(self, root_dir: str, allowed_roots=None) -> None:
        super().__init__()
        self._root_dir = root_dir
        self._allowed_roots = list(allowed_roots or [])
        self._controller = None
        self._started = time.time()
        self._deploy_thread: Optional[threading.Thread] = None
        self._progress = threading.Condition()     # notified on each progress event
        self.listen: Optional[dict] = None     # nepid's TLS listener, for daemon_status

    def _target(self):
        if self._controller is None:
            raise NepiError("no experiment loaded in %s: submit one first" % self._root_dir)
        return self._controller

    def attach(self, controller) -> None:
        self._controller = controller

    def _new_controller(self, experiment_xml, allowed_roots) -> ExperimentController:
        """An experiment controller of this root dir, launching its testbeds in-process,
        as local daemons or over SSH as the design says."""
        controller = ExperimentController(experiment_xml, self._root_dir, allowed_roots,
                                          launcher=default_launcher())
        controller.add_progress_listener(lambda event: self._progress_changed())
        return controller

    def _progress_changed(self) -> None:
        with self._progress:
            self._progress.notify_all()

    @Pyro5.api.expose
    def wait_progress(self, since: int = 0, timeout: float = 0.5) -> list:
        """progress_events(since), waiting up to ``timeout`` seconds (at most 5) for one
        when there is none yet: a follower sees each event as it happens, without
        polling at an interval."""
        deadline = time.monotonic() + min(max(float(timeout), 0.0), 5.0)
        with self._progress:
            while True:
                controller = self._controller
                events = controller.progress_events(int(since)) if controller else []
                left = deadline - time.monotonic()
                if events or left <= 0:
                    return events
                self._progress.wait(left)

    def recover_found(self) -> None:
        """nepid restarted on a root dir holding a deployed experiment: re-attach to it;
        or holding a deployment its dead nepid left half-way: roll it back and deploy the
        design again."""
        deploying = Manifest(self._root_dir).read().get("experiment_state") in \
            RESUMABLE_STATES and os.path.exists(os.path.join(self._root_dir, DESIGN_XML))
        if not deploying and not os.path.exists(os.path.join(self._root_dir, EXECUTE_XML)):
            return
        controller = self._new_controller(None, self._allowed_roots)
        if controller.was_shut_down():
            return
        self.attach(controller)
        try:
            controller.recover()
        except Exception:
            _logger.exception("recovery failed")

    def release(self, timeout: float = 5.0) -> None:
        """nepid exits without having been told to shut down: let go of the testbeds,
        which keep running for the next nepid to recover (bounded: a call in flight may
        hold a testbed's connection)."""
        controller = self._controller
        if controller is None:
            return
        worker = threading.Thread(target=controller.release, name="nepi-release",
                                  daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            _logger.warning("testbed connections still busy after %.0f s; nepid exits "
                            "without closing them", timeout)

    @Pyro5.api.expose
    def identity(self) -> dict:
        return {"role": "ec", "root_dir": self._root_dir, "pid": os.getpid()}

    @Pyro5.api.expose
    def submit(self, experiment_xml: str, allowed_roots=None) -> None:
        """Load an experiment design (validated now; deployed by start()). Testbed roots
        may lie outside the root dir only where nepid was started with --allow-root or
        the (authenticated) submitter allows it."""
        with self._lock:
            if self._controller is not None and self._controller.state not in (
                    "shutdown", "failed"):
                raise NepiError("an experiment is already loaded in %s (state %s); stop and "
                                "shut it down first" % (self._root_dir, self._controller.state))
            self._controller = self._new_controller(
                experiment_xml, self._allowed_roots + list(allowed_roots or []))

    @Pyro5.api.expose
    def start_background(self) -> None:
        """Deploy in a thread; follow with progress_events() and state()."""
        controller = self._target()

        def run():
            try:
                with self._lock:
                    controller.start()
            except Exception as e:
                _logger.error("deployment failed: %s", e)
            finally:
                self._progress_changed()      # its state changed: wake followers

        self._deploy_thread = threading.Thread(target=run, name="nepi-deploy", daemon=True)
        self._deploy_thread.start()

    @Pyro5.api.expose
    def state(self) -> dict:
        c = self._controller
        if c is None:
            return {"state": "empty", "error": None}
        return {"state": c.state, "error": c.error, "started_time": c.started_time,
                "stopped_time": c.stopped_time}

    @Pyro5.api.expose
    def get_started_time(self):
        return self._target().started_time

    @Pyro5.api.expose
    def get_stopped_time(self):
        return self._target().stopped_time

    @Pyro5.api.expose
    def get_guids(self) -> list:
        return self._target().guids

    @Pyro5.api.expose
    def experiment_design_xml(self):
        return self._target().experiment_design_xml

    @Pyro5.api.expose
    def experiment_execute_xml(self):
        return self._target().experiment_execute_xml

    @Pyro5.api.expose
    def daemon_status(self) -> dict:
        c = self._controller
        info = {"pid": os.getpid(), "uptime": time.time() - self._started,
                "root_dir": self._root_dir, "state": c.state if c else "empty",
                "error": c.error if c else None, "testbeds": [], "listen": self.listen,
                "recovery": c.recovery_note if c else None}
        if c is not None:
            info["testbeds"] = c.testbeds_summary()
        return info

    @Pyro5.api.expose
    def shutdown(self) -> None:
        """Stop the experiment, shut every testbed down, then let nepid exit."""
        try:
            with self._lock:
                if self._controller is not None:
                    if self._controller.state == "started":
                        try:
                            self._controller.stop()
                        except Exception as e:
                            _logger.error("stop before shutdown failed: %s", e)
                    self._controller.shutdown()
        finally:
            self.stop_event.set()

    def keeps_alive(self) -> bool:
        return True   # nepid only exits when told to


ExperimentService = forwarding_class("ExperimentService", _ExperimentServiceBase,
                                     MUTATING, QUERIES)
