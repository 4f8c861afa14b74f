"""Daemon mode over real Pyro5 sockets: NEPI 2's daemonized integration tests with their
exact values (daemons-and-tests.md 8.4.3-8.4.6), the cross experiment with testbed
daemons, concurrent clients, files and modes of a root dir, deep root dirs, typed remote
errors and dead peers (SPEC 6, issue 5).
"""

import getpass
import os
import signal
import stat
import tempfile
import threading
import time

import pytest

from nepi.errors import ControllerUnreachableError, DeploymentError, NepiError
from nepi.rpc.ec_client import attach_ec, start_nepid
from nepi.rpc.security import MAX_SOCKET_PATH
from nepi.util import proxy
from nepi.util.constants import ApplicationStatus as AS
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS
from nepi.util.files import read_json

from helpers import LIB_DIR, wait_finished
from mock_experiments import PING_TEXT, make_cross_test_experiment, make_test_experiment

USER = getpass.getuser()
TRACE_INFO = {"fake": {"host": "localhost", "user": USER, "filepath": "<test>"}}


def check_single_run(controller):
    """The assertions shared by 8.4.2-8.4.6 after start()."""
    started = controller.started_time
    assert isinstance(started, float)
    assert started < time.time()
    assert wait_finished(controller, 6, 30)
    trace = controller.trace(6, "fake")
    assert isinstance(trace, str)
    assert trace.startswith(PING_TEXT)
    assert controller.get_testbed_id(2) == "mock"
    assert controller.get_testbed_version(2) == "0.1"
    assert controller.get_factory_id(2) == "Node"


def stop_and_shutdown(controller):
    controller.stop()
    stopped = controller.stopped_time
    assert isinstance(stopped, float)
    assert stopped < time.time()
    controller.shutdown()


# ---------------------------------------------------------------------------------------
# NEPI 2 test/core/integration.py, daemonized cases (8.4.3 - 8.4.6)
# ---------------------------------------------------------------------------------------

def test_daemonized_controller_integration(tmp_path, nepi_kit):
    """8.4.3: the EC is a daemon; the testbed runs inside it."""
    exp_desc = make_test_experiment()[0]
    xml = exp_desc.to_xml()
    controller = nepi_kit.create_ec(xml, nepi_kit.ec_config(tmp_path))
    assert controller.pid != os.getpid()
    controller.start()
    check_single_run(controller)
    status = controller.daemon_status()
    assert [tb["mode"] for tb in status["testbeds"]] == ["in-process"]
    assert [p.pid for p in nepi_kit.processes(tmp_path)] == [controller.pid]
    stop_and_shutdown(controller)
    nepi_kit.assert_nothing_left(tmp_path)


def test_daemonized_testbed_integration(tmp_path, nepi_kit):
    """8.4.4: the testbed is a daemon in root_dir; the EC is in-process."""
    exp_desc, desc = make_test_experiment()[:2]
    nepi_kit.daemon_testbed(desc, root=tmp_path, env_setup=nepi_kit.ENV_SETUP)
    # NEPI 2 put the testbed beside, not inside, the experiment's root: allowed here
    controller = nepi_kit.create_ec(exp_desc.to_xml(), None, allowed_roots=[str(tmp_path)])
    controller.start()
    check_single_run(controller)
    entry = nepi_kit.manifest(controller.root_dir)["daemons"]["testbed-1"]
    assert entry["role"] == "testbed"
    assert entry["testbed_id"] == "mock"
    assert entry["root_dir"] == str(tmp_path)
    assert [p.pid for p in nepi_kit.processes(tmp_path)] == [entry["pid"]]
    assert entry["pid"] != os.getpid()
    stop_and_shutdown(controller)
    nepi_kit.assert_nothing_left(tmp_path)


def test_daemonized_all_integration(tmp_path, nepi_kit):
    """8.4.5: EC daemon in root, testbed daemon in root/instance (inherits the EC's
    environment); traces_info with integer keys across the wire."""
    instance = tmp_path / "instance"
    instance.mkdir()
    exp_desc, desc = make_test_experiment()[:2]
    nepi_kit.daemon_testbed(desc, root=instance)
    controller = nepi_kit.create_ec(exp_desc.to_xml(), nepi_kit.ec_config(tmp_path))
    controller.start()
    check_single_run(controller)
    info = controller.traces_info()
    assert info == {1: {6: {'fake': {'host': 'localhost', 'user': getpass.getuser(),
                                     'filepath': '<test>'}}}}
    assert list(info) == [1] and list(info[1]) == [6]      # ints, not "1" / "6"
    ec_pid = controller.pid
    tb_pid = nepi_kit.testbed_pid(tmp_path, 1)
    assert sorted(p.pid for p in nepi_kit.processes(tmp_path)) == sorted([ec_pid, tb_pid])
    assert nepi_kit.testbed_entry(tmp_path, 1)["root_dir"] == str(instance)
    stop_and_shutdown(controller)
    nepi_kit.assert_nothing_left(tmp_path)


