"""A Pyro5 daemon that only serves clients presenting its secret, on an owner-only Unix
socket (or TCP with mutual TLS), and announces readiness by writing its record."""

import logging
import os
import socket
import threading
import time
from typing import Any, Callable, Dict, Optional

import Pyro5.api
import Pyro5.errors

from nepi.rpc import PROTOCOL
from nepi.rpc.security import secrets_match
from nepi.util.files import write_json_atomic

_logger = logging.getLogger("nepi.rpc.server")


class SecureDaemon(Pyro5.api.Daemon):
    def __init__(self, secret: str, role: str, identity: Optional[Dict[str, Any]] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self._secret = secret
        self._role = role
        self._identity = dict(identity or {})
        self.last_contact = time.monotonic()

    def validateHandshake(self, conn, data):
        if not peer_is_us(conn):
            raise Pyro5.errors.SecurityError("handshake refused: peer runs as another user")
        supplied = data.get("secret") if isinstance(data, dict) else None
        if not secrets_match(supplied, self._secret):
            _logger.warning("refused a client without the right secret")
            raise Pyro5.errors.SecurityError("handshake refused: wrong or missing secret")
        expected_role = data.get("role")
        if expected_role and expected_role != self._role:
            raise Pyro5.errors.SecurityError("this daemon is a %s, not a %s"
                                             % (self._role, expected_role))
        self.last_contact = time.monotonic()
        reply = {"protocol": PROTOCOL, "role": self._role, "pid": os.getpid()}
        reply.update(self._identity)
        return reply

    def handleRequest(self, conn):
        self.last_contact = time.monotonic()
        return super().handleRequest(conn)


def make_unix_daemon(secret: str, role: str, sock_path: str,
                     identity: Optional[Dict[str, Any]] = None) -> SecureDaemon:
    """Bind a socket readable only by us (umask while binding, chmod after)."""
    if os.path.exists(sock_path):
        # Only reached while holding the pid lock: the socket is a leftover of a dead daemon.
        os.unlink(sock_path)
    old = os.umask(0o077)
    try:
        daemon = SecureDaemon(secret, role, identity, unixsocket=sock_path)
    finally:
        os.umask(old)
    os.chmod(sock_path, 0o600)
    return daemon


def write_ready_record(path: str, record: Dict[str, Any]) -> None:
    write_json_atomic(path, record, mode=0o600)


def serve(daemon: SecureDaemon, stop_event: threading.Event,
          idle_check: Optional[Callable[[float], bool]] = None, poll: float = 0.5) -> None:
    """Serve until ``stop_event`` is set, or ``idle_check(seconds_since_contact)`` says so."""
    def loop_condition() -> bool:
        if stop_event.is_set():
            return False
        if idle_check is not None and idle_check(time.monotonic() - daemon.last_contact):
            _logger.info("idle with nothing to keep alive: exiting")
            return False
        return True

    def stop_now():
        stop_event.wait()
        daemon.shutdown()      # breaks the request loop at once, not at the next poll
    threading.Thread(target=stop_now, name="nepi-daemon-stop", daemon=True).start()
    Pyro5.config.POLLTIMEOUT = poll
    daemon.requestLoop(loop_condition)
    stop_event.set()


def peer_is_us(conn) -> bool:
    """On a Unix socket, check the peer's uid with SO_PEERCRED."""
    sock = getattr(conn, "sock", None)
    if sock is None or sock.family != socket.AF_UNIX:
        return True
    import struct
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return uid == os.getuid()
