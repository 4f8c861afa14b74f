"""The socket side of nepi's Pyro5 daemons: listeners, workers and the pre-authentication
phase, with every setting held per daemon.

Pyro5's own thread-pool server takes its settings from Pyro5's process-wide config (server
type, SSL certificates, timeouts, pool size, poll interval) and reads a client's first
message with no deadline and whatever size its header claims (up to 1 GB, allocated before
the secret is checked). Here instead:

- a new connection has ``handshake_timeout`` seconds *in total* to finish the TLS handshake
  (TLS listener) and Pyro5's connect handshake (secret or client certificate); a watchdog
  in the accept loop shuts it down at the deadline, so neither an idle nor a slowly
  dribbling stranger keeps a worker;
- the first message's header is checked before its payload is read: at most
  ``max_preauth_bytes`` and serpent only (marshal must never see untrusted bytes);
- at most ``max_workers`` connections are served at once; one more is closed at once,
  without reading from it (Pyro5 reads a handshake from it in the accept loop);
- a TCP listener always speaks TLS with a client certificate required: nepi has no plain
  TCP listener. The TLS handshake runs in the connection's worker thread, never in the
  accept loop.
"""

import logging
import os
import selectors
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional

import Pyro5.errors
import Pyro5.protocol
import Pyro5.socketutil
from Pyro5.serializers import SerpentSerializer

_logger = logging.getLogger("nepi.rpc.transport")

# Pyro5's 40-byte message header: tag, version, type, serializer id, flags, seq, data size,
# annotations size, correlation id, reserved, magic (see Pyro5.protocol).
_HEADER = struct.Struct("!4sHBBHHII16sHH")
SERPENT_ID = SerpentSerializer.serializer_id


@dataclass
class TransportSettings:
    """What Pyro5 would read from its global config, for one daemon."""
    handshake_timeout: float = 5.0      # seconds to authenticate, from accept() on
    max_preauth_bytes: int = 64 * 1024  # the connect message is a few hundred bytes
    max_workers: int = 80               # connections served at once
    poll: float = 0.5                   # accept-loop wake-up: stop checks, deadlines
    comm_timeout: Optional[float] = None  # after authentication (None: block)


class Listener(NamedTuple):
    sock: socket.socket
    location: str                       # "./u:PATH" or "HOST:PORT", as in Pyro5 URIs
    tls: Optional[ssl.SSLContext]       # set on (and only on) TCP listeners
    path: Optional[str] = None          # a Unix socket's file, removed on close


def unix_listener(path: str) -> Listener:
    """A listening Unix socket (the caller sets the umask and the file mode)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return Listener(sock, "./u:" + path, None, path)


def tls_listener(host: str, port: int, context: ssl.SSLContext) -> Listener:
    """A TCP listener whose connections must complete mutual TLS before anything else."""
    if context.verify_mode != ssl.CERT_REQUIRED or \
            context.minimum_version < ssl.TLSVersion.TLSv1_2:
        raise ValueError("a TCP listener needs TLS >= 1.2 with client certificates required")
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                  flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise OSError(e.errno, "cannot listen on %s port %d: %s"
                      % (host, port, e.strerror or e)) from None
    except BaseException:
        sock.close()
        raise
    bound = sock.getsockname()
    location = "[%s]:%d" % (host, bound[1]) if ":" in host else "%s:%d" % (host, bound[1])
    return Listener(sock, location, context)


class _PreAuthConnection:
    """A connection as the handshake sees it: the first message's header is checked
    (size, serializer) before a byte of its payload is read or allocated."""

    def __init__(self, conn: Pyro5.socketutil.SocketConnection, limit: int) -> None:
        self._conn = conn
        self._limit = limit
        self._header = b""
        self.sock = conn.sock

    def send(self, data: bytes) -> None:
        self._conn.send(data)

    def recv(self, size: int) -> bytes:
        if len(self._header) >= _HEADER.size:
            if size > self._limit:
                raise Pyro5.errors.ProtocolError("message too large before authentication")
            return self._conn.recv(size)
        data = bytes(self._conn.recv(size))
        self._header += data
        if len(self._header) >= _HEADER.size:
            fields = _HEADER.unpack(self._header[:_HEADER.size])
            serializer_id, data_size, annotations_size = fields[3], fields[6], fields[7]
            if serializer_id != SERPENT_ID:
                raise Pyro5.errors.ProtocolError("only the serpent serializer is accepted")
            if data_size + annotations_size > self._limit:
                raise Pyro5.errors.ProtocolError(
                    "first message too large (%d bytes; at most %d before authentication)"
                    % (data_size + annotations_size, self._limit))
        return data


def _shutdown(sock: socket.socket) -> None:
    """Shut a connection down at the socket level (also under an SSLSocket, whose own
    shutdown() would tear its TLS state from under the worker thread using it)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError as e:       # already closed or never connected: nothing to shut down
        _logger.debug("shutting a connection down: %s", e)


