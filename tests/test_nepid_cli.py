"""``nepid`` commands with real daemons over real sockets (mock testbeds): start, status,
run, stop, a refused second start, kill -9 then status/recover, and clean.

Every test checks with psutil that no daemon of its root dirs is left behind, and kills
leftovers so that a failing test does not leak processes."""

import json
import os
import subprocess
import sys

import psutil
import pytest

from helpers import daemons_under, kill9, runtime_files, wait_until
from mock_experiments import cli_env, nepid_command as nepid, write_readme_design

from nepi.testbeds.mockbase import PING_TEXT


def write_design(path, daemons=(1, 7), setup=None):
    """The README's mock example with the testbeds of guids ``daemons`` run as daemons."""
    return write_readme_design(path, daemons, setup)


def manifest(root):
    with open(os.path.join(str(root), "manifest.json")) as f:
        return json.load(f)


def daemon_pids_of_testbeds(root):
    return {key: entry["pid"] for key, entry in manifest(root)["daemons"].items()
            if key.startswith("testbed-")}


def nepid_pid(root):
    return manifest(root)["daemons"]["ec"]["pid"]


@pytest.fixture
def design(tmp_path):
    return write_design(tmp_path / "mock.xml")


# ---- the ordinary cycle -----------------------------------------------------------------

