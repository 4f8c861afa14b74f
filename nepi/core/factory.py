"""Factories: the element types a testbed offers, described by its metadata.

A factory only describes (attributes, connectors, traces, tags); the design layer builds
boxes from it (nepi.core.box) and a testbed controller builds the real elements."""

from typing import Callable, Dict, List, Optional

from nepi.core.attributes import AttributesMap
from nepi.util import tags
from nepi.util.tags import Taggable


class Factory(AttributesMap, Taggable):
    """An element type. Its own attributes are construction parameters; ``box_attributes``
    are the templates copied into every box."""

    def __init__(self, factory_id: str, create_function: Optional[Callable],
                 start_function: Optional[Callable], stop_function: Optional[Callable],
                 status_function: Optional[Callable], configure_function: Optional[Callable],
                 preconfigure_function: Optional[Callable],
                 prestart_function: Optional[Callable],
                 help: Optional[str] = None, category: Optional[str] = None) -> None:
        AttributesMap.__init__(self)
        Taggable.__init__(self)
        self._factory_id = factory_id
        self._create_function = create_function
        self._start_function = start_function
        self._stop_function = stop_function
        self._status_function = status_function
        self._configure_function = configure_function
        self._preconfigure_function = preconfigure_function
        self._prestart_function = prestart_function
        self._help = help
        self._category = category
        self._connector_types: Dict[str, object] = {}
        self._traces: List[tuple] = []
        self._box_attributes = AttributesMap()

    factory_id = property(lambda self: self._factory_id)
    help = property(lambda self: self._help)
    category = property(lambda self: self._category)
    create_function = property(lambda self: self._create_function)
    start_function = property(lambda self: self._start_function)
    stop_function = property(lambda self: self._stop_function)
    status_function = property(lambda self: self._status_function)
    configure_function = property(lambda self: self._configure_function)
    preconfigure_function = property(lambda self: self._preconfigure_function)
    prestart_function = property(lambda self: self._prestart_function)
    box_attributes = property(lambda self: self._box_attributes)

    def _attributes_owner(self) -> str:
        return "factory %s" % self._factory_id

    @property
    def connector_types(self) -> list:
        return list(self._connector_types.values())

    def connector_type(self, name: str):
        return self._connector_types[name]

    def _connector_type_items(self):
        """(name, connector type) of each, in order: for reading only."""
        return self._connector_types.items()

    def has_connector_type(self, name) -> bool:
        try:
            return name in self._connector_types
        except TypeError:     # a name that cannot be a key names no connector
            return False

    def add_connector_type(self, connector_type) -> None:
        self._connector_types[connector_type.name] = connector_type

    @property
    def traces(self) -> List[tuple]:
        return self._traces

    @property
    def traces_list(self) -> List[str]:
        return [t[0] for t in self._traces]

    def add_trace(self, name: str, help: str, enabled: bool = False) -> None:
        self._traces.append((name, help, enabled))

    def add_box_attribute(self, *args, **kwargs) -> None:
        self._box_attributes.add_attribute(*args, **kwargs)

    allow_addresses = property(lambda self: self.has_tag(tags.ALLOW_ADDRESSES))
    allow_routes = property(lambda self: self.has_tag(tags.ALLOW_ROUTES))
    has_addresses = property(lambda self: self.has_tag(tags.HAS_ADDRESSES)
                             or self.allow_addresses)
    has_routes = property(lambda self: self.has_tag(tags.HAS_ROUTES) or self.allow_routes)

    def destroy(self) -> None:
        super().destroy()
        self._connector_types = {}
