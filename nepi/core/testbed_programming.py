"""Programming a testbed (a mixin of nepi.core.testbed_impl.TestbedController): the
``defer_*`` calls of the TestbedController contract, each checked against the testbed's
factories and stored until the phases run them.
"""

from typing import Any, Optional


class Programming:
    """Fills the tables the phases read (``_configure``, ``_create``, ``_create_set``,
    ``_factory_set``, ``_connect``, ``_cross_connect``, ``_add_trace``, ``_add_address``,
    ``_add_route``); element lookups and value checks are the controller's."""

    def defer_configure(self, name: str, value: Any) -> None:
        if not self._attributes.has_attribute(name):
            raise AttributeError("Invalid testbed attribute %s for testbed %s"
                                 % (name, self._testbed_id))
        value = self._check_value(self._attributes.get_attribute(name), value,
                                  "testbed attribute")
        self._attributes.set_attribute_value(name, value)
        self._configure[name] = value

    def defer_create(self, guid: int, factory_id: str) -> None:
        if factory_id not in self._factories:
            raise AttributeError("Invalid element type %s for testbed version %s"
                                 % (factory_id, self._testbed_version))
        if guid in self._create:
            raise AttributeError("Cannot add elements with the same guid: %d" % guid)
        self._create[guid] = factory_id

    def defer_create_set(self, guid: int, name: str, value: Any) -> None:
        attr = self._box_attribute(guid, name)
        self._create_set.setdefault(guid, {})[name] = self._check_value(
            attr, value, "attribute", self._element_owner(guid))

    def defer_factory_set(self, guid: int, name: str, value: Any) -> None:
        factory = self._factory_of(guid)
        if not factory.has_attribute(name):
            raise AttributeError("Invalid attribute %s for element type %s"
                                 % (name, factory.factory_id))
        attr = factory.get_attribute(name)
        self._factory_set.setdefault(guid, {})[name] = self._check_value(attr, value,
                                                                         "factory attribute")

    def _connection_count(self, guid: int, connector: str) -> int:
        return len(self._connect.get(guid, {}).get(connector, {})) + \
            len(self._cross_connect.get(guid, {}).get(connector, []))

    def _validate_connection(self, guid1, connector1, guid2, must_cross, far_type_id):
        factory = self._factory_of(guid1)
        if guid1 == guid2:
            raise AttributeError("Can't connect guid %d to self" % guid1)
        try:
            ctype = factory.connector_type(connector1)
        except KeyError:
            raise AttributeError("Element type %s has no connector %s"
                                 % (factory.factory_id, connector1)) from None
        if not ctype.can_connect(*far_type_id, must_cross=must_cross):
            raise AttributeError("Connector %s of %s (guid %d) may not be connected to %s"
                                 % (connector1, factory.factory_id, guid1,
                                    "/".join(str(x) for x in far_type_id)))
        if self._connection_count(guid1, connector1) >= ctype.max:
            raise AttributeError("Connector %s is full for guid %d" % (connector1, guid1))

    def defer_connect(self, guid1: int, connector_type_name1: str, guid2: int,
                      connector_type_name2: str) -> None:
        if self._connect.get(guid1, {}).get(connector_type_name1, {}).get(guid2) \
                == connector_type_name2:
            return  # the experiment controller sends each connection from both ends
        f1 = self._factory_of(guid1).factory_id
        f2 = self._factory_of(guid2).factory_id
        self._validate_connection(guid1, connector_type_name1, guid2, False,
                                  (self._testbed_id, f2, connector_type_name2))
        self._validate_connection(guid2, connector_type_name2, guid1, False,
                                  (self._testbed_id, f1, connector_type_name1))
        self._connect.setdefault(guid1, {}).setdefault(connector_type_name1, {})[guid2] = \
            connector_type_name2
        self._connect.setdefault(guid2, {}).setdefault(connector_type_name2, {})[guid1] = \
            connector_type_name1

    def defer_cross_connect(self, guid: int, connector_type_name: str, cross_guid: int,
                            cross_testbed_guid: int, cross_testbed_id: str,
                            cross_factory_id: str, cross_connector_type_name: str) -> None:
        entry = (cross_guid, cross_testbed_guid, cross_testbed_id, cross_factory_id,
                 cross_connector_type_name)
        existing = self._cross_connect.get(guid, {}).get(connector_type_name, [])
        if entry in existing:
            return
        self._validate_connection(guid, connector_type_name, cross_guid, True,
                                  (cross_testbed_id, cross_factory_id,
                                   cross_connector_type_name))
        self._cross_connect.setdefault(guid, {}).setdefault(connector_type_name, []) \
            .append(entry)

    def defer_add_trace(self, guid: int, trace_id: str) -> None:
        factory = self._factory_of(guid)
        if trace_id not in factory.traces_list:
            raise RuntimeError("Element type '%s' has no trace '%s'"
                               % (factory.factory_id, trace_id))
        traces = self._add_trace.setdefault(guid, [])
        if trace_id not in traces:
            traces.append(trace_id)

    def _max_addresses(self, guid: int) -> int:
        value = self._create_set.get(guid, {}).get("maxAddresses")
        if value is None:
            value = self._factory_set.get(guid, {}).get("maxAddresses")
        factory = self._factory_of(guid)
        if value is None and factory.has_attribute("maxAddresses"):
            value = factory.get_attribute_value("maxAddresses")
        if value is None and factory.box_attributes.has_attribute("maxAddresses"):
            value = factory.box_attributes.get_attribute_value("maxAddresses")
        return value if value is not None else 1

    def defer_add_address(self, guid: int, address: str, netprefix: int,
                          broadcast: Optional[str]) -> None:
        factory = self._factory_of(guid)
        if not factory.allow_addresses:
            raise RuntimeError("Element type '%s' doesn't support addresses"
                               % factory.factory_id)
        addresses = self._add_address.setdefault(guid, [])
        if len(addresses) >= self._max_addresses(guid):
            raise RuntimeError("Element guid %d of type '%s' can't accept more addresses"
                               % (guid, factory.factory_id))
        addresses.append((address, netprefix, broadcast))

    def defer_add_route(self, guid: int, destination: str, netprefix: int, nexthop: str,
                        metric: int = 0, device: Optional[str] = None) -> None:
        factory = self._factory_of(guid)
        if not factory.allow_routes:
            raise RuntimeError("Element type '%s' doesn't support routes" % factory.factory_id)
        self._add_route.setdefault(guid, []).append(
            (destination, netprefix, nexthop, metric, device))