def test_start_status_run_stop_cycle(tmp_path, design):
    root = tmp_path / "root"
    proc = nepid("start", "--root-dir", root)
    assert proc.returncode == 0, proc.stderr
    pid = nepid_pid(root)
    assert proc.stdout.splitlines()[0] == "nepid started (pid %d) serving %s" % (pid, root)

    again = nepid("start", "--root-dir", root)
    assert again.returncode == 1
    assert again.stderr.strip() == "nepid: already running (pid %d) serving %s" % (pid, root)

    status = nepid("status", "--root-dir", root)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("nepid running (pid %d) serving %s, up " % (pid, root))
    assert "experiment: empty" in status.stdout

    run = nepid("run", design, "--root-dir", root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "controller    testbed 1 (mock)" in run.stdout
    assert any(line.startswith("experiment started in ") for line in run.stdout.splitlines())
    assert "experiment started in nepid (pid %d) serving %s" % (pid, root) in run.stdout
    assert "nepid status --root-dir %s" % root in run.stdout
    assert "nepid stop --root-dir %s" % root in run.stdout
    tb_pids = daemon_pids_of_testbeds(root)
    assert sorted(tb_pids) == ["testbed-1", "testbed-7"]

    status = nepid("status", "--root-dir", root)
    assert status.returncode == 0
    assert "experiment: started" in status.stdout
    rows = [line.split() for line in status.stdout.splitlines() if line.startswith("  ")]
    assert rows[0] == ["guid", "testbed", "host", "mode", "pid", "status", "elements",
                       "policy", "failure"]
    assert rows[1] == ["1", "mock", "local", "daemon", str(tb_pids["testbed-1"]), "started",
                       "5", "Fail"]
    assert rows[2] == ["7", "mock2", "local", "daemon", str(tb_pids["testbed-7"]),
                       "started", "2", "Fail"]

    # a second experiment is refused while this one runs
    second = nepid("run", design, "--root-dir", root)
    assert second.returncode == 1
    assert "already loaded" in second.stderr

    stop = nepid("stop", "--root-dir", root)
    assert stop.returncode == 0, stop.stderr
    assert "nepid (pid %d) stopped" % pid in stop.stdout
    assert (root / "traces" / "tb-mock" / "app1-fake.txt").read_text() == PING_TEXT
    assert daemons_under(root) == []
    assert runtime_files(root) == []
    for kept in ("experiment.xml", "execute.xml", "logs/nepid.log", "logs/testbed-1.log",
                 "logs/testbed-7.log"):
        assert (root / kept).is_file(), kept

    status = nepid("status", "--root-dir", root)
    assert status.returncode == 3
    assert status.stdout.startswith("nepid is not running in %s" % root)
    stop = nepid("stop", "--root-dir", root)
    assert stop.returncode == 3
    assert "not running" in stop.stdout


def test_run_starts_nepid_when_needed(tmp_path, design):
    root = tmp_path / "root"
    run = nepid("run", "-q", design, "--root-dir", root)
    assert run.returncode == 0, run.stderr
    pid = nepid_pid(root)
    # quiet: only the summary
    assert run.stdout.splitlines() == [
        "experiment started in nepid (pid %d) serving %s" % (pid, root),
        "query it:  nepid status --root-dir %s" % root,
        "stop it:   nepid stop --root-dir %s" % root]
    stop = nepid("stop", "--root-dir", root)
    assert stop.returncode == 0, stop.stderr
    assert daemons_under(root) == []


def test_run_failing_deployment_leaves_nothing_running(tmp_path):
    design = write_design(tmp_path / "fail.xml", daemons=(1,), setup="exit 3")
    root = tmp_path / "root"
    run = nepid("run", design, "--root-dir", root)
    assert run.returncode == 1
    errors = run.stderr.splitlines()
    assert len(errors) == 1, run.stderr
    assert errors[0].startswith("nepid: deployment failed: testbed 1 (mock) failed in ")
    assert "exit 3" in errors[0] and "was stopped" in errors[0]
    assert "Traceback" not in run.stderr
    assert daemons_under(root) == []
    assert runtime_files(root) == []


def test_run_invalid_design_starts_nothing(tmp_path):
    from nepi.core.design import ExperimentDescription, FactoriesProvider
    exp = ExperimentDescription()
    exp.add_testbed_description(FactoriesProvider("mock")).create("Interface")
    bad = tmp_path / "bad.xml"
    bad.write_text(exp.to_xml(), encoding="utf-8")
    root = tmp_path / "root"
    run = nepid("run", bad, "--root-dir", root)
    assert run.returncode == 1
    assert run.stdout.startswith("%s: element 2 (Interface" % bad)
    assert not root.exists()


def test_foreground_start_and_stop(tmp_path):
    root = tmp_path / "root"
    proc = subprocess.Popen([sys.executable, "-m", "nepi.cli.nepid_cmd", "start",
                             "--foreground", "--root-dir", str(root)], env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def answered():
            status = nepid("status", "--root-dir", root)
            return status if status.returncode == 0 else None
        status = wait_until(answered, 60, 0.2, what="the foreground nepid to answer")
        assert "nepid running (pid %d)" % proc.pid in status.stdout
        again = nepid("start", "--root-dir", root)
        assert again.returncode == 1 and "already running (pid %d)" % proc.pid in again.stderr
        stop = nepid("stop", "--root-dir", root)
        assert stop.returncode == 0, stop.stderr
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.startswith("nepid (pid %d) serving %s in the foreground" % (proc.pid, root))
    assert runtime_files(root) == []


# ---- crashes, recovery and cleaning ------------------------------------------------------

def run_then_kill9_nepid(root, design):
    """``nepid run`` the design, then kill -9 the nepid; the testbed daemons' pids."""
    assert nepid("run", "-q", design, "--root-dir", root).returncode == 0
    testbeds = daemon_pids_of_testbeds(root)
    kill9(nepid_pid(root))
    return testbeds


def test_kill9_then_status_and_recover_keep_the_testbed_daemons(tmp_path, design):
    root = tmp_path / "root"
    before = run_then_kill9_nepid(root, design)

    status = nepid("status", "--root-dir", root)
    assert status.returncode == 3
    assert status.stdout.startswith("nepid is not running in %s" % root)
    assert "experiment state recorded in manifest.json: started" in status.stdout
    assert "testbed 1 (mock) daemon, pid %d: still running" % before["testbed-1"] \
        in status.stdout
    assert "nepid recover --root-dir %s" % root in status.stdout

    recover = nepid("recover", "--root-dir", root)
    assert recover.returncode == 0, recover.stdout + recover.stderr
    assert "it recovered the experiment: started" in recover.stdout
    for guid, key in ((1, "testbed-1"), (7, "testbed-7")):
        assert "reconnected to its daemon (pid %d)" % before[key] in recover.stdout
    assert daemon_pids_of_testbeds(root) == before

    again = nepid("recover", "--root-dir", root)
    assert again.returncode == 0
    assert "is running (pid %d)" % nepid_pid(root) in again.stdout
    assert "nothing to recover" in again.stdout

    status = nepid("status", "--root-dir", root)
    assert status.returncode == 0
    assert "experiment: started" in status.stdout
    stop = nepid("stop", "--root-dir", root)
    assert stop.returncode == 0, stop.stderr
    assert (root / "traces" / "tb-mock" / "app1-fake.txt").read_text() == PING_TEXT
    assert daemons_under(root) == []


def test_start_after_kill9_recovers_too(tmp_path, design):
    root = tmp_path / "root"
    before = run_then_kill9_nepid(root, design)
    start = nepid("start", "--root-dir", root)
    assert start.returncode == 0, start.stderr
    assert "re-attached to the experiment" in start.stdout
    assert daemon_pids_of_testbeds(root) == before
    assert nepid("stop", "--root-dir", root).returncode == 0


def test_clean_after_kill9_of_everything(tmp_path, design):
    root = tmp_path / "root"
    for pid in run_then_kill9_nepid(root, design).values():
        kill9(pid)
    assert daemons_under(root) == []
    assert runtime_files(root) != []           # sockets, secrets, pid files remain

    clean = nepid("clean", "--root-dir", root)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.startswith("cleaned %s" % root)
    assert "removed %s" % (root / "run" / "nepid.sock") in clean.stdout
    assert "removed %s" % (root / "nepid.pid") in clean.stdout
    assert runtime_files(root) == []
    assert not (root / "run").exists()
    for kept in ("experiment.xml", "execute.xml", "logs/nepid.log", "logs/testbed-1.log"):
        assert (root / kept).is_file(), kept
    doc = manifest(root)
    assert doc["experiment_state"] == "shutdown" and doc["daemons"] == {}

    status = nepid("status", "--root-dir", root)
    assert status.returncode == 3
    assert "leftovers" not in status.stdout
    recover = nepid("recover", "--root-dir", root)
    assert recover.returncode == 1
    assert "nothing to recover" in recover.stderr
    assert daemons_under(root) == []


def test_clean_kills_live_leftovers_of_that_root_dir_only(tmp_path, design):
    root = tmp_path / "root"
    other = tmp_path / "root-other"          # a prefix-sharing name must not be touched
    assert nepid("start", "--root-dir", other).returncode == 0
    try:
        tb_pids = sorted(run_then_kill9_nepid(root, design).values())
        assert all(psutil.pid_exists(p) for p in tb_pids)
        clean = nepid("clean", "--root-dir", root)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        for pid in tb_pids:
            assert "pid %d: killed" % pid in clean.stdout
        assert daemons_under(root) == []
        assert runtime_files(root) == []
        status = nepid("status", "--root-dir", other)
        assert status.returncode == 0, status.stdout + status.stderr
    finally:
        nepid("stop", "--root-dir", other)


def test_clean_refuses_a_running_nepid_unless_forced(tmp_path, design):
    root = tmp_path / "root"
    assert nepid("run", "-q", design, "--root-dir", root).returncode == 0
    clean = nepid("clean", "--root-dir", root)
    assert clean.returncode == 1
    assert "is running and answering" in clean.stderr and "nepid stop" in clean.stderr
    assert len(daemons_under(root)) == 3
    forced = nepid("clean", "--force", "--root-dir", root)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert daemons_under(root) == []
    assert runtime_files(root) == []


def test_status_of_an_unknown_dir(tmp_path):
    status = nepid("status", "--root-dir", tmp_path / "nothing")
    assert status.returncode == 3
    assert status.stdout.strip() == "nepid is not running in %s" % (tmp_path / "nothing")


def test_usage(tmp_path):
    proc = nepid("--help")
    assert proc.returncode == 0
    for command in ("start", "status", "stop", "run", "recover", "clean"):
        assert command in proc.stdout
    assert nepid().returncode == 2
    missing = nepid("status")
    assert missing.returncode == 2 and "--root-dir" in missing.stderr
    bad_level = nepid("start", "--root-dir", tmp_path, "--log-level", "Chatty")
    assert bad_level.returncode == 2
