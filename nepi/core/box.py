"""The elements of a design: boxes, with their connectors, traces, addresses and routes.

A box is an instance of a factory inside one testbed description. Whether a box has
addresses and routes, and whether the user may add them, follows from its factory's tags:
its class mixes in what they ask for (box_class), so a design offers add_address() only
where the testbed can take one.
"""

from typing import Any, Dict, List, Optional

from nepi.core.attributes import Attribute, AttributesMap
from nepi.core.factory import Factory
from nepi.errors import brief
from nepi.util import validation
from nepi.util.graphical_info import GraphicalInfo
from nepi.util.tags import ALLOW_ADDRESSES, ALLOW_ROUTES, HAS_ADDRESSES, HAS_ROUTES, Taggable


class Connector:
    """One end of a box's connector type; knows its peers (symmetric)."""

    def __init__(self, box: "Box", connector_type) -> None:
        self._box = box
        self._connector_type = connector_type
        self._connections: List["Connector"] = []

    box = property(lambda self: self._box)
    connector_type = property(lambda self: self._connector_type)
    connections = property(lambda self: self._connections)

    def __str__(self) -> str:
        return "Connector(%s, %s)" % (self._box, self._connector_type)

    def is_full(self) -> bool:
        return len(self._connections) >= self._connector_type.max

    def is_complete(self) -> bool:
        return len(self._connections) >= self._connector_type.min

    def is_connected(self, connector: "Connector") -> bool:
        return connector in self._connections

    def _refusal(self, connector: "Connector") -> Optional[str]:
        """Why self may not be connected to connector, or None."""
        if self._box.guid == connector.box.guid:
            return "a box cannot be connected to itself"
        if self.is_connected(connector):
            return "already connected"
        for end in (self, connector):
            if end.is_full():
                return "connector %r of box %d is full (max %s)" % (
                    end.connector_type.name, end.box.guid, end.connector_type.max)
        must_cross = self._box.testbed_guid != connector.box.testbed_guid
        if not self._connector_type.can_connect(*connector.connector_type.connector_type_id,
                                                must_cross=must_cross):
            return "%s.%s may not be connected to %s.%s%s" % (
                self._box.factory_id, self._connector_type.name,
                connector.box.factory_id, connector.connector_type.name,
                " across testbeds" if must_cross else " within a testbed")
        return None

    def can_connect(self, connector: "Connector") -> bool:
        return self._refusal(connector) is None

    def connect(self, connector: "Connector") -> None:
        reason = self._refusal(connector) or connector._refusal(self)
        if reason:
            raise RuntimeError("Could not connect. %s to %s: %s" % (self, connector, reason))
        self._link(connector)

    def _link(self, connector: "Connector") -> None:
        """connect() for a connection already found valid (a design loaded after
        nepi.core.checks judged its connections)."""
        self._connections.append(connector)
        connector._connections.append(self)

    def disconnect(self, connector: "Connector") -> None:
        if connector not in self._connections or self not in connector._connections:
            raise RuntimeError("Could not disconnect.")
        self._connections.remove(connector)
        connector._connections.remove(self)

    def get_connected_box(self, idx: int = 0) -> Optional["Box"]:
        if not self._connections:
            return None
        return self._connections[idx].box

    def destroy(self) -> None:
        for peer in list(self._connections):
            self.disconnect(peer)
        self._box = self._connector_type = None


class Trace(AttributesMap):
    def __init__(self, name: str, help: str, enabled: bool = False) -> None:
        super().__init__()
        self._name = name
        self._help = help
        self._enabled = enabled

    name = property(lambda self: self._name)
    help = property(lambda self: self._help)
    enabled = property(lambda self: self._enabled)

    def enable(self) -> None:
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False


