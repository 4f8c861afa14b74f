"""Shared fixtures (fixtures only: no hooks, no import side effects). The helpers they are
built on -- waiting, kill -9, leftover checks -- are in ``helpers`` (tests/helpers.py),
which test files import directly.

Every check here looks only at what the test itself created (its tmp dirs, the tokens of
its netns testbeds, the pids it started), never at the whole host: two test runs can
share a machine.

``daemon_leftover_guard`` (autouse) fails any test that leaves a ``nepi.rpc.daemon_main``
process of its own temporary directories (or a private ns3 daemon of this process)
running, and kills those processes so the next tests start clean.
``netns_leftovers`` does the same for the namespaces, links and processes of the test's
netns testbeds (helpers.NetnsLeftovers). ``controllers`` shuts down the controllers a
test made; ``nepi_kit`` bundles what the daemon tests need: access configurations,
manifest reading, kill -9, waiting and the "nothing left behind" check; ``failmock_env``
registers the test-only failmock testbed.
"""

import logging
import os

import pytest

import helpers
from helpers import daemons_under, kill_all, nepi_daemons, owned_daemons, runtime_files

LOG = logging.getLogger(__name__)


class _Guard:
    def __init__(self, basetemp):
        self.bases = [str(basetemp)]

    def watch(self, path):
        """Also treat daemons whose root dir is under ``path`` as this test's."""
        self.bases.append(str(path))

    def daemons(self):
        found = {p.pid: p for p in nepi_daemons(*self.bases)}
        found.update((p.pid, p) for p in owned_daemons())
        return list(found.values())


@pytest.fixture(autouse=True)
def daemon_leftover_guard(tmp_path_factory):
    """Fail a test that leaves daemons of its temporary dirs (or private ns3 daemons of
    this process) running; kill them. An ns3 daemon takes a few seconds to exit."""
    guard = _Guard(tmp_path_factory.getbasetemp())
    before = {p.pid for p in guard.daemons()}
    yield guard
    left = []

    def gone():
        left[:] = [p for p in guard.daemons() if p.pid not in before]
        return not left
    if not helpers.wait_until(gone, 15.0, 0.05):
        pytest.fail("test left nepi daemon processes behind (killed now):\n  "
                    + "\n  ".join(kill_all(left)), pytrace=False)


class Controllers(list):
    """Experiment (or testbed) controllers made by a test."""

    def shutdown_all(self):
        """Shut each down (again: shutdown is idempotent), newest first; a failure is
        logged, since the test's own outcome is what matters at teardown."""
        for controller in reversed(self):
            try:
                controller.shutdown()
            except Exception as e:
                LOG.warning("teardown: shutting down %r failed: %s", controller, e)


@pytest.fixture
def controllers():
    """Controllers made by a test (append them); shut down at teardown whatever happened."""
    made = Controllers()
    yield made
    made.shutdown_all()


@pytest.fixture
def failmock_env(monkeypatch):
    """NEPI_TESTBEDS names the test-only failmock testbed; its registry starts empty."""
    failmock = helpers.import_lib("failmock")
    monkeypatch.setenv("NEPI_TESTBEDS", "failmock:failmock")
    failmock.REGISTRY.clear()
    yield failmock
    failmock.REGISTRY.clear()


@pytest.fixture
def netns_leftovers(tmp_path, monkeypatch):
    """Fail a test that leaves a namespace, link or process of its own netns testbeds
    (and remove those, only those). The tokens are learnt as they are drawn (every token
    a netns testbed of this process draws) and from the netns-resources.json of testbed
    daemons under tmp_path (``watch()`` adds roots elsewhere), polled while the test runs."""
    from nepi.testbeds.netns import execute as netns_execute
    leftovers = helpers.NetnsLeftovers(tmp_path)
    draw = netns_execute.new_token

    def recorded_token():
        token = draw()
        leftovers.add_token(token)
        return token
    monkeypatch.setattr(netns_execute, "new_token", recorded_token)
    leftovers.start()
    try:
        yield leftovers
    finally:
        leftovers.stop()
    leftovers.check()


class NepiKit:
    """Helpers for tests that run real daemons over real sockets."""

    # NEPI 2's daemon environment string (daemons-and-tests.md 8.1): one `export` with
    # three operands; our mocks live in nepi.testbeds, tests/lib holds failmock.
    ENV_SETUP = ("export PYTHONPATH=%r:%r:$PYTHONPATH export "
                 "NEPI_TESTBEDS='mock:nepi.testbeds.mock mock2:nepi.testbeds.mock2' "
                 % (helpers.LIB_DIR, helpers.LIB_DIR))
    FAILMOCK_ENV_SETUP = ("export PYTHONPATH=%r:$PYTHONPATH NEPI_TESTBEDS='failmock:failmock'"
                          % helpers.LIB_DIR)

    kill9 = staticmethod(helpers.kill9)
    wait_until = staticmethod(helpers.wait_until)
    processes = staticmethod(daemons_under)
    leftover_files = staticmethod(runtime_files)

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.controllers = Controllers()

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
        from netns_experiments import as_daemon
        if root is not None:
            os.makedirs(str(root), exist_ok=True)
        return as_daemon(desc, root, policy, env_setup)

    def track(self, controller):
        """Shut ``controller`` down at teardown if the test did not."""
        self.controllers.append(controller)
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
    def start_time(pid):
        import psutil
        return psutil.Process(pid).create_time()

    def assert_nothing_left(self, root, extra_paths=()):
        """No daemon process of ``root``, no socket/pid/secret/record file, no daemon
        listed in the manifest."""
        gone = self.wait_until(lambda: not daemons_under(root), timeout=5.0)
        assert gone, "daemons still running: %s" % [
            (p.pid, p.cmdline()) for p in daemons_under(root)]
        assert runtime_files(root) == []
        for path in extra_paths:
            assert not os.path.exists(path), path
        manifest = self.manifest(root)
        assert manifest.get("daemons", {}) == {}, manifest

    def close(self):
        self.controllers.shutdown_all()
        self.controllers.clear()


@pytest.fixture
def nepi_kit(tmp_path):
    kit = NepiKit(tmp_path)
    yield kit
    kit.close()


@pytest.fixture
def sim_hosts(tmp_path):
    """A factory: sim_hosts(count) -> SimHosts, all removed after the test.

    Simulated hosts (tests/simhosts.py) are network namespaces on a private bridge, each
    with its own sshd and home; the test is skipped where they cannot run (not root, no
    sshd). Teardown removes every set made, whatever the test's outcome."""
    import itertools
    import simhosts
    why = simhosts.missing()
    if why:
        pytest.skip(why)
    made = []
    numbers = itertools.count(1)

    def make(count: int = 3, share=None) -> "simhosts.SimHosts":
        sim = simhosts.SimHosts.up(str(tmp_path / ("simhosts%d" % next(numbers))), count,
                                   share)
        made.append(sim)
        return sim
    yield make
    failures = []
    for sim in reversed(made):
        try:
            sim.down()
        except Exception as e:
            failures.append(str(e))
    if failures:
        pytest.fail("removing simulated hosts failed: %s" % "; ".join(failures),
                    pytrace=False)
