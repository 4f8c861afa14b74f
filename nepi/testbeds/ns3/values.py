"""ns-3 attribute values as nepi sees them: validation, canonical forms, NEPI 2 spellings.

Nothing here imports ns-3. Validation matters more than usual: several ns-3 parsers abort
the whole process on a malformed value (a Vector3D such as "bogus", an unknown WifiMode),
so every value is checked here before it can reach ns-3.
"""

import ipaddress
import re
from decimal import Decimal, InvalidOperation
from typing import Optional

from nepi.util.netrefs import is_single_netref

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_TIME = re.compile(r"^\s*(%s)\s*(s|ms|us|ns|ps|fs|min|h|d|y)?\s*$" % _NUM)
# Exactly what ns-3's own parsers accept (a few of them abort the process otherwise).
_DATARATE = re.compile(r"^(?:\d+(?:\.\d*)?|\.\d+) ?"
                       r"(?:(?:[kKMG]?(?:bps|b/s|Bps|B/s))|(?:[KMG]i(?:b/s|B/s)))?$")
_QUEUESIZE = re.compile(r"^\d+(?:k|K|M|Ki|Mi)?[pB]$")          # no G prefixes in ns-3
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_SERIALIZED_ADDRESS = re.compile(r"^[0-9a-fA-F]{2}-[0-9a-fA-F]{2}-"
                                 r"([0-9a-fA-F]{2}(:[0-9a-fA-F]{2})*)?$")
_SSID = re.compile(r"^\S{1,32}$")
_TYPEID = re.compile(r"^ns3::[A-Za-z_][\w:<>]*$")
_CHANNEL_SETTINGS = re.compile(r"^\{\d+, ?\d+, ?BAND_(?:2_4GHZ|5GHZ|6GHZ|UNSPECIFIED), ?\d+\}$")

_UNIT_NS = {"s": Decimal(10) ** 9, "ms": Decimal(10) ** 6, "us": Decimal(10) ** 3,
            "ns": Decimal(1), "ps": Decimal(10) ** -3, "fs": Decimal(10) ** -6,
            "min": Decimal(60) * 10 ** 9, "h": Decimal(3600) * 10 ** 9,
            "d": Decimal(86400) * 10 ** 9, "y": Decimal(365 * 86400) * 10 ** 9}


# -- times ----------------------------------------------------------------------------

def time_to_ns(text: str) -> Decimal:
    """'1.5s' -> 1500000000; a number without unit is seconds (as in ns-3)."""
    m = _TIME.match(text or "")
    if not m:
        raise ValueError("%r is not a time (expected e.g. '1.5s', '200ms', '+1e+09ns')"
                         % (text,))
    return Decimal(m.group(1)) * _UNIT_NS[m.group(2) or "s"]


