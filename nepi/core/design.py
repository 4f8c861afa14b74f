"""Design model: an experiment description, its testbed descriptions and their boxes, and
its conversion to and from ExperimentData (what the XML parser reads and writes, and what
nepi.core.checks judges).

NEPI 2 scripts import everything from here, so the boxes (nepi.core.box) and the
FactoriesProvider (nepi.core.metadata) are re-exported.
"""

from typing import Any, Dict, List, Optional, Union

from nepi.core.attributes import AttributesMap
from nepi.core.box import (Address, AddressableMixin, Box, Connector, Route, RoutableMixin,
                           Trace, UserAddressableMixin, UserRoutableMixin, create_box)
from nepi.core.checks import check_data
from nepi.core.metadata import FactoriesProvider, Metadata
from nepi.errors import DesignError, Problem
from nepi.util.graphical_info import GraphicalInfo
from nepi.util.guid import GuidGenerator
from nepi.util.netrefs import ADDRESS_FIELDS, ROUTE_FIELDS
from nepi.util.parser._xml import XmlExperimentParser
from nepi.util.gcpause import gc_paused
from nepi.util.parser.base import ExperimentData

__all__ = ["Address", "AddressableMixin", "Box", "Connector", "ExperimentDescription",
           "FactoriesProvider", "Route", "RoutableMixin", "TestbedDescription", "Trace",
           "UserAddressableMixin", "UserRoutableMixin"]

class TestbedDescription(AttributesMap):
    """One testbed of a design: its attributes, and the boxes made from its factories."""

    def __init__(self, guid_generator: GuidGenerator, provider: FactoriesProvider,
                 guid: Optional[int] = None) -> None:
        super().__init__()
        self._guid_generator = guid_generator
        self._guid = guid_generator.next(guid)
        self._provider = provider
        self._boxes: Dict[int, Box] = {}
        self.graphical_info = GraphicalInfo()
        metadata = Metadata(provider.testbed_id)
        for attr in metadata.testbed_attributes().attributes:
            self._add_attribute_object(attr)

    guid = property(lambda self: self._guid)
    provider = property(lambda self: self._provider)

    def _attributes_owner(self) -> str:
        return "testbed %d (%s)" % (self._guid, self._provider.testbed_id)

    @property
    def boxes(self) -> List[Box]:
        return list(self._boxes.values())

    def box(self, guid: int) -> Optional[Box]:
        return self._boxes.get(guid)

    def create(self, factory_id: str, guid: Optional[int] = None,
               factory_attributes: Optional[Dict[str, Any]] = None) -> Box:
        factory = self._provider.factory(factory_id)   # validate before taking a guid
        guid = self._guid_generator.next(guid)
        box = create_box(factory, guid, self._guid, factory_attributes)
        self._boxes[guid] = box
        return box

    def delete(self, guid: int) -> None:
        box = self._boxes.pop(guid)
        box.destroy()

    def destroy(self) -> None:
        for guid in list(self._boxes):
            self.delete(guid)
        self._boxes = {}
        self._provider = None


