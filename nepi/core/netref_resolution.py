"""Resolving netrefs at deployment: statically from the design, then from live testbeds.

Values that cannot be known before deployment (testbed-generated attributes, trace paths)
are held back and resolved through the testbed controllers at the phases NEPI 2 used.
"""

import collections
from typing import Any, Callable, Dict, List, Optional, Tuple

from nepi.core.attributes import Attribute
from nepi.errors import AttributeValueError, brief
from nepi.util import netrefs
from nepi.util.parser.base import ExperimentData

Getter = Callable[[netrefs.Netref, int], Any]   # (ref, target guid) -> value or None

_UNRESOLVED = object()
MAX_RESOLVED_LENGTH = 1 << 20   # characters of a value with netrefs substituted


def _to_type(value: Any, attr_type: Optional[str]) -> Any:
    """Convert a resolved value to the type of the attribute that receives it."""
    try:
        return _convert(value, attr_type)
    except (TypeError, ValueError, OverflowError):
        raise AttributeValueError("it resolves to %s, which is not a valid %s"
                                  % (brief(value), attr_type)) from None


def _convert(value: Any, attr_type: Optional[str]) -> Any:
    if attr_type is None:
        return value
    if attr_type == Attribute.INTEGER and not isinstance(value, int):
        return int(float(value)) if isinstance(value, str) and "." in value else int(value)
    if attr_type == Attribute.DOUBLE and not isinstance(value, float):
        return float(value)
    if attr_type == Attribute.BOOL and not isinstance(value, bool):
        return Attribute.type_parsers[Attribute.BOOL](value)
    if attr_type in (Attribute.STRING, Attribute.ENUM) and not isinstance(value, str):
        return str(value)
    return value


