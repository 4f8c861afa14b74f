"""Issue 11's trust boundary (points 1, 2, 8, 9), each test performing the attack:

- ``nepid clean`` of a root dir never touches another experiment's daemons, nested in it
  or named as a testbed root by its experiment.xml; it still kills a daemon of its own
  caught between launch and manifest update (by the experiment id in its record);
- a design's testbed ``rootDirectory`` cannot leave the experiment's root dir unless
  allowed, and nepi never chmods, overwrites or deletes files it did not create;
- every policy path leaves no runtime file; pid files and logs are owner-only;
- SSH destinations and logins from a design cannot become ssh options.
"""

import os
import random
import stat
import subprocess
import sys

import psutil
import pytest

from nepi.errors import DesignError, NepiError
from nepi.rpc.launcher import launch
from nepi.rpc.layout import ROLE_TESTBED
from nepi.rpc.manifest import Manifest
from nepi.rpc.manifest import testbed_key as key_of
from nepi.util import proxy
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS

from helpers import daemons_under, kill9, runtime_files
from mock_experiments import make_test_experiment
from test_nepid_cli import daemon_pids_of_testbeds, manifest, nepid, nepid_pid, write_design


# ---- 1. clean acts on its own records only ---------------------------------------------

def test_clean_spares_a_nested_neighbour_named_in_its_experiment_xml(tmp_path):
    root = tmp_path / "P"
    neighbour = root / "other"
    design = write_design(tmp_path / "mock.xml")
    assert nepid("run", "-q", design, "--root-dir", root).returncode == 0
    ours = [nepid_pid(root)] + sorted(daemon_pids_of_testbeds(root).values())
    for pid in ours:
        kill9(pid)
    run = nepid("run", "-q", design, "--root-dir", neighbour)
    assert run.returncode == 0, run.stderr
    try:
        theirs = [nepid_pid(neighbour)] + sorted(daemon_pids_of_testbeds(neighbour).values())
        # P's design now names the neighbour's testbed roots (relative and absolute)
        exp = make_test_experiment()[0]
        for tb, where in zip(exp.testbed_descriptions, ["other/testbeds/1",
                                                        str(neighbour / "testbeds" / "1")]):
            tb.set_attribute_value(DC.ROOT_DIRECTORY, where)
        (root / "experiment.xml").write_text(exp.to_xml())

        clean = nepid("clean", "--root-dir", root)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert all(psutil.pid_exists(p) for p in theirs)
        assert daemons_under(neighbour) and \
            sorted(p.pid for p in daemons_under(neighbour)) == sorted(theirs)
        status = nepid("status", "--root-dir", neighbour)
        assert status.returncode == 0 and "experiment: started" in status.stdout
        assert runtime_files(neighbour)                  # its sockets and secrets intact
        assert [f for f in runtime_files(root) if not f.startswith(str(neighbour))] == []
    finally:
        assert nepid("stop", "--root-dir", neighbour).returncode == 0
    assert daemons_under(root) == []


def _testbed_daemon(root_dir, owner):
    return launch(ROLE_TESTBED, str(root_dir), ["--testbed-id", "mock", "--testbed-version",
                                                "0.1", "--testbed-guid", "1"], owner=owner)


def test_clean_kills_its_daemon_caught_while_launching_and_only_its_own(tmp_path):
    """A manifest entry written before launch (no pid yet): the daemon found in that
    root is killed only if its record carries this root dir's experiment id."""
    root = tmp_path / "P"
    manifest_ = Manifest(str(root.mkdir() or root))
    ours = _testbed_daemon(root / "testbeds" / "1", manifest_.experiment_id())
    foreign_root = tmp_path / "P" / "testbeds" / "7"
    foreign = _testbed_daemon(foreign_root, "someone-else")
    try:
        for guid, where in ((1, ours["root_dir"]), (7, foreign["root_dir"])):
            manifest_.update(key_of(guid), role="testbed", state="launching",
                             testbed_guid=guid, testbed_id="mock", root_dir=where,
                             host="localhost")
        clean = nepid("clean", "--root-dir", root)
        assert "pid %d: killed" % ours["pid"] in clean.stdout, clean.stdout + clean.stderr
        assert not psutil.pid_exists(ours["pid"]) or \
            psutil.Process(ours["pid"]).status() == psutil.STATUS_ZOMBIE
        assert psutil.pid_exists(foreign["pid"])        # not ours: untouched
        assert "pid %d" % foreign["pid"] not in clean.stdout
        assert os.path.exists(foreign["socket"])
        assert "still locked by a live process" in clean.stderr   # and says so
    finally:
        kill9(foreign["pid"])


