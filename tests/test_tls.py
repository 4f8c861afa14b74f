"""Remote clients of nepid over TCP with mutual TLS (issue 11, point 7), over 127.0.0.1
with real daemons: ``nepid certs``, ``nepid start --listen``, a client through
create_experiment_controller and through ``nepid status|run|stop --connect``; clients
without a valid certificate of nepid's CA, or not speaking TLS at all, are refused
before any method runs, and nepid keeps serving."""

import datetime
import json
import os
import socket
import ssl
import stat
import warnings

import Pyro5.api
import Pyro5.errors
import psutil
import pytest
from cryptography import x509

from mock_experiments import PING_TEXT, make_test_experiment, nepid_command

from nepi.errors import ControllerUnreachableError
from nepi.rpc import tls
from nepi.rpc.client import Connection
from nepi.rpc.ec_client import attach_ec, attach_ec_over_tls
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.proxy import AccessConfiguration, create_experiment_controller

WAIT = 60.0


class TlsNepid:
    """A nepid started by ``nepid start --listen 127.0.0.1:PORT`` on a root dir of its
    own, with a ``nepid certs`` directory holding client "alice"."""

    def __init__(self, base, port=0):
        self.root = str(base / "root")
        self.tls_dir = str(base / "tls")
        tls.make_certificates(self.tls_dir, ["alice"])
        proc = nepid_command("start", "--root-dir", self.root, "--listen",
                             "127.0.0.1:%d" % port, "--tls-dir", self.tls_dir)
        assert proc.returncode == 0, proc.stderr
        self.read_record()

    def read_record(self):
        with open(os.path.join(self.root, "run", "daemon.json")) as f:
            self.record = json.load(f)
        self.address = self.record["listen"]
        self.pid = self.record["pid"]

    def files(self, name="alice"):
        return tls.client_files(self.tls_dir, name)

    def access_config(self, recover=False):
        host, port = tls.parse_address(self.address)
        config = AccessConfiguration()
        for name, value in ((DC.DEPLOYMENT_MODE, DC.MODE_DAEMON),
                            (DC.DEPLOYMENT_COMMUNICATION, DC.ACCESS_TLS),
                            (DC.DEPLOYMENT_HOST, host), (DC.DEPLOYMENT_PORT, port),
                            (DC.TLS_CA, self.files().ca), (DC.TLS_CERT, self.files().cert),
                            (DC.TLS_KEY, self.files().key), (DC.RECOVER, recover)):
            config.set_attribute_value(name, value)
        return config

    def stop(self):
        """Shut nepid down (through its local socket) if it still runs."""
        try:
            proxy = attach_ec(self.root)
        except ControllerUnreachableError:
            return
        proxy.shutdown()


@pytest.fixture
def nepid(tmp_path):
    server = TlsNepid(tmp_path)
    yield server
    server.stop()


def _design_xml(policy=None):
    exp_desc, desc = make_test_experiment()[:2]
    if policy:
        desc.set_attribute_value(DC.RECOVERY_POLICY, policy)
    return exp_desc.to_xml()


def _wait_gone(pid):
    try:
        psutil.Process(pid).wait(WAIT)
    except psutil.NoSuchProcess:
        pass
    return not psutil.pid_exists(pid) or \
        psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


# ---- a valid client -----------------------------------------------------------------------

def test_a_valid_client_runs_an_experiment_end_to_end(nepid):
    controller = create_experiment_controller(_design_xml(), nepid.access_config())
    try:
        assert controller.pid == nepid.pid
        assert controller.root_dir == nepid.root
        assert controller._query._sock.version() in ("TLSv1.2", "TLSv1.3")
        controller.start()
        assert controller.state == "started"
        assert controller.is_finished(6) is True
        assert controller.trace(6, "fake") == PING_TEXT
        assert controller.daemon_status()["listen"] == {"listen": nepid.address,
                                                        "tls_dir": nepid.tls_dir}
        controller.stop()
    finally:
        controller.shutdown()
    assert _wait_gone(nepid.pid)
    assert not os.path.exists(nepid.record["socket"])


def test_recover_reconnects_over_tls(nepid):
    controller = create_experiment_controller(_design_xml(), nepid.access_config())
    controller.start()
    controller.close()
    again = create_experiment_controller(None, nepid.access_config(recover=True))
    try:
        assert again.state == "started"
        assert again.trace(6, "fake") == PING_TEXT
    finally:
        again.close()


