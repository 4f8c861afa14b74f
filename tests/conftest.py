"""Shared fixtures for the daemon tests (fixtures only: no hooks, no import side effects).

``daemon_leftover_guard`` (autouse) fails any test that leaves a ``nepi.rpc.daemon_main``
process of its own temporary directories running, and kills those processes so the next
tests start clean. ``nepi_kit`` bundles what the daemon tests need: access
configurations, manifest reading, kill -9, waiting, and the "nothing left behind" check.
"""

import os
import signal
import stat
import time

import psutil
import pytest

from mock_experiments import nepi_daemons

LIB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib")


class _Guard:
    def __init__(self, basetemp):
        self.bases = [str(basetemp)]

    def watch(self, path):
        """Also treat daemons whose root dir is under ``path`` as this test's."""
        self.bases.append(str(path))


@pytest.fixture(autouse=True)
def daemon_leftover_guard(tmp_path_factory):
    """Fail a test that leaves daemons of its temporary dirs running; kill them."""
    guard = _Guard(tmp_path_factory.getbasetemp())
    before = {p.pid for p in nepi_daemons(*guard.bases)}
    yield guard
    deadline = time.monotonic() + 5.0
    while True:
        left = [p for p in nepi_daemons(*guard.bases) if p.pid not in before]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if left:
        described = []
        for p in left:
            try:
                described.append("pid %d: %s" % (p.pid, " ".join(p.cmdline())))
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(left, timeout=5)
        pytest.fail("test left nepi daemon processes behind (killed now):\n  "
                    + "\n  ".join(described), pytrace=False)


class NepiKit:
    """Helpers for tests that run real daemons over real sockets."""

    PING_TEXT = ("PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n"
                 "\n"
                 "--- 10.0.0.2 ping statistics ---\n"
                 "1 packets transmitted, 1 received, 0% packet loss, time 0ms\n")

    # NEPI 2's daemon environment string (daemons-and-tests.md 8.1): one `export` with
    # three operands; our mocks live in nepi.testbeds, tests/lib holds failmock.
    ENV_SETUP = ("export PYTHONPATH=%r:%r:$PYTHONPATH export "
                 "NEPI_TESTBEDS='mock:nepi.testbeds.mock mock2:nepi.testbeds.mock2' "
                 % (LIB_DIR, LIB_DIR))
    FAILMOCK_ENV_SETUP = ("export PYTHONPATH=%r:$PYTHONPATH NEPI_TESTBEDS='failmock:failmock'"
                          % LIB_DIR)

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self._controllers = []

    # -- configurations ---------------------------------------------------------------

    def ec_config(self, root, env_setup=None, recover=False):
        from nepi.util.proxy import AccessConfiguration
        from nepi.util.constants import DeploymentConfiguration as DC
        config = AccessConfiguration()
        config.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
        config.set_attribute_value(DC.ROOT_DIRECTORY, str(root))
        config.set_attribute_value(DC.DEPLOYMENT_ENVIRONMENT_SETUP,
                                   self.ENV_SETUP if env_setup is None else env_setup)
        if recover:
            config.set_attribute_value(DC.RECOVER, True)
        return config

    def daemon_testbed(self, desc, root=None, policy=None, env_setup=None):
        """Make a testbed description run as a daemon (root dir, policy, environment)."""
        from nepi.util.constants import DeploymentConfiguration as DC
        desc.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
        if root is not None:
            os.makedirs(str(root), exist_ok=True)
            desc.set_attribute_value(DC.ROOT_DIRECTORY, str(root))
        if policy is not None:
            desc.set_attribute_value(DC.RECOVERY_POLICY, policy)
        if env_setup is not None:
            desc.set_attribute_value(DC.DEPLOYMENT_ENVIRONMENT_SETUP, env_setup)
        return desc

    def track(self, controller):
        """Shut ``controller`` down at teardown if the test did not."""
        self._controllers.append(controller)
        return controller

    def create_ec(self, xml, config, allowed_roots=None):
        from nepi.util import proxy
        return self.track(proxy.create_experiment_controller(xml, config, allowed_roots))

    # -- state of the root dir --------------------------------------------------------

    @staticmethod
    def manifest(root):
        from nepi.rpc.manifest import Manifest
        return Manifest(str(root)).read()

    def testbed_entry(self, root, testbed_guid):
        return self.manifest(root).get("daemons", {}).get("testbed-%d" % testbed_guid)

    def testbed_pid(self, root, testbed_guid):
        entry = self.testbed_entry(root, testbed_guid)
        return entry and entry.get("pid")

    @staticmethod
    def processes(root):
        return nepi_daemons(str(root))

    @staticmethod
    def start_time(pid):
        return psutil.Process(pid).create_time()

    @staticmethod
    def kill9(pid, timeout=5.0):
        """SIGKILL a daemon and wait until it is really gone: reaped, or a zombie whose
        threads have all exited (a thread-group leader shows as a zombie while its other
        threads still hold its files, e.g. the pid-file lock)."""
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if proc.status() == psutil.STATUS_ZOMBIE and \
                        len(os.listdir("/proc/%d/task" % pid)) <= 1:
                    return
            except (psutil.NoSuchProcess, FileNotFoundError):
                return
            time.sleep(0.005)
        raise AssertionError("pid %d survived SIGKILL" % pid)

    @staticmethod
    def wait_until(predicate, timeout=10.0, interval=0.02):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                return value
            time.sleep(interval)

    @staticmethod
    def leftover_files(root):
        """Sockets, pid files, secrets and ready records under ``root``."""
        left = []
        for dirpath, _, filenames in os.walk(str(root)):
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    mode = os.lstat(path).st_mode
                except FileNotFoundError:
                    continue
                if stat.S_ISSOCK(mode) or name.endswith((".pid", ".sock")) or \
                        name in ("secret", "daemon.json"):
                    left.append(path)
        return sorted(left)

    def assert_nothing_left(self, root, extra_paths=()):
        """No daemon process of ``root``, no socket/pid/secret/record file, no daemon
        listed in the manifest."""
        gone = self.wait_until(lambda: not self.processes(root), timeout=5.0)
        assert gone, "daemons still running: %s" % [
            (p.pid, p.cmdline()) for p in self.processes(root)]
        assert self.leftover_files(root) == []
        for path in extra_paths:
            assert not os.path.exists(path), path
        manifest = self.manifest(root)
        assert manifest.get("daemons", {}) == {}, manifest

    def close(self):
        for controller in reversed(self._controllers):
            try:
                controller.shutdown()
            except Exception:
                pass
        self._controllers.clear()


@pytest.fixture
def nepi_kit(tmp_path):
    kit = NepiKit(tmp_path)
    yield kit
    kit.close()
