"""The public facade (NEPI 2's nepi.util.proxy): AccessConfiguration and the factories of
experiment controllers, testbed controllers and experiment suites.

SINGLE mode builds an ExperimentController in this process, handed the launcher of real
deployments (its testbeds in-process, as daemons or over SSH, as the design says); DAEMON
mode reaches the experiment controller as nepid (launched here, on another host over SSH,
or listening with mutual TLS), through nepi.rpc.
"""

import os
import shutil
import tempfile
import weakref
from typing import List, Optional

from nepi.core.access import AccessConfiguration, deployment_mode, wants_recovery
from nepi.core.execute import ExperimentController, ExperimentSuite
from nepi.core.launcher import build_testbed_controller  # noqa: F401  (public name)
from nepi.rpc.ec_client import connect_experiment_controller
from nepi.rpc.tc_client import connect_testbed_controller
from nepi.rpc.testbed_launchers import default_launcher
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.environ import cleanup_testbed, find_testbed  # noqa: F401  (public names)

__all__ = ["AccessConfiguration", "build_testbed_controller", "cleanup_testbed",
           "create_experiment_controller", "create_experiment_suite",
           "create_testbed_controller", "find_testbed"]


def create_experiment_controller(xml, access_config: Optional[AccessConfiguration] = None,
                                 allowed_roots: Optional[List[str]] = None):
    """An in-process ExperimentController (SINGLE) or a proxy to a nepid daemon (DAEMON).

    Testbeds keep their files inside the experiment's root dir; ``allowed_roots`` lists
    other places the design's ``rootDirectory`` values may point to."""
    mode = deployment_mode(access_config)
    if mode == DC.MODE_SINGLE_PROCESS:
        if access_config is None:
            root_dir = tempfile.mkdtemp(prefix="nepi-")
            controller = ExperimentController(xml, root_dir, allowed_roots,
                                              launcher=default_launcher())
            controller._tempdir = root_dir
            weakref.finalize(controller, shutil.rmtree, root_dir, True)
            return controller
        root_dir = os.path.abspath(access_config.get_attribute_value(DC.ROOT_DIRECTORY))
        if wants_recovery(access_config):
            controller = ExperimentController(None, root_dir, allowed_roots,
                                              launcher=default_launcher())
            controller.recover()
            return controller
        return ExperimentController(xml, root_dir, allowed_roots, launcher=default_launcher())
    if mode == DC.MODE_DAEMON:
        return connect_experiment_controller(xml, access_config, allowed_roots)
    raise RuntimeError("Unsupported access configuration '%s'" % mode)


def create_testbed_controller(testbed_id: str, testbed_version: str,
                              access_config: Optional[AccessConfiguration] = None,
                              testbed_guid: Optional[int] = None,
                              log_file: Optional[str] = None, owner: Optional[str] = None):
    """A testbed controller in this process (SINGLE) or a daemon's client (DAEMON);
    ``owner`` (the experiment id of the root dir launching it) marks the daemon as ours."""
    mode = deployment_mode(access_config)
    if mode == DC.MODE_SINGLE_PROCESS:
        if wants_recovery(access_config):
            raise ValueError("Unsupported instantiation mode: SINGLE with launch=False")
        return build_testbed_controller(testbed_id, testbed_version)
    if mode == DC.MODE_DAEMON:
        return connect_testbed_controller(testbed_id, testbed_version, access_config,
                                          testbed_guid, log_file, owner)
    raise RuntimeError("Unsupported access configuration '%s'" % mode)


def create_experiment_suite(xml, access_config: Optional[AccessConfiguration] = None,
                            repetitions: Optional[int] = None, duration: Optional[float] = None,
                            wait_guids=None):
    """Repetitions of one experiment, each run made by create_experiment_controller."""
    return ExperimentSuite(xml, access_config, repetitions, duration, wait_guids,
                           create_controller=create_experiment_controller)
