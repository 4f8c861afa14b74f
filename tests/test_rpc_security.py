"""Security of the daemons (SPEC 6, issue 5 item 1, daemons-and-tests.md 9.2 #1, #2, #5,
#11): the secret is checked in Pyro5's handshake before any method runs, roles and
identities are checked, serpent is the serializer, one daemon per root dir, and other
users are kept out by file modes and peer credentials.
"""

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile

import Pyro5.api
import Pyro5.errors
import Pyro5.protocol
import Pyro5.serializers
import pytest

from nepi.errors import ControllerUnreachableError, NepiError
from nepi.rpc import tc_client
from nepi.rpc.client import Connection
from nepi.rpc.ec_client import attach_ec, start_nepid
from nepi.rpc.launcher import launch
from nepi.rpc.security import read_secret
from nepi.util import proxy
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.files import read_json

from helpers import assert_no_daemons_left, daemons_under, kill_all
from mock_experiments import PING_TEXT, make_test_experiment

REFUSED = r"handshake refused: wrong or missing secret"


class Running:
    """One EC daemon + one testbed daemon (mock, guid 1) for the whole module."""

    def __init__(self, root):
        self.root = str(root)
        self.tb_root = os.path.join(self.root, "testbeds", "1")
        exp_desc, desc = make_test_experiment()[:2]
        desc.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
        self.xml = exp_desc.to_xml()
        config = proxy.AccessConfiguration()
        config.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
        config.set_attribute_value(DC.ROOT_DIRECTORY, self.root)
        self.config = config
        self.controller = proxy.create_experiment_controller(self.xml, config)
        self.controller.start()
        self.ec_record = read_json(os.path.join(self.root, "run", "daemon.json"))
        self.tb_record = read_json(os.path.join(self.tb_root, "run", "daemon.json"))
        self.ec_secret = read_secret(os.path.join(self.root, "run", "secret"))
        self.tb_secret = read_secret(os.path.join(self.tb_root, "run", "secret"))

    def assert_unaffected(self):
        """Both daemons alive as before; the right client still works."""
        assert read_json(os.path.join(self.root, "run", "daemon.json")) == self.ec_record
        assert read_json(os.path.join(self.tb_root, "run", "daemon.json")) == self.tb_record
        fresh = attach_ec(self.root)
        try:
            assert fresh.pid == self.ec_record["pid"]
            assert fresh.is_finished(6) is True
            assert fresh.trace(6, "fake").startswith(PING_TEXT)
            assert fresh.get(5, "test") is None          # nobody managed to set it
        finally:
            fresh.close()
        tb = tc_client.attach(self.tb_root, "mock", "0.1", 1)
        try:
            assert tb.pid == self.tb_record["pid"]
            assert tb.get(5, "test") is None
        finally:
            tb.close()


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """The module's daemons; whatever of them is left at the end (a failed start
    included) is killed, and a clean shutdown that left one fails."""
    root = tmp_path_factory.mktemp("security")
    try:
        r = Running(root)
    except BaseException:
        kill_all(daemons_under(root))
        raise
    yield r
    r.controller.stop()
    r.controller.shutdown()
    assert_no_daemons_left(root)


def raw_proxy(uri, handshake=None, serializer=None):
    p = Pyro5.api.Proxy(uri)
    p._pyroTimeout = 5.0
    if handshake is not None:
        p._pyroHandshake = handshake
    if serializer is not None:
        p._pyroSerializer = serializer
    return p


# ---------------------------------------------------------------------------------------
# the secret
# ---------------------------------------------------------------------------------------

HANDSHAKES = {
    "no handshake": lambda r: None,
    "empty dict": lambda r: {},
    "empty secret": lambda r: {"secret": "", "role": "ec"},
    "wrong secret, same length": lambda r: {"secret": ("0" if r.ec_secret[0] != "0" else "1")
                                            + r.ec_secret[1:], "role": "ec"},
    "secret upper-cased": lambda r: {"secret": r.ec_secret.upper(), "role": "ec"},
    "secret with a newline": lambda r: {"secret": r.ec_secret + "\n", "role": "ec"},
    "the testbed daemon's secret": lambda r: {"secret": r.tb_secret, "role": "ec"},
    "secret as a bare string": lambda r: r.ec_secret,
    "secret as a list": lambda r: {"secret": [r.ec_secret], "role": "ec"},
}


@pytest.mark.parametrize("case", sorted(HANDSHAKES))
def test_ec_daemon_refuses_a_client_without_the_secret(running, case):
    handshake = HANDSHAKES[case](running)
    for method, args in (("shutdown", ()), ("set", (5, "test", "pwned")), ("ping", ())):
        p = raw_proxy(running.ec_record["uri"], handshake)
        with pytest.raises(Pyro5.errors.CommunicationError, match=REFUSED):
            getattr(p, method)(*args)
        p._pyroRelease()
    running.assert_unaffected()


