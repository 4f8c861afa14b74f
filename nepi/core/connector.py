"""Connection rules between connectors of factories, possibly across testbeds."""

import math
from typing import Callable, Dict, Optional, Tuple

TypeId = Tuple[Optional[str], Optional[str], Optional[str]]


def _lower(x: Optional[str]) -> Optional[str]:
    return x.lower() if x is not None else None


class ConnectorType:
    """Connector of one factory, and which far-side connectors it may be joined to."""

    def __init__(self, testbed_id: str, factory_id: str, name: str, help: str = "",
                 max: int = -1, min: int = 0) -> None:
        if max == -1:
            max = math.inf
        elif max <= 0:
            raise RuntimeError("The maximum number of connections allowed need to be more than 0")
        if min < 0:
            raise RuntimeError("The minimum number of connections allowed needs to be at least 0")
        self._connector_type_id = self.make_connector_type_id(testbed_id, factory_id, name)
        self._testbed_id = testbed_id
        self._factory_id = factory_id
        self._name = name
        self._help = help
        self._max = max
        self._min = min
        # far-side type id -> (can_cross, init_code, compl_code)
        self._from_connections: Dict[TypeId, tuple] = {}
        self._to_connections: Dict[TypeId, tuple] = {}

    @staticmethod
    def make_connector_type_id(testbed_id, factory_id, name) -> TypeId:
        return (_lower(testbed_id), _lower(factory_id), _lower(name))

    connector_type_id = property(lambda self: self._connector_type_id)
    testbed_id = property(lambda self: self._testbed_id)
    factory_id = property(lambda self: self._factory_id)
    name = property(lambda self: self._name)
    help = property(lambda self: self._help)
    max = property(lambda self: self._max)
    min = property(lambda self: self._min)

    def __str__(self) -> str:
        return "ConnectorType(%r)" % (self._connector_type_id,)

    def add_from_connection(self, testbed_id, factory_id, name, can_cross: bool,
                            init_code: Optional[Callable] = None,
                            compl_code: Optional[Callable] = None) -> None:
        key = self.make_connector_type_id(testbed_id, factory_id, name)
        self._from_connections[key] = (can_cross, init_code, compl_code)

    def add_to_connection(self, testbed_id, factory_id, name, can_cross: bool,
                          init_code: Optional[Callable] = None,
                          compl_code: Optional[Callable] = None) -> None:
        key = self.make_connector_type_id(testbed_id, factory_id, name)
        self._to_connections[key] = (can_cross, init_code, compl_code)

    def _type_resolution_order(self, type_id: TypeId):
        t, f, n = type_id
        order = [type_id, (t, None, n), (None, f, n), (None, None, n)]
        seen = []
        for key in order:
            if key not in seen:
                seen.append(key)
        return seen

    def can_connect(self, testbed_id, factory_id, name, must_cross: bool = False) -> bool:
        """True if some rule (either table, wildcards allowed) accepts that far side."""
        type_id = self.make_connector_type_id(testbed_id, factory_id, name)
        for key in self._type_resolution_order(type_id):
            for table in (self._from_connections, self._to_connections):
                entry = table.get(key)
                if entry is not None and bool(entry[0]) == bool(must_cross):
                    return True
        return False

    def _connect_to_code(self, testbed_id, factory_id, name, must_cross: bool):
        type_id = self.make_connector_type_id(testbed_id, factory_id, name)
        for key in self._type_resolution_order(type_id):
            entry = self._to_connections.get(key)
            if entry is not None and bool(entry[0]) == bool(must_cross):
                return entry[1], entry[2]
        return False, False

    def connect_to_init_code(self, testbed_id, factory_id, name, must_cross: bool = False):
        return self._connect_to_code(testbed_id, factory_id, name, must_cross)[0]

    def connect_to_compl_code(self, testbed_id, factory_id, name, must_cross: bool = False):
        return self._connect_to_code(testbed_id, factory_id, name, must_cross)[1]
