"""Testbed launchers of the runtime layer: testbed daemons on this host and on other hosts
(over SSH), and the launcher an experiment controller is handed, which chooses among
them and the in-process one by each testbed's ``deployment_mode`` and
``deployment_communication``.

Whoever builds an ExperimentController for real deployments hands it ``default_launcher()``
(nepi.util.proxy.create_experiment_controller, nepid's ExperimentService, ``nepi run``).
What a lost testbed left is removed by the one cleanup of a root dir
(nepi.rpc.cleanup.clean_testbed), whatever kind it was.
"""

import os
import weakref
from typing import List, Optional

from nepi.core.access import AccessConfiguration
from nepi.core.launcher import InProcessLauncher, TestbedLauncher, TestbedSpec
from nepi.core.manifest import Manifest, testbed_key
from nepi.core.testbed_api import TestbedController
from nepi.rpc import zygote
from nepi.rpc.cleanup import LOCAL, clean_testbed
from nepi.rpc.tc_client import (RemoteTestbedController, attach, connect_testbed_over_ssh,
                                launch_testbed_daemon)
from nepi.util.constants import DeploymentConfiguration as DC


def clean_lost_testbed(spec: TestbedSpec, resources: bool = True) -> List[str]:
    """The one cleanup, for a testbed of any kind: its daemon if the manifest records one,
    its runtime files, its resources (unless ``resources`` is False)."""
    return clean_testbed(spec.experiment_root, spec.testbed_guid, spec.testbed_id,
                         spec.root_dir, resources=resources).problems


class _DaemonLauncher(TestbedLauncher):
    """What the two daemon launchers share: their controllers are RemoteTestbedControllers,
    each carrying the ready record of its daemon."""

    def process(self, controller: RemoteTestbedController) -> Optional[dict]:
        return dict(controller.record)

    def is_alive(self, controller: RemoteTestbedController) -> bool:
        return controller.is_alive()

    def responds(self, controller: RemoteTestbedController, timeout: float = 5.0) -> bool:
        return controller.ping(timeout=timeout)

    def cleanup(self, spec: TestbedSpec, resources: bool = True) -> List[str]:
        return clean_lost_testbed(spec, resources)

    def forget(self, controller: RemoteTestbedController) -> None:
        controller.close()


class LocalDaemonLauncher(_DaemonLauncher):
    """A testbed daemon on this host, in the testbed's root dir (deployment_mode DAEMON)."""

    def create(self, spec: TestbedSpec) -> RemoteTestbedController:
        # in the manifest before it exists: cleanup finds a daemon caught between its
        # launch and the manifest update by the experiment id in its ready record
        Manifest(spec.experiment_root).update(
            testbed_key(spec.testbed_guid), role="testbed", state="launching",
            testbed_guid=spec.testbed_guid, testbed_id=spec.testbed_id,
            root_dir=spec.root_dir, host=LOCAL)
        return launch_testbed_daemon(spec.testbed_id, spec.testbed_version, spec.config,
                                     spec.testbed_guid, spec.log_file, spec.owner)

    def attach(self, spec: TestbedSpec) -> RemoteTestbedController:
        return attach(os.path.abspath(spec.root_dir), spec.testbed_id, spec.testbed_version,
                      spec.testbed_guid, spec.owner)


class SshLauncher(_DaemonLauncher):
    """A testbed daemon on deployment_host, launched over SSH and reached through an SSH
    tunnel (deployment_mode DAEMON, deployment_communication SSH)."""

    def create(self, spec: TestbedSpec) -> RemoteTestbedController:
        return self._connect(spec, recover=False)

    def attach(self, spec: TestbedSpec) -> RemoteTestbedController:
        return self._connect(spec, recover=True)

    @staticmethod
    def _connect(spec: TestbedSpec, recover: bool) -> RemoteTestbedController:
        """The remote side launches a daemon, or with ``recover`` finds the running one."""
        config = AccessConfiguration.from_dict(spec.config.to_dict())
        config.set_attribute_value(DC.RECOVER, recover)
        return connect_testbed_over_ssh(spec.testbed_id, spec.testbed_version, config,
                                        spec.testbed_guid, spec.log_file)


class DeploymentLauncher(TestbedLauncher):
    """Chooses, per testbed, the in-process, local daemon or SSH launcher, and sends every
    later question about a controller to the launcher that made it."""

    def __init__(self) -> None:
        self.in_process = InProcessLauncher()
        self.local_daemon = LocalDaemonLauncher()
        self.ssh = SshLauncher()
        self._made_by = weakref.WeakKeyDictionary()   # controller -> its launcher

    def choose(self, spec: TestbedSpec) -> TestbedLauncher:
        if spec.mode == DC.MODE_SINGLE_PROCESS:
            return self.in_process
        if spec.mode == DC.MODE_DAEMON:
            return self.ssh if spec.communication == DC.ACCESS_SSH else self.local_daemon
        raise RuntimeError("Unsupported access configuration '%s'" % spec.mode)

    def _keep(self, launcher: TestbedLauncher, controller: TestbedController):
        self._made_by[controller] = launcher
        return controller

    def _of(self, controller: TestbedController) -> TestbedLauncher:
        return self._made_by.get(controller, self.in_process)

    def create(self, spec: TestbedSpec) -> TestbedController:
        launcher = self.choose(spec)
        return self._keep(launcher, launcher.create(spec))

    def attach(self, spec: TestbedSpec) -> TestbedController:
        launcher = self.choose(spec)
        return self._keep(launcher, launcher.attach(spec))

    def process(self, controller: TestbedController) -> Optional[dict]:
        return self._of(controller).process(controller)

    def is_alive(self, controller: TestbedController) -> bool:
        return self._of(controller).is_alive(controller)

    def responds(self, controller: TestbedController, timeout: float = 5.0) -> bool:
        return self._of(controller).responds(controller, timeout)

    def cleanup(self, spec: TestbedSpec, resources: bool = True) -> List[str]:
        return clean_lost_testbed(spec, resources)

    def forget(self, controller: TestbedController) -> None:
        self._of(controller).forget(controller)
        self._made_by.pop(controller, None)


def default_launcher() -> DeploymentLauncher:
    """The launcher of real deployments: testbeds in-process, as local daemons or over
    SSH, as each testbed's deployment attributes say. Forks this process's daemon
    launcher now, while the caller is likely still single-threaded (nepi.rpc.zygote)."""
    zygote.preload()
    return DeploymentLauncher()
