"""Noticing a lost host while an experiment runs: every host answers a no-op command
each second (through its multiplexed connection, so this is cheap); one that fails
``MISSES`` times in a row is reported lost, once."""

import logging
import threading
from typing import Callable, Dict, List

from nepi.testbeds.linux import remote
from nepi.testbeds.linux.hosts import Host, each_host

_logger = logging.getLogger("nepi.testbeds.linux")

INTERVAL = 1.0
MISSES = 2
PROBE_TIMEOUT = 4.0


class HostProbe:
    """Probes ``hosts`` until stopped, or until ``keep_going()`` turns false (the
    experiment was shut down by someone else); ``on_lost(node, why)`` for a lost host."""

    def __init__(self, hosts: List[Host], on_lost: Callable[[int, str], None],
                 keep_going: Callable[[], bool], timeout: float,
                 interval: float = INTERVAL) -> None:
        self._hosts = hosts
        self._on_lost = on_lost
        self._keep_going = keep_going
        self._timeout = min(timeout, PROBE_TIMEOUT)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nepi-linux-probe",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self._timeout + 1)

    def _probe(self, host: Host) -> None:
        host.run(remote.HELLO, timeout=self._timeout)

    def _run(self) -> None:
        misses: Dict[int, int] = {}
        lost = set()
        while not self._stop.wait(self._interval):
            if not self._keep_going():
                return
            watched = [h for h in self._hosts if h.node not in lost]
            _, errors = each_host(watched, self._probe)
            for host in watched:
                if host.node not in errors:
                    misses.pop(host.node, None)
                    continue
                misses[host.node] = misses.get(host.node, 0) + 1
                if misses[host.node] >= MISSES and not self._stop.is_set():
                    lost.add(host.node)
                    why = "%s stopped answering (%s)" % (host, errors[host.node])
                    _logger.error("linux: %s", why)
                    self._on_lost(host.node, why)
