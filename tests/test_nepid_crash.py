"""nepid killed -9 while deploying (issue 13, point 2): `nepid recover`, nepid's start-up
recovery (`nepid start`, systemd's restart) and ``recover=True`` roll back what the dead
deployment left and deploy the design again, so the experiment ends started; a nepid
killed during that recovery leaves a root dir the next recovery handles the same way.

The design: two failmock testbeds as daemons (guids 1 and 7, apps 6 and 12, interfaces 5
and 10 cross-connected), testbed 1 sleeping in its configure phase so that nepid can be
killed inside the deployment. The kill moment is found from what nepi exposes: nepid's
progress events (both testbeds done with preconfigure) and the manifest.
"""

import os
import subprocess
import sys

import pytest

from helpers import (LIB_DIR, daemons_under, import_lib, kill9, needs_netns, process_gone,
                     runtime_files, wait_until)
from mock_experiments import PING_TEXT, cli_env, make_testbed, nepid_command as nepid

from nepi.core.design import ExperimentDescription
from nepi.core.manifest import Manifest

SLOW = 2.0            # seconds testbed 1 sleeps in its configure phase
RESUMED = "rolled back the partial deployment and deployed again"


@pytest.fixture
def failmock_cli(monkeypatch):
    """failmock importable by this process, the nepid commands and every daemon."""
    import_lib("failmock")
    monkeypatch.setenv("NEPI_TESTBEDS", "failmock:failmock")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (LIB_DIR, os.environ.get("PYTHONPATH")) if p))


def failmock_design(path, slow_phase="configure"):
    exp = ExperimentDescription()
    _, desc1, _, _, _, _, iface12 = make_testbed(exp, "failmock")
    _, desc2, _, _, _, iface21, _ = make_testbed(exp, "failmock")
    iface12.connector("cross").connect(iface21.connector("cross"))
    for desc in (desc1, desc2):
        desc.set_attribute_value("deployment_mode", "DAEMON")
    desc1.set_attribute_value("slowPhase", slow_phase)
    desc1.set_attribute_value("slowSeconds", SLOW)
    path.write_text(exp.to_xml(), encoding="utf-8")
    return path


def manifest(root):
    return Manifest(str(root)).read()


def pids_of_testbed_daemons(root):
    return {key: entry.get("pid") for key, entry in manifest(root).get("daemons", {}).items()
            if key.startswith("testbed-")}


def _attach(root):
    from nepi.rpc.ec_client import attach_ec
    try:
        return attach_ec(str(root))
    except Exception:
        return None