# ---- refused clients ----------------------------------------------------------------------

def _context(ca, cert=None, key=None, tls_1_1=False):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=ca)
    if cert:
        context.load_cert_chain(cert, key)
    if tls_1_1:     # a client that really offers TLS 1.1 (its own policy would forbid it)
        context.set_ciphers("DEFAULT@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


def _write_pair(directory, name, cert, key):
    paths = (os.path.join(str(directory), name + ".crt"),
             os.path.join(str(directory), name + ".key"))
    with open(paths[0], "wb") as f:
        f.write(tls.cert_pem(cert))
    with open(paths[1], "wb") as f:
        f.write(tls.key_pem(key))
    return paths


def _expired_pair(nepid, directory):
    layout = tls.TlsDir(nepid.tls_dir)
    with open(layout.ca_cert, "rb") as f:
        ca_cert = x509.load_pem_x509_certificate(f.read())
    with open(layout.ca_key, "rb") as f:
        from cryptography.hazmat.primitives import serialization
        ca_key = serialization.load_pem_private_key(f.read(), password=None)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert, key = tls.issue(ca_cert, ca_key, "late", "client",
                          not_before=now - datetime.timedelta(days=30),
                          not_after=now - datetime.timedelta(days=1))
    assert cert.not_valid_after_utc < now
    return _write_pair(directory, "late", cert, key)


def _refused_contexts(nepid, tmp_path):
    ca = nepid.files().ca
    other = tls.make_certificates(str(tmp_path / "other-ca"), ["mallory"]) and \
        tls.client_files(str(tmp_path / "other-ca"), "mallory")
    layout = tls.TlsDir(nepid.tls_dir)
    return {
        "no client certificate": _context(ca),
        "a certificate of another CA": _context(ca, other.cert, other.key),
        "an expired certificate": _context(ca, *_expired_pair(nepid, tmp_path)),
        "the server's own certificate (not for clients)":
            _context(ca, layout.server_cert, layout.server_key),
        "a valid certificate over TLS 1.1": _context(ca, nepid.files().cert,
                                                     nepid.files().key, tls_1_1=True),
    }


@pytest.fixture
def started(nepid):
    """nepid running a started experiment (submitted by a valid TLS client)."""
    controller = create_experiment_controller(_design_xml(), nepid.access_config())
    controller.start()
    controller.close()
    return nepid


def _assert_untouched(nepid):
    """Nothing a refused client asked for happened (the experiment runs, nothing was set);
    a valid client is still served."""
    proxy = attach_ec_over_tls(nepid.address, nepid.files())
    try:
        assert proxy.pid == nepid.pid
        assert proxy.state == "started"
        assert proxy.get(5, "test") is None
    finally:
        proxy.close()


def test_clients_without_a_valid_certificate_are_refused_before_any_method(started,
                                                                           tmp_path):
    uri = "PYRO:nepi.ec@%s" % started.address
    for case, context in _refused_contexts(started, tmp_path).items():
        for method, args in (("set", (5, "test", "pwned")), ("shutdown", ())):
            conn = Connection(uri, None, "ec", tls=context, name=case)
            with pytest.raises(ControllerUnreachableError):
                conn.call(method, *args)
            conn.close()
        _assert_untouched(started)


def test_a_plain_tcp_client_is_refused_before_any_method(started):
    for handshake in ({"role": "ec"}, {"role": "ec", "secret": "0" * 64}):
        for method, args in (("set", (5, "test", "pwned")), ("shutdown", ())):
            proxy = Pyro5.api.Proxy("PYRO:nepi.ec@%s" % started.address)
            proxy._pyroHandshake = handshake
            proxy._pyroSerializer = "serpent"
            proxy._pyroTimeout = WAIT
            with pytest.raises((Pyro5.errors.CommunicationError, OSError)):
                getattr(proxy, method)(*args)
            proxy._pyroRelease()
    _assert_untouched(started)


def test_a_tcp_connection_that_never_starts_tls_is_closed(started):
    sock = socket.create_connection(tls.parse_address(started.address))
    try:
        sock.settimeout(WAIT)
        assert sock.recv(1) == b""          # closed by nepid at the handshake deadline
    finally:
        sock.close()
    _assert_untouched(started)


# ---- the command line ---------------------------------------------------------------------

def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_nepid_certs_makes_private_keys_and_keeps_its_ca(tmp_path):
    tls_dir = tmp_path / "tls"
    made = nepid_command("certs", "--tls-dir", tls_dir, "--client", "alice")
    assert made.returncode == 0, made.stderr
    assert "made CA %s" % (tls_dir / "ca.crt") in made.stdout
    keys = [tls_dir / "ca.key", tls_dir / "server.key", tls_dir / "clients" / "alice.key"]
    certs = [tls_dir / "ca.crt", tls_dir / "server.crt", tls_dir / "clients" / "alice.crt"]
    assert [_mode(p) for p in keys] == [0o600] * 3
    assert all(p.is_file() for p in certs)
    assert _mode(tls_dir) == 0o700 and _mode(tls_dir / "clients") == 0o700
    server = x509.load_pem_x509_certificate((tls_dir / "server.crt").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", socket.gethostname().lower()} <= \
        set(names.get_values_for_type(x509.DNSName))
    assert {"127.0.0.1", "::1"} <= {str(a) for a in names.get_values_for_type(x509.IPAddress)}
    before = {p: p.read_bytes() for p in keys + certs if "server" not in p.name}

    again = nepid_command("certs", "--tls-dir", tls_dir, "--client", "alice", "--client",
                          "bob", "--host", "192.0.2.7")
    assert again.returncode == 0, again.stderr
    assert "kept CA" in again.stdout and "made client bob" in again.stdout
    assert {p: p.read_bytes() for p in before} == before       # CA and alice untouched
    assert _mode(tls_dir / "clients" / "bob.key") == 0o600
    server = x509.load_pem_x509_certificate((tls_dir / "server.crt").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "192.0.2.7" in {str(a) for a in names.get_values_for_type(x509.IPAddress)}

    bad = nepid_command("certs", "--tls-dir", tls_dir, "--client", "../evil")
    assert bad.returncode == 1
    assert "bad client name '../evil'" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "evil.key").exists()


def test_nepid_status_run_stop_connect(nepid, tmp_path):
    connect = ["--connect", nepid.address, "--tls-dir", nepid.tls_dir]
    status = nepid_command("status", *connect)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("nepid running (pid %d) serving %s on %s, up "
                                    % (nepid.pid, nepid.root, nepid.address))
    assert "listening on %s (mutual TLS" % nepid.address in status.stdout
    assert "experiment: empty" in status.stdout

    design = tmp_path / "design.xml"
    design.write_text(_design_xml(), encoding="utf-8")
    run = nepid_command("run", design, *connect)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "nepid status %s" % " ".join(connect) in run.stdout
    status = nepid_command("status", *connect)
    assert "experiment: started" in status.stdout

    other = tls.make_certificates(str(tmp_path / "other"), ["mallory"])
    refused = nepid_command("status", "--connect", nepid.address, "--tls-dir",
                            tmp_path / "other")
    assert other.made and refused.returncode == 1
    assert refused.stderr.startswith("nepid: cannot reach nepid at %s" % nepid.address)
    assert "Traceback" not in refused.stderr

    stop = nepid_command("stop", *connect)
    assert stop.returncode == 0, stop.stderr
    assert "nepid (pid %d) stopped" % nepid.pid in stop.stdout
    assert _wait_gone(nepid.pid)


def test_a_recovered_nepid_listens_again(tmp_path):
    with socket.socket() as probe:          # a free port, to find nepid at the same place
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = TlsNepid(tmp_path, port)
    try:
        controller = create_experiment_controller(_design_xml(DC.POLICY_RESTART),
                                                  server.access_config())
        controller.start()
        controller.close()
        os.kill(server.pid, 9)
        assert _wait_gone(server.pid)
        recover = nepid_command("recover", "--root-dir", server.root)
        assert recover.returncode == 0, recover.stdout + recover.stderr
        server.read_record()
        assert server.address == "127.0.0.1:%d" % port
        status = nepid_command("status", "--connect", server.address, "--tls-dir",
                               server.tls_dir)
        assert status.returncode == 0, status.stderr
        assert "nepid running (pid %d)" % server.pid in status.stdout
        assert "experiment: started" in status.stdout
    finally:
        server.stop()