class Address(AttributesMap):
    def __init__(self, owner: Optional["Box"] = None) -> None:
        super().__init__()
        self._owner = owner
        self.add_attribute("Address", "Address number", Attribute.STRING,
                           flags=Attribute.NoDefaultValue,
                           validation_function=validation.is_ip_address)
        self.add_attribute("NetPrefix", "Network prefix for the address", Attribute.INTEGER,
                           value=24, range=(0, 128), flags=Attribute.NoDefaultValue,
                           validation_function=validation.is_integer)
        self.add_attribute("Broadcast", "Broadcast address", Attribute.STRING,
                           validation_function=validation.is_ip4_address)

    def _attributes_owner(self) -> str:
        return "address of %s" % (self._owner.describe() if self._owner else "a box")


class Route(AttributesMap):
    def __init__(self, owner: Optional["Box"] = None) -> None:
        super().__init__()
        self._owner = owner
        self.add_attribute("Destination", "Network destination address", Attribute.STRING,
                           validation_function=validation.is_ref_address)
        self.add_attribute("NetPrefix", "Network destination prefix", Attribute.INTEGER,
                           value=24, range=(0, 128), flags=Attribute.NoDefaultValue,
                           validation_function=validation.is_integer)
        self.add_attribute("NextHop", "Address for the next hop", Attribute.STRING,
                           flags=Attribute.NoDefaultValue,
                           validation_function=validation.is_ref_address)
        self.add_attribute("Metric", "Routing metric", Attribute.INTEGER, value=0,
                           flags=Attribute.NoDefaultValue,
                           validation_function=validation.is_integer)
        self.add_attribute("Device", "Network interface the route goes through",
                           Attribute.STRING, flags=Attribute.NoDefaultValue,
                           validation_function=validation.is_string)

    def _attributes_owner(self) -> str:
        return "route of %s" % (self._owner.describe() if self._owner else "a box")


class Box(AttributesMap, Taggable):
    """An element of a design: an instance of a factory inside one testbed description."""

    def __init__(self, guid: int, factory, testbed_guid: int, container=None,
                 factory_attributes: Optional[Dict[str, Any]] = None) -> None:
        AttributesMap.__init__(self)
        Taggable.__init__(self)
        self._tags.extend(factory.tags)
        self._guid = guid
        self._factory_id = factory.factory_id
        self._testbed_guid = testbed_guid
        self._container = container
        self.graphical_info = GraphicalInfo()
        self._connectors = {name: Connector(self, ct)
                            for name, ct in factory._connector_type_items()}
        self._traces = {name: Trace(name, help, enabled)
                        for (name, help, enabled) in factory.traces} if factory.traces else {}
        self._share(factory.box_attributes)
        self._factory_attributes: Dict[str, Any] = dict(
            factory._values_to_save(Attribute.Metadata))
        if factory_attributes:
            self._factory_attributes.update(factory_attributes)

    guid = property(lambda self: self._guid)
    factory_id = property(lambda self: self._factory_id)
    testbed_guid = property(lambda self: self._testbed_guid)
    container = property(lambda self: self._container)
    factory_attributes = property(lambda self: self._factory_attributes)

    def __str__(self) -> str:
        return "Box(%s, %s, %s)" % (self._guid, self._factory_id, self._testbed_guid)

    def describe(self) -> str:
        label = self._attributes.get("label")
        text = "element %d (%s" % (self._guid, self._factory_id)
        if label is not None and label.value:
            text += ", label %s" % brief(label.value)
        return text + ")"

    def _attributes_owner(self) -> str:
        return self.describe()

    @property
    def connectors(self) -> List[Connector]:
        return list(self._connectors.values())

    def connector(self, name: str) -> Connector:
        try:
            return self._connectors[name]
        except KeyError:
            raise KeyError("%s has no connector %s (has: %s)"
                           % (self.describe(), brief(name), ", ".join(self._connectors))) \
                from None

    @property
    def traces(self) -> List[Trace]:
        return list(self._traces.values())

    def _connection_records(self) -> List[tuple]:
        """(connector, peer guid, peer connector) of every connection, in connector
        order: what a design records of them."""
        return [(name, peer._box._guid, peer._connector_type.name)
                for name, connector in self._connectors.items()
                for peer in connector._connections]

    def _enabled_traces(self) -> List[str]:
        return [name for name, trace in self._traces.items() if trace._enabled]

    @property
    def traces_list(self) -> List[str]:
        return list(self._traces)

    def _trace(self, trace_id: str) -> Trace:
        try:
            return self._traces[trace_id]
        except KeyError:
            raise KeyError("%s has no trace %s (has: %s)"
                           % (self.describe(), brief(trace_id), ", ".join(self._traces) or "none")) \
                from None

    def trace_help(self, trace_id: str) -> str:
        return self._trace(trace_id).help

    def enable_trace(self, trace_id: str) -> None:
        self._trace(trace_id).enable()

    def disable_trace(self, trace_id: str) -> None:
        self._trace(trace_id).disable()

    def is_trace_enabled(self, trace_id: str) -> bool:
        return self._trace(trace_id).enabled

    def destroy(self) -> None:
        super().destroy()
        for c in self._connectors.values():
            c.destroy()
        self._connectors = {}
        self._traces = {}