class NetrefResolver:
    """Tracks which values still hold netrefs and substitutes them when targets are known."""

    def __init__(self, data: ExperimentData,
                 attribute_type: Callable[[int, str], Optional[str]]) -> None:
        self.data = data
        self.attribute_type = attribute_type
        self.labels: Dict[str, int] = {}
        for guid in data.sorted_guids():
            label = data.get_attribute_data(guid, "label")
            if isinstance(label, str) and label:
                self.labels.setdefault(label, guid)
        # guids that may still hold netrefs, once pending() has looked at every one
        self._holders: Optional[set] = None

    def target(self, ref: netrefs.Netref) -> Optional[int]:
        if ref.guid is not None:
            return ref.guid
        return self.labels.get(ref.label)

    # -- where netrefs live -------------------------------------------------------------

    def pending(self) -> List[Tuple[int, str, Any]]:
        """(guid, location, value) of every value that still contains a netref.

        location is an attribute name, or ("addr", i, field) / ("route", i, field).
        After the first call only the elements that still held netrefs are looked at:
        values change through store() only, which keeps track (deploying calls this
        several times, and most elements of a large design hold no netref)."""
        found = []
        data = self.data.data
        guids = self.data.sorted_guids() if self._holders is None else sorted(self._holders)
        for guid in guids:
            entry = data[guid]
            attrs = entry.get("attributes")
            if attrs:
                for name, value in attrs.items():
                    if netrefs.has_netref(value):
                        found.append((guid, name, value))
            if "factory_id" in entry:
                for i, address in enumerate(entry.get("addresses", [])):
                    for field in netrefs.ADDRESS_FIELDS:
                        if netrefs.has_netref(address.get(field)):
                            found.append((guid, ("addr", i, field), address[field]))
                for i, route in enumerate(entry.get("routes", [])):
                    for field in netrefs.ROUTE_FIELDS:
                        if netrefs.has_netref(route.get(field)):
                            found.append((guid, ("route", i, field), route[field]))
        self._holders = {guid for guid, _, _ in found}
        return found

    def store(self, guid: int, location, value: Any) -> None:
        if isinstance(location, tuple):
            kind, index, field = location
            section = "addresses" if kind == "addr" else "routes"
            self.data.data[guid][section][index][field] = value
        else:
            self.data.add_attribute_data(guid, location, value)
        if self._holders is not None and netrefs.has_netref(value):
            self._holders.add(guid)

    # -- substitution -------------------------------------------------------------------

    def resolve_value(self, value: str, getter: Getter, attr_type: Optional[str]) -> Any:
        """The value with every netref substituted, or _UNRESOLVED."""
        refs = netrefs.find_netrefs(value)
        if len(refs) == 1 and refs[0].text == value:
            target = self.target(refs[0])
            result = getter(refs[0], target) if target is not None else None
            return _UNRESOLVED if result is None else _to_type(result, attr_type)
        text = value
        for ref in refs:
            target = self.target(ref)
            result = getter(ref, target) if target is not None else None
            if result is None:
                return _UNRESOLVED
            result = str(result)
            size = len(text) + text.count(ref.text) * (len(result) - len(ref.text))
            if size > MAX_RESOLVED_LENGTH:
                # values built from values: each step may double, 30 steps make gigabytes
                raise AttributeValueError("it resolves to %d characters, more than the %d "
                                          "allowed" % (size, MAX_RESOLVED_LENGTH))
            text = text.replace(ref.text, result)
        return _to_type(text, attr_type)

    def static_getter(self, ref: netrefs.Netref, guid: int) -> Any:
        """A value known from the design itself (set explicitly, without netrefs)."""
        data = self.data
        if guid not in data.data or not data.is_box_data(guid):
            return None
        if ref.kind == "":
            value = data.get_attribute_data(guid, ref.attribute)
        elif ref.kind in ("addr", "route"):
            section = "addresses" if ref.kind == "addr" else "routes"
            entries = data.data[guid].get(section, [])
            index = int(ref.index)
            value = entries[index].get(ref.attribute) if index < len(entries) else None
        else:
            return None   # traces exist only once a testbed runs
        return None if netrefs.has_netref(value) else value

    def resolve(self, getter: Getter, only: Optional[Callable[[int, Any], bool]] = None) \
            -> List[Tuple[int, Any, Any]]:
        """Substitute what ``getter`` can answer, until nothing more can be.

        A value whose netref points at a value still holding netrefs waits for that one and
        is tried again once it is resolved: a chain of N netrefs takes N steps, not N passes
        over the whole design. Returns (guid, location, new value) for each value resolved."""
        resolved = []
        todo = collections.deque((guid, location, value)
                                 for guid, location, value in self.pending()
                                 if only is None or only(guid, location))
        unresolved = {(guid, location) for guid, location, _ in todo}
        waiting: Dict[tuple, list] = {}   # (guid, location) -> values waiting for it
        while todo:
            guid, location, value = item = todo.popleft()
            new = self._resolve_at(guid, location, value, getter)
            if new is _UNRESOLVED:
                needed = [key for key in self._sources(value) if key in unresolved]
                if needed:
                    waiting.setdefault(needed[0], []).append(item)
                continue
            self.store(guid, location, new)
            resolved.append((guid, location, new))
            unresolved.discard((guid, location))
            todo.extend(waiting.pop((guid, location), []))
        return resolved

    def _resolve_at(self, guid: int, location, value: str, getter: Getter) -> Any:
        """resolve_value for the value at ``location``, converted to its type; a value that
        cannot be converted is an AttributeValueError naming the element and location."""
        attr_type = None if isinstance(location, tuple) \
            else self.attribute_type(guid, location)
        if isinstance(location, tuple) and location[2] in ("NetPrefix", "Metric"):
            attr_type = Attribute.INTEGER
        try:
            return self.resolve_value(value, getter, attr_type)
        except AttributeValueError as e:
            line = self.data.lines.get(guid)
            raise AttributeValueError("element %d %s = %s%s: %s" % (
                guid, describe_location(location), brief(value),
                " (line %d)" % line if line else "", e)) from None

    def _sources(self, value: str) -> List[tuple]:
        """(guid, location) of each design value the netrefs in ``value`` read."""
        keys = []
        for ref in netrefs.find_netrefs(value):
            target = self.target(ref)
            if target is None or ref.kind == "trace":
                continue
            keys.append((target, ref.attribute if ref.kind == ""
                         else (ref.kind, int(ref.index), ref.attribute)))
        return keys


def describe_location(location) -> str:
    if isinstance(location, tuple):
        kind, index, field = location
        return "%s #%d %s" % ("address" if kind == "addr" else "route", index, field)
    return "attribute %s" % brief(location)
