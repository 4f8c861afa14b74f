"""Typed, flagged attributes and the maps that hold them (NEPI 2 semantics, checked values)."""

import logging
from typing import Any, Callable, Dict, List, Optional

from nepi.errors import AttributeValueError, brief
from nepi.util.netrefs import is_single_netref

log = logging.getLogger(__name__)

_TYPE_WORDS = {"STRING": "a string", "BOOL": "a boolean (True/False)", "INTEGER": "an integer",
               "DOUBLE": "a floating-point number", "ENUM": "an enumerated string"}


def _parse_bool(x) -> bool:
    return str(x).lower() in ("1", "on", "yes", "true")


class Attribute:
    STRING = "STRING"
    BOOL = "BOOL"
    ENUM = "ENUM"
    DOUBLE = "DOUBLE"
    INTEGER = "INTEGER"

    types = [STRING, BOOL, ENUM, DOUBLE, INTEGER]

    type_parsers = {
        STRING: str,
        BOOL: _parse_bool,
        ENUM: str,
        DOUBLE: float,
        INTEGER: int,
    }

    NoFlags = 0x00
    DesignReadOnly = 0x01
    DesignInvisible = 0x02
    ExecReadOnly = 0x04
    ExecInvisible = 0x08
    ExecImmutable = 0x10
    NoDefaultValue = 0x20
    Metadata = 0x40

    def __init__(self, name: str, help: str, type: str, value: Any = None,
                 range: Optional[tuple] = None, allowed: Optional[list] = None,
                 flags: Optional[int] = None,
                 validation_function: Optional[Callable] = None,
                 category: Optional[str] = None) -> None:
        if type not in Attribute.types:
            raise AttributeError("invalid type %s " % type)
        self._name = name
        self._help = help
        self._type = type
        self._value = value
        self._range = range
        self._allowed = allowed
        self._flags = flags if flags is not None else Attribute.NoFlags
        self._validation_function = validation_function
        self._category = category
        self._modified = False

    name = property(lambda self: self._name)
    help = property(lambda self: self._help)
    type = property(lambda self: self._type)
    range = property(lambda self: self._range)
    allowed = property(lambda self: self._allowed)
    flags = property(lambda self: self._flags)
    validation_function = property(lambda self: self._validation_function)
    category = property(lambda self: self._category)
    modified = property(lambda self: self._modified)

    def has_flag(self, flag: int) -> bool:
        return (self._flags & flag) == flag

    is_design_invisible = property(lambda self: self.has_flag(Attribute.DesignInvisible))
    is_design_read_only = property(lambda self: self.has_flag(Attribute.DesignReadOnly))
    is_exec_invisible = property(lambda self: self.has_flag(Attribute.ExecInvisible))
    is_exec_read_only = property(lambda self: self.has_flag(Attribute.ExecReadOnly))
    is_exec_immutable = property(lambda self: self.has_flag(Attribute.ExecImmutable))
    is_metadata = property(lambda self: self.has_flag(Attribute.Metadata))
    has_no_default_value = property(lambda self: self.has_flag(Attribute.NoDefaultValue))

    def get_value(self) -> Any:
        return self._value

    def set_value(self, value: Any) -> None:
        value = self.coerce(value)
        problem = self.check_value(value)
        if problem:
            raise AttributeValueError("Invalid value %s for attribute %s: %s"
                                      % (brief(value), brief(self._name, quote=False),
                                         problem))
        self._value = value
        self._modified = True

    value = property(get_value, set_value)

    def _set_checked(self, value: Any) -> None:
        """set_value for a value already found valid for this attribute (a design loaded
        after nepi.core.checks judged every value of it)."""
        self._value = self.coerce(value)
        self._modified = True

    def coerce(self, value: Any) -> Any:
        """Widen an int to float for DOUBLE attributes; nothing else is converted."""
        if self._type == Attribute.DOUBLE and isinstance(value, int) \
                and not isinstance(value, bool):
            return float(value)
        return value

    def is_valid_value(self, value: Any) -> bool:
        return self.check_value(self.coerce(value)) is None

    def expectation(self) -> str:
        """Words describing what this attribute accepts, for error messages: the validator's
        own ``expected`` sentence, else the allowed values, the validator's ``kind`` (see
        nepi.util.validation) or the type, followed by the range."""
        fn = self._validation_function
        if getattr(fn, "expected", None):
            return fn.expected
        if self._type == Attribute.ENUM or self._allowed:
            words = "one of %s" % ", ".join(repr(a) for a in self._allowed or ())
        elif getattr(fn, "kind", None):
            words = fn.kind
        elif fn is not None and fn.__doc__ and fn.__name__ == "validator":
            # a validator made by a function (is_integer_range...) documents itself
            words = ("an " if fn.__doc__.startswith("integer") else "a ") + fn.__doc__
        else:
            words = _TYPE_WORDS.get(self._type, self._type)
        if self._range:
            words += " in range [%s, %s]" % tuple(self._range)
        return words

    def check_value(self, value: Any) -> Optional[str]:
        """None if valid, else what was expected. A lone netref is valid for any type."""
        if is_single_netref(value):
            return None
        ok = self._type_matches(value)
        if ok and self._range:
            try:
                ok = self._range[0] <= value <= self._range[1]
            except TypeError:
                ok = False
        if ok and self._allowed and value not in self._allowed:
            ok = False
        detail = None
        if ok and self._validation_function is not None:
            try:
                ok = self._validation_function(self, value)
            except Exception as e:   # a validator that cannot judge a value refuses it
                log.debug("validator of %s raised %s on %s: the value is refused",
                          self._name, brief(e), brief(value))
                ok = False
            if not ok:
                # a validator may say what exactly is wrong with this value
                problem = getattr(self._validation_function, "problem", None)
                detail = problem(value) if problem is not None else None
        if ok:
            return None
        # the sentence is made only for a refused value: checking a design calls this once
        # per value, and the words cost more than the check
        expected = "expected " + self.expectation()
        return "%s (%s)" % (expected, detail) if detail else expected

    def _type_matches(self, value: Any) -> bool:
        t = self._type
        if t in (Attribute.STRING, Attribute.ENUM):
            return isinstance(value, str) or (value is None and self._validation_function is None)
        if t == Attribute.BOOL:
            return isinstance(value, bool)
        if t == Attribute.INTEGER:
            return isinstance(value, int) and not isinstance(value, bool)
        if t == Attribute.DOUBLE:
            return isinstance(value, float)
        return False

    def copy(self, value: Any = None, modified: bool = False) -> "Attribute":
        attr = Attribute(self._name, self._help, self._type, value, self._range,
                         self._allowed, self._flags, self._validation_function,
                         self._category)
        attr._modified = modified
        return attr