@pytest.mark.skipif(os.geteuid() != 0, reason="netns names need root to list links")
def test_netns_tokens_are_long_and_never_reused(monkeypatch):
    from nepi.testbeds.netns import execute as netns
    # random, so that another run of this test on the same host takes other names
    taken, fresh = ("".join(random.choice(netns.TOKEN_ALPHABET)
                            for _ in range(netns.TOKEN_LENGTH)) for _ in range(2))
    subprocess.run(["ip", "link", "add", "nv%s1" % taken, "type", "bridge"], check=True)
    try:
        picks = iter(taken + fresh)
        monkeypatch.setattr(netns.secrets, "choice", lambda alphabet: next(picks))
        assert netns.token_in_use(taken)
        assert netns.new_token() == fresh                       # the taken one is skipped
    finally:
        subprocess.run(["ip", "link", "del", "nv%s1" % taken], check=True)
    monkeypatch.undo()
    assert len(netns.new_token()) == 8 and 36 ** 8 > 2 ** 40
    assert netns.host_link_name("nv" + taken, 36 ** 5 - 1) == "nv" + taken + "zzzzz"
    with pytest.raises(Exception, match="too large"):
        netns.host_link_name("nv" + taken, 36 ** 5)


# ---- 2. testbed roots stay inside the experiment's root dir -----------------------------

@pytest.fixture
def victim(tmp_path):
    """Someone's directory with a run/ of their own: mode 0755, a 'secret' file."""
    victim = tmp_path / "victim"
    (victim / "run").mkdir(parents=True)
    os.chmod(victim / "run", 0o755)
    (victim / "run" / "secret").write_text("precious")
    return victim


def _untouched(victim):
    return stat.S_IMODE(os.stat(victim / "run").st_mode) == 0o755 and \
        (victim / "run" / "secret").read_text() == "precious"


def _design(root_value, daemon=True):
    exp, desc = make_test_experiment()[:2]
    if daemon:
        desc.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
    desc.set_attribute_value(DC.ROOT_DIRECTORY, root_value)
    return exp.to_xml()


def _config(root):
    config = proxy.AccessConfiguration()
    config.set_attribute_value(DC.ROOT_DIRECTORY, str(root))
    return config


@pytest.mark.parametrize("how", ["relative", "absolute", "symlink"])
def test_a_testbed_root_outside_the_root_dir_is_refused_before_anything(tmp_path, victim,
                                                                        how):
    root = tmp_path / "exp"
    root.mkdir()
    value = {"relative": "../victim", "absolute": str(victim), "symlink": "link"}[how]
    if how == "symlink":
        os.symlink(str(victim), str(root / "link"))
    with pytest.raises(DesignError) as info:
        proxy.create_experiment_controller(_design(value), _config(root))
    text = str(info.value)
    assert "testbed 1" in text and "'rootDirectory'" in text
    assert "outside the experiment root dir %s" % root in text and "--allow-root" in text
    assert _untouched(victim)
    assert daemons_under(tmp_path) == []


@pytest.mark.parametrize("value, expected", [
    (".", None), ("sub/tb", None), ("run", "nepi keeps for itself"),
    ("logs/x", "nepi keeps for itself")])
def test_testbed_roots_inside_the_root_dir(tmp_path, value, expected):
    root = tmp_path / "exp"
    if expected is None:
        controller = proxy.create_experiment_controller(_design(value, daemon=False),
                                                        _config(root))
        controller.start()
        want = root / ("testbeds/1" if value == "." else value)
        assert controller.deployment_config(1)[DC.ROOT_DIRECTORY] == str(want)
        controller.shutdown()
    else:
        with pytest.raises(DesignError, match=expected):
            proxy.create_experiment_controller(_design(value), _config(root))


def test_two_testbeds_cannot_share_a_root(tmp_path):
    exp = make_test_experiment()[0]
    extra = exp.add_testbed_description(exp.testbed_descriptions[0].provider)
    for tb in exp.testbed_descriptions:
        tb.set_attribute_value(DC.ROOT_DIRECTORY, "shared")
    with pytest.raises(DesignError, match="already keeps its files in"):
        proxy.create_experiment_controller(exp.to_xml(), _config(tmp_path / "exp"))
    assert extra.guid != exp.testbed_descriptions[0].guid


def test_an_allowed_root_with_foreign_files_is_refused_untouched(tmp_path, victim, nepi_kit):
    root = tmp_path / "exp"
    controller = nepi_kit.create_ec(_design(str(victim)), _config(root),
                                    allowed_roots=[str(victim)])
    with pytest.raises(NepiError) as info:
        controller.start()
    assert "mode 0755" in str(info.value) and str(victim / "run") in str(info.value)
    assert _untouched(victim)
    os.chmod(victim / "run", 0o700)         # private now, but holds someone's 'notes'
    (victim / "run" / "notes").write_text("mine")
    controller = nepi_kit.create_ec(_design(str(victim)), _config(tmp_path / "exp2"),
                                    allowed_roots=[str(victim)])
    with pytest.raises(NepiError, match="holds files nepi did not create \\(notes\\)"):
        controller.start()
    assert (victim / "run" / "secret").read_text() == "precious"
    assert (victim / "run" / "notes").read_text() == "mine"
    assert daemons_under(victim) == []


