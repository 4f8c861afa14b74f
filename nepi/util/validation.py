"""Attribute validation functions, called as ``f(attribute, value)`` -> bool (NEPI 2 names).

Unlike NEPI 2 these check what their names promise: booleans are not integers, MAC and
time strings are parsed, and reference addresses accept netrefs.
"""

import ipaddress
import re
import unicodedata
from typing import Optional

from nepi.util.netrefs import is_single_netref

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_TIME = re.compile(r"^[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?(s|ms|us|ns|ps|fs|min|h|d)?$")


def is_enum(attribute, value) -> bool:
    return isinstance(value, str) and value in (attribute.allowed or ())


def is_bool(attribute, value) -> bool:
    return isinstance(value, bool)


def is_double(attribute, value) -> bool:
    return isinstance(value, float)


def is_number(attribute, value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_integer(attribute, value, min=None, max=None) -> bool:
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    if min is not None and value < min:
        return False
    if max is not None and value > max:
        return False
    return True


def is_integer_range(min=None, max=None):
    def validator(attribute, value):
        return is_integer(attribute, value, min, max)
    validator.__doc__ = "integer in [%s, %s]" % (min, max)
    return validator


def is_number_range(min=None, max=None):
    def validator(attribute, value):
        if not is_number(attribute, value):
            return False
        return (min is None or value >= min) and (max is None or value <= max)
    validator.__doc__ = "number in [%s, %s]" % (min, max)
    return validator


def is_string(attribute, value) -> bool:
    return isinstance(value, str)


def is_time(attribute, value) -> bool:
    return isinstance(value, str) and _TIME.match(value.strip()) is not None


def _ip(value, version=None) -> bool:
    if not isinstance(value, str):
        return False
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return False
    return version is None or addr.version == version


def is_ip4_address(attribute, value) -> bool:
    return _ip(value, 4)


def is_ip6_address(attribute, value) -> bool:
    return _ip(value, 6)


def is_ip_address(attribute, value) -> bool:
    return _ip(value)


def is_ref_address(attribute, value) -> bool:
    """An IP address, or a netref that will resolve to one at deployment."""
    return _ip(value) or is_single_netref(value)


def is_mac_address(attribute, value) -> bool:
    return isinstance(value, str) and _MAC.match(value) is not None


IFNAMSIZ = 16       # Linux: names are at most IFNAMSIZ - 1 bytes plus the NUL


def interface_name_problem(value) -> Optional[str]:
    """Why ``value`` is not a name Linux accepts for a network interface (the kernel's
    dev_valid_name, plus no control characters), or None if it is one. nepi never
    shortens a name: a name the kernel would refuse or truncate is refused here."""
    if not isinstance(value, str):
        return "not a string"
    size = len(value.encode("utf-8", "surrogatepass"))
    if size == 0:
        return "empty"
    if value in (".", ".."):
        return "%r is reserved" % value
    problems = []
    bad = [ch for ch in value
           if ch in "/:" or ch.isspace() or unicodedata.category(ch) in ("Cc", "Cs")]
    if bad:
        problems.append("contains %r" % bad[0])
    if size >= IFNAMSIZ:
        problems.append("%d bytes long, at most %d allowed" % (size, IFNAMSIZ - 1))
    return "; ".join(problems) or None


def is_interface_name(attribute, value) -> bool:
    return interface_name_problem(value) is None


is_interface_name.expected = ("a Linux interface name: 1 to %d bytes, without '/', ':', "
                              "whitespace or control characters, not '.' or '..'"
                              % (IFNAMSIZ - 1))
is_interface_name.problem = interface_name_problem     # the detail in error messages


def is_interface_name_or_empty(attribute, value) -> bool:
    """For names whose empty default means "let the kernel (or ns-3) choose"."""
    return value == "" or is_interface_name(attribute, value)


is_interface_name_or_empty.expected = "'' (a name is chosen) or " + is_interface_name.expected
is_interface_name_or_empty.problem = interface_name_problem


def expectation(attribute) -> str:
    """Words describing what an attribute accepts, for error messages."""
    from nepi.core.attributes import Attribute
    fn = attribute.validation_function
    if getattr(fn, "expected", None):
        return fn.expected
    parts = []
    if attribute.type == Attribute.ENUM or attribute.allowed:
        parts.append("one of %s" % ", ".join(repr(a) for a in attribute.allowed or ()))
    elif fn in (is_ip_address, is_ref_address):
        parts.append("an IP address" + (" or a netref" if fn is is_ref_address else ""))
    elif fn is is_ip4_address:
        parts.append("an IPv4 address")
    elif fn is is_ip6_address:
        parts.append("an IPv6 address")
    elif fn is is_mac_address:
        parts.append("a MAC address like 00:11:22:33:44:55")
    elif fn is is_time:
        parts.append("a time like '1.5s' or '200ms'")
    elif fn is not None and fn.__doc__ and fn.__name__ == "validator":
        parts.append("an " + fn.__doc__ if fn.__doc__.startswith("integer") else "a " + fn.__doc__)
    else:
        parts.append({"STRING": "a string", "BOOL": "a boolean (True/False)",
                      "INTEGER": "an integer", "DOUBLE": "a floating-point number",
                      "ENUM": "an enumerated string"}.get(attribute.type, attribute.type))
    if attribute.range:
        parts.append("in range [%s, %s]" % tuple(attribute.range))
    return " ".join(parts)


_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_LOGIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$")


def is_host_name(attribute, value) -> bool:
    """A DNS name or an IP address: what ssh gets as its destination, so nothing that
    could read as an option (a leading '-') or hold spaces, '@' or shell characters."""
    if not isinstance(value, str) or not value or len(value) > 253:
        return False
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    return all(_HOST_LABEL.match(label) for label in value.rstrip(".").split("."))


is_host_name.expected = "a host name or an IP address"


def is_login_name(attribute, value) -> bool:
    """A POSIX login name (no leading '-', no '@', spaces or shell characters)."""
    return isinstance(value, str) and _LOGIN.match(value) is not None


is_login_name.expected = "a login name: letters, digits, '_', '.', '-', not starting with '-'"
