"""How controllers are reached: AccessConfiguration and the controller factories.

SINGLE mode builds controllers in this process. DAEMON mode (testbed daemons and the
experiment-controller daemon over Pyro5) is provided by nepi.rpc.
"""

import importlib
import os
import shutil
import tempfile
import weakref
from typing import List, Optional

from nepi.core.attributes import Attribute, AttributesMap
from nepi.core.metadata import _add_definition, proxy_attributes
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.environ import cleanup_testbed, find_testbed  # noqa: F401  (public name)


class AccessConfiguration(AttributesMap):
    """Deployment attributes saying where and how a controller runs (NEPI 2 names)."""

    def __init__(self, params: Optional[dict] = None) -> None:
        super().__init__()
        for definition in proxy_attributes().values():
            _add_definition(self.add_attribute, definition)
        if params:
            for name, value in params.items():
                parser = Attribute.type_parsers[self.get_attribute_type(name)]
                self.set_attribute_value(name, parser(value) if value is not None else None)

    def _attributes_owner(self) -> str:
        return "access configuration"

    def to_dict(self, include_recover: bool = False) -> dict:
        return {name: self.get_attribute_value(name) for name in self.get_attribute_list()
                if (include_recover or name != DC.RECOVER)
                and self.get_attribute_value(name) is not None}

    @classmethod
    def from_dict(cls, values: dict) -> "AccessConfiguration":
        config = cls()
        for name, value in values.items():
            if config.has_attribute(name) and value is not None:
                config.set_attribute_value(name, value)
        return config


def _mode(access_config: Optional[AccessConfiguration]) -> str:
    if access_config is None:
        return DC.MODE_SINGLE_PROCESS
    return access_config.get_attribute_value(DC.DEPLOYMENT_MODE)


def _recover(access_config: Optional[AccessConfiguration]) -> bool:
    return bool(access_config is not None and access_config.get_attribute_value(DC.RECOVER))


def create_experiment_controller(xml, access_config: Optional[AccessConfiguration] = None,
                                 allowed_roots: Optional[List[str]] = None):
    """An in-process ExperimentController (SINGLE) or a proxy to a nepid daemon (DAEMON).

    Testbeds keep their files inside the experiment's root dir; ``allowed_roots`` lists
    other places the design's ``rootDirectory`` values may point to."""
    from nepi.core.execute import ExperimentController
    mode = _mode(access_config)
    if mode == DC.MODE_SINGLE_PROCESS:
        if access_config is None:
            root_dir = tempfile.mkdtemp(prefix="nepi-")
            controller = ExperimentController(xml, root_dir, allowed_roots)
            controller._tempdir = root_dir
            weakref.finalize(controller, shutil.rmtree, root_dir, True)
            return controller
        root_dir = os.path.abspath(access_config.get_attribute_value(DC.ROOT_DIRECTORY))
        if _recover(access_config):
            controller = ExperimentController(None, root_dir, allowed_roots)
            controller.recover()
            return controller
        return ExperimentController(xml, root_dir, allowed_roots)
    if mode == DC.MODE_DAEMON:
        from nepi.rpc.ec_client import connect_experiment_controller
        return connect_experiment_controller(xml, access_config, allowed_roots)
    raise RuntimeError("Unsupported access configuration '%s'" % mode)


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
    from nepi.core.metadata import Metadata
    if not Metadata(testbed_id).accepts_version(testbed_version):
        raise RuntimeError("Bad testbed version on testbed %s. Asked for %s, got %s"
                           % (testbed_id, testbed_version, controller.testbed_version))
    return controller


def create_testbed_controller(testbed_id: str, testbed_version: str,
                              access_config: Optional[AccessConfiguration] = None,
                              testbed_guid: Optional[int] = None,
                              log_file: Optional[str] = None, owner: Optional[str] = None):
    """A testbed controller in this process (SINGLE) or a daemon's client (DAEMON);
    ``owner`` (the experiment id of the root dir launching it) marks the daemon as ours."""
    mode = _mode(access_config)
    if mode == DC.MODE_SINGLE_PROCESS:
        if _recover(access_config):
            raise ValueError("Unsupported instantiation mode: SINGLE with launch=False")
        return build_testbed_controller(testbed_id, testbed_version)
    if mode == DC.MODE_DAEMON:
        from nepi.rpc.tc_client import connect_testbed_controller
        return connect_testbed_controller(testbed_id, testbed_version, access_config,
                                          testbed_guid, log_file, owner)
    raise RuntimeError("Unsupported access configuration '%s'" % mode)


def create_experiment_suite(xml, access_config: Optional[AccessConfiguration] = None,
                            repetitions: Optional[int] = None, duration: Optional[float] = None,
                            wait_guids=None):
    from nepi.core.execute import ExperimentSuite
    return ExperimentSuite(xml, access_config, repetitions, duration, wait_guids)
