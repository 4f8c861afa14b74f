"""Building Pyro5-exposed services that forward to an in-process object.

Mutating calls are serialised by a lock (controllers are not thread-safe); queries are
not, so status and traces stay answerable during a long deployment phase. Exceptions are
made portable so the client re-raises them with their type and message."""

import logging
import threading
from typing import Callable, Iterable

import Pyro5.api

from nepi.rpc.serialization import portable_exception

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


def forwarding_class(name: str, base: type, mutating: Iterable[str],
                     queries: Iterable[str]) -> type:
    namespace = {m: _forwarder(m, True) for m in mutating}
    namespace.update({m: _forwarder(m, False) for m in queries})
    cls = type(name, (base,), namespace)
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