class AttributesMap:
    """An ordered set of attributes (declaration order), with NEPI 2's accessors.

    A map may start with another's attributes shared (_share): each is copied the first
    time it could change (_own), that is when it is set or handed out as an object."""

    _templates: Optional[Dict[str, Attribute]] = None   # see _share

    def __init__(self) -> None:
        self._attributes: Dict[str, Attribute] = {}

    @property
    def attributes(self) -> List[Attribute]:
        if self._templates is None:
            return list(self._attributes.values())
        return [self._own(name) for name in list(self._attributes)]

    def _share(self, templates: "AttributesMap") -> None:
        """Add the attributes of ``templates`` (which must not change any more), shared
        until each is changed: most of the thousands of boxes of a factory keep most of
        its defaults, and copying every attribute of every box was most of its cost."""
        self._attributes.update(templates._attributes)
        self._templates = templates._attributes

    def _own(self, name: str) -> Attribute:
        """The attribute ``name``, this map's own copy if it was shared."""
        attr = self._attributes[name]
        if self._templates is not None and self._templates.get(name) is attr:
            attr = self._attributes[name] = attr.copy(attr.value)
        return attr

    def _attribute_objects(self):
        """Every attribute, in order, shared ones included: for reading only."""
        return self._attributes.values()

    def _values_to_save(self, flag: int = Attribute.NoDefaultValue) -> List[tuple]:
        """(name, value) of the attributes changed or flagged ``flag``: what a design
        records of a box (flag NoDefaultValue), and of its factory (flag Metadata)."""
        return [(a._name, a._value) for a in self._attributes.values()
                if a._modified or a._flags & flag]

    def _attributes_owner(self) -> str:
        """How error messages name the holder of these attributes."""
        return type(self).__name__

    def get_attribute_list(self, filter_flags: Optional[int] = None,
                           exclude: bool = False) -> List[str]:
        if filter_flags is None:
            return list(self._attributes)
        return [name for name, attr in self._attributes.items()
                if attr.has_flag(filter_flags) != exclude]

    def _get(self, name: str) -> Attribute:
        try:
            return self._attributes[name]
        except KeyError:
            raise KeyError(name) from None

    def set_attribute_value(self, name: str, value: Any) -> None:
        if name not in self._attributes:
            raise KeyError("%s has no attribute %s (known: %s)"
                           % (self._attributes_owner(), brief(name),
                              ", ".join(sorted(self._attributes)) or "none"))
        try:
            self._own(name).set_value(value)
        except AttributeValueError as e:
            raise AttributeValueError("%s: %s" % (self._attributes_owner(), e)) from None

    def _set_checked_value(self, name: str, value: Any) -> None:
        """set_attribute_value for a value already found valid (see Attribute)."""
        self._own(name)._set_checked(value)

    def get_attribute_value(self, name: str) -> Any:
        return self._get(name).value

    def get_attribute_help(self, name: str) -> str:
        return self._get(name).help

    def get_attribute_type(self, name: str) -> str:
        return self._get(name).type

    def get_attribute_range(self, name: str) -> tuple:
        return self._get(name).range or (None, None)

    def get_attribute_allowed(self, name: str) -> Optional[list]:
        return self._get(name).allowed

    def get_attribute_category(self, name: str) -> Optional[str]:
        return self._get(name).category

    def is_attribute_design_invisible(self, name: str) -> bool:
        return self._get(name).is_design_invisible

    def is_attribute_design_read_only(self, name: str) -> bool:
        return self._get(name).is_design_read_only

    def is_attribute_exec_invisible(self, name: str) -> bool:
        return self._get(name).is_exec_invisible

    def is_attribute_exec_read_only(self, name: str) -> bool:
        return self._get(name).is_exec_read_only

    def is_attribute_exec_immutable(self, name: str) -> bool:
        return self._get(name).is_exec_immutable

    def is_attribute_metadata(self, name: str) -> bool:
        return self._get(name).is_metadata

    def has_attribute_no_default_value(self, name: str) -> bool:
        return self._get(name).has_no_default_value

    def is_attribute_modified(self, name: str) -> bool:
        return self._get(name).modified

    def is_attribute_value_valid(self, name: str, value: Any) -> bool:
        return self._get(name).is_valid_value(value)

    def add_attribute(self, name: str, help: str, type: str, value: Any = None,
                      range: Optional[tuple] = None, allowed: Optional[list] = None,
                      flags: int = Attribute.NoFlags,
                      validation_function: Optional[Callable] = None,
                      category: Optional[str] = None) -> None:
        if name in self._attributes:
            raise AttributeError("Attribute %s already exists" % name)
        self._attributes[name] = Attribute(name, help, type, value, range, allowed,
                                           flags, validation_function, category)

    def _add_attribute_object(self, attr: Attribute) -> None:
        self._attributes[attr.name] = attr

    def get_attribute(self, name: str) -> Attribute:
        self._get(name)
        return self._own(name)

    def del_attribute(self, name: str) -> None:
        del self._attributes[name]

    def has_attribute(self, name: str) -> bool:
        return name in self._attributes

    def destroy(self) -> None:
        self._attributes = {}
        self._templates = None
