"""Recovery with real daemons (SPEC 7, issue 5 item 5): kill -9 of the experiment-
controller daemon, of a testbed daemon under each recoveryPolicy (noticed by the liveness
watcher while running), and of both at once (the policy applies during recovery).

Experiments (mock_experiments): single = mock testbed 1, app 6; cross = mock testbed 1
(app 6, iface 5) cross-connected to mock2 testbed 7 (app 12, iface 10).
"""

import fcntl
import getpass
import os
import threading
import time

import pytest

from nepi.util.constants import ApplicationStatus as AS
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS
from nepi.util.proxy import build_testbed_controller

from mock_experiments import PING_TEXT, make_cross_test_experiment, make_test_experiment

USER = getpass.getuser()
TRACE_INFO = {"fake": {"host": "localhost", "user": USER, "filepath": "<test>"}}
WATCH_DEADLINE = 10.0     # "within seconds": the watcher polls every second


def deploy(nepi_kit, root, exp_desc):
    config = nepi_kit.ec_config(root)
    controller = nepi_kit.create_ec(exp_desc.to_xml(), config)
    controller.start()
    return controller, config


def cross_experiment(nepi_kit, policy1=None, policy7=None):
    exp_desc, desc1, desc2 = make_cross_test_experiment()[:3]
    nepi_kit.daemon_testbed(desc1, policy=policy1)
    nepi_kit.daemon_testbed(desc2, policy=policy7)
    return exp_desc


def single_experiment(nepi_kit, policy=None):
    exp_desc, desc = make_test_experiment()[:2]
    nepi_kit.daemon_testbed(desc, policy=policy)
    return exp_desc


def answers(controller):
    """What a client sees of the running cross experiment."""
    return {"status": controller.status(), "status1": controller.status(1),
            "status7": controller.status(7), "status6": controller.status(6),
            "finished6": controller.is_finished(6), "finished12": controller.is_finished(12),
            "trace6": controller.trace(6, "fake"), "trace12": controller.trace(12, "fake"),
            "traces_info": controller.traces_info(), "cross5": controller.get(5, "cross"),
            "cross10": controller.get(10, "cross"), "started_time": controller.started_time,
            "testbed_id8": controller.get_testbed_id(8)}


def recover(nepi_kit, xml, config):
    config.set_attribute_value(DC.RECOVER, True)
    return nepi_kit.create_ec(xml, config)


def finish(nepi_kit, controller, root):
    controller.stop()
    controller.shutdown()
    nepi_kit.assert_nothing_left(root)


# ---------------------------------------------------------------------------------------
# the experiment-controller daemon dies
# ---------------------------------------------------------------------------------------

def test_ec_kill9_then_recover_reattaches_to_the_same_testbed_daemons(tmp_path, nepi_kit):
    exp_desc = cross_experiment(nepi_kit)
    controller, config = deploy(nepi_kit, tmp_path, exp_desc)
    before = answers(controller)
    assert before["status"] == before["status1"] == before["status7"] == TS.STATUS_STARTED
    assert before["status6"] == AS.STATUS_FINISHED
    assert before["finished6"] is True and before["finished12"] is True
    assert before["trace6"].startswith(PING_TEXT)
    assert before["traces_info"] == {1: {6: TRACE_INFO}, 7: {12: TRACE_INFO}}
    assert before["cross5"] is True and before["cross10"] is True
    tb_pids = {g: nepi_kit.testbed_pid(tmp_path, g) for g in (1, 7)}
    tb_starts = {g: nepi_kit.start_time(pid) for g, pid in tb_pids.items()}
    old_ec = controller.pid

    t0 = time.monotonic()
    nepi_kit.kill9(old_ec)
    recovered = recover(nepi_kit, exp_desc.to_xml(), config)
    first_answer = recovered.is_finished(6)
    elapsed = time.monotonic() - t0
    print("EC kill -9 -> answering again via recover=True: %.3f s" % elapsed)

    assert first_answer is True
    assert recovered.pid != old_ec
    assert answers(recovered) == before
    assert recovered.failed_testbeds() == {}
    # the same testbed daemons (pid and process start time), nothing redeployed
    assert {g: nepi_kit.testbed_pid(tmp_path, g) for g in (1, 7)} == tb_pids
    assert {g: nepi_kit.start_time(pid) for g, pid in tb_pids.items()} == tb_starts
    assert sorted(p.pid for p in nepi_kit.processes(tmp_path)) == \
        sorted([recovered.pid] + list(tb_pids.values()))
    assert elapsed < 10.0
    finish(nepi_kit, recovered, tmp_path)


