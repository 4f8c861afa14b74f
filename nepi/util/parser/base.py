"""ExperimentData: the neutral form shared by the design layer, the XML and the engine."""

import copy
import marshal
from typing import Any, Dict, List, Optional, Tuple

# Values a design holds (what the XML can store): copied by reference.
_ATOMIC = frozenset((str, int, float, bool, type(None)))

def _copy(value: Any) -> Any:
    """A deep copy of a value of ExperimentData: dicts and lists are copied, atomic values
    shared, anything else (data built in code) deep-copied."""
    t = type(value)
    if t is dict:
        return {k: v if type(v) in _ATOMIC else _copy(v) for k, v in value.items()}
    if t is list:
        return [v if type(v) in _ATOMIC else _copy(v) for v in value]
    if t in _ATOMIC:
        return value
    return copy.deepcopy(value)


class ExperimentData:
    """``data[guid] -> dict`` for testbeds and boxes (NEPI 2 shape), plus source lines."""

    def __init__(self) -> None:
        self.data: Dict[int, dict] = {}
        # guid -> line in the XML it was read from (for error messages); empty if built in code
        self.lines: Dict[int, int] = {}

    @property
    def guids(self) -> List[int]:
        return list(self.data)

    def copy(self) -> "ExperimentData":
        """A deep copy, as copy.deepcopy makes it but an order of magnitude faster (the
        engine copies the design to deploy it and to write the execute XML)."""
        new = copy.copy(self)      # keeps the class and any other attribute
        try:
            # marshal copies exactly the types XML values have, in C; it refuses others
            new.data = marshal.loads(marshal.dumps(self.data))
        except ValueError:
            new.data = _copy(self.data)
        new.lines = dict(self.lines)
        return new

    def __deepcopy__(self, memo) -> "ExperimentData":
        new = memo[id(self)] = self.copy()
        return new

    def sorted_guids(self) -> List[int]:
        return sorted(self.data)

    def add_testbed_data(self, guid: int, testbed_id: str, testbed_version: str) -> None:
        self.data[guid] = {"testbed_id": testbed_id, "testbed_version": testbed_version}

    def add_box_data(self, guid: int, testbed_guid: int, factory_id: str) -> None:
        self.data[guid] = {"testbed_guid": testbed_guid, "factory_id": factory_id}

    def add_graphical_info_data(self, guid, x, y, width, height) -> None:
        self.data[guid]["graphical_info"] = {"x": x, "y": y, "width": width, "height": height}

    def add_factory_attribute_data(self, guid: int, name: str, value: Any) -> None:
        self.data[guid].setdefault("factory_attributes", {})[name] = value

    def add_attribute_data(self, guid: int, name: str, value: Any) -> None:
        self.data[guid].setdefault("attributes", {})[name] = value

    def set_attribute_data(self, guid: int, name: str, value: Any) -> None:
        if "attributes" not in self.data[guid]:
            raise KeyError("No attributes in reference OBJECT %d" % guid)
        self.data[guid]["attributes"][name] = value

    def del_attribute_data(self, guid: int, name: str) -> None:
        self.data[guid].get("attributes", {}).pop(name, None)

    def add_trace_data(self, guid: int, name: str) -> None:
        self.data[guid].setdefault("traces", []).append(name)

    def add_connection_data(self, guid, connector, other_guid, other_connector) -> None:
        self.data[guid].setdefault("connections", {}).setdefault(connector, {})[other_guid] = \
            other_connector

    def one_sided_connections(self) -> List[Tuple[int, str, int, str]]:
        """The records ``(guid, connector, other_guid, other_connector)`` missing from one
        end of a connection recorded on the other end only. NEPI 2 writes every connection
        on both ends but loads a file that has it on one end only, connecting both.

        Left out (nepi.core.checks reports them): records naming no element or the element
        itself, and those between two elements whose records disagree, each recording a
        connection with the other that the other does not record."""
        if self._connections_mutual():
            return []
        recorded: Dict[Tuple[int, int], Dict[int, set]] = {}
        for guid in self.box_guids():
            for connector, other_guid, other_connector in self.get_connection_data(guid):
                if other_guid == guid or not self.is_box_data(other_guid):
                    continue
                ends = ((guid, connector), (other_guid, other_connector))
                edge = ends if guid < other_guid else ends[::-1]
                try:
                    hash(edge)
                except TypeError:    # data built in code with odd connector names
                    continue
                pair = (edge[0][0], edge[1][0])
                recorded.setdefault(pair, {}).setdefault(guid, set()).add(edge)
        missing = []
        for (low, high), by in recorded.items():
            on_low, on_high = by.get(low, set()), by.get(high, set())
            if on_low - on_high and on_high - on_low:
                continue    # the two ends disagree: no guessing
            for (_, low_connector), (_, high_connector) in on_low - on_high:
                missing.append((high, high_connector, low, low_connector))
            for (_, low_connector), (_, high_connector) in on_high - on_low:
                missing.append((low, low_connector, high, high_connector))
        return sorted(missing, key=lambda m: (m[0], m[2], str(m[1]), str(m[3])))

    def _connections_mutual(self) -> bool:
        """True if every record naming another element is recorded on that element too:
        then none is one-sided. One pass, for the usual case (NEPI 2 writes both ends)."""
        data = self.data
        for guid, entry in data.items():
            if "factory_id" not in entry:
                continue
            for connector, peers in entry.get("connections", {}).items():
                for other_guid, other_connector in peers.items():
                    other = data.get(other_guid)
                    if other_guid == guid or other is None or "factory_id" not in other:
                        continue
                    try:
                        back = other.get("connections", {}).get(other_connector)
                    except TypeError:    # data built in code with odd connector names
                        continue
                    if back is None or back.get(guid) != connector:
                        return False
        return True

    def complete_connections(self) -> List[Tuple[int, str, int, str]]:
        """Record on both ends each connection recorded on one end only (see
        one_sided_connections); the records added."""
        added = []
        for guid, connector, other_guid, other_connector in self.one_sided_connections():
            peers = self.data[guid].setdefault("connections", {}).setdefault(connector, {})
            if other_guid not in peers:    # the format holds one peer connector per guid
                peers[other_guid] = other_connector
                added.append((guid, connector, other_guid, other_connector))
        return added

    def add_address_data(self, guid, address, netprefix, broadcast) -> None:
        entry = {"NetPrefix": netprefix}
        if address:
            entry["Address"] = address
        if broadcast:
            entry["Broadcast"] = broadcast
        self.data[guid].setdefault("addresses", []).append(entry)

    def add_route_data(self, guid, destination, netprefix, nexthop, metric=0,
                       device=None) -> None:
        self.data[guid].setdefault("routes", []).append(
            {"Destination": destination, "NetPrefix": netprefix, "NextHop": nexthop,
             "Metric": metric, "Device": device})

    def is_testbed_data(self, guid: int) -> bool:
        return "testbed_id" in self.data.get(guid, {})

    def is_box_data(self, guid: int) -> bool:
        return "factory_id" in self.data.get(guid, {})

    def get_testbed_data(self, guid: int) -> Tuple[str, str]:
        d = self.data[guid]
        return d["testbed_id"], d["testbed_version"]

    def get_box_data(self, guid: int) -> Tuple[int, str]:
        d = self.data[guid]
        return d["testbed_guid"], d["factory_id"]

    def get_graphical_info_data(self, guid: int) -> Tuple[float, float, float, float]:
        gi = self.data[guid].get("graphical_info")
        if not gi:
            return (0.0, 0.0, 0.0, 0.0)
        return gi["x"], gi["y"], gi["width"], gi["height"]

    def get_factory_attribute_data(self, guid: int) -> List[Tuple[str, Any]]:
        return list(self.data[guid].get("factory_attributes", {}).items())

    def get_attribute_data(self, guid: int, attribute: Optional[str] = None, default=None):
        attrs = self.data[guid].get("attributes")
        if attribute is None:
            return list(attrs.items()) if attrs else []
        if attrs is None:
            return default
        return attrs.get(attribute, default)

    def get_trace_data(self, guid: int) -> List[str]:
        return list(self.data[guid].get("traces", []))

    def get_connection_data(self, guid: int) -> List[Tuple[str, int, str]]:
        return [(connector, other_guid, other_connector)
                for connector, peers in self.data[guid].get("connections", {}).items()
                for other_guid, other_connector in peers.items()]

    def get_address_data(self, guid: int) -> List[tuple]:
        return [(a.get("Address"), a.get("NetPrefix"), a.get("Broadcast"))
                for a in self.data[guid].get("addresses", [])]

    def get_route_data(self, guid: int) -> List[tuple]:
        return [(r.get("Destination"), r.get("NetPrefix"), r.get("NextHop"),
                 r.get("Metric", 0), r.get("Device"))
                for r in self.data[guid].get("routes", [])]

    def testbed_guids(self) -> List[int]:
        data = self.data
        return [g for g in sorted(data) if "testbed_id" in data[g]]

    def box_guids(self, testbed_guid: Optional[int] = None) -> List[int]:
        data = self.data
        if testbed_guid is None:
            return [g for g in sorted(data) if "factory_id" in data[g]]
        return [g for g in sorted(data) if "factory_id" in data[g]
                and data[g]["testbed_guid"] == testbed_guid]


class ExperimentParser:
    """Converts between design objects and ExperimentData (NEPI 2's interface).

    The parser builds no design objects itself: the experiment description converts itself
    (its to_data() and load_data(data)), so this layer does not depend on the design model.
    """

    def to_data(self, experiment_description) -> ExperimentData:
        return experiment_description.to_data()

    def from_data(self, experiment_description, data: ExperimentData) -> None:
        """Add ``data`` to the description; DesignError if it has blocking problems."""
        experiment_description.load_data(data)