def canonical_time(text: str) -> str:
    """The shortest exact spelling: '+1e+09ns' -> '1s', '+250000ns' -> '250us'."""
    ns = time_to_ns(text)
    if ns == 0:
        return "0s"
    if ns == ns.to_integral_value():
        ns = int(ns)
        for unit, factor in (("s", 10 ** 9), ("ms", 10 ** 6), ("us", 10 ** 3)):
            if ns % factor == 0:
                return "%d%s" % (ns // factor, unit)
        return "%dns" % ns
    return "%sns" % format(ns.normalize(), "f")


def is_time(attribute, value) -> bool:
    return isinstance(value, str) and _TIME.match(value) is not None


# -- addresses ------------------------------------------------------------------------

def parse_socket_address(text: str):
    """'10.0.0.2' -> ('10.0.0.2', None); '10.0.0.2:9' -> ('10.0.0.2', 9); else None."""
    host, sep, port = text.rpartition(":")
    if sep and "." in host:
        try:
            ipaddress.IPv4Address(host)
            port_n = int(port)
        except ValueError:
            return None
        return (host, port_n) if 0 <= port_n <= 65535 else None
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return None
    return text, None


def is_address(attribute, value) -> bool:
    """An ns-3 Address: IPv4 ('10.0.0.2'), IPv4 socket ('10.0.0.2:9'), MAC, or empty."""
    if not isinstance(value, str):
        return False
    if value == "" or is_single_netref(value) or _MAC.match(value) \
            or _SERIALIZED_ADDRESS.match(value):
        return True
    return parse_socket_address(value) is not None


def is_ref_address(attribute, value) -> bool:
    if is_single_netref(value):
        return True
    if not isinstance(value, str):
        return False
    try:
        ipaddress.IPv4Address(value)
        return True
    except ValueError:
        return False


def is_ipv4(attribute, value) -> bool:
    return is_ref_address(attribute, value)


def is_ipv4_mask(attribute, value) -> bool:
    if not isinstance(value, str):
        return False
    if value.startswith("/"):
        return value[1:].isdigit() and 0 <= int(value[1:]) <= 32
    try:
        ipaddress.IPv4Network("0.0.0.0/" + value)
        return True
    except ValueError:
        return False


def is_mac(attribute, value) -> bool:
    return isinstance(value, str) and _MAC.match(value) is not None


# -- other ns-3 value syntaxes --------------------------------------------------------

def _numbers(value, count, sep) -> bool:
    if not isinstance(value, str):
        return False
    parts = value.split(sep)
    if len(parts) != count:
        return False
    return all(re.match(r"^%s$" % _NUM, p) for p in parts)


def is_vector3d(attribute, value) -> bool:
    return _numbers(value, 3, ":")


def is_rectangle(attribute, value) -> bool:
    return _numbers(value, 4, "|")


def is_box(attribute, value) -> bool:
    return _numbers(value, 6, "|")


def is_datarate(attribute, value) -> bool:
    return isinstance(value, str) and _DATARATE.match(value) is not None


_QUEUE_UNITS = {"": 1, "k": 1000, "K": 1000, "M": 10 ** 6, "Ki": 1024, "Mi": 1024 ** 2}


def is_queue_size(attribute, value) -> bool:
    """'100p', '64KB'... within ns-3's 32-bit size."""
    if not isinstance(value, str) or _QUEUESIZE.match(value) is None:
        return False
    m = re.match(r"^(\d+)(k|K|M|Ki|Mi)?[pB]$", value)
    return int(m.group(1)) * _QUEUE_UNITS[m.group(2) or ""] <= 0xFFFFFFFF


def is_ssid(attribute, value) -> bool:
    return isinstance(value, str) and _SSID.match(value) is not None


def is_typeid(attribute, value) -> bool:
    return isinstance(value, str) and _TYPEID.match(value) is not None


def is_channel_settings(attribute, value) -> bool:
    return isinstance(value, str) and _CHANNEL_SETTINGS.match(value) is not None


def is_wifi_mode(attribute, value) -> bool:
    from nepi.testbeds.ns3.typeids import WIFI_MODES
    return isinstance(value, str) and value in WIFI_MODES


# -- ns-3 object strings: 'ns3::UniformRandomVariable[Min=0|Max=1]' --------------------

def parse_object_spec(text: str):
    """'T[a=1|b=U[x=2]]' -> ('T', [('a', '1'), ('b', 'U[x=2]')]); ValueError if bad."""
    text = text.strip()
    m = re.match(r"^(ns3::[A-Za-z_][\w:<>]*)\s*(\[(.*)\])?$", text, re.S)
    if not m:
        raise ValueError("%r is not an ns-3 object string like 'ns3::Type[Attr=value|...]'"
                         % text)
    body = m.group(3)
    pairs = []
    if body:
        depth, start = 0, 0
        items = []
        for i, ch in enumerate(body):
            if ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
                if depth < 0:
                    raise ValueError("unbalanced brackets in %r" % text)
            elif ch == "|" and depth == 0:
                items.append(body[start:i])
                start = i + 1
        if depth:
            raise ValueError("unbalanced brackets in %r" % text)
        items.append(body[start:])
        for item in items:
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise ValueError("%r: %r is not 'Attribute=value'" % (text, item))
            pairs.append((name.strip(), value.strip()))
    return m.group(1), pairs


_LEGACY_RV = {
    "Constant": ("ns3::ConstantRandomVariable", ["Constant"]),
    "Uniform": ("ns3::UniformRandomVariable", ["Min", "Max"]),
    "Exponential": ("ns3::ExponentialRandomVariable", ["Mean", "Bound"]),
    "Normal": ("ns3::NormalRandomVariable", ["Mean", "Variance", "Bound"]),
    "Pareto": ("ns3::ParetoRandomVariable", ["Scale", "Shape", "Bound"]),
    "Weibull": ("ns3::WeibullRandomVariable", ["Scale", "Shape", "Bound"]),
    "LogNormal": ("ns3::LogNormalRandomVariable", ["Mu", "Sigma"]),
    "Gamma": ("ns3::GammaRandomVariable", ["Alpha", "Beta"]),
    "Erlang": ("ns3::ErlangRandomVariable", ["K", "Lambda"]),
}


def legacy_random_variable(text: str) -> Optional[str]:
    """NEPI 2 / ns-3.11 'Uniform:0:1' -> 'ns3::UniformRandomVariable[Min=0|Max=1]'."""
    parts = text.split(":")
    entry = _LEGACY_RV.get(parts[0])
    if entry is None or len(parts) - 1 > len(entry[1]) or len(parts) < 2:
        return None
    for p in parts[1:]:
        if not re.match(r"^%s$" % _NUM, p.strip()):
            return None
    return "%s[%s]" % (entry[0], "|".join("%s=%s" % (n, v.strip())
                                          for n, v in zip(entry[1], parts[1:])))


def object_spec_problem(base: str, text: str) -> Optional[str]:
    """None if ``text`` names a known subtype of ``base`` with known attributes."""
    from nepi.testbeds.ns3.typeids import OBJECT_TYPES
    known = OBJECT_TYPES.get(base, {})
    if base == "ns3::RandomVariableStream":
        text = legacy_random_variable(text) or text
    try:
        typeid, pairs = parse_object_spec(text)
    except ValueError as e:
        return str(e)
    if typeid not in known:
        return "%s is not a known %s (known: %s)" % (typeid, base, ", ".join(sorted(known)))
    attrs = known[typeid]
    for name, value in pairs:
        if name not in attrs:
            return "%s has no attribute %s (known: %s)" % (typeid, name,
                                                            ", ".join(sorted(attrs)))
        vtype = attrs[name]
        if vtype == "Pointer":
            for nested_base in OBJECT_TYPES:
                if value.split("[", 1)[0] in OBJECT_TYPES[nested_base]:
                    problem = object_spec_problem(nested_base, value)
                    if problem:
                        return problem
                    break
            else:
                return "%s: %s=%r is not a known ns-3 object" % (typeid, name, value)
        elif vtype in ("Double", "Uinteger", "Integer") and \
                not re.match(r"^%s$" % _NUM, value):
            return "%s: %s=%r is not a number" % (typeid, name, value)
        elif vtype == "Boolean" and value.lower() not in ("true", "false", "0", "1"):
            return "%s: %s=%r is not a boolean" % (typeid, name, value)
        elif vtype in VALIDATORS and not VALIDATORS[vtype](None, value):
            return "%s: %s=%r is not a valid %s" % (typeid, name, value, vtype)
    return None


def object_validator(base: str):
    def validator(attribute, value):
        return isinstance(value, str) and object_spec_problem(base, value) is None
    validator.__doc__ = "ns-3 object string such as %s" % (
        "'ns3::UniformRandomVariable[Min=0|Max=1]'" if base == "ns3::RandomVariableStream"
        else "'ns3::RandomRectanglePositionAllocator[X=ns3::UniformRandomVariable[Min=0|"
             "Max=100]|Y=ns3::UniformRandomVariable[Min=0|Max=100]]'")
    validator.__name__ = "validator"
    return validator


def normalize_object_spec(base: str, text: str) -> str:
    if base == "ns3::RandomVariableStream":
        return legacy_random_variable(text) or text
    return text


def is_waypoints(attribute, value) -> bool:
    try:
        parse_waypoints(value)
        return True
    except (ValueError, TypeError, AttributeError):
        return False


def parse_waypoints(value: str):
    """'0s:0:0:0, 1s:10:0:0' (NEPI 2 also wrote parentheses) -> [('0s', 0.0, 0.0, 0.0)...]."""
    cleaned = value.replace("(", "").replace(")", "").replace(" ", "")
    points = []
    for item in cleaned.split(","):
        if not item:
            continue
        parts = item.split(":")
        if len(parts) != 4 or not _TIME.match(parts[0]):
            raise ValueError("bad waypoint %r (expected t:x:y:z)" % item)
        points.append((parts[0], float(parts[1]), float(parts[2]), float(parts[3])))
    return points


# Validation function per ns-3 value type name (see gen_typeids.value_type).
VALIDATORS = {
    "Time": is_time,
    "DataRate": is_datarate,
    "QueueSize": is_queue_size,
    "Vector3D": is_vector3d,
    "Vector": is_vector3d,
    "Rectangle": is_rectangle,
    "Box": is_box,
    "Mac48Address": is_mac,
    "Address": is_address,
    "Ipv4Address": is_ipv4,
    "Ipv4Mask": is_ipv4_mask,
    "Ssid": is_ssid,
    "WifiMode": is_wifi_mode,
    "TypeId": is_typeid,
    "AttributeContainer": is_channel_settings,
}

# NEPI 2 spellings of enum values, per attribute name.
LEGACY_ENUMS = {
    "ErrorUnit": {"EU_BYTE": "ERROR_UNIT_BYTE", "EU_PKT": "ERROR_UNIT_PACKET",
                  "EU_BIT": "ERROR_UNIT_BIT"},
}


def default_value(vtype: str, initial: str):
    """ns-3's initial value in nepi's type (None when ns-3 has no meaningful one)."""
    if vtype == "Boolean":
        return initial == "true"
    if vtype in ("Uinteger", "Integer"):
        try:
            return int(initial)
        except ValueError:
            return None
    if vtype == "Double":
        try:
            return float(initial)
        except ValueError:
            return None
    if vtype == "Time":
        try:
            return canonical_time(initial)
        except (ValueError, InvalidOperation):
            return None
    if vtype == "Ssid":
        return initial[5:] if initial.startswith("ssid=") else initial
    if initial in ("", "0") and (vtype == "Address" or vtype.startswith("Object:")):
        return None
    return initial if initial != "" else None


def nepi_value_from_ns3(vtype: str, nepi_type: str, text: str):
    """A value serialised by ns-3 (SerializeToString) in nepi's type and canonical form."""
    if nepi_type == "BOOL":
        return text == "true"
    if nepi_type == "INTEGER":
        return int(text)
    if nepi_type == "DOUBLE":
        return float(text)
    if vtype == "Time":
        return canonical_time(text)
    if vtype == "Ssid" and text.startswith("ssid="):
        return text[5:]
    return text


def ns3_text(vtype: str, value, attr_name: str = "") -> str:
    """A nepi value as the string ns-3's parser expects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if vtype == "Enum":
        return LEGACY_ENUMS.get(attr_name, {}).get(value, value)
    if vtype.startswith("Object:"):
        return normalize_object_spec(vtype[7:], value)
    return str(value)