class ThreadedTransport:
    """Pyro5's transport-server interface (what Pyro5.server.Daemon calls) over one or
    more listeners, one worker thread per connection."""

    def __init__(self, listeners: List[Listener], settings: TransportSettings) -> None:
        if not listeners:
            raise ValueError("a daemon needs at least one listener")
        self.listeners = listeners
        self.settings = settings
        self.daemon = None
        self._closed = False
        self._lock = threading.Lock()
        self._preauth: Dict[int, tuple] = {}     # id -> (socket, deadline)
        self._last_tick = time.monotonic()
        self._slots = threading.BoundedSemaphore(settings.max_workers)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        for listener in listeners:
            self._selector.register(listener.sock, selectors.EVENT_READ, listener)

    # -- what Pyro5's Daemon uses ---------------------------------------------------------

    def init(self, daemon, *_ignored) -> None:
        self.daemon = daemon

    @property
    def locationStr(self) -> str:
        return self.listeners[0].location

    @property
    def sock(self) -> socket.socket:
        return self.listeners[0].sock

    @property
    def sockets(self) -> List[socket.socket]:
        return [listener.sock for listener in self.listeners]

    @property
    def selector(self):
        raise TypeError("nepi's transport has no selector to share")

    def combine_loop(self, server) -> None:
        raise TypeError("nepi's transport cannot be combined with another server")

    def loop(self, loopCondition=lambda: True) -> None:
        while not self._closed and loopCondition():
            try:
                self.events(self.sockets)
            except (OSError, ValueError) as e:
                if self._closed:
                    break
                _logger.warning("accept loop: %s", e)

    def events(self, eventsockets) -> None:
        for key, _ in self._selector.select(self.settings.poll):
            if key.data is None:
                try:
                    self._wake_r.recv(64)
                except BlockingIOError:
                    pass        # another wake-up already drained it
            else:
                self._accept(key.data)
        self._expire()
        if self.daemon is not None:
            self.daemon._housekeeping()

    def wakeup(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError as e:   # a full pipe already wakes the loop; a closed one is done
            _logger.debug("waking the accept loop: %s", e)

    def shutdown(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting and cut unauthenticated connections; authenticated ones finish
        their current call (a client asking nepid to shut down still gets its answer)."""
        if self._closed:
            return
        self._closed = True
        self.wakeup()
        for listener in self.listeners:
            try:
                self._selector.unregister(listener.sock)
            except (KeyError, ValueError):
                pass            # never registered (closed before it served)
            listener.sock.close()
            if listener.path and os.path.exists(listener.path):
                os.unlink(listener.path)
        with self._lock:
            for sock, _ in self._preauth.values():
                _shutdown(sock)

    def __repr__(self) -> str:
        return "<nepi transport on %s>" % ", ".join(l.location for l in self.listeners)

    # -- connections ----------------------------------------------------------------------

    def _accept(self, listener: Listener) -> None:
        try:
            csock, address = listener.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        if self._closed:
            csock.close()
            return
        if not self._slots.acquire(blocking=False):
            _logger.warning("no free worker (%d busy): closed a new connection on %s",
                            self.settings.max_workers, listener.location)
            csock.close()
            return
        deadline = time.monotonic() + self.settings.handshake_timeout
        csock.settimeout(self.settings.handshake_timeout)
        self._watch(csock, deadline)
        try:
            threading.Thread(target=self._serve, args=(listener, csock, address, deadline),
                             name="nepi-conn", daemon=True).start()
        except RuntimeError as e:         # no thread to be had: refuse, keep serving
            _logger.warning("cannot serve a new connection on %s: %s", listener.location, e)
            self._unwatch(csock)
            csock.close()
            self._slots.release()

    def _watch(self, sock: socket.socket, deadline: float) -> None:
        with self._lock:
            self._preauth[id(sock)] = (sock, deadline)

    def _unwatch(self, sock: socket.socket) -> None:
        with self._lock:
            self._preauth.pop(id(sock), None)

    def _expire(self) -> None:
        """Shut down connections still unauthenticated at their deadline. Time this loop
        could not run (the GIL held by a long native call, an overloaded host) is not the
        peer's: deadlines move by it, so a stall never cuts a client that was on time."""
        now = time.monotonic()
        stalled = now - self._last_tick - self.settings.poll
        self._last_tick = now
        with self._lock:
            if stalled > self.settings.poll:
                for key, (sock, deadline) in list(self._preauth.items()):
                    self._preauth[key] = (sock, deadline + stalled)
            overdue = [key for key, (_, deadline) in self._preauth.items() if deadline <= now]
            for key in overdue:
                sock, _ = self._preauth.pop(key)
                _shutdown(sock)
        if overdue:
            _logger.warning("closed %d connection(s) not authenticated within %.1f s",
                            len(overdue), self.settings.handshake_timeout)

    def _serve(self, listener: Listener, sock: socket.socket, address,
               deadline: float) -> None:
        conn = None
        authenticated = False
        peer = address or "a local peer"
        try:
            if listener.tls is not None:
                plain = sock
                sock = listener.tls.wrap_socket(plain, server_side=True,
                                                do_handshake_on_connect=False)
                self._unwatch(plain)
                self._watch(sock, deadline)
                sock.do_handshake()
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Pyro5.socketutil.SocketConnection(sock)
            authenticated = self.daemon._handshake(
                _PreAuthConnection(conn, self.settings.max_preauth_bytes))
            self._unwatch(sock)
            if not authenticated:
                _logger.info("refused a connection on %s from %s", listener.location, peer)
                return
            sock.settimeout(self.settings.comm_timeout)
            while not self._closed:
                self.daemon.handleRequest(conn)
        except (OSError, Pyro5.errors.ConnectionClosedError, Pyro5.errors.SecurityError,
                Pyro5.errors.TimeoutError) as e:
            if not authenticated:
                _logger.warning("refused a connection on %s from %s: %s",
                                listener.location, peer, e)
        except Exception as e:
            _logger.warning("connection on %s from %s ended: %s", listener.location, peer, e)
        finally:
            self._unwatch(sock)
            if conn is not None and authenticated:
                try:
                    self.daemon._clientDisconnect(conn)
                except Exception as e:
                    _logger.warning("client disconnect: %s", e)
            if conn is not None:
                conn.close()
            else:
                sock.close()
            self._slots.release()
