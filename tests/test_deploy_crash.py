"""A testbed daemon dying during deployment (issue 13 points 1 and 3).

Fail: start() raises naming the testbed and the phase, and nothing is left (daemons,
runtime files, manifest daemons; for netns, namespaces). Restart and Recover: the dead
testbed is redeployed on a new daemon, its cross-connections redone, and the experiment
ends started and working; a second death of the same testbed fails cleanly. And ``nepid
stop`` on a root dir whose nepid is dead shuts the surviving testbed daemons down.

Deaths are deterministic: the test-only failmock testbed's ``diePhase`` makes its daemon
SIGKILL itself in that phase (``dieTimes`` daemons in a row). The experiment (as in
test_rollback): failmock testbed 1 (nodes 2, 3, ifaces 4, 5, app 6) cross-connected
(iface 5 - iface 10) to failmock testbed 7 (nodes 8, 9, ifaces 10, 11, app 12).
"""

import threading

import pytest

from nepi.core.design import ExperimentDescription
from nepi.errors import DeploymentError
from nepi.util import proxy
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS

from helpers import NETNS_MISSING, LIB_DIR, daemons_under, runtime_files
from mock_experiments import PING_TEXT, make_testbed, nepid_command

PHASES = {"create": "create", "connect": "connect_init", "configure": "configure",
          "cross": "cross_connect_init", "prestart": "prestart"}
POLICIES = [DC.POLICY_FAIL, DC.POLICY_RESTART, DC.POLICY_RECOVER]


@pytest.fixture
def failmock_daemons(monkeypatch):
    monkeypatch.setenv("NEPI_TESTBEDS", "failmock:failmock")
    monkeypatch.syspath_prepend(LIB_DIR)


def experiment(nepi_kit, dying, phase, policy, times=1):
    exp_desc = ExperimentDescription()
    _, desc1, _, _, _, _, i12 = make_testbed(exp_desc, "failmock")
    _, desc2, _, _, _, i21, _ = make_testbed(exp_desc, "failmock")
    i12.connector("cross").connect(i21.connector("cross"))
    for desc in (desc1, desc2):
        nepi_kit.daemon_testbed(desc, env_setup=nepi_kit.FAILMOCK_ENV_SETUP)
    desc = desc1 if dying == 1 else desc2
    desc.set_attribute_value(DC.RECOVERY_POLICY, policy)
    desc.set_attribute_value("diePhase", phase)
    desc.set_attribute_value("dieTimes", times)
    return exp_desc


def controller_for(nepi_kit, tmp_path, exp_desc, ec_daemon=False):
    if ec_daemon:
        config = nepi_kit.ec_config(tmp_path, env_setup=nepi_kit.FAILMOCK_ENV_SETUP)
    else:
        config = proxy.AccessConfiguration()
        config.set_attribute_value(DC.ROOT_DIRECTORY, str(tmp_path))
    return nepi_kit.create_ec(exp_desc.to_xml(), config)


def assert_failed_cleanly(nepi_kit, tmp_path, controller, info, dying, phase):
    message = str(info.value)
    assert "testbed %d (failmock) died in %s" % (dying, PHASES[phase]) in message, message
    assert info.value.testbed_guid == dying
    assert controller.status() == TS.STATUS_FAILED
    controller.shutdown()
    nepi_kit.assert_nothing_left(tmp_path)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("phase", list(PHASES))