def test_daemonized_all_integration_recovery(tmp_path, nepi_kit):
    """8.4.6: drop the client; a new client with recover=True attaches to the same
    running EC daemon, which still holds its testbed."""
    instance = tmp_path / "instance"
    instance.mkdir()
    exp_desc, desc = make_test_experiment()[:2]
    nepi_kit.daemon_testbed(desc, root=instance)
    xml = exp_desc.to_xml()
    access_config = nepi_kit.ec_config(tmp_path)
    controller = proxy.create_experiment_controller(xml, access_config)
    controller.start()
    check_single_run(controller)
    ec_pid = controller.pid
    tb_pid = nepi_kit.testbed_pid(tmp_path, 1)
    del controller
    assert sorted(p.pid for p in nepi_kit.processes(tmp_path)) == sorted([ec_pid, tb_pid])

    access_config.set_attribute_value(DC.RECOVER, True)
    controller = nepi_kit.create_ec(xml, access_config)
    assert controller.pid == ec_pid                    # attached, not relaunched
    assert controller.is_finished(6) is True           # no polling
    assert controller.trace(6, "fake").startswith(PING_TEXT)
    assert nepi_kit.testbed_pid(tmp_path, 1) == tb_pid
    stop_and_shutdown(controller)
    nepi_kit.assert_nothing_left(tmp_path)


@pytest.mark.parametrize("ec_mode", ["in-process", "daemon"])
def test_cross_integration_with_testbed_daemons(tmp_path, nepi_kit, ec_mode):
    """8.4.1 with mock and mock2 each in its own daemon: the cross-connection data
    crosses two daemons (and, with an EC daemon, a third)."""
    exp_desc, desc1, desc2, iface12, iface21 = make_cross_test_experiment()
    if ec_mode == "daemon":
        nepi_kit.daemon_testbed(desc1)          # default root: <ec root>/testbeds/<guid>
        nepi_kit.daemon_testbed(desc2)
        config = nepi_kit.ec_config(tmp_path)
    else:
        nepi_kit.daemon_testbed(desc1, root=tmp_path / "tb1", env_setup=nepi_kit.ENV_SETUP)
        nepi_kit.daemon_testbed(desc2, root=tmp_path / "tb7", env_setup=nepi_kit.ENV_SETUP)
        config = proxy.AccessConfiguration()
        config.set_attribute_value(DC.ROOT_DIRECTORY, str(tmp_path / "ec"))
    controller = nepi_kit.create_ec(exp_desc.to_xml(), config, allowed_roots=[str(tmp_path)])
    controller.start()
    cross1 = controller.get(5, "cross")
    cross2 = controller.get(10, "cross")
    assert cross1 == cross2 == True  # noqa: E712  (NEPI 2's exact assertion)
    assert cross1 is True and cross2 is True
    assert controller.traces_info() == {1: {6: TRACE_INFO}, 7: {12: TRACE_INFO}}
    assert controller.get_testbed_id(8) == "mock2"
    manifest_root = tmp_path if ec_mode == "daemon" else tmp_path / "ec"
    entries = nepi_kit.manifest(manifest_root)["daemons"]
    pids = {entries["testbed-1"]["pid"], entries["testbed-7"]["pid"]}
    assert len(pids) == 2
    if ec_mode == "daemon":
        assert entries["testbed-1"]["root_dir"] == str(tmp_path / "testbeds" / "1")
        assert entries["testbed-7"]["root_dir"] == str(tmp_path / "testbeds" / "7")
        pids.add(controller.pid)
    assert {p.pid for p in nepi_kit.processes(tmp_path)} == pids
    stop_and_shutdown(controller)
    nepi_kit.assert_nothing_left(tmp_path)


# ---------------------------------------------------------------------------------------
# many clients at once
# ---------------------------------------------------------------------------------------

