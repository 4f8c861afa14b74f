"""Client side: a proxy that presents the secret, has timeouts, may be used from any
thread, and turns transport failures into ControllerUnreachableError."""

import threading
from typing import Any, Dict, Optional

import Pyro5.api
import Pyro5.errors

from nepi.errors import ControllerUnreachableError
from nepi.rpc import PROTOCOL

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


class Connection:
    """A lock-guarded Pyro5 proxy to one daemon object; reconnects after a failure."""

    def __init__(self, uri: str, secret: str, role: str, expect: Optional[Dict] = None,
                 timeout: float = QUERY_TIMEOUT, name: str = "daemon") -> None:
        self._uri = uri
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

    def _connect(self) -> _NepiProxy:
        proxy = _NepiProxy(self._uri)
        proxy._pyroHandshake = {"secret": self._secret, "role": self._role}
        object.__setattr__(proxy, "_nepi_expect", self._expect)
        proxy._pyroSerializer = "serpent"
        proxy._pyroTimeout = CONNECT_TIMEOUT
        proxy._pyroBind()
        proxy._pyroTimeout = self._timeout
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
                except Exception:
                    pass
                self._proxy = None


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
