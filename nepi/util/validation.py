"""Attribute validation functions, called as ``f(attribute, value)`` -> bool (NEPI 2 names).

Unlike NEPI 2 these check what their names promise: booleans are not integers, MAC and
time strings are parsed, and reference addresses accept netrefs.

A validator describes itself for error messages (read by Attribute.expectation): ``kind``
says what a value must be (a range or the allowed values are added to it), ``expected``
is the whole description, and ``problem(value)`` says what is wrong with one value.

address_problems and route_problems are the rules for the address and route entries of a
design, which nepi.core.checks applies to every box.
"""

import ipaddress
import re
import unicodedata
from typing import List, Optional, Tuple

from nepi.errors import brief
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


is_time.kind = "a time like '1.5s' or '200ms'"


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


is_ip4_address.kind = "an IPv4 address"
is_ip6_address.kind = "an IPv6 address"
is_ip_address.kind = "an IP address"
is_ref_address.kind = "an IP address or a netref"
is_mac_address.kind = "a MAC address like 00:11:22:33:44:55"


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


_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_LOGIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$")


def is_host_name(attribute, value) -> bool:
    """A DNS name or an IP address: what ssh gets as its destination, so nothing that
    could read as an option (a leading '-') or hold spaces, '@' or shell characters."""
    if not isinstance(value, str) or not value or len(value) > 253:
        return False
    return _ip(value) or all(_HOST_LABEL.match(label) for label in value.rstrip(".").split("."))


is_host_name.expected = "a host name or an IP address"


def is_login_name(attribute, value) -> bool:
    """A POSIX login name (no leading '-', no '@', spaces or shell characters)."""
    return isinstance(value, str) and _LOGIN.match(value) is not None


is_login_name.expected = "a login name: letters, digits, '_', '.', '-', not starting with '-'"


# -- address and route entries of a design ---------------------------------------------

Finding = Tuple[str, str, bool]     # (field, message, blocking)


def ip_version(value) -> Optional[int]:
    """4 or 6 if ``value`` is an IP address, else None."""
    try:
        return ipaddress.ip_address(value).version
    except (ValueError, TypeError):
        return None


def _prefix_problem(where: str, prefix, family: Optional[int]) -> Optional[str]:
    """What is wrong with a NetPrefix for an address of ``family`` (None: unknown)."""
    if is_single_netref(prefix):
        return None
    if not isinstance(prefix, int) or isinstance(prefix, bool):
        return "%s: NetPrefix %s is not an integer" % (where, brief(prefix))
    limit = 32 if family == 4 else 128
    if not 0 <= prefix <= limit:
        return "%s: NetPrefix %s out of range [0, %d]" % (where, brief(prefix), limit)
    return None


def address_problems(where: str, address, prefix, broadcast) -> List[Finding]:
    """What is wrong with one address entry; fields may hold netrefs. A missing Address
    does not block loading the design (it can be set later)."""
    found: List[Finding] = []
    family = None
    if address is None:
        found.append(("Address", "%s has no Address" % where, False))
    elif not is_single_netref(address):
        family = ip_version(address)
        if family is None:
            found.append(("Address", "%s: %s is not an IP address" % (where, brief(address)),
                          True))
    problem = _prefix_problem(where, prefix, family)
    if problem:
        found.append(("NetPrefix", problem, True))
    if broadcast is not None and ip_version(broadcast) != 4:
        found.append(("Broadcast", "%s: Broadcast %s is not an IPv4 address"
                      % (where, brief(broadcast)), True))
    return found


def route_problems(where: str, destination, prefix, nexthop, metric, device=None
                   ) -> List[Finding]:
    """What is wrong with one route entry; fields may hold netrefs."""
    found: List[Finding] = []
    family = None
    if destination is None:
        found.append(("Destination", "%s has no Destination" % where, True))
    elif not is_single_netref(destination):
        family = ip_version(destination)
        if family is None:
            found.append(("Destination", "%s: Destination %s is not an IP address"
                          % (where, brief(destination)), True))
    problem = _prefix_problem(where, prefix, family)
    if problem:
        found.append(("NetPrefix", problem, True))
    elif family is not None and not is_single_netref(prefix):
        network = "%s/%d" % (destination, prefix)
        try:
            ipaddress.ip_network(network)
        except ValueError:
            found.append(("Destination", "%s: %s has host bits set (did you mean %s?)"
                          % (where, network, ipaddress.ip_network(network, strict=False)),
                          True))
    if nexthop is not None and not is_single_netref(nexthop) and ip_version(nexthop) is None:
        found.append(("NextHop", "%s: NextHop %s is not an IP address"
                      % (where, brief(nexthop)), True))
    if not is_single_netref(metric) and (not isinstance(metric, int)
                                         or isinstance(metric, bool) or metric < 0):
        found.append(("Metric", "%s: Metric %s is not a non-negative integer"
                      % (where, brief(metric)), True))
    return found