def test_an_allowed_root_outside_works_through_the_cli(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    exp = make_test_experiment()[0]
    exp.testbed_descriptions[0].set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
    exp.testbed_descriptions[0].set_attribute_value(DC.ROOT_DIRECTORY, str(elsewhere))
    design = tmp_path / "design.xml"
    design.write_text(exp.to_xml())
    root = tmp_path / "exp"
    refused = nepid("run", "-q", design, "--root-dir", root)
    assert refused.returncode == 1
    assert "outside the experiment root dir" in refused.stderr
    assert "Traceback" not in refused.stderr
    refused = subprocess.run([sys.executable, "-m", "nepi.cli.nepi_cmd", "run", str(design),
                              "--root-dir", str(tmp_path / "exp-inproc")],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "--allow-root" in refused.stderr
    ok = nepid("run", "-q", design, "--root-dir", root, "--allow-root", elsewhere)
    assert ok.returncode == 0, ok.stderr
    try:
        assert manifest(root)["daemons"]["testbed-1"]["root_dir"] == str(elsewhere)
        assert manifest(root)["allowed_roots"] == [str(elsewhere)]
    finally:
        assert nepid("stop", "--root-dir", root).returncode == 0
    assert daemons_under(elsewhere) == [] and runtime_files(elsewhere) == []


# ---- 8. leftovers and file modes ------------------------------------------------------

def test_fail_policy_with_a_live_controller_leaves_no_runtime_file(tmp_path, nepi_kit):
    """In-process controller, testbed daemon killed: nothing of it stays, wherever its
    socket was (a long root path puts it in a short private folder elsewhere)."""
    root = tmp_path / ("x" * 90)
    exp, desc = make_test_experiment()[:2]
    nepi_kit.daemon_testbed(desc, policy=DC.POLICY_FAIL)
    controller = nepi_kit.create_ec(exp.to_xml(), _config(root))
    controller.start()
    entry = nepi_kit.testbed_entry(root, 1)
    sock = entry["socket"]
    assert not sock.startswith(str(root))          # too long for run/: elsewhere
    nepi_kit.kill9(entry["pid"])
    assert nepi_kit.wait_until(lambda: controller.status(1) == TS.STATUS_FAILED, 10)
    controller.shutdown()
    assert not os.path.lexists(sock) and not os.path.exists(os.path.dirname(sock))
    nepi_kit.assert_nothing_left(root)


def test_pid_files_logs_and_manifest_are_owner_only(tmp_path):
    root = tmp_path / "exp"
    assert nepid("run", "-q", write_design(tmp_path / "mock.xml"), "--root-dir",
                 root).returncode == 0
    try:
        testbed_root = manifest(root)["daemons"]["testbed-1"]["root_dir"]
        private = [root / "nepid.pid", os.path.join(testbed_root, "testbed.pid"),
                   root / "manifest.json"] + list((root / "logs").iterdir())
        for path in private:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
        assert stat.S_IMODE(os.stat(root / "logs").st_mode) == 0o700
    finally:
        assert nepid("stop", "--root-dir", root).returncode == 0


# ---- 9. SSH ----------------------------------------------------------------------------

@pytest.mark.parametrize("attribute, value", [
    (DC.DEPLOYMENT_HOST, "-oProxyCommand=touch {marker}"),
    (DC.DEPLOYMENT_HOST, "host name"),
    (DC.DEPLOYMENT_HOST, "a@b"),
    (DC.DEPLOYMENT_USER, "-oProxyCommand=touch {marker}"),
    (DC.DEPLOYMENT_USER, "root;touch {marker}")])
def test_ssh_destination_from_a_design_cannot_be_an_option(tmp_path, attribute, value):
    marker = tmp_path / "marker"
    exp, desc = make_test_experiment()[:2]
    desc.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
    desc.set_attribute_value(DC.DEPLOYMENT_COMMUNICATION, DC.ACCESS_SSH)
    desc.set_attribute_value(attribute, value.format(marker=marker))
    # a design carrying it is refused before anything runs
    with pytest.raises(DesignError) as info:
        proxy.create_experiment_controller(exp.to_xml(), _config(tmp_path / "exp"))
    assert "testbed 1" in str(info.value) and "attribute %r" % attribute in str(info.value)
    # the runtime check catches what skipped validation
    from nepi.rpc.ssh import SshTarget
    config = proxy.AccessConfiguration()
    config._attributes[attribute]._value = value.format(marker=marker)
    with pytest.raises(NepiError, match="is not"):
        SshTarget(config)
    assert not marker.exists()
    assert ["--", "localhost"] == SshTarget(proxy.AccessConfiguration()).ssh_argv()[-2:]


def test_recovery_never_attaches_to_another_experiments_daemon(tmp_path):
    from nepi.errors import ControllerUnreachableError
    from nepi.rpc.tc_client import attach
    root = tmp_path / "neighbour-testbed"
    record = _testbed_daemon(root, "someone-else")
    try:
        with pytest.raises(ControllerUnreachableError, match="belongs to another experiment"):
            attach(str(root), "mock", "0.1", 1, owner="mine")
        theirs = attach(str(root), "mock", "0.1", 1, owner="someone-else")
        assert theirs.pid == record["pid"]
        theirs.close()
    finally:
        kill9(record["pid"])
