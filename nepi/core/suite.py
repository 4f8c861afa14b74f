"""ExperimentSuite: one experiment run ``repetitions`` times, each in its own root subdirectory
(``<rootDirectory>_1``, ``_2``...). NEPI 2 imports it from nepi.core.execute.

Each run's experiment controller is made by the ``create_controller(xml, access_config)``
the suite was given (nepi.util.proxy.create_experiment_suite hands it
create_experiment_controller, so runs may be nepid daemons too).
"""

import logging
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from nepi.core.access import AccessConfiguration
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS

_logger = logging.getLogger("nepi.core.execute")

ControllerFactory = Callable[[Any, AccessConfiguration], Any]


class ExperimentSuite:
    """Runs one experiment ``repetitions`` times, each in its own root subdirectory."""

    def __init__(self, experiment_xml, access_config=None, repetitions: Optional[int] = None,
                 duration: Optional[float] = None, wait_guids: Optional[List[int]] = None,
                 poll_interval: float = 0.5,
                 create_controller: Optional[ControllerFactory] = None) -> None:
        self._experiment_xml = experiment_xml
        self._access_config = access_config
        self._repetitions = repetitions or 1
        self._duration = duration
        self._wait_guids = list(wait_guids or [])
        self._poll_interval = poll_interval
        self._create_controller = create_controller or self._default_controller
        self._status = TS.STATUS_ZERO
        self._current: Optional[int] = None
        self._access_configs: Dict[int, Any] = {}
        self._controllers: Dict[int, Any] = {}
        self._run_status: Dict[int, str] = {}
        self._errors: Dict[int, str] = {}
        self._thread: Optional[threading.Thread] = None
        self._stop_requested = threading.Event()

    def _default_controller(self, xml, access_config: AccessConfiguration):
        raise NotImplementedError("an ExperimentSuite needs create_controller")

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

    def _config_for(self, i: int) -> AccessConfiguration:
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
        failed = False
        for i in range(1, self._repetitions + 1):
            if self._stop_requested.is_set():
                break
            self._current = i
            self._run_status[i] = "running"
            config = self._config_for(i)
            self._access_configs[i] = config
            try:
                controller = self._create_controller(self._experiment_xml, config)
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