@pytest.mark.parametrize("case", ["no handshake", "wrong secret", "the EC's secret"])
def test_testbed_daemon_refuses_a_client_without_the_secret(running, case):
    handshake = {"no handshake": None,
                 "wrong secret": {"secret": "f" * 64, "role": "testbed"},
                 "the EC's secret": {"secret": running.ec_secret, "role": "testbed"}}[case]
    for method, args in (("shutdown", ()), ("set", (5, "test", "pwned")),
                         ("program", ([["defer_create", 99, "Node"]],))):
        p = raw_proxy(running.tb_record["uri"], handshake)
        with pytest.raises(Pyro5.errors.CommunicationError, match=REFUSED):
            getattr(p, method)(*args)
        p._pyroRelease()
    running.assert_unaffected()


def test_wrong_secret_through_nepis_client_is_a_typed_error(running):
    conn = Connection(running.ec_record["uri"], "0" * 64, "ec")
    with pytest.raises(ControllerUnreachableError, match=REFUSED):
        conn.call("ping")
    assert conn.ping() is False
    right = Connection(running.ec_record["uri"], running.ec_secret, "ec")
    assert right.call("ping") is True
    right.close()


# ---------------------------------------------------------------------------------------
# roles and identities
# ---------------------------------------------------------------------------------------

def test_client_expecting_a_testbed_is_refused_by_the_ec_daemon(running):
    conn = Connection(running.ec_record["uri"], running.ec_secret, "testbed")
    with pytest.raises(ControllerUnreachableError, match="this daemon is a ec, not a testbed"):
        conn.call("ping")
    p = raw_proxy(running.ec_record["uri"], {"secret": running.ec_secret, "role": "testbed"})
    with pytest.raises(Pyro5.errors.CommunicationError, match="not a testbed"):
        p.shutdown()
    p._pyroRelease()
    running.assert_unaffected()


def test_client_expecting_an_ec_is_refused_by_a_testbed_daemon(running):
    conn = Connection(running.tb_record["uri"], running.tb_secret, "ec")
    with pytest.raises(ControllerUnreachableError, match="this daemon is a testbed, not a ec"):
        conn.call("ping")
    running.assert_unaffected()


def test_client_expecting_another_testbed_is_refused(running):
    conn = Connection(running.tb_record["uri"], running.tb_secret, "testbed",
                      expect={"testbed_guid": 7})
    with pytest.raises(ControllerUnreachableError, match="testbed_guid is 1, expected 7"):
        conn.call("ping")
    with pytest.raises(ControllerUnreachableError, match="runs mock 0.1, expected mock2"):
        tc_client.attach(running.tb_root, "mock2", "0.1", 1)
    running.assert_unaffected()


def test_handshake_answers_protocol_and_role(running):
    conn = Connection(running.tb_record["uri"], running.tb_secret, "testbed")
    assert conn.call("ping") is True
    assert conn.hello["role"] == "testbed"
    assert conn.hello["protocol"] == 1
    assert conn.hello["pid"] == running.tb_record["pid"]
    assert conn.hello["testbed_guid"] == 1 and conn.hello["testbed_id"] == "mock"
    conn.close()


# ---------------------------------------------------------------------------------------
# serializer
# ---------------------------------------------------------------------------------------

def test_the_serializer_in_use_is_serpent(running, monkeypatch):
    assert Pyro5.config.SERIALIZER == "serpent"
    serpent_id = Pyro5.serializers.SerpentSerializer.serializer_id
    seen = []
    real = Pyro5.protocol.recv_stub

    def spy(*args, **kwargs):
        msg = real(*args, **kwargs)
        seen.append(msg.serializer_id)
        return msg
    monkeypatch.setattr(Pyro5.protocol, "recv_stub", spy)
    ec = attach_ec(running.root)
    tb = tc_client.attach(running.tb_root, "mock", "0.1", 1)
    try:
        assert ec.traces_info() == {1: {6: {"fake": {"host": "localhost",
                                                     "user": ec.traces_info()[1][6]["fake"]
                                                     ["user"], "filepath": "<test>"}}}}
        assert ec.trace(6, "fake").startswith(PING_TEXT)
        assert tb.get_values([[5, "fake"], [5, "cross"]]) == [True, False]
        assert ec._query._proxy._pyroSerializer == "serpent"
        assert tb._query._proxy._pyroSerializer == "serpent"
    finally:
        ec.close()
        tb.close()
    assert len(seen) >= 6
    assert set(seen) == {serpent_id}


@pytest.mark.parametrize("serializer", ["json", "marshal"])
def test_a_client_speaking_another_serializer_is_refused(running, serializer):
    """Refused at the handshake or before the method runs (a Pyro5 CommunicationError or
    SecurityError, or PermissionError), on both daemons; nothing the call asked for
    happens."""
    for record, secret, role in ((running.ec_record, running.ec_secret, "ec"),
                                 (running.tb_record, running.tb_secret, "testbed")):
        for method, args in (("ping", ()), ("set", (5, "test", "pwned")), ("shutdown", ())):
            p = raw_proxy(record["uri"], {"secret": secret, "role": role}, serializer)
            try:
                with pytest.raises((Pyro5.errors.PyroError, PermissionError)):
                    getattr(p, method)(*args)
            finally:
                p._pyroRelease()
    running.assert_unaffected()


