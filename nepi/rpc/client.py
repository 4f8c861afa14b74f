"""Client side: a proxy that presents the secret (or, over TCP, a TLS client certificate),
has timeouts, may be used from any thread, and turns transport failures into
ControllerUnreachableError. Its Pyro5 settings are per proxy (serpent, timeouts, TLS
context), never Pyro5's global config."""

import logging
import socket
import ssl
import threading
from typing import Any, Dict, Optional

import Pyro5.api
import Pyro5.core
import Pyro5.errors
import Pyro5.protocol
import Pyro5.serializers
import Pyro5.socketutil

from nepi.errors import ControllerUnreachableError
from nepi.rpc import PROTOCOL

_logger = logging.getLogger("nepi.rpc.client")

# Queries answer fast; deployment phases may legitimately take long.
QUERY_TIMEOUT = 30.0
PHASE_TIMEOUT = 3600.0
CONNECT_TIMEOUT = 10.0


class _NepiProxy(Pyro5.api.Proxy):
    def _pyroValidateHandshake(self, response):
        expected = self.__dict__.get("_nepi_expect", {})
        if not isinstance(response, dict) or response.get("protocol") != PROTOCOL:
            raise Pyro5.errors.CommunicationError("daemon speaks protocol %r, we speak %d"
                                                  % (response, PROTOCOL))
        for key, value in expected.items():
            if response.get(key) != value:
                raise Pyro5.errors.CommunicationError(
                    "daemon %s is %r, expected %r" % (key, response.get(key), value))
        object.__setattr__(self, "_nepi_hello", response)

    def _pyroGetMetadata(self, objectId=None, known_metadata=None):
        # On a connected socket Proxy.__init__ fetches the metadata before anyone can set
        # _pyroSerializer: pin serpent here so Pyro5's global SERIALIZER never decides.
        if not self._pyroSerializer:
            self._pyroSerializer = "serpent"
        return super()._pyroGetMetadata(objectId, known_metadata)


def _serpent_handshake(sock: socket.socket, object_id: str, handshake: Any) -> Any:
    """Pyro5's connect handshake on a connected socket (which Proxy skips there): send
    MSG_CONNECT, return the daemon's answer or raise CommunicationError if refused."""
    conn = Pyro5.socketutil.SocketConnection(sock, object_id, keep_open=True)
    serializer = Pyro5.serializers.serializers["serpent"]
    message = Pyro5.protocol.SendingMessage(
        Pyro5.protocol.MSG_CONNECT, 0, 0, serializer.serializer_id,
        serializer.dumps({"handshake": handshake, "object": object_id}))
    conn.send(message.data)
    reply = Pyro5.protocol.recv_stub(conn, [Pyro5.protocol.MSG_CONNECTOK,
                                            Pyro5.protocol.MSG_CONNECTFAIL])
    data = Pyro5.serializers.serializers_by_id[reply.serializer_id].loads(reply.data)
    if reply.type == Pyro5.protocol.MSG_CONNECTFAIL:
        raise Pyro5.errors.CommunicationError("connection rejected: %s" % (data,))
    return data["handshake"]


