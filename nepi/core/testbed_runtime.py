"""A testbed at run time (a mixin of nepi.core.testbed_impl.TestbedController): attribute
values, addresses and routes, element status and traces.
"""

import base64
from typing import Any, Callable, Dict, List, Optional

from nepi.core.exec_sessions import ExecSessions
from nepi.util.constants import TIME_NOW
from nepi.util.constants import ApplicationStatus as AS
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.netrefs import ADDRESS_FIELDS, ROUTE_FIELDS


class Runtime:
    """Uses the controller's ``_create``, ``_create_set``, ``_set``, ``_live``,
    ``_add_address``, ``_add_route``, ``_add_trace`` and ``_started``."""

    def set(self, guid: int, name: str, value: Any, time: str = TIME_NOW) -> None:
        attr = self._box_attribute(guid, name)
        value = self._check_value(attr, value, "attribute", self._element_owner(guid))
        if self._started and (attr.is_exec_read_only or attr.is_exec_immutable):
            raise AttributeError("Attribute %s can only be modified during experiment design"
                                 % name)
        self._setlog.setdefault(guid, {}).setdefault(time, {})[name] = value
        self._set.setdefault(guid, {})[name] = value

    def provide(self, guid: int, name: str, read: Callable[[], Any]) -> None:
        """Answer ``get(guid, name)`` with ``read()``: a value the testbed keeps live (a
        TunChannel's counters), never stored, so not in the execute XML."""
        self._live[(guid, name)] = read

    def get(self, guid: int, name: str, time: str = TIME_NOW) -> Any:
        attr = self._box_attribute(guid, name)
        read = self._live.get((guid, name))
        if read is not None:
            return read()
        if name in self._set.get(guid, {}):
            return self._set[guid][name]
        if name in self._create_set.get(guid, {}):
            return self._create_set[guid][name]
        return attr.value

    def get_values(self, requests: List[list]) -> List[Any]:
        values = []
        for guid, name in requests:
            try:
                values.append(self.get(guid, name))
            except Exception as e:        # the contract: a failing get yields None
                self._logger.debug("get(%s, %r) failed: %s", guid, name, e)
                values.append(None)
        return values

    def get_modified_values(self) -> Dict[int, Dict[str, Any]]:
        values: Dict[int, Dict[str, Any]] = {}
        for source in (self._create_set, self._set):
            for guid, attrs in source.items():
                values.setdefault(guid, {}).update(attrs)
        return values

    def _indexed(self, table: Dict[int, List[tuple]], fields: tuple, what: str, guid: int,
                 index: int, attribute: str) -> Any:
        if attribute not in fields:
            raise AttributeError("Invalid %s attribute %r (expected one of %s)"
                                 % (what, attribute, ", ".join(fields)))
        entries = table.get(guid)
        if not entries:
            raise KeyError("GUID %d not found in %s" % (guid, self._testbed_id))
        if not 0 <= index < len(entries):
            raise AttributeError("GUID %d at %s does not have %s #%d"
                                 % (guid, self._testbed_id,
                                    "an address" if what == "address" else "a route", index))
        return entries[index][fields.index(attribute)]

    def get_address(self, guid: int, index: int, attribute: str = "Address") -> Any:
        return self._indexed(self._add_address, ADDRESS_FIELDS, "address", guid, index,
                             attribute)

    def get_route(self, guid: int, index: int, attribute: str) -> Any:
        return self._indexed(self._add_route, ROUTE_FIELDS, "route", guid, index, attribute)

    def get_attribute_list(self, guid: int, filter_flags: Optional[int] = None,
                           exclude: bool = False) -> List[str]:
        return self._factory_of(guid).box_attributes.get_attribute_list(filter_flags, exclude)

    def get_factory_id(self, guid: int) -> str:
        if guid not in self._create:
            raise KeyError("Element guid %d doesn't exist in testbed %s"
                           % (guid, self._testbed_id))
        return self._create[guid]

    def get_connected(self, guid: int, connector_type_name: str,
                      other_connector_type_name: str) -> List[int]:
        peers = self._connect.get(guid, {}).get(connector_type_name, {})
        return [g for g, c in peers.items() if c == other_connector_type_name]

    def status(self, guid: Optional[int] = None) -> int:
        if guid is None:
            return self._status
        factory = self._factory_of(guid)
        if factory.status_function is None:
            return AS.STATUS_UNDETERMINED
        return factory.status_function(self, guid)

    def testbed_status(self) -> int:
        return self._status

    def trace_filepath(self, guid: int, trace_id: str) -> str:
        raise NotImplementedError

    def trace_filename(self, guid: int, trace_id: str) -> str:
        raise NotImplementedError

    def application_action(self, guid: int, action: str, applications) -> None:
        """``start`` (again) or ``stop`` one of the ``applications`` factories' elements
        while the experiment runs, for testbeds whose applications are processes (with
        start_application, stop_application and application_status)."""
        if self._create.get(guid) not in applications:
            raise RuntimeError("element %d (%s) has no actions; applications accept "
                               "'start' and 'stop'" % (guid, self._create.get(guid)))
        if action == "start":
            if self.application_status(guid) == AS.STATUS_RUNNING:
                raise RuntimeError("application %d is already running" % guid)
            self.start_application(guid)
        elif action == "stop":
            self.stop_application(guid)
        else:
            raise ValueError("unknown action %r for application %d (expected 'start' or "
                             "'stop')" % (action, guid))

    # -- commands in nodes (nepid exec / shell) --------------------------------------------

    def exec_start(self, guid: int, argv: List[str], pty: bool = False, rows: int = 24,
                   cols: int = 80) -> int:
        if not isinstance(argv, (list, tuple)) or not argv or \
                not all(isinstance(a, str) for a in argv):
            raise ValueError("the command must be a non-empty list of strings, not %r"
                             % (argv,))
        proc, master = self._exec_process(int(guid), list(argv), bool(pty), int(rows),
                                          int(cols))
        return self._exec.add(proc, master)

    def _exec_process(self, guid: int, argv: List[str], pty: bool, rows: int, cols: int):
        """(Popen, pty master fd or None) of ``argv`` started in node ``guid``."""
        raise NotImplementedError("testbed %s cannot run commands in its nodes"
                                  % self._testbed_id)

    @property
    def _exec(self) -> ExecSessions:
        sessions = self.__dict__.get("_exec_sessions")
        if sessions is None:
            sessions = self.__dict__.setdefault("_exec_sessions", ExecSessions())
        return sessions

    def exec_read(self, session: int, wait: float = 0.5) -> dict:
        return self._exec.read(session, wait)

    def exec_write(self, session: int, data: str) -> None:
        self._exec.write(session, data)

    def exec_resize(self, session: int, rows: int, cols: int) -> None:
        self._exec.resize(session, rows, cols)

    def exec_close(self, session: int) -> None:
        self._exec.close(session)

    def trace(self, guid: int, trace_id: str, attribute: str = "value") -> Any:
        """``value``: the trace as text; ``base64``: its exact bytes, base64-encoded (for
        binary traces such as pcap); ``path``, ``filename``: where it is kept."""
        if attribute == "value":
            with open(self.trace_filepath(guid, trace_id), errors="replace") as f:
                return f.read()
        if attribute == "base64":
            with open(self.trace_filepath(guid, trace_id), "rb") as f:
                return base64.b64encode(f.read()).decode("ascii")
        if attribute == "path":
            return self.trace_filepath(guid, trace_id)
        if attribute == "filename":
            return self.trace_filename(guid, trace_id)
        return None

    def traces_info(self) -> Dict[int, Dict[str, dict]]:
        host = self._testbed_attribute(DC.DEPLOYMENT_HOST)
        user = self._testbed_attribute(DC.DEPLOYMENT_USER)
        return {guid: {trace_id: {"host": host, "user": user,
                                  "filepath": self.trace(guid, trace_id, "path")}
                       for trace_id in traces}
                for guid, traces in self._add_trace.items()}