class AddressableMixin:
    """A box that has addresses (tag HAS_ADDRESSES), read-only in a design."""

    def __init__(self, guid, factory, testbed_guid, container=None, factory_attributes=None):
        super().__init__(guid, factory, testbed_guid, container, factory_attributes)
        self._addresses: List[Address] = []
        max_addr = self._factory_attributes.get("maxAddresses")
        if max_addr is not None and self.has_attribute("maxAddresses"):
            self.set_attribute_value("maxAddresses", max_addr)

    @property
    def addresses(self) -> List[Address]:
        return self._addresses

    @property
    def max_addresses(self) -> int:
        return self.get_attribute_value("maxAddresses")


class UserAddressableMixin(AddressableMixin):
    """A box whose addresses the user adds (tag ALLOW_ADDRESSES), up to maxAddresses."""

    def add_address(self) -> Address:
        if len(self._addresses) >= self.max_addresses:
            raise RuntimeError("Maximun number of addresses for this box reached.")
        address = Address(self)
        self._addresses.append(address)
        return address

    def delete_address(self, address: Address) -> None:
        self._addresses.remove(address)


class RoutableMixin:
    """A box that has routes (tag HAS_ROUTES), read-only in a design."""

    def __init__(self, guid, factory, testbed_guid, container=None, factory_attributes=None):
        super().__init__(guid, factory, testbed_guid, container, factory_attributes)
        self._routes: List[Route] = []

    @property
    def routes(self) -> List[Route]:
        return self._routes


class UserRoutableMixin(RoutableMixin):
    """A box whose routes the user adds (tag ALLOW_ROUTES)."""

    def add_route(self) -> Route:
        route = Route(self)
        self._routes.append(route)
        return route

    def delete_route(self, route: Route) -> None:
        self._routes.remove(route)

    def destroy(self) -> None:
        super().destroy()
        self._routes = []


# mixins by access: "w" the user adds them, "r" the testbed fills them in
_ADDRESS_MIXINS = {"w": UserAddressableMixin, "r": AddressableMixin}
_ROUTE_MIXINS = {"w": UserRoutableMixin, "r": RoutableMixin}
_box_classes: Dict[str, type] = {"--": Box}


def box_class(factory: Factory) -> type:
    """The class of the boxes ``factory`` makes: Box plus the address and route mixins its
    tags ask for (one class per combination, shared by all factories)."""
    tags = factory.tags
    key = ("w" if ALLOW_ADDRESSES in tags else "r" if HAS_ADDRESSES in tags else "-") + \
          ("w" if ALLOW_ROUTES in tags else "r" if HAS_ROUTES in tags else "-")
    cls = _box_classes.get(key)
    if cls is None:
        mixins = [m for m in (_ADDRESS_MIXINS.get(key[0]), _ROUTE_MIXINS.get(key[1])) if m]
        cls = _box_classes[key] = type("Box_" + key, tuple(mixins) + (Box,), {})
    return cls


def create_box(factory: Factory, guid: int, testbed_guid: int,
               factory_attributes: Optional[Dict[str, Any]] = None) -> Box:
    """A new box of ``factory`` in the testbed description ``testbed_guid``."""
    return box_class(factory)(guid, factory, testbed_guid,
                              factory_attributes=factory_attributes)
