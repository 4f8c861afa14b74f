"""Daemons forked from the preloaded launcher process (nepi.rpc.zygote) are the daemons
``python -m nepi.rpc.daemon_main`` makes: detached, own session, pid file, only their own
descriptors, the asked-for environment, a command line naming them, and nothing of the
process that forked them runs in them (its atexit hooks, its files)."""

import os
import subprocess
import sys
import textwrap

import psutil
import pytest

from helpers import LIB_DIR, REPO, wait_until
from nepi.core.metadata import Metadata
from nepi.errors import NepiError
from nepi.rpc import launcher, zygote
from nepi.rpc.layout import ROLE_TESTBED, DaemonLayout
from nepi.rpc.tc_client import launch_testbed_daemon
from nepi.util import proxy
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.files import read_json


def config(root, setup=None):
    access = proxy.AccessConfiguration()
    access.set_attribute_value(DC.ROOT_DIRECTORY, str(root))
    if setup:
        access.set_attribute_value(DC.DEPLOYMENT_ENVIRONMENT_SETUP, setup)
    return access


def launch_mock(root, setup=None):
    return launch_testbed_daemon("mock", Metadata("mock").testbed_version,
                                 config(root, setup), 1)


@pytest.fixture
def python_m_runs(monkeypatch):
    """The daemons started the slow way (python -m through subprocess.run)."""
    runs = []
    real_run = subprocess.run

    def spy(cmd, *args, **kwargs):
        if list(cmd[1:3]) == ["-m", zygote.DAEMON_MODULE]:
            runs.append(cmd)
        return real_run(cmd, *args, **kwargs)
    monkeypatch.setattr(launcher.subprocess, "run", spy)
    return runs


@pytest.fixture
def no_python_m(python_m_runs):
    yield
    assert python_m_runs == []


