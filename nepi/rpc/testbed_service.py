"""The object a testbed daemon serves: the TestbedController contract, plus ping and an
identity check, forwarding to the real controller in the daemon process."""

import json
import logging
import os
import time

import Pyro5.api

from nepi.rpc.service import ServiceBase, forwarding_class
from nepi.util.constants import TestbedStatus as TS

_logger = logging.getLogger("nepi.rpc.testbed_service")

MUTATING = ("defer_configure", "defer_create", "defer_create_set", "defer_factory_set",
            "defer_connect", "defer_cross_connect", "defer_add_trace", "defer_add_address",
            "defer_add_route", "program", "do_setup", "do_create", "do_connect_init",
            "do_connect_compl", "do_preconfigure", "do_configure", "do_prestart",
            "do_cross_connect_init", "do_cross_connect_compl", "start", "stop", "recover",
            "set", "action")
QUERIES = ("get", "get_values", "get_modified_values", "get_route", "get_address", "get_attribute_list",
           "get_factory_id", "status", "testbed_status", "failure", "trace", "traces_info",
           "exec_start", "exec_read", "exec_write", "exec_resize", "exec_close")


class _TestbedServiceBase(ServiceBase):
    def __init__(self, controller, testbed_guid) -> None:
        super().__init__()
        self._controller = controller
        self._testbed_guid = testbed_guid
        self._started = time.time()

    def _target(self):
        return self._controller

    @Pyro5.api.expose
    def identity(self) -> dict:
        return {"testbed_id": self._controller.testbed_id,
                "testbed_version": self._controller.testbed_version,
                "testbed_guid": self._testbed_guid, "pid": os.getpid(),
                "uptime": time.time() - self._started}

    @Pyro5.api.expose
    def program_json(self, text: str) -> None:
        """program() with its calls as one JSON text: serpent decodes a large nested list
        with ast.literal_eval (0.1-0.2 s for a 2,000-element design), json in ms."""
        try:
            calls = json.loads(text)
        except ValueError as e:
            raise ValueError("program_json: not a JSON text: %s" % e) from None
        if not isinstance(calls, list) or not all(
                isinstance(c, list) and c and isinstance(c[0], str) for c in calls):
            raise ValueError("program_json: expected a list of [method, arg, ...] calls")
        self.program(calls)

    @Pyro5.api.expose
    def guids(self) -> list:
        return list(self._controller.guids)

    @Pyro5.api.expose
    def shutdown(self) -> None:
        """Release the testbed's resources, then let the daemon exit."""
        try:
            with self._lock:
                self._controller.shutdown()
        finally:
            self.stop_event.set()

    def keeps_alive(self) -> bool:
        """A running testbed must survive its controller's death (recovery needs it)."""
        try:
            return self._controller.testbed_status() == TS.STATUS_STARTED
        except Exception as e:
            _logger.debug("cannot tell whether the testbed runs (%s): the daemon stays", e)
            return True


TestbedService = forwarding_class("TestbedService", _TestbedServiceBase, MUTATING, QUERIES)