def test_recover_right_after_kill9_waits_for_the_dying_daemons_lock(tmp_path, nepi_kit):
    """Right after kill -9 the leader is a zombie while its other threads still hold the
    pid-file lock: recovery must wait for a lock whose pid file names a dead process
    instead of saying 'already running'. The lock is held here for 0.3 s on purpose."""
    exp_desc = single_experiment(nepi_kit)
    controller, config = deploy(nepi_kit, tmp_path, exp_desc)
    pid_file = str(tmp_path / "nepid.pid")
    dead = controller.pid
    nepi_kit.kill9(dead)
    with open(pid_file) as f:
        assert int(f.read().strip()) == dead          # the pid file names a dead process
    fd = os.open(pid_file, os.O_RDWR)                 # stands in for an exiting thread
    fcntl.flock(fd, fcntl.LOCK_EX)
    release = threading.Timer(0.3, os.close, [fd])
    release.start()
    try:
        recovered = recover(nepi_kit, exp_desc.to_xml(), config)
    except Exception:
        release.join()            # clean up: recover once the lock is free, shut down
        nepi_kit.create_ec(exp_desc.to_xml(), config).shutdown()
        raise
    assert recovered.is_finished(6) is True
    finish(nepi_kit, recovered, tmp_path)


# ---------------------------------------------------------------------------------------
# a testbed daemon dies while the experiment runs: the liveness watcher applies the policy
# ---------------------------------------------------------------------------------------

def test_testbed_kill9_with_fail_policy(tmp_path, nepi_kit):
    exp_desc = cross_experiment(nepi_kit)            # default policy: Fail
    controller, _ = deploy(nepi_kit, tmp_path, exp_desc)
    dead = nepi_kit.testbed_pid(tmp_path, 1)
    other = nepi_kit.testbed_pid(tmp_path, 7)
    tb_root = nepi_kit.testbed_entry(tmp_path, 1)["root_dir"]
    assert nepi_kit.leftover_files(tb_root)          # socket, pid file, secret, record
    t0 = time.monotonic()
    nepi_kit.kill9(dead)
    # noticed without any client call: the watcher records the loss in the manifest
    assert nepi_kit.wait_until(
        lambda: (nepi_kit.testbed_entry(tmp_path, 1) or {"state": "lost"})["state"]
        != "running", WATCH_DEADLINE)
    print("testbed kill -9 -> handled: %.2f s" % (time.monotonic() - t0))
    assert nepi_kit.wait_until(lambda: controller.status(1) == TS.STATUS_FAILED, 5.0)
    failed = controller.failed_testbeds()
    assert list(failed) == [1]
    assert str(dead) in failed[1] and "lost" in failed[1]
    # the experiment is marked failed with a clear message (SPEC 7)
    assert controller.status() == TS.STATUS_FAILED
    assert "testbed 1" in controller.error and "Fail" in controller.error
    # the dead daemon's leftovers are cleaned
    assert nepi_kit.wait_until(lambda: nepi_kit.leftover_files(tb_root) == [], 5.0), \
        nepi_kit.leftover_files(tb_root)
    with pytest.raises(RuntimeError, match=r"^No element exists with guid 6$"):
        controller.is_finished(6)
    # the other testbed goes on
    assert controller.status(7) == TS.STATUS_STARTED
    assert controller.is_finished(12) is True
    assert controller.traces_info() == {7: {12: TRACE_INFO}}
    assert nepi_kit.testbed_pid(tmp_path, 7) == other
    finish(nepi_kit, controller, tmp_path)


def test_testbed_kill9_with_restart_policy(tmp_path, nepi_kit):
    exp_desc = cross_experiment(nepi_kit, policy1=DC.POLICY_RESTART)
    controller, _ = deploy(nepi_kit, tmp_path, exp_desc)
    dead = nepi_kit.testbed_pid(tmp_path, 1)
    other = nepi_kit.testbed_pid(tmp_path, 7)
    t0 = time.monotonic()
    nepi_kit.kill9(dead)
    assert nepi_kit.wait_until(
        lambda: nepi_kit.testbed_pid(tmp_path, 1) not in (None, dead)
        and controller.status(1) == TS.STATUS_STARTED, WATCH_DEADLINE)
    print("testbed kill -9 -> restarted: %.2f s" % (time.monotonic() - t0))
    new = nepi_kit.testbed_pid(tmp_path, 1)
    assert new != dead
    assert controller.failed_testbeds() == {}
    assert controller.status() == TS.STATUS_STARTED
    assert controller.is_finished(6) is True
    assert controller.trace(6, "fake").startswith(PING_TEXT)
    # cross-connections redone with the surviving mock2 daemon, which keeps running
    # (redoing its cross-connection does not move it back to CROSS_CONNECTED)
    assert controller.get(5, "cross") is True
    assert controller.get(10, "cross") is True
    assert controller.status(7) == TS.STATUS_STARTED
    assert controller.traces_info() == {1: {6: TRACE_INFO}, 7: {12: TRACE_INFO}}
    assert nepi_kit.testbed_pid(tmp_path, 7) == other
    assert sorted(p.pid for p in nepi_kit.processes(tmp_path)) == \
        sorted([controller.pid, new, other])
    finish(nepi_kit, controller, tmp_path)