@pytest.fixture
def own_zygote(monkeypatch):
    """A zygote of this test process, stopped afterwards (forked, or started as python -m
    when this process runs threads); it can import the test-only testbeds of tests/lib."""
    monkeypatch.syspath_prepend(LIB_DIR)           # a forked zygote has our sys.path,
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(  # a started one our environment
        [LIB_DIR] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    zygote.shutdown()
    z = zygote.preload()
    assert z is not None
    yield z
    zygote.shutdown()


def test_a_forked_daemon_is_a_proper_daemon(tmp_path, own_zygote, no_python_m, monkeypatch):
    kept = open(tmp_path / "owner-file", "w")          # must not reach the daemon
    try:
        # the zygote was forked before this: the daemon finds the failmock testbed only
        # through the environment it is given
        monkeypatch.setenv("NEPI_TESTBEDS", "failmock:failmock")
        tc = launch_testbed_daemon("failmock", "0.1", config(
            tmp_path / "tb", setup="export NEPI_TESTBEDS=failmock:failmock"), 1)
        try:
            assert tc.ping()
            daemon = psutil.Process(tc.pid)
            me = psutil.Process()
            assert daemon.ppid() not in (os.getpid(), own_zygote.pid)   # detached
            assert os.getsid(daemon.pid) not in (os.getsid(0), own_zygote.pid)
            cmdline = daemon.cmdline()
            assert cmdline[1:4] == ["-m", "nepi.rpc.daemon_main", "testbed"]
            assert str(tmp_path / "tb") in cmdline
            record = read_json(DaemonLayout(str(tmp_path / "tb"), ROLE_TESTBED).record_file)
            assert record["launched_by"].startswith("%d:" % os.getpid())
            assert daemon.cwd() == str(tmp_path / "tb")
            layout = DaemonLayout(str(tmp_path / "tb"), ROLE_TESTBED)
            assert int(open(layout.pid_file).read().split()[0]) == daemon.pid
            theirs = {f.path for f in daemon.open_files()}
            assert str(tmp_path / "owner-file") not in theirs
            assert not {f.path for f in me.open_files()} - {str(tmp_path / "owner-file")} \
                & theirs - {layout.pid_file}
        finally:
            tc.shutdown()
        assert not psutil.pid_exists(tc.pid) or \
            psutil.Process(tc.pid).status() == psutil.STATUS_ZOMBIE
    finally:
        kept.close()


def test_a_launch_error_comes_back_through_the_zygote(tmp_path, own_zygote, no_python_m):
    tc = launch_mock(tmp_path / "tb")
    try:
        with pytest.raises(NepiError, match="already running"):
            launch_mock(tmp_path / "tb")
    finally:
        tc.shutdown()


def test_another_python_setup_falls_back_to_python_m(tmp_path, own_zygote, python_m_runs):
    """A PYTHONPATH entry the zygote does not have: the daemon must import from it, so it
    is started as a new interpreter."""
    extra = tmp_path / "extra-path"
    extra.mkdir()
    tc = launch_mock(tmp_path / "tb", setup="export PYTHONPATH=%s" % extra)
    try:
        assert tc.ping()
        assert len(python_m_runs) == 1
        assert str(extra) in psutil.Process(tc.pid).environ()["PYTHONPATH"]  # python -m
    finally:
        tc.shutdown()


def test_nothing_of_the_owner_runs_in_its_daemons(tmp_path):
    """The owner's atexit hooks run once, in the owner; its zygote dies with it."""
    marks = tmp_path / "atexit"
    script = textwrap.dedent("""
        import atexit, os, sys
        sys.path.insert(0, %(repo)r)
        from nepi.core.metadata import Metadata
        from nepi.rpc import zygote
        from nepi.rpc.tc_client import launch_testbed_daemon
        from nepi.util import proxy
        from nepi.util.constants import DeploymentConfiguration as DC
        atexit.register(lambda: open(%(marks)r, "a").write("%%d\\n" %% os.getpid()))
        z = zygote.preload()
        access = proxy.AccessConfiguration()
        access.set_attribute_value(DC.ROOT_DIRECTORY, %(root)r)
        tc = launch_testbed_daemon("mock", Metadata("mock").testbed_version, access, 1)
        print(os.getpid(), z.pid, tc.pid, flush=True)
        tc.shutdown()
    """) % {"repo": str(REPO), "marks": str(marks), "root": str(tmp_path / "tb")}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    owner, zygote_pid, daemon = (int(x) for x in proc.stdout.split())
    assert marks.read_text().split() == [str(owner)]
    assert zygote_pid != daemon
    assert psutil.wait_procs([p for p in map(_process, (zygote_pid, daemon)) if p],
                             timeout=5)[1] == []


def test_a_threaded_owner_gets_a_started_zygote(tmp_path, monkeypatch, no_python_m):
    """An owner running threads cannot fork safely: its zygote is a new interpreter, and
    daemons still come from it."""
    import threading
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        zygote.shutdown()
        z = zygote.preload()
        assert z is not None
        assert psutil.Process(z.pid).cmdline()[1:3] == ["-m", "nepi.rpc.zygote"] or \
            wait_until(lambda: psutil.Process(z.pid).cmdline()[0] == "nepi-zygote", 5.0)
        tc = launch_mock(tmp_path / "tb")
        try:
            assert tc.ping()
            assert psutil.Process(tc.pid).cmdline()[1:3] == ["-m", "nepi.rpc.daemon_main"]
        finally:
            tc.shutdown()
    finally:
        release.set()
        thread.join()
        zygote.shutdown()


def test_the_zygote_dies_with_its_owner_killed(tmp_path):
    script = textwrap.dedent("""
        import sys, time
        sys.path.insert(0, %r)
        from nepi.rpc import zygote
        print(zygote.preload().pid, flush=True)
        time.sleep(60)
    """) % str(REPO)
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             text=True)
    try:
        zygote_pid = int(owner.stdout.readline())
        assert wait_until(lambda: psutil.Process(zygote_pid).cmdline()[0] == "nepi-zygote",
                          5.0)
    finally:
        owner.kill()
        owner.wait()
    gone, alive = psutil.wait_procs([p for p in [_process(zygote_pid)] if p], timeout=5)
    assert alive == []


def _process(pid):
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None