# ---------------------------------------------------------------------------------------
# one daemon per root dir
# ---------------------------------------------------------------------------------------

def _socket_inode(path):
    return os.stat(path).st_ino


def test_second_ec_daemon_on_the_same_root_dir_is_refused(running):
    sock_inode = _socket_inode(running.ec_record["socket"])
    with pytest.raises(NepiError, match="already running"):
        launch("ec", running.root, [])
    with pytest.raises(NepiError, match="already running"):
        start_nepid(running.root)
    # create_experiment_controller without recover must not take over a running root
    with pytest.raises(NepiError, match="already running"):
        proxy.create_experiment_controller(running.xml, running.config)
    # the daemon entry point itself, bypassing the launcher's check: exits 1, names the pid
    proc = subprocess.run([sys.executable, "-m", "nepi.rpc.daemon_main", "ec", "--root-dir",
                           running.root], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert str(running.ec_record["pid"]) in proc.stderr
    assert read_secret(os.path.join(running.root, "run", "secret")) == running.ec_secret
    assert _socket_inode(running.ec_record["socket"]) == sock_inode
    running.assert_unaffected()


def test_second_testbed_daemon_on_the_same_root_dir_is_refused(running):
    with pytest.raises(NepiError, match="already running"):
        launch("testbed", running.tb_root, ["--testbed-id", "mock", "--testbed-version", "0.1",
                                            "--testbed-guid", "1"])
    running.assert_unaffected()


# ---------------------------------------------------------------------------------------
# other users (needs root to become another user)
# ---------------------------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")


def _fork_as_nobody(fn):
    """Run fn() in a forked child as user nobody (its return value is the child's exit
    code); return the child's pid."""
    nobody = pwd.getpwnam("nobody")
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            code = fn()
        finally:
            os._exit(code)
    return pid


def _as_nobody(fn):
    """Run fn() in a forked child as user nobody; return its exit code."""
    _, status = os.waitpid(_fork_as_nobody(fn), 0)
    return os.waitstatus_to_exitcode(status)


@needs_root
def test_another_user_can_read_the_root_dir_but_not_reach_the_daemon(daemon_leftover_guard):
    root = tempfile.mkdtemp(prefix="nepi-sec-")
    daemon_leftover_guard.watch(root)
    os.chmod(root, 0o755)           # the root dir itself may be readable by others
    ec = start_nepid(root)
    try:
        sock = ec.record["socket"]
        secret = os.path.join(root, "run", "secret")

        def probe():
            code = 0
            try:
                os.listdir(root)
            except OSError:
                code |= 1           # should be allowed
            for path in (secret, os.path.join(root, "manifest.json"),
                         os.path.join(root, "run", "daemon.json")):
                try:
                    open(path).close()
                    code |= 2
                except PermissionError:
                    pass
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(sock)
                code |= 4
            except PermissionError:
                pass
            finally:
                s.close()
            return code
        assert _as_nobody(probe) == 0
        assert ec.ping() is True
    finally:
        ec.shutdown()
        shutil.rmtree(root, ignore_errors=True)


@needs_root
def test_peer_of_another_user_is_refused_even_with_the_secret(tmp_path):
    from nepi.rpc.server import SecureDaemon, peer_is_us
    lobby = tempfile.mkdtemp(prefix="nepi-peer-")
    os.chmod(lobby, 0o777)
    listen_path = os.path.join(lobby, "l.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(listen_path)
    os.chmod(listen_path, 0o777)
    listener.listen(1)
    r, w = os.pipe()

    def connect_and_wait():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(listen_path)
        os.read(r, 1)               # keep the connection open until the parent is done
        return 0
    pid = _fork_as_nobody(connect_and_wait)
    daemon = SecureDaemon("s3cret", "ec", unixsocket=str(tmp_path / "d.sock"))
    try:
        conn, _ = listener.accept()

        class Conn:
            sock = conn
        assert peer_is_us(Conn) is False
        with pytest.raises(Pyro5.errors.SecurityError, match="another user"):
            daemon.validateHandshake(Conn, {"secret": "s3cret", "role": "ec"})
        a, b = socket.socketpair(socket.AF_UNIX)

        class Ours:
            sock = a
        assert peer_is_us(Ours) is True
        assert daemon.validateHandshake(Ours, {"secret": "s3cret", "role": "ec"})["role"] == "ec"
        with pytest.raises(Pyro5.errors.SecurityError, match="wrong or missing secret"):
            daemon.validateHandshake(Ours, {"secret": "s3creT", "role": "ec"})
        for s in (a, b, conn):
            s.close()
    finally:
        os.write(w, b"x")
        os.waitpid(pid, 0)
        os.close(r)
        os.close(w)
        daemon.close()
        listener.close()
        shutil.rmtree(lobby, ignore_errors=True)