def test_twenty_concurrent_proxy_clients(tmp_path, nepi_kit):
    exp_desc, desc = make_test_experiment()[:2]
    nepi_kit.daemon_testbed(desc)
    controller = nepi_kit.create_ec(exp_desc.to_xml(), nepi_kit.ec_config(tmp_path))
    controller.start()
    assert wait_finished(controller, 6, 30)

    clients = 20
    barrier = threading.Barrier(clients)
    errors, answers = [], []

    def client():
        try:
            ec = attach_ec(str(tmp_path))          # each thread its own proxy
            try:
                barrier.wait(timeout=20)
                for _ in range(5):
                    answers.append((ec.status(), ec.status(1), ec.status(6),
                                    ec.is_finished(6), ec.trace(6, "fake"),
                                    ec.traces_info()))
            finally:
                ec.close()
        except Exception as e:      # reported below, with the thread's error
            errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - t0
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert errors == []
    assert len(answers) == clients * 5
    for status, tb_status, app_status, finished, trace, info in answers:
        assert status == TS.STATUS_STARTED
        assert tb_status == TS.STATUS_STARTED
        assert app_status == AS.STATUS_FINISHED
        assert finished is True
        assert trace.startswith(PING_TEXT)
        assert info == {1: {6: TRACE_INFO}}
    print("20 concurrent clients x 5 rounds: %.2f s" % elapsed)
    # the original client is unaffected
    assert controller.is_finished(6) is True
    stop_and_shutdown(controller)
    nepi_kit.assert_nothing_left(tmp_path)


# ---------------------------------------------------------------------------------------
# files of a root dir: modes while running, nothing left after shutdown
# ---------------------------------------------------------------------------------------

def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_run_dirs_secrets_and_sockets_are_owner_only(tmp_path, nepi_kit):
    exp_desc, desc = make_test_experiment()[:2]
    nepi_kit.daemon_testbed(desc)
    controller = nepi_kit.create_ec(exp_desc.to_xml(), nepi_kit.ec_config(tmp_path))
    controller.start()
    ec_record = read_json(str(tmp_path / "run" / "daemon.json"))
    tb_entry = nepi_kit.testbed_entry(tmp_path, 1)
    tb_root = tb_entry["root_dir"]
    assert tb_root == str(tmp_path / "testbeds" / "1")
    for root, sock, pid_name, pid in ((str(tmp_path), ec_record["socket"], "nepid.pid",
                                       controller.pid),
                                      (tb_root, tb_entry["socket"], "testbed.pid",
                                       tb_entry["pid"])):
        run_dir = os.path.join(root, "run")
        secret = os.path.join(run_dir, "secret")
        assert os.path.dirname(sock) == run_dir
        assert _mode(run_dir) == 0o700
        assert os.stat(run_dir).st_uid == os.getuid()
        assert _mode(secret) == 0o600
        assert stat.S_ISSOCK(os.stat(sock).st_mode)
        assert _mode(sock) == 0o600
        with open(os.path.join(root, pid_name)) as f:
            assert int(f.read().strip()) == pid
        with open(secret) as f:
            token = f.read().strip()
        assert len(token) >= 32
        # the secret is never written to the manifest, records or logs
        for dirpath, _, names in os.walk(str(tmp_path)):
            for name in names:
                path = os.path.join(dirpath, name)
                if path == secret or stat.S_ISSOCK(os.lstat(path).st_mode):
                    continue
                with open(path, "rb") as f:
                    assert token.encode() not in f.read(), path
    assert _mode(str(tmp_path / "manifest.json")) == 0o600
    stop_and_shutdown(controller)
    nepi_kit.assert_nothing_left(tmp_path)


def test_stop_and_shutdown_leave_no_process_socket_or_pid_file(tmp_path, nepi_kit):
    exp_desc, desc1, desc2 = make_cross_test_experiment()[:3]
    nepi_kit.daemon_testbed(desc1)
    nepi_kit.daemon_testbed(desc2)
    controller = nepi_kit.create_ec(exp_desc.to_xml(), nepi_kit.ec_config(tmp_path))
    controller.start()
    running = nepi_kit.processes(tmp_path)
    assert len(running) == 3
    sockets = [p for p in nepi_kit.leftover_files(tmp_path)
               if stat.S_ISSOCK(os.lstat(p).st_mode)]
    assert len(sockets) == 3
    pid_files = [p for p in nepi_kit.leftover_files(tmp_path) if p.endswith(".pid")]
    assert len(pid_files) == 3
    controller.stop()
    controller.shutdown()
    nepi_kit.assert_nothing_left(tmp_path)
    # logs, design and execute XML stay (issue 5: keeps logs, traces and XML)
    for name in ("experiment.xml", "execute.xml", "logs/nepid.log", "logs/testbed-1.log",
                 "logs/testbed-7.log"):
        assert (tmp_path / name).is_file(), name