class Connection:
    """A lock-guarded Pyro5 proxy to one daemon object; reconnects after a failure."""

    def __init__(self, uri: str, secret: Optional[str], role: str,
                 expect: Optional[Dict] = None, timeout: float = QUERY_TIMEOUT,
                 name: str = "daemon", tls: Optional[ssl.SSLContext] = None) -> None:
        """``tls``: reach ``uri`` (PYRO:obj@HOST:PORT) over TLS with this client context;
        the certificate is the credential there and ``secret`` is None."""
        self._uri = uri
        self._tls = tls
        self._sock: Optional[socket.socket] = None
        self._secret = secret
        self._role = role
        self._expect = dict(expect or {})
        self._expect["role"] = role
        self._timeout = timeout
        self._name = name
        self._lock = threading.RLock()
        self._proxy: Optional[_NepiProxy] = None
        self.hello: Dict[str, Any] = {}

    @property
    def name(self) -> str:
        return self._name

    def _handshake_data(self) -> Dict[str, Any]:
        if self._secret is None:
            return {"role": self._role}
        return {"secret": self._secret, "role": self._role}

    def _open(self, uri: Pyro5.core.URI) -> socket.socket:
        """The daemon's Unix socket, or TCP then TLS (the server's certificate checked
        against our CA for this host name); never plain TCP."""
        if uri.sockname:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(CONNECT_TIMEOUT)
                sock.connect(uri.sockname)
            except BaseException:
                sock.close()
                raise
            return sock
        if self._tls is None:
            raise Pyro5.errors.CommunicationError("%s: nepi reaches TCP only over TLS"
                                                  % self._uri)
        raw = socket.create_connection((uri.host, uri.port), timeout=CONNECT_TIMEOUT)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return self._tls.wrap_socket(raw, server_hostname=uri.host)
        except BaseException:
            raw.close()
            raise

    def _connect(self) -> _NepiProxy:
        """Connect and handshake ourselves, then make the proxy on that connected socket:
        Pyro5's own connect would take its settings (SSL, serializer, timeouts) from
        Pyro5's global config."""
        uri = Pyro5.core.URI(self._uri)
        sock = self._open(uri)
        try:
            hello = _serpent_handshake(sock, uri.object, self._handshake_data())
            proxy = _NepiProxy(uri.object, connected_socket=sock)
            object.__setattr__(proxy, "_nepi_expect", self._expect)
            proxy._pyroValidateHandshake(hello)
            proxy._pyroTimeout = self._timeout
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self.hello = proxy.__dict__.get("_nepi_hello", {})
        return proxy

    def call(self, method: str, *args, timeout: Optional[float] = None, **kwargs) -> Any:
        with self._lock:
            try:
                if self._proxy is None:
                    self._proxy = self._connect()
                self._proxy._pyroClaimOwnership()
                self._proxy._pyroTimeout = timeout or self._timeout
                return getattr(self._proxy, method)(*args, **kwargs)
            except Pyro5.errors.SecurityError as e:
                self.close()
                raise ControllerUnreachableError("%s refused us: %s" % (self._name, e)) \
                    from None
            except (Pyro5.errors.CommunicationError, OSError) as e:
                # includes TimeoutError and ConnectionClosedError; a dead peer ends here
                self.close()
                raise ControllerUnreachableError("%s is unreachable (%s: %s)"
                                                 % (self._name, type(e).__name__, e)) from None

    def ping(self, timeout: float = 5.0) -> bool:
        try:
            self.call("ping", timeout=timeout)
            return True
        except ControllerUnreachableError:
            return False

    def close(self) -> None:
        with self._lock:
            if self._proxy is not None:
                try:
                    self._proxy._pyroClaimOwnership()
                    self._proxy._pyroRelease()
                except Exception as e:     # a dead peer: its socket is closed below
                    _logger.debug("releasing the proxy of %s: %s", self._name, e)
                self._proxy = None
            if self._sock is not None:
                self._sock.close()      # a proxy on a connected socket leaves it open
                self._sock = None


def unix_uri(object_id: str, sock_path: str) -> str:
    return "PYRO:%s@./u:%s" % (object_id, sock_path)


def add_remote_methods(cls: type, mutating, queries) -> None:
    """Give ``cls`` one method per remote name, forwarded over ``self._control`` (long
    timeout) for mutating calls and ``self._query`` (short timeout) for queries."""
    def remote(name: str, connection: str):
        def method(self, *args, **kwargs):
            return getattr(self, connection).call(name, *args, **kwargs)
        method.__name__ = name
        return method
    for name in mutating:
        setattr(cls, name, remote(name, "_control"))
    for name in queries:
        setattr(cls, name, remote(name, "_query"))