def run_in_background(design, root):
    return subprocess.Popen([sys.executable, "-m", "nepi.cli.nepid_cmd", "run", str(design),
                             "--root-dir", str(root)], env=cli_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_nepid_while_deploying(root, after_phase="do_preconfigure", testbeds=2):
    """Wait (from nepid's progress events) until ``testbeds`` testbeds are done with
    ``after_phase`` -- the deployment is then in the next phase -- and kill -9 nepid."""
    proxy = wait_until(lambda: _attach(root), 30.0, 0.05, what="nepid to answer")
    try:
        def done():
            try:
                events = proxy.progress_events()
            except Exception:           # nothing submitted yet
                return False
            return sum(1 for e in events
                       if e["phase"] == after_phase and e["state"] == "done") >= testbeds
        wait_until(done, 30.0, 0.02, what="%s done" % after_phase)
        assert proxy.state == "deploying"
        pid = proxy.pid
    finally:
        proxy.close()
    kill9(pid)
    return pid


def kill_nepid_run(design, root):
    """Start ``nepid run`` and kill -9 its nepid while it deploys; ``nepid run`` fails."""
    run = run_in_background(design, root)
    try:
        kill_nepid_while_deploying(root)
        assert run.wait(60) != 0
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def killed_while_deploying(design, root):
    """``nepid run`` killed -9 while deploying: the testbed daemons survive, the manifest
    says "deploying", there is no execute.xml."""
    kill_nepid_run(design, root)
    doc = manifest(root)
    assert doc["experiment_state"] == "deploying"
    assert not (root / "execute.xml").exists()
    pids = pids_of_testbed_daemons(root)
    assert sorted(pids) == ["testbed-1", "testbed-7"]
    assert all(not process_gone(pid) for pid in pids.values())
    return pids


def check_started(root, old_pids):
    """The experiment runs on new testbed daemons (the old ones are gone); traces read."""
    for pid in old_pids.values():
        assert wait_until(lambda: process_gone(pid), 10.0), pid
    new = pids_of_testbed_daemons(root)
    assert sorted(new) == ["testbed-1", "testbed-7"]
    assert not set(new.values()) & set(old_pids.values())
    assert manifest(root)["experiment_state"] == "started"
    proxy = _attach(root)
    assert proxy is not None
    try:
        assert proxy.state == "started"
        assert proxy.trace(6, "fake").startswith(PING_TEXT)
        assert proxy.trace(12, "fake").startswith(PING_TEXT)
        assert proxy.get(5, "cross") is True and proxy.get(10, "cross") is True
    finally:
        proxy.close()


def stop_leaves_nothing(root):
    stop = nepid("stop", "--root-dir", root)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert (root / "traces" / "1" / "6-fake.txt").read_text() == PING_TEXT
    assert wait_until(lambda: not daemons_under(root), 10.0), daemons_under(root)
    assert runtime_files(root) == []
    assert manifest(root).get("daemons", {}) == {}


def test_nepid_recover_after_kill9_during_deployment(tmp_path, failmock_cli):
    root = tmp_path / "root"
    old = killed_while_deploying(failmock_design(tmp_path / "d.xml"), root)
    rec = nepid("recover", "--root-dir", root)
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert "it recovered the experiment: started" in rec.stdout
    # killed once both testbeds were done with preconfigure: the manifest names it, or
    # the phase after it when that had begun
    assert any("nepid died while deploying (phase %s); %s" % (phase, RESUMED) in rec.stdout
               for phase in ("do_preconfigure", "program_cross", "do_configure")), \
        rec.stdout
    check_started(root, old)
    log = (root / "logs" / "nepid.log").read_text()
    assert RESUMED in log
    stop_leaves_nothing(root)


def test_nepid_start_recovers_a_deployment_at_start_up(tmp_path, failmock_cli):
    """`nepid start` (and systemd's restart, which runs the same) resumes it too."""
    root = tmp_path / "root"
    old = killed_while_deploying(failmock_design(tmp_path / "d.xml"), root)
    start = nepid("start", "--root-dir", root)
    assert start.returncode == 0, start.stdout + start.stderr
    check_started(root, old)
    stop_leaves_nothing(root)


def test_recover_true_resumes_a_deployment(tmp_path, failmock_cli, nepi_kit):
    root = tmp_path / "root"
    old = killed_while_deploying(failmock_design(tmp_path / "d.xml"), root)
    controller = nepi_kit.create_ec(None, nepi_kit.ec_config(root, env_setup="",
                                                             recover=True))
    assert controller.state == "started"
    assert RESUMED in controller.daemon_status()["recovery"]
    check_started(root, old)
    controller.stop()
    controller.shutdown()
    nepi_kit.assert_nothing_left(root)


def test_nepid_killed_during_the_recovery_then_recovered_again(tmp_path, failmock_cli):
    from nepi.rpc.rootdir import nepid_lock_pid
    root = tmp_path / "root"
    old = killed_while_deploying(failmock_design(tmp_path / "d.xml"), root)
    recovering = subprocess.Popen(
        [sys.executable, "-m", "nepi.cli.nepid_cmd", "recover", "--root-dir", str(root)],
        env=cli_env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # the old daemons rolled back, new ones launched: the redeployment is under way
        def redeploying():
            pids = pids_of_testbed_daemons(root)
            entries = manifest(root).get("daemons", {})
            return sorted(pids) == ["testbed-1", "testbed-7"] and \
                not set(pids.values()) & set(old.values()) and \
                all(entries[k].get("state") == "running" for k in pids)
        wait_until(redeploying, 30.0, 0.02, what="the redeployment to launch its daemons")
        assert manifest(root)["experiment_state"] == "deploying"
        second = pids_of_testbed_daemons(root)
        pid = nepid_lock_pid(str(root))
        assert pid and pid > 0
        kill9(pid)
        assert recovering.wait(60) != 0
    finally:
        if recovering.poll() is None:
            recovering.kill()
            recovering.wait()
    assert manifest(root)["experiment_state"] == "deploying"
    rec = nepid("recover", "--root-dir", root)
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert RESUMED in rec.stdout
    check_started(root, dict(old, **{"second-" + k: v for k, v in second.items()}))
    stop_leaves_nothing(root)


def test_recover_cleans_what_a_failed_experiment_left(tmp_path, failmock_cli):
    """Never "nothing to recover" while daemons are recorded: an experiment that cannot
    be resumed (here the manifest says failed) has its leftovers removed, and says so."""
    root = tmp_path / "root"
    killed_while_deploying(failmock_design(tmp_path / "d.xml"), root)
    Manifest(str(root)).set_meta(experiment_state="failed")
    rec = nepid("recover", "--root-dir", root)
    assert rec.returncode == 1, rec.stdout + rec.stderr
    assert "nothing to resume in %s: the experiment was failed; removed what it left " \
        "behind" % root in rec.stdout
    assert "killed" in rec.stdout
    assert wait_until(lambda: not daemons_under(root), 10.0), daemons_under(root)
    assert runtime_files(root) == []
    assert manifest(root).get("daemons", {}) == {}
    again = nepid("recover", "--root-dir", root)
    assert again.returncode != 0
    assert "nothing to recover" in again.stderr


# ---- a netns testbed daemon ---------------------------------------------------------------

@needs_netns
def test_netns_star_nepid_kill9_during_deployment_then_recover(tmp_path, failmock_cli,
                                                               netns_leftovers):
    import netns_experiments as nx
    exp, b = nx.make_star(20)
    nx.as_daemon(b["desc"])
    # a failmock testbed sleeping in configure holds the deployment there
    _, slow, _, _, _, _, _ = make_testbed(exp, "failmock")
    slow.set_attribute_value("deployment_mode", "DAEMON")
    slow.set_attribute_value("slowPhase", "configure")
    slow.set_attribute_value("slowSeconds", SLOW)
    design = tmp_path / "star.xml"
    design.write_text(exp.to_xml(), encoding="utf-8")
    root = tmp_path / "root"
    netns_root = root / "testbeds" / "1"
    kill_nepid_run(design, root)
    assert manifest(root)["experiment_state"] == "deploying"
    old_token = nx.testbed_token(netns_root)
    netns_leftovers.add_token(old_token)
    assert nx.ns_name(old_token, b["nodes"][0].guid) in nx.namespaces()

    rec = nepid("recover", "--root-dir", root)
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert RESUMED in rec.stdout
    assert "it recovered the experiment: started" in rec.stdout
    token = nx.testbed_token(netns_root)
    netns_leftovers.add_token(token)
    assert token != old_token
    assert not [n for n in nx.namespaces() if n.startswith("nepi-%s-" % old_token)]
    first, last = b["nodes"][0].guid, b["nodes"][-1].guid
    assert nx.ping_from(nx.ns_name(token, first), "10.0.20.1")
    assert nx.ping_from(nx.ns_name(token, last), "10.0.1.1")

    stop = nepid("stop", "--root-dir", root)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert wait_until(lambda: not daemons_under(root), 10.0), daemons_under(root)
    assert runtime_files(root) == []
    assert manifest(root).get("daemons", {}) == {}
    left = netns_leftovers.wait_gone()
    assert not any(left.values()), left