class ExperimentDescription:
    """A whole design: testbed descriptions whose elements share one guid numbering."""

    def __init__(self) -> None:
        self._guid_generator = GuidGenerator()
        self._testbed_descriptions: Dict[int, TestbedDescription] = {}

    @property
    def testbed_descriptions(self) -> List[TestbedDescription]:
        return list(self._testbed_descriptions.values())

    def add_testbed_description(self, provider: FactoriesProvider,
                                guid: Optional[int] = None) -> TestbedDescription:
        tbd = TestbedDescription(self._guid_generator, provider, guid)
        self._testbed_descriptions[tbd.guid] = tbd
        return tbd

    def remove_testbed_description(self, guid: int) -> None:
        tbd = self._testbed_descriptions.pop(guid)
        tbd.destroy()

    def testbed_description(self, guid: int) -> Optional[TestbedDescription]:
        return self._testbed_descriptions.get(guid)

    def box(self, guid: int) -> Optional[Box]:
        for tbd in self._testbed_descriptions.values():
            box = tbd.box(guid)
            if box is not None:
                return box
        return None

    def get_element(self, guid: int):
        return self._testbed_descriptions.get(guid) or self.box(guid)

    def get_element_by_label(self, label: Optional[str]):
        if label is None:
            return None
        for tbd in self._testbed_descriptions.values():
            if tbd.get_attribute_value("label") == label:
                return tbd
            for box in tbd.boxes:
                if box.get_attribute_value("label") == label:
                    return box
        return None

    @gc_paused()
    def to_data(self) -> ExperimentData:
        """This design as ExperimentData (what is written to XML)."""
        data = ExperimentData()
        for tbd in self._testbed_descriptions.values():
            data.add_testbed_data(tbd.guid, tbd.provider.testbed_id, tbd.provider.testbed_version)
            _position_to_data(data, tbd.guid, tbd)
            _attributes_to_data(data, tbd.guid, tbd)
            for box in tbd.boxes:
                _box_to_data(data, tbd.guid, box)
        return data

    @gc_paused()
    def load_data(self, data: ExperimentData) -> None:
        """Add the content of ``data`` (guids preserved), unless check_data finds it a
        blocking problem: then raise DesignError listing them all."""
        blocking = [p for p in check_data(data) if p.blocking]
        if blocking:
            raise DesignError(blocking, "cannot load experiment")
        boxes = {}
        for guid in data.testbed_guids():
            testbed_id, _version = data.get_testbed_data(guid)
            tbd = self.add_testbed_description(FactoriesProvider(testbed_id), guid)
            _common_from_data(data, guid, tbd)
        for guid in data.box_guids():
            testbed_guid, factory_id = data.get_box_data(guid)
            box = self._testbed_descriptions[testbed_guid].create(
                factory_id, guid, dict(data.get_factory_attribute_data(guid)))
            _common_from_data(data, guid, box)
            _box_from_data(data, box)
            boxes[guid] = box
        # check_data found every connection valid: each is linked once, from either end
        for guid, box in boxes.items():
            connections = data.data[guid].get("connections")
            if not connections:
                continue
            for connector, peers in connections.items():
                mine = box.connector(connector)
                for other_guid, other_connector in peers.items():
                    other = boxes[other_guid].connector(other_connector)
                    if not mine.is_connected(other):
                        mine._link(other)

    @gc_paused()
    def to_xml(self) -> str:
        return XmlExperimentParser().data_to_xml(self.to_data())

    @gc_paused()
    def from_xml(self, xml: Union[str, bytes]) -> None:
        """Add the content of a design XML (str or bytes); guids are preserved."""
        self.load_data(XmlExperimentParser().from_xml_to_data(xml))

    def problems(self) -> List[Problem]:
        """Every problem of this design (see nepi.core.checks)."""
        return check_data(self.to_data())

    def validate(self) -> None:
        """Raise DesignError listing every problem, or return if the design is sound."""
        problems = self.problems()
        if problems:
            raise DesignError(problems)

    def destroy(self) -> None:
        for guid in list(self._testbed_descriptions):
            self.remove_testbed_description(guid)


def _position_to_data(data: ExperimentData, guid: int, element) -> None:
    gi = element.graphical_info
    data.add_graphical_info_data(guid, gi.x, gi.y, gi.width, gi.height)


def _attributes_to_data(data: ExperimentData, guid: int, amap: AttributesMap) -> None:
    """The attributes worth saving: changed ones, and those without a default."""
    for name, value in amap._values_to_save():
        data.add_attribute_data(guid, name, value)


def _box_to_data(data: ExperimentData, testbed_guid: int, box: Box) -> None:
    guid = box.guid
    data.add_box_data(guid, testbed_guid, box.factory_id)
    _position_to_data(data, guid, box)
    for name, value in box.factory_attributes.items():
        data.add_factory_attribute_data(guid, name, value)
    _attributes_to_data(data, guid, box)
    for name in box._enabled_traces():
        data.add_trace_data(guid, name)
    for connector, other_guid, other_connector in box._connection_records():
        data.add_connection_data(guid, connector, other_guid, other_connector)
    for addr in getattr(box, "addresses", []):
        broadcast = addr.get_attribute_value("Broadcast") \
            if addr.is_attribute_modified("Broadcast") else None
        data.add_address_data(box.guid, addr.get_attribute_value("Address"),
                              addr.get_attribute_value("NetPrefix"), broadcast)
    for route in getattr(box, "routes", []):
        data.add_route_data(box.guid, *(route.get_attribute_value(n) for n in ROUTE_FIELDS))


def _common_from_data(data: ExperimentData, guid: int, element) -> None:
    """Position and attributes of a testbed description or a box (values check_data
    found valid)."""
    entry = data.data[guid]
    if entry.get("graphical_info"):
        gi = element.graphical_info
        gi.x, gi.y, gi.width, gi.height = data.get_graphical_info_data(guid)
    attrs = entry.get("attributes")
    if attrs:
        for name, value in attrs.items():
            if value is not None:
                element._set_checked_value(name, value)


def _box_from_data(data: ExperimentData, box: Box) -> None:
    entry = data.data[box.guid]
    for name in entry.get("traces", ()):
        box.enable_trace(name)
    if entry.get("addresses"):
        for (address, netprefix, broadcast) in data.get_address_data(box.guid):
            # an empty Address or Broadcast stands for none
            _set_fields(box.add_address(), ADDRESS_FIELDS, (address or None, netprefix,
                                                            broadcast or None))
    if entry.get("routes"):
        for fields in data.get_route_data(box.guid):
            _set_fields(box.add_route(), ROUTE_FIELDS, fields)


def _set_fields(amap: AttributesMap, names, values) -> None:
    """Set the fields that have a value: the others keep their defaults."""
    for name, value in zip(names, values):
        if value is not None:
            amap.set_attribute_value(name, value)
