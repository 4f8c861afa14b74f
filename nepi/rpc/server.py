"""A Pyro5 daemon that serves only authenticated clients, and announces readiness by
writing its record.

Every daemon listens on an owner-only Unix socket, where a client must run as our uid
(SO_PEERCRED) and present the daemon's secret. nepid may also listen on TCP, always with
mutual TLS (nepi.rpc.tls: a client certificate of nepid's CA is required, and is the
credential there). In both cases the check happens in Pyro5's connect handshake, before
any method can run, within a deadline and with a size cap (nepi.rpc.transport).
"""

import logging
import os
import socket
import ssl
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

import Pyro5.api
import Pyro5.errors

from nepi.rpc import PROTOCOL
from nepi.rpc.security import secrets_match
from nepi.rpc.tls import peer_name
from nepi.rpc.transport import (ThreadedTransport, TransportSettings, tls_listener,
                                unix_listener)
from nepi.util.files import write_json_atomic

_logger = logging.getLogger("nepi.rpc.server")


class SecureDaemon(Pyro5.api.Daemon):
    """A Pyro5 daemon whose settings are its own (``settings``), never Pyro5's global
    config: its transport (nepi.rpc.transport) serves a Unix socket and, given
    ``tls_listen=(host, port, ssl_context)``, a mutual-TLS TCP listener.

    Pyro5.server.Daemon.__init__ picks its transport from the global config, except when
    given a ``connected_socket``: then it assigns a single-connection server and calls its
    ``init(daemon, connected_socket)``. We pass our transport as that "socket"; the
    ``transportServer`` property ignores the assignment, so the ``init`` call reaches ours
    and ours serves."""

    def __init__(self, secret: str, role: str, identity: Optional[Dict[str, Any]] = None,
                 unixsocket: Optional[str] = None,
                 tls_listen: Optional[Tuple[str, int, ssl.SSLContext]] = None,
                 settings: Optional[TransportSettings] = None) -> None:
        self.settings = settings or TransportSettings()
        listeners = [unix_listener(unixsocket)] if unixsocket else []
        try:
            if tls_listen is not None:
                listeners.append(tls_listener(*tls_listen))
            self._transport = ThreadedTransport(listeners, self.settings)
        except BaseException:
            for listener in listeners:
                listener.sock.close()
            raise
        super().__init__(connected_socket=self._transport)
        self._secret = secret
        self._role = role
        self._identity = dict(identity or {})
        self.last_contact = time.monotonic()

    @property
    def transportServer(self) -> Optional[ThreadedTransport]:
        return self.__dict__.get("_transport")

    @transportServer.setter
    def transportServer(self, server) -> None:
        if server is None:                   # Daemon.close()
            self.__dict__["_transport"] = None

    @property
    def tls_location(self) -> Optional[str]:
        """``HOST:PORT`` of the TLS listener (the port really bound), or None."""
        for listener in self._transport.listeners if self._transport else ():
            if listener.tls is not None:
                return listener.location
        return None

    def validateHandshake(self, conn, data):
        if isinstance(conn.sock, ssl.SSLSocket):
            # Only the TLS listener makes SSL sockets, and it requires a client
            # certificate of our CA: that verified certificate is the credential here.
            _logger.info("TLS client %r connected", peer_name(conn.sock))
        else:
            if not peer_is_us(conn):
                raise Pyro5.errors.SecurityError("handshake refused: peer runs as another "
                                                 "user")
            supplied = data.get("secret") if isinstance(data, dict) else None
            if not secrets_match(supplied, self._secret):
                _logger.warning("refused a client without the right secret")
                raise Pyro5.errors.SecurityError("handshake refused: wrong or missing secret")
        expected_role = data.get("role") if isinstance(data, dict) else None
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

    def _sendExceptionResponse(self, connection, seq, serializer_id, exc_value, tbinfo,
                               flags=0, annotations=None):
        """Never Pyro5's detailed traceback (it carries local variables), whatever the
        global DETAILED_TRACEBACK says."""
        if tbinfo:
            tbinfo = Pyro5.errors.format_traceback(detailed=False)
        super()._sendExceptionResponse(connection, seq, serializer_id, exc_value, tbinfo,
                                       flags, annotations)


def make_unix_daemon(secret: str, role: str, sock_path: str,
                     identity: Optional[Dict[str, Any]] = None,
                     tls_listen: Optional[Tuple[str, int, ssl.SSLContext]] = None) \
        -> SecureDaemon:
    """Bind a socket readable only by us (umask while binding, chmod after), and the TLS
    listener if one is asked for."""
    if os.path.exists(sock_path):
        # Only reached while holding the pid lock: the socket is a leftover of a dead daemon.
        os.unlink(sock_path)
    old = os.umask(0o077)
    try:
        daemon = SecureDaemon(secret, role, identity, unixsocket=sock_path,
                              tls_listen=tls_listen)
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
    daemon.settings.poll = poll
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