def test_deep_root_dir_puts_the_socket_in_a_short_runtime_dir(tmp_path, nepi_kit,
                                                              monkeypatch):
    runtime = tempfile.mkdtemp(prefix="nx")           # short, like $XDG_RUNTIME_DIR
    try:
        monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
        root = tmp_path / ("d" * 60) / ("e" * 60)
        root.mkdir(parents=True)
        assert len(str(root / "run" / "nepid.sock").encode()) > MAX_SOCKET_PATH
        exp_desc, desc = make_test_experiment()[:2]
        nepi_kit.daemon_testbed(desc, root=root / "instance")
        controller = nepi_kit.create_ec(exp_desc.to_xml(), nepi_kit.ec_config(root))
        controller.start()
        check_single_run(controller)
        assert controller.traces_info() == {1: {6: TRACE_INFO}}
        ec_record = read_json(str(root / "run" / "daemon.json"))
        manifest = nepi_kit.manifest(root)["daemons"]
        tb_socket = manifest["testbed-1"]["socket"]
        sockets = [ec_record["socket"], manifest["ec"]["socket"], tb_socket]
        assert sockets[0] == sockets[1]
        assert sockets[0] != tb_socket
        for sock in sockets:
            assert len(sock.encode()) <= MAX_SOCKET_PATH
            assert sock.startswith(runtime + os.sep)
            assert stat.S_ISSOCK(os.stat(sock).st_mode)
            assert _mode(sock) == 0o600
            assert _mode(os.path.dirname(sock)) == 0o700
        stop_and_shutdown(controller)
        nepi_kit.assert_nothing_left(root, extra_paths=sockets)
    finally:
        import shutil
        shutil.rmtree(runtime, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# errors over the wire
# ---------------------------------------------------------------------------------------

def test_remote_errors_arrive_typed_with_the_daemons_message(tmp_path, nepi_kit):
    exp_desc, desc = make_test_experiment()[:2]
    nepi_kit.daemon_testbed(desc)
    controller = nepi_kit.create_ec(exp_desc.to_xml(), nepi_kit.ec_config(tmp_path))
    controller.start()
    # raised in the EC daemon
    with pytest.raises(RuntimeError) as info:
        controller.get(999, "x")
    assert type(info.value) is RuntimeError
    assert str(info.value) == "No element exists with guid 999"
    # raised in the testbed daemon, relayed by the EC daemon
    with pytest.raises(AttributeError) as info:
        controller.get(2, "nonexistent")
    assert type(info.value) is AttributeError
    assert "nonexistent" in str(info.value) and "Node" in str(info.value)
    with pytest.raises(NepiError) as info:
        controller.start()
    assert "already started" in str(info.value)
    # the daemon is still fine after raising
    assert controller.is_finished(6) is True
    stop_and_shutdown(controller)


def test_remote_error_from_a_testbed_daemon_directly(tmp_path, nepi_kit):
    config = proxy.AccessConfiguration()
    config.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
    config.set_attribute_value(DC.ROOT_DIRECTORY, str(tmp_path))
    tc = nepi_kit.track(proxy.create_testbed_controller("mock", "0.1", config))
    with pytest.raises(RuntimeError) as info:
        tc.get(999, "x")
    assert type(info.value) is RuntimeError
    assert str(info.value) == "Element guid 999 doesn't exist in testbed mock"
    with pytest.raises(NotImplementedError, match="cannot re-attach"):
        tc.recover()
    assert tc.status() == TS.STATUS_ZERO
    tc.shutdown()
    nepi_kit.assert_nothing_left(tmp_path)


def test_nepi_error_from_an_empty_nepid_keeps_its_type(tmp_path, nepi_kit):
    ec = nepi_kit.track(start_nepid(str(tmp_path)))
    with pytest.raises(NepiError) as info:
        ec.status(6)
    assert type(info.value) is NepiError
    assert "submit one first" in str(info.value)
    ec.shutdown()
    nepi_kit.assert_nothing_left(tmp_path)


@pytest.mark.parametrize("ec_mode", ["in-process", "daemon"])
def test_deployment_error_from_a_failing_daemon_keeps_its_type(tmp_path, nepi_kit,
                                                               monkeypatch, ec_mode):
    monkeypatch.setenv("NEPI_TESTBEDS", "failmock:failmock")
    monkeypatch.syspath_prepend(LIB_DIR)
    exp_desc, desc = make_test_experiment("failmock")[:2]
    nepi_kit.daemon_testbed(desc, root=tmp_path / "tb",
                            env_setup=nepi_kit.FAILMOCK_ENV_SETUP)
    desc.set_attribute_value("failPhase", "configure")
    desc.set_attribute_value("failGuid", 4)
    if ec_mode == "daemon":
        config = nepi_kit.ec_config(tmp_path / "ec", env_setup=nepi_kit.FAILMOCK_ENV_SETUP)
    else:
        config = proxy.AccessConfiguration()
        config.set_attribute_value(DC.ROOT_DIRECTORY, str(tmp_path / "ec"))
    controller = nepi_kit.create_ec(exp_desc.to_xml(), config, allowed_roots=[str(tmp_path)])
    with pytest.raises(DeploymentError) as info:
        controller.start()
    err = info.value
    assert type(err) is DeploymentError
    assert "testbed 1 (failmock) failed in configure" in str(err)
    assert "element 4 (Interface)" in str(err)
    assert "injected failure" in str(err)
    assert (err.testbed_guid, err.guid, err.phase) == (1, 4, "do_configure")
    # rolled back: the failing testbed's daemon is gone already
    assert nepi_kit.wait_until(lambda: not nepi_kit.processes(tmp_path / "tb"), 5.0)
    assert controller.status() == TS.STATUS_FAILED
    controller.shutdown()
    nepi_kit.assert_nothing_left(tmp_path / "tb")
    nepi_kit.assert_nothing_left(tmp_path)


# ---------------------------------------------------------------------------------------
# dead or hung peers: a typed error within seconds, never a hang
# ---------------------------------------------------------------------------------------

def _testbed_daemon(tmp_path, nepi_kit):
    config = proxy.AccessConfiguration()
    config.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
    config.set_attribute_value(DC.ROOT_DIRECTORY, str(tmp_path))
    return nepi_kit.track(proxy.create_testbed_controller("mock", "0.1", config))


def test_killed_testbed_daemon_gives_controller_unreachable_within_seconds(tmp_path,
                                                                          nepi_kit):
    tc = _testbed_daemon(tmp_path, nepi_kit)
    assert tc.status() == TS.STATUS_ZERO
    nepi_kit.kill9(tc.pid)
    t0 = time.monotonic()
    with pytest.raises(ControllerUnreachableError) as info:
        tc.status()
    elapsed = time.monotonic() - t0
    assert elapsed < 5.0
    assert str(tc.pid) in str(info.value)
    # a fresh connection attempt fails just as fast
    t0 = time.monotonic()
    with pytest.raises(ControllerUnreachableError):
        tc.get(2, "fake")
    assert time.monotonic() - t0 < 5.0
    assert tc.is_alive() is False


def _all_threads_stopped(pid):
    task_dir = "/proc/%d/task" % pid
    states = []
    for tid in os.listdir(task_dir):
        try:
            with open(os.path.join(task_dir, tid, "stat")) as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        except FileNotFoundError:
            continue
    return bool(states) and all(state in ("T", "t") for state in states)


def test_hung_testbed_daemon_times_out_then_answers_again(tmp_path, nepi_kit):
    tc = _testbed_daemon(tmp_path, nepi_kit)
    assert tc.status() == TS.STATUS_ZERO
    os.kill(tc.pid, signal.SIGSTOP)
    try:
        # SIGSTOP takes effect asynchronously: wait until every thread is stopped
        assert nepi_kit.wait_until(lambda: _all_threads_stopped(tc.pid), 5.0)
        t0 = time.monotonic()
        with pytest.raises(ControllerUnreachableError, match="TimeoutError"):
            tc.status(timeout=1.0)
        assert time.monotonic() - t0 < 4.0
    finally:
        os.kill(tc.pid, signal.SIGCONT)
    assert tc.status() == TS.STATUS_ZERO          # reconnects after the failure
    tc.shutdown()
    nepi_kit.assert_nothing_left(tmp_path)


def test_killed_ec_daemon_gives_controller_unreachable_within_seconds(tmp_path, nepi_kit):
    exp_desc = make_test_experiment()[0]
    controller = nepi_kit.create_ec(exp_desc.to_xml(), nepi_kit.ec_config(tmp_path))
    controller.start()
    assert controller.is_finished(6)
    nepi_kit.kill9(controller.pid)
    for call in (lambda: controller.status(6), lambda: controller.trace(6, "fake"),
                 controller.stop):
        t0 = time.monotonic()
        with pytest.raises(ControllerUnreachableError):
            call()
        assert time.monotonic() - t0 < 5.0
    assert controller.ping() is False