def test_testbed_daemon_dies_during_deployment(tmp_path, nepi_kit, failmock_daemons,
                                               phase, policy):
    dying = 7 if phase in ("connect", "prestart") else 1     # either testbed may die
    controller = controller_for(nepi_kit, tmp_path, experiment(nepi_kit, dying, phase,
                                                               policy))
    if policy == DC.POLICY_FAIL:
        with pytest.raises(DeploymentError) as info:
            controller.start()
        assert "recovery policy is Fail" in str(info.value)
        assert_failed_cleanly(nepi_kit, tmp_path, controller, info, dying, phase)
        return
    controller.start()
    assert controller.status() == TS.STATUS_STARTED
    assert controller.failed_testbeds() == {}
    assert controller.trace(6, "fake").startswith(PING_TEXT)
    assert controller.trace(12, "fake").startswith(PING_TEXT)
    assert controller.get(5, "cross") is True and controller.get(10, "cross") is True
    events = [(e["phase"], e["testbed"], e["state"]) for e in controller.progress_events()]
    assert ("recover", dying, "lost") in events and ("recover", dying, "redeployed") in events
    manifest = nepi_kit.manifest(tmp_path)
    assert manifest["deploy_phase"] == "started"
    assert {g: manifest["testbeds"][str(g)]["phase"] for g in (1, 7)} == \
        {1: "start", 7: "start"}
    assert len(daemons_under(tmp_path)) == 2      # the new daemon and the other one
    controller.stop()
    controller.shutdown()
    nepi_kit.assert_nothing_left(tmp_path)


@pytest.mark.parametrize("policy", [DC.POLICY_RESTART, DC.POLICY_RECOVER])
@pytest.mark.parametrize("phase", ["create", "cross", "prestart"])
def test_second_death_during_deployment_fails_cleanly(tmp_path, nepi_kit, failmock_daemons,
                                                      phase, policy):
    controller = controller_for(nepi_kit, tmp_path,
                                experiment(nepi_kit, 1, phase, policy, times=2))
    with pytest.raises(DeploymentError) as info:
        controller.start()
    assert policy in str(info.value)
    assert_failed_cleanly(nepi_kit, tmp_path, controller, info, 1, phase)


@pytest.mark.parametrize("policy", [DC.POLICY_FAIL, DC.POLICY_RESTART])
def test_death_with_the_controller_in_nepid(tmp_path, nepi_kit, failmock_daemons, policy):
    controller = controller_for(nepi_kit, tmp_path,
                                experiment(nepi_kit, 1, "configure", policy), ec_daemon=True)
    if policy == DC.POLICY_FAIL:
        with pytest.raises(DeploymentError) as info:
            controller.start()
        assert "testbed 1 (failmock) died in configure" in str(info.value)
        assert nepi_kit.wait_until(lambda: daemons_under(tmp_path / "testbeds") == [], 5.0)
    else:
        controller.start()
        assert controller.trace(6, "fake").startswith(PING_TEXT)
        controller.stop()
    controller.shutdown()
    nepi_kit.assert_nothing_left(tmp_path)


def test_phase_progress_is_recorded_when_each_phase_begins(tmp_path, nepi_kit,
                                                           failmock_daemons):
    """The manifest says which phase runs (deploy_phase) while it runs."""
    from nepi.core.manifest import Manifest
    seen = []
    controller = controller_for(nepi_kit, tmp_path, experiment(nepi_kit, 1, "", "Fail"))
    controller.add_progress_listener(
        lambda e: e["state"] == "running" and seen.append(
            (e["phase"], Manifest(str(tmp_path)).read().get("deploy_phase"))))
    controller.start()
    assert ("do_create", "do_create") in seen and ("do_prestart", "do_prestart") in seen
    assert all(phase == recorded for phase, recorded in seen), seen
    controller.stop()
    controller.shutdown()
    nepi_kit.assert_nothing_left(tmp_path)


def test_program_failure_right_after_creation_shuts_the_daemon_down(
        tmp_path, nepi_kit, failmock_daemons, monkeypatch):
    from nepi.rpc.tc_client import RemoteTestbedController
    original = RemoteTestbedController.program

    def program(self, calls):
        if any(c[0] == "defer_configure" for c in calls):
            raise RuntimeError("injected program failure")
        return original(self, calls)
    monkeypatch.setattr(RemoteTestbedController, "program", program, raising=False)
    controller = controller_for(nepi_kit, tmp_path, experiment(nepi_kit, 1, "", "Fail"))
    with pytest.raises(DeploymentError, match="injected program failure"):
        controller.start()
    controller.shutdown()
    nepi_kit.assert_nothing_left(tmp_path)


