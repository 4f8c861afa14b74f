"""Hardening of the daemons' RPC (issue 11, point 6), against a real nepid over its real
Unix socket: connections that never authenticate are closed at a deadline and cannot
starve the workers, a stranger's first message is refused from its header before its
payload is read (never allocated), and nepi leaves Pyro5's global config alone."""

import json
import os
import socket
import struct
import subprocess
import sys
import time

import Pyro5.protocol
import Pyro5.serializers
import Pyro5.socketutil
import pytest

from helpers import assert_no_daemons_left
from nepi.errors import ControllerUnreachableError
from nepi.rpc.ec_client import attach_ec, start_nepid
from nepi.rpc.transport import TransportSettings

SETTINGS = TransportSettings()
SERPENT = Pyro5.serializers.SerpentSerializer.serializer_id
MARSHAL = Pyro5.serializers.MarshalSerializer.serializer_id
WAIT = 60.0     # bound on every wait below; the deadline itself is SETTINGS.handshake_timeout


@pytest.fixture(scope="module")
def nepid(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening")
    proxy = start_nepid(str(root))
    yield proxy
    proxy.shutdown()
    assert_no_daemons_left(root)


def _connect(nepid) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(nepid.record["socket"])
    return sock


def _header(size: int, serializer: int = SERPENT) -> bytes:
    """A Pyro5 MSG_CONNECT header announcing ``size`` payload bytes."""
    return struct.pack("!4sHBBHHII16sHH", b"PYRO", Pyro5.protocol.PROTOCOL_VERSION,
                       Pyro5.protocol.MSG_CONNECT, serializer, 0, 0, size, 0, b"\0" * 16, 0,
                       0x4DC5)


def _closed_by_peer(sock: socket.socket) -> bool:
    """Read whatever the daemon still says (a refusal) until it closes the connection."""
    sock.settimeout(WAIT)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return False
    return True


def _refusal(sock: socket.socket) -> str:
    """The text of the daemon's MSG_CONNECTFAIL answer."""
    sock.settimeout(WAIT)
    msg = Pyro5.protocol.recv_stub(Pyro5.socketutil.SocketConnection(sock, keep_open=True))
    assert msg.type == Pyro5.protocol.MSG_CONNECTFAIL
    return Pyro5.serializers.serializers_by_id[msg.serializer_id].loads(msg.data)


def _vm_peak_kb(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmPeak:"):
                return int(line.split()[1])
    raise AssertionError("no VmPeak for pid %d" % pid)


def _served(root_dir: str):
    """A working proxy to nepid, retrying while the daemon turns us away."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            return attach_ec(root_dir)
        except ControllerUnreachableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_idle_connections_beyond_the_pool_are_closed_and_a_client_is_served(nepid):
    idle = [_connect(nepid) for _ in range(SETTINGS.max_workers + 20)]
    try:
        proxy = _served(nepid.root_dir)
        try:
            assert proxy.pid == nepid.pid
            assert proxy.daemon_status()["state"] == "empty"
        finally:
            proxy.close()
        still_open = [s for s in idle if not _closed_by_peer(s)]
        assert still_open == []
    finally:
        for sock in idle:
            sock.close()
    assert nepid.ping() is True


def test_a_stranger_sending_slowly_is_cut_at_the_deadline(nepid):
    """A per-read timeout would let one byte every few seconds keep a worker forever;
    the deadline counts from accept()."""
    sock = _connect(nepid)
    trickle = _header(100) * 4          # 160 bytes at 4 per second: 40 s if never cut
    try:
        with pytest.raises(OSError):
            for i in range(len(trickle)):
                sock.send(trickle[i:i + 1])
                time.sleep(0.25)
    finally:
        sock.close()
    assert nepid.ping() is True


def test_a_huge_first_message_is_refused_from_its_header_without_allocating_it(nepid):
    """Pyro5 would allocate what the header claims (up to 1 GB) before the secret is
    checked; the daemon's peak virtual memory shows it never did."""
    peak = _vm_peak_kb(nepid.pid)
    sock = _connect(nepid)
    try:
        sock.sendall(_header(1000 * 1000 * 1000))     # and never the payload
        assert "first message too large (1000000000 bytes" in _refusal(sock)
        assert _closed_by_peer(sock)
    finally:
        sock.close()
    assert _vm_peak_kb(nepid.pid) - peak < 256 * 1024
    assert nepid.ping() is True


def test_a_first_message_in_another_serializer_is_refused_before_it_is_decoded(nepid):
    payload = Pyro5.serializers.serializers["marshal"].dumps(
        {"handshake": {"role": "ec"}, "object": "nepi.ec"})
    sock = _connect(nepid)
    try:
        sock.sendall(_header(len(payload), MARSHAL) + payload)
        assert "only the serpent serializer is accepted" in _refusal(sock)
        assert _closed_by_peer(sock)
    finally:
        sock.close()
    assert nepid.ping() is True


_CONFIG_SCRIPT = r"""
import json, os, tempfile, threading
import Pyro5, Pyro5.api
before = Pyro5.config.as_dict()
import nepi.rpc, nepi.rpc.server, nepi.rpc.client, nepi.rpc.ec_client, nepi.rpc.tc_client
import nepi.rpc.daemon_main, nepi.util.proxy
imported = Pyro5.config.as_dict()
from nepi.rpc.client import Connection
from nepi.rpc.server import make_unix_daemon, serve

class Service:
    @Pyro5.api.expose
    def echo(self, value):
        return value
    @Pyro5.api.expose
    def fail(self):
        secret_local = "local-variable-value"
        raise ValueError("failed")

path = os.path.join(tempfile.mkdtemp(), "d.sock")
daemon = make_unix_daemon("s3cret", "ec", path)
uri = daemon.register(Service(), objectId="nepi.ec")
stop = threading.Event()
loop = threading.Thread(target=serve, args=(daemon, stop))
loop.start()
conn = Connection(str(uri), "s3cret", "ec")
echoed = conn.call("echo", "x" * 1000)
serializer = conn._proxy._pyroSerializer
try:
    conn.call("fail")
except ValueError as e:
    traceback = "".join(getattr(e, "_pyroTraceback", []) or [])
conn.close()
stop.set()
loop.join(10)
print(json.dumps({"changed by import": sorted(k for k in before if before[k] != imported[k]),
                  "changed by serving": sorted(k for k, v in Pyro5.config.as_dict().items()
                                               if before[k] != v),
                  "echoed": len(echoed), "serializer": serializer,
                  "stopped": not loop.is_alive(),
                  "locals in traceback": "local-variable-value" in traceback}))
"""

# Pyro5 reads PYRO_* at import: a program (or environment) configured otherwise than
# nepi wants, before nepi is imported.
_OTHER_CONFIG = {"PYRO_SERIALIZER": "json", "PYRO_SERVERTYPE": "multiplex",
                 "PYRO_DETAILED_TRACEBACK": "true", "PYRO_POLLTIMEOUT": "30",
                 "PYRO_SSL": "true", "PYRO_THREADPOOL_SIZE": "1", "PYRO_COMMTIMEOUT": "0.001"}


def test_nepi_leaves_pyro5s_global_config_alone_and_does_not_depend_on_it():
    """Importing nepi.rpc and serving with a nepi daemon and client change nothing in
    Pyro5.config, and they work the same (serpent, no detailed traceback) under a global
    config set to other values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    env.update(_OTHER_CONFIG)
    proc = subprocess.run([sys.executable, "-c", _CONFIG_SCRIPT], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"changed by import": [], "changed by serving": [], "echoed": 1000,
                      "serializer": "serpent", "stopped": True,
                      "locals in traceback": False}