def test_mock_testbeds_cannot_reattach():
    """Why the Recover policy must fail for mock testbeds."""
    for testbed_id in ("mock", "mock2"):
        with pytest.raises(NotImplementedError):
            build_testbed_controller(testbed_id, "0.1").recover()


def test_testbed_kill9_with_recover_policy(tmp_path, nepi_kit):
    exp_desc = single_experiment(nepi_kit, policy=DC.POLICY_RECOVER)
    controller, _ = deploy(nepi_kit, tmp_path, exp_desc)
    dead = nepi_kit.testbed_pid(tmp_path, 1)
    nepi_kit.kill9(dead)
    assert nepi_kit.wait_until(lambda: controller.status(1) == TS.STATUS_FAILED,
                               WATCH_DEADLINE)
    failed = controller.failed_testbeds()
    assert list(failed) == [1]
    assert "Recover" in failed[1]
    assert "cannot re-attach" in failed[1]
    assert controller.status() == TS.STATUS_FAILED
    assert "Recover" in controller.error
    with pytest.raises(RuntimeError, match=r"^No element exists with guid 6$"):
        controller.trace(6, "fake")
    # the daemon started for the attempt was shut down again ...
    assert nepi_kit.wait_until(
        lambda: [p.pid for p in nepi_kit.processes(tmp_path)] == [controller.pid], 5.0)

    # ... and the manifest says so (recovery and cleaning trust it); the policy's
    # clean-up may still be finishing when status() already says failed
    def truthful():
        entry = nepi_kit.testbed_entry(tmp_path, 1)
        return entry is None or entry.get("state") != "running"
    assert nepi_kit.wait_until(truthful, 5.0), nepi_kit.testbed_entry(tmp_path, 1)
    finish(nepi_kit, controller, tmp_path)


# ---------------------------------------------------------------------------------------
# both die: the policy applies during recovery
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy", [DC.POLICY_FAIL, DC.POLICY_RESTART, DC.POLICY_RECOVER])
def test_ec_and_testbed_killed_policy_applies_during_recovery(tmp_path, nepi_kit, policy):
    exp_desc = cross_experiment(nepi_kit, policy1=policy)
    controller, config = deploy(nepi_kit, tmp_path, exp_desc)
    dead = nepi_kit.testbed_pid(tmp_path, 1)
    survivor = nepi_kit.testbed_pid(tmp_path, 7)
    survivor_start = nepi_kit.start_time(survivor)
    nepi_kit.kill9(controller.pid)
    nepi_kit.kill9(dead)

    t0 = time.monotonic()
    recovered = recover(nepi_kit, exp_desc.to_xml(), config)
    # no waiting: the policy was applied while recovering
    status1 = recovered.status(1)
    print("EC + testbed kill -9, %s -> answering: %.2f s" % (policy,
                                                             time.monotonic() - t0))
    assert recovered.status(7) == TS.STATUS_STARTED
    assert recovered.is_finished(12) is True
    assert recovered.get(10, "cross") is True
    assert nepi_kit.testbed_pid(tmp_path, 7) == survivor
    assert nepi_kit.start_time(survivor) == survivor_start
    if policy == DC.POLICY_RESTART:
        assert status1 == TS.STATUS_STARTED
        assert recovered.status() == TS.STATUS_STARTED
        new = nepi_kit.testbed_pid(tmp_path, 1)
        assert new not in (None, dead)
        assert recovered.failed_testbeds() == {}
        assert recovered.is_finished(6) is True
        assert recovered.trace(6, "fake").startswith(PING_TEXT)
        assert recovered.get(5, "cross") is True
        assert recovered.traces_info() == {1: {6: TRACE_INFO}, 7: {12: TRACE_INFO}}
        finish(nepi_kit, recovered, tmp_path)
        return
    assert status1 == TS.STATUS_FAILED
    assert recovered.status() == TS.STATUS_FAILED
    assert "testbed 1" in recovered.error and policy in recovered.error
    failed = recovered.failed_testbeds()
    assert list(failed) == [1]
    if policy == DC.POLICY_FAIL:
        assert str(dead) in failed[1] and "lost" in failed[1]
    else:
        assert "Recover" in failed[1] and "cannot re-attach" in failed[1]
    with pytest.raises(RuntimeError, match=r"^No element exists with guid 6$"):
        recovered.is_finished(6)
    assert recovered.traces_info() == {7: {12: TRACE_INFO}}
    assert sorted(p.pid for p in nepi_kit.processes(tmp_path)) == \
        sorted([recovered.pid, survivor])
    assert nepi_kit.leftover_files(tmp_path / "testbeds" / "1") == []
    finish(nepi_kit, recovered, tmp_path)
