"""A testbed at run time (a mixin of nepi.core.testbed_impl.TestbedController): attribute
values, addresses and routes, element status and traces.
"""

from typing import Any, Callable, Dict, List, Optional

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

    def trace(self, guid: int, trace_id: str, attribute: str = "value") -> Any:
        if attribute == "value":
            with open(self.trace_filepath(guid, trace_id), errors="replace") as f:
                return f.read()
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
