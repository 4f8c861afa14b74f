"""The TestbedController contract: what the experiment controller may call on a testbed.

Every argument and result is a plain value (str, int, float, bool, None, list, dict) so
the same calls work in-process and over Pyro5. ``program`` and ``get_values`` batch the
calls that happen once per element, so a remote testbed costs one round trip per phase.
"""

from typing import Any, Dict, List, Optional

from nepi.util.constants import TIME_NOW
from nepi.util.gcpause import gc_paused

# Methods ``program`` accepts, in the order the experiment controller issues them.
PROGRAMMING_METHODS = ("defer_configure", "defer_create", "defer_create_set",
                       "defer_factory_set", "defer_connect", "defer_cross_connect",
                       "defer_add_trace", "defer_add_address", "defer_add_route")


class TestbedController:
    """Abstract contract (NEPI 2's ``nepi.core.execute.TestbedController``)."""

    def __init__(self, testbed_id: str, testbed_version: str) -> None:
        self._testbed_id = testbed_id
        self._testbed_version = testbed_version

    @property
    def testbed_id(self) -> str:
        return self._testbed_id

    @property
    def testbed_version(self) -> str:
        return self._testbed_version

    @property
    def guids(self) -> List[int]:
        raise NotImplementedError

    # programming
    def defer_configure(self, name: str, value: Any) -> None:
        raise NotImplementedError

    def defer_create(self, guid: int, factory_id: str) -> None:
        raise NotImplementedError

    def defer_create_set(self, guid: int, name: str, value: Any) -> None:
        raise NotImplementedError

    def defer_factory_set(self, guid: int, name: str, value: Any) -> None:
        raise NotImplementedError

    def defer_connect(self, guid1: int, connector_type_name1: str, guid2: int,
                      connector_type_name2: str) -> None:
        raise NotImplementedError

    def defer_cross_connect(self, guid: int, connector_type_name: str, cross_guid: int,
                            cross_testbed_guid: int, cross_testbed_id: str,
                            cross_factory_id: str, cross_connector_type_name: str) -> None:
        raise NotImplementedError

    def defer_add_trace(self, guid: int, trace_id: str) -> None:
        raise NotImplementedError

    def defer_add_address(self, guid: int, address: str, netprefix: int,
                          broadcast: Optional[str]) -> None:
        raise NotImplementedError

    def defer_add_route(self, guid: int, destination: str, netprefix: int, nexthop: str,
                        metric: int = 0, device: Optional[str] = None) -> None:
        raise NotImplementedError

    @gc_paused()
    def program(self, calls: List[list]) -> None:
        """Run a batch of ``[method_name, arg, ...]`` programming calls in order."""
        methods: Dict[Any, Any] = {}     # a batch holds a call or more per element
        for call in calls:
            name = call[0]
            try:
                method = methods[name]
            except (KeyError, TypeError):
                if name not in PROGRAMMING_METHODS:
                    raise ValueError("%r is not a programming call (expected one of %s)"
                                     % (name, ", ".join(PROGRAMMING_METHODS))) from None
                method = methods[name] = getattr(self, name)
            method(*call[1:])

    # phases
    def do_setup(self) -> None:
        raise NotImplementedError

    def do_create(self) -> None:
        raise NotImplementedError

    def do_connect_init(self) -> None:
        raise NotImplementedError

    def do_connect_compl(self) -> None:
        raise NotImplementedError

    def do_preconfigure(self) -> None:
        raise NotImplementedError

    def do_configure(self) -> None:
        raise NotImplementedError

    def do_prestart(self) -> None:
        raise NotImplementedError

    def do_cross_connect_init(self, cross_data: Dict[int, Dict[int, dict]]) -> None:
        raise NotImplementedError

    def do_cross_connect_compl(self, cross_data: Dict[int, Dict[int, dict]]) -> None:
        raise NotImplementedError

    def start(self, time: str = TIME_NOW) -> None:
        raise NotImplementedError

    def stop(self, time: str = TIME_NOW) -> None:
        raise NotImplementedError

    def recover(self) -> None:
        raise NotImplementedError

    # runtime
    def set(self, guid: int, name: str, value: Any, time: str = TIME_NOW) -> None:
        raise NotImplementedError

    def get(self, guid: int, name: str, time: str = TIME_NOW) -> Any:
        raise NotImplementedError

    def get_values(self, requests: List[list]) -> List[Any]:
        """Batch of ``[guid, name]`` gets; a failing get yields None."""
        raise NotImplementedError

    def get_modified_values(self) -> Dict[int, Dict[str, Any]]:
        """Every attribute value set on an element (at creation or since): what the
        execute XML must record beyond the design."""
        raise NotImplementedError

    def get_route(self, guid: int, index: int, attribute: str) -> Any:
        raise NotImplementedError

    def get_address(self, guid: int, index: int, attribute: str = "Address") -> Any:
        raise NotImplementedError

    def get_attribute_list(self, guid: int, filter_flags: Optional[int] = None,
                           exclude: bool = False) -> List[str]:
        raise NotImplementedError

    def get_factory_id(self, guid: int) -> str:
        raise NotImplementedError

    def action(self, time: str, guid: int, action: str) -> None:
        raise NotImplementedError

    def status(self, guid: Optional[int] = None) -> int:
        raise NotImplementedError

    def testbed_status(self) -> int:
        raise NotImplementedError

    def exec_start(self, guid: int, argv: List[str], pty: bool = False, rows: int = 24,
                   cols: int = 80) -> int:
        """Run ``argv`` in node ``guid`` (with ``pty``, on a terminal of ``rows`` x
        ``cols``); a session number for exec_read/exec_write/exec_resize/exec_close."""
        raise NotImplementedError("testbed %s cannot run commands in its nodes"
                                  % self.testbed_id)

    def exec_read(self, session: int, wait: float = 0.5) -> dict:
        raise NotImplementedError

    def exec_write(self, session: int, data: str) -> None:
        raise NotImplementedError

    def exec_resize(self, session: int, rows: int, cols: int) -> None:
        raise NotImplementedError

    def exec_close(self, session: int) -> None:
        raise NotImplementedError

    def failure(self) -> Optional[str]:
        """Why this testbed failed on its own while running (e.g. a host of it stopped
        answering), or None: the controller's watcher applies its recovery policy."""
        return None

    def trace(self, guid: int, trace_id: str, attribute: str = "value") -> Any:
        raise NotImplementedError

    def traces_info(self) -> Dict[int, Dict[str, dict]]:
        raise NotImplementedError

    def shutdown(self) -> None:
        raise NotImplementedError
