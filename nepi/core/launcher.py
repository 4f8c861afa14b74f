"""How the experiment controller gets its testbed controllers: the TestbedLauncher contract.

A launcher creates a testbed controller for one testbed of a design (given its deployment
values), re-attaches to one that survived its experiment controller (recovery), tells
whether one is still alive, cleans up what a lost one left and drops one without shutting
it down. The experiment controller is handed a launcher by whoever builds it and never
asks a testbed controller what kind it is.

This module holds the contract and the in-process launcher (the testbed package imported
into this process); launching testbed daemons, locally or over SSH, and choosing among the
three by ``deployment_mode``/``deployment_communication`` is the runtime layer's
(nepi.rpc.testbed_launchers).
"""

import abc
import importlib
import logging
from dataclasses import dataclass
from typing import List, Optional

from nepi.core.access import AccessConfiguration
from nepi.core.metadata import Metadata
from nepi.core.testbed_api import TestbedController
from nepi.errors import ControllerUnreachableError, NepiError
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.environ import cleanup_testbed, find_testbed

_logger = logging.getLogger("nepi.core.launcher")


@dataclass
class TestbedSpec:
    """One testbed of an experiment, as a launcher needs it."""

    __test__ = False                # a pytest hint: not a test class

    experiment_root: str            # the experiment's root dir (its manifest, its logs)
    testbed_guid: int
    testbed_id: str
    testbed_version: str
    config: AccessConfiguration     # deployment values; rootDirectory resolved
    log_file: Optional[str] = None  # where a testbed daemon logs
    owner: Optional[str] = None     # the root dir's experiment id, carried by its daemons

    def value(self, name: str):
        return self.config.get_attribute_value(name)

    @property
    def root_dir(self) -> str:
        """Where the testbed keeps its files."""
        return self.value(DC.ROOT_DIRECTORY)

    @property
    def mode(self) -> str:
        return self.value(DC.DEPLOYMENT_MODE) or DC.MODE_SINGLE_PROCESS

    @property
    def communication(self) -> str:
        return self.value(DC.DEPLOYMENT_COMMUNICATION)


class TestbedLauncher(abc.ABC):
    """Creates, finds, watches, cleans up after and drops testbed controllers."""

    @abc.abstractmethod
    def create(self, spec: TestbedSpec) -> TestbedController:
        """A new testbed controller for ``spec`` (its daemon launched if it has one)."""

    @abc.abstractmethod
    def attach(self, spec: TestbedSpec) -> TestbedController:
        """The testbed controller of ``spec`` that survived its experiment controller
        (recovery); raises if there is none to re-attach to."""

    @abc.abstractmethod
    def process(self, controller: TestbedController) -> Optional[dict]:
        """The record of the process ``controller`` runs in when it is not this one (pid,
        start_time, socket, root_dir, host): what the manifest keeps. None in-process."""

    @abc.abstractmethod
    def is_alive(self, controller: TestbedController) -> bool:
        """False once the process of ``controller`` is gone."""

    def responds(self, controller: TestbedController, timeout: float = 5.0) -> bool:
        """True if ``controller`` answers within ``timeout`` seconds."""
        return self.is_alive(controller)

    @abc.abstractmethod
    def cleanup(self, spec: TestbedSpec, resources: bool = True) -> List[str]:
        """Remove what a lost testbed left: its process (by record), runtime files and,
        unless ``resources`` is False (Recover re-attaches to them), its resources.
        Returns the problems met (each also worth logging)."""

    @abc.abstractmethod
    def forget(self, controller: TestbedController) -> None:
        """Drop ``controller`` without shutting it down (its connections closed): the
        testbed keeps running for a later recovery, or is cleaned up separately."""


def build_testbed_controller(testbed_id: str, testbed_version: str, in_daemon: bool = False):
    """Import a testbed package and instantiate its TestbedController in this process.

    A testbed that must own its process (ns-3: one simulator per process) exports the
    real controller as ``DaemonTestbedController``, used inside testbed daemons, and a
    ``TestbedController`` that runs it in a private child daemon."""
    module_name = find_testbed(testbed_id)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ImportError("Cannot find module %s for testbed %s: %s"
                          % (module_name, testbed_id, e)) from e
    cls = getattr(module, "DaemonTestbedController", None) if in_daemon else None
    controller = (cls or module.TestbedController)()
    if not Metadata(testbed_id).accepts_version(testbed_version):
        raise RuntimeError("Bad testbed version on testbed %s. Asked for %s, got %s"
                           % (testbed_id, testbed_version, controller.testbed_version))
    return controller


class InProcessLauncher(TestbedLauncher):
    """Testbed controllers in this process (deployment_mode SINGLE): they live and die
    with their experiment controller, so there is nothing to re-attach to or watch."""

    def create(self, spec: TestbedSpec) -> TestbedController:
        if spec.mode != DC.MODE_SINGLE_PROCESS:
            raise NepiError("testbed %d (%s) is to be deployed as %s, but this experiment "
                            "controller can only run testbeds in its own process: create it "
                            "with nepi.util.proxy.create_experiment_controller (or hand it "
                            "a launcher of nepi.rpc.testbed_launchers)"
                            % (spec.testbed_guid, spec.testbed_id, spec.mode))
        return build_testbed_controller(spec.testbed_id, spec.testbed_version)

    def attach(self, spec: TestbedSpec) -> TestbedController:
        raise ControllerUnreachableError("its controller ran inside the experiment "
                                         "controller that died")

    def process(self, controller: TestbedController) -> Optional[dict]:
        return None

    def is_alive(self, controller: TestbedController) -> bool:
        return True

    def cleanup(self, spec: TestbedSpec, resources: bool = True) -> List[str]:
        if not resources or not spec.testbed_id:
            return []
        try:
            cleanup_testbed(spec.testbed_id, spec.root_dir)
        except Exception as e:
            return ["cleaning testbed %s (%s) failed: %s"
                    % (spec.testbed_guid, spec.testbed_id, e)]
        return []

    def forget(self, controller: TestbedController) -> None:
        """Nothing to close: an in-process controller goes with this process."""
