"""Building Pyro5-exposed services that forward to an in-process object.

Mutating calls are serialised by a lock (controllers are not thread-safe); queries are
not, so status and traces stay answerable during a long deployment phase. Exceptions are
made portable so the client re-raises them with their type and message."""

import functools
import logging
import threading
from typing import Callable, Iterable

import Pyro5.api
import Pyro5.errors

from Pyro5.serializers import SerpentSerializer

from nepi.rpc.serialization import portable_exception

SERPENT_ID = SerpentSerializer.serializer_id

_logger = logging.getLogger("nepi.rpc.service")


def _forwarder(name: str, locked: bool) -> Callable:
    def method(self, *args, **kwargs):
        try:
            if locked:
                with self._lock:
                    return getattr(self._target(), name)(*args, **kwargs)
            return getattr(self._target(), name)(*args, **kwargs)
        except Exception as e:
            _logger.info("%s failed: %s", name, e)
            raise portable_exception(e) from None
    method.__name__ = name
    return Pyro5.api.expose(method)


def _serpent_only(method: Callable) -> Callable:
    """Refuse calls that arrive in any serializer but serpent, before the method runs."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        used = getattr(Pyro5.api.current_context, "serializer_id", SERPENT_ID)
        if used != SERPENT_ID:
            raise Pyro5.errors.SecurityError("only the serpent serializer is accepted")
        return method(self, *args, **kwargs)
    return Pyro5.api.expose(guarded)


def forwarding_class(name: str, base: type, mutating: Iterable[str],
                     queries: Iterable[str]) -> type:
    namespace = {m: _forwarder(m, True) for m in mutating}
    namespace.update({m: _forwarder(m, False) for m in queries})
    cls = type(name, (base,), namespace)
    for attr in dir(cls):
        member = getattr(cls, attr, None)
        if callable(member) and getattr(member, "_pyroExposed", False):
            setattr(cls, attr, _serpent_only(member))
    return Pyro5.api.behavior(instance_mode="single")(cls)


class ServiceBase:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.stop_event = threading.Event()

    def _target(self):
        raise NotImplementedError

    @Pyro5.api.expose
    def ping(self) -> bool:
        return True
