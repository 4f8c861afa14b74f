"""ExperimentData: the neutral form shared by the design layer, the XML and the engine."""

from typing import Any, Dict, List, Optional, Tuple

from nepi.errors import DesignError


class ExperimentData:
    """``data[guid] -> dict`` for testbeds and boxes (NEPI 2 shape), plus source lines."""

    def __init__(self) -> None:
        self.data: Dict[int, dict] = {}
        # guid -> line in the XML it was read from (for error messages); empty if built in code
        self.lines: Dict[int, int] = {}

    @property
    def guids(self) -> List[int]:
        return list(self.data)

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
        return [g for g in self.sorted_guids() if self.is_testbed_data(g)]

    def box_guids(self, testbed_guid: Optional[int] = None) -> List[int]:
        return [g for g in self.sorted_guids() if self.is_box_data(g)
                and (testbed_guid is None or self.data[g]["testbed_guid"] == testbed_guid)]


class ExperimentParser:
    """Converts between ExperimentDescription objects and ExperimentData."""

    def to_data(self, experiment_description) -> ExperimentData:
        data = ExperimentData()
        for tbd in experiment_description.testbed_descriptions:
            data.add_testbed_data(tbd.guid, tbd.provider.testbed_id, tbd.provider.testbed_version)
            self._graphical_info_to_data(data, tbd.guid, tbd.graphical_info)
            self._attributes_to_data(data, tbd.guid, tbd)
            for box in tbd.boxes:
                data.add_box_data(box.guid, tbd.guid, box.factory_id)
                self._graphical_info_to_data(data, box.guid, box.graphical_info)
                for name, value in box.factory_attributes.items():
                    data.add_factory_attribute_data(box.guid, name, value)
                self._attributes_to_data(data, box.guid, box)
                for trace in box.traces:
                    if trace.enabled:
                        data.add_trace_data(box.guid, trace.name)
                for connector in box.connectors:
                    for peer in connector.connections:
                        data.add_connection_data(box.guid, connector.connector_type.name,
                                                 peer.box.guid, peer.connector_type.name)
                for addr in getattr(box, "addresses", []):
                    broadcast = addr.get_attribute_value("Broadcast") \
                        if addr.is_attribute_modified("Broadcast") else None
                    data.add_address_data(box.guid, addr.get_attribute_value("Address"),
                                          addr.get_attribute_value("NetPrefix"), broadcast)
                for route in getattr(box, "routes", []):
                    data.add_route_data(box.guid, *(route.get_attribute_value(n) for n in
                                                    ("Destination", "NetPrefix", "NextHop",
                                                     "Metric", "Device")))
        return data

    @staticmethod
    def _graphical_info_to_data(data, guid, gi) -> None:
        data.add_graphical_info_data(guid, gi.x, gi.y, gi.width, gi.height)

    @staticmethod
    def _attributes_to_data(data, guid, amap) -> None:
        for attr in amap.attributes:
            if attr.modified or attr.has_no_default_value:
                data.add_attribute_data(guid, attr.name, attr.value)

    def from_data(self, experiment_description, data: ExperimentData) -> None:
        """Build objects from data that check_data found free of blocking problems."""
        from nepi.core.checks import check_data
        from nepi.core.design import FactoriesProvider
        blocking = [p for p in check_data(data) if p.blocking]
        if blocking:
            raise DesignError(blocking, "cannot load experiment")
        boxes = {}
        for guid in data.testbed_guids():
            testbed_id, version = data.get_testbed_data(guid)
            provider = FactoriesProvider(testbed_id)
            tbd = experiment_description.add_testbed_description(provider, guid)
            self._restore_common(data, guid, tbd)
        for guid in data.box_guids():
            testbed_guid, factory_id = data.get_box_data(guid)
            tbd = experiment_description.testbed_description(testbed_guid)
            box = tbd.create(factory_id, guid, dict(data.get_factory_attribute_data(guid)))
            self._restore_common(data, guid, box)
            for name in data.get_trace_data(guid):
                box.enable_trace(name)
            for (address, netprefix, broadcast) in data.get_address_data(guid):
                addr = box.add_address()
                if address:
                    addr.set_attribute_value("Address", address)
                if netprefix is not None:
                    addr.set_attribute_value("NetPrefix", netprefix)
                if broadcast:
                    addr.set_attribute_value("Broadcast", broadcast)
            for route_fields in data.get_route_data(guid):
                route = box.add_route()
                for name, value in zip(("Destination", "NetPrefix", "NextHop", "Metric",
                                        "Device"), route_fields):
                    if value is not None:
                        route.set_attribute_value(name, value)
            boxes[guid] = box
        for guid, box in boxes.items():
            for (connector, other_guid, other_connector) in data.get_connection_data(guid):
                mine = box.connector(connector)
                other = boxes[other_guid].connector(other_connector)
                if not mine.is_connected(other):
                    mine.connect(other)

    @staticmethod
    def _restore_common(data, guid, obj) -> None:
        x, y, w, h = data.get_graphical_info_data(guid)
        obj.graphical_info.x, obj.graphical_info.y = x, y
        obj.graphical_info.width, obj.graphical_info.height = w, h
        for name, value in data.get_attribute_data(guid):
            if value is not None:
                obj.set_attribute_value(name, value)
