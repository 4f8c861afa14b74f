"""Connection rules between connectors of factories, possibly across testbeds."""

import math
from typing import Any, Callable, Dict, Optional, Tuple

TypeId = Tuple[Optional[str], Optional[str], Optional[str]]

_MAX_ANSWERS = 4096


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
        # (far testbed, factory, name, must_cross) -> can_connect / connect-to codes: a
        # design asks the same few questions once per connection
        self._answers: Dict[tuple, Any] = {}

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
        self._answers.clear()

    def add_to_connection(self, testbed_id, factory_id, name, can_cross: bool,
                          init_code: Optional[Callable] = None,
                          compl_code: Optional[Callable] = None) -> None:
        key = self.make_connector_type_id(testbed_id, factory_id, name)
        self._to_connections[key] = (can_cross, init_code, compl_code)
        self._answers.clear()

    def _answer(self, kind: str, testbed_id, factory_id, name, must_cross: bool, find):
        """find(type_id, must_cross), remembered (at most _MAX_ANSWERS of them)."""
        must_cross = bool(must_cross)
        key = (kind, testbed_id, factory_id, name, must_cross)
        try:
            return self._answers[key]
        except KeyError:
            pass
        except TypeError:     # names that cannot be a key are not remembered
            return find(self.make_connector_type_id(testbed_id, factory_id, name), must_cross)
        if len(self._answers) >= _MAX_ANSWERS:
            self._answers.clear()
        answer = self._answers[key] = find(
            self.make_connector_type_id(testbed_id, factory_id, name), must_cross)
        return answer

    @staticmethod
    def _type_resolution_order(type_id: TypeId):
        t, f, n = type_id
        order = [type_id]
        for key in ((t, None, n), (None, f, n), (None, None, n)):
            if key not in order:
                order.append(key)
        return order

    def can_connect(self, testbed_id, factory_id, name, must_cross: bool = False) -> bool:
        """True if some rule (either table, wildcards allowed) accepts that far side."""
        return self._answer("can", testbed_id, factory_id, name, must_cross,
                            self._find_can_connect)

    def _find_can_connect(self, type_id: TypeId, must_cross: bool) -> bool:
        for key in self._type_resolution_order(type_id):
            for table in (self._from_connections, self._to_connections):
                entry = table.get(key)
                if entry is not None and bool(entry[0]) == must_cross:
                    return True
        return False

    def _connect_to_code(self, testbed_id, factory_id, name, must_cross: bool):
        return self._answer("code", testbed_id, factory_id, name, must_cross,
                            self._find_connect_to_code)

    def _find_connect_to_code(self, type_id: TypeId, must_cross: bool):
        for key in self._type_resolution_order(type_id):
            entry = self._to_connections.get(key)
            if entry is not None and bool(entry[0]) == must_cross:
                return entry[1], entry[2]
        return False, False

    def connect_to_init_code(self, testbed_id, factory_id, name, must_cross: bool = False):
        return self._connect_to_code(testbed_id, factory_id, name, must_cross)[0]

    def connect_to_compl_code(self, testbed_id, factory_id, name, must_cross: bool = False):
        return self._connect_to_code(testbed_id, factory_id, name, must_cross)[1]