# ---------------------------------------------------------------------------------------
# a real netns testbed daemon killed -9 while it creates its namespaces
# ---------------------------------------------------------------------------------------

@pytest.mark.skipif(NETNS_MISSING is not None, reason=str(NETNS_MISSING))
@pytest.mark.parametrize("policy", [DC.POLICY_FAIL, DC.POLICY_RESTART])
def test_netns_daemon_killed_during_create(tmp_path, nepi_kit, netns_leftovers, policy):
    import netns_experiments as nx
    from nepi.core.manifest import Manifest
    exp_desc, b = nx.make_star(20)
    nx.add_app(b["desc"], b["nodes"][0], "ping -qc1 10.0.2.1")
    nepi_kit.daemon_testbed(b["desc"], policy=policy)
    controller = controller_for(nepi_kit, tmp_path, exp_desc)
    manifest = Manifest(str(tmp_path))
    outcome = {}

    def start():
        try:
            controller.start()
            outcome["ok"] = True
        except Exception as e:
            outcome["error"] = e
    thread = threading.Thread(target=start)
    thread.start()
    try:
        nepi_kit.wait_until(lambda: manifest.read().get("deploy_phase") == "do_create",
                            30.0, 0.001, what="do_create to begin")
        pid = nepi_kit.testbed_pid(tmp_path, 1)
        assert manifest.testbed_phase(1) == "do_setup"
        nepi_kit.kill9(pid)
    finally:
        thread.join(60)
    if policy == DC.POLICY_FAIL:
        error = outcome["error"]
        assert isinstance(error, DeploymentError)
        assert "testbed 1 (netns) died in create" in str(error), error
        assert nx.namespaces() & set(netns_leftovers.our_namespaces()) == set()
    else:
        assert outcome.get("ok"), outcome
        assert nepi_kit.testbed_pid(tmp_path, 1) != pid
        app = [g for g in controller.guids if controller.get_factory_id(g) == "Application"]
        assert nepi_kit.wait_until(lambda: controller.is_finished(app[0]), 10.0)
        assert controller.trace(app[0], "stdout").startswith(nx.ping_prefix("10.0.2.1"))
        controller.stop()
    controller.shutdown()
    nepi_kit.assert_nothing_left(tmp_path)
    assert netns_leftovers.wait_gone() == {"namespaces": [], "links": [], "processes": []}


# ---------------------------------------------------------------------------------------
# nepid stop on a root dir whose nepid is dead
# ---------------------------------------------------------------------------------------

def test_nepid_stop_with_dead_nepid_shuts_the_testbed_daemons_down(tmp_path, nepi_kit):
    from mock_experiments import write_readme_design
    design = write_readme_design(tmp_path / "design.xml", daemons=(1, 7),
                                 setup=nepi_kit.ENV_SETUP)
    root = tmp_path / "root"
    run = nepid_command("run", "-q", design, "--root-dir", root)
    assert run.returncode == 0, run.stderr
    manifest = nepi_kit.manifest(root)
    nepid_pid = manifest["daemons"]["ec"]["pid"]
    testbeds = [e["pid"] for k, e in manifest["daemons"].items() if k != "ec"]
    assert len(testbeds) == 2
    nepi_kit.kill9(nepid_pid)
    nepi_kit.kill9(testbeds[0])        # as if nepid died half-way through `nepid stop`
    assert [p.pid for p in daemons_under(root)] == [testbeds[1]]

    stop = nepid_command("stop", "--root-dir", root)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "nepid is not running" in stop.stdout and "shut down" in stop.stdout, stop.stdout
    nepi_kit.assert_nothing_left(root)
    assert nepi_kit.manifest(root)["experiment_state"] == "shutdown"
    again = nepid_command("stop", "--root-dir", root)   # idempotent: nothing left to do
    assert again.returncode == 3 and "not running" in again.stdout
    assert runtime_files(root) == []
