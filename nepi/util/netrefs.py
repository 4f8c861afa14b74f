"""Netref syntax: ``{#[label].addr[0].[Address]#}`` and friends (NEPI 2 forms, dot escaped)."""

import re
from typing import List, NamedTuple, Optional

# Indexes and guids are limited to what a design can hold (at most 9 and 19 digits), so a
# netref never names a number Python refuses to parse (more than 4300 digits).
ATTRIBUTE_PATTERN_BASE = re.compile(
    r"\{#\[(?P<label>[-a-zA-Z0-9._]*)\]"
    r"(?P<expr>(?P<component>\.addr\[[0-9]{1,9}\]|\.route\[[0-9]{1,9}\]"
    r"|\.trace\[[-a-zA-Z0-9._]+\])?"
    r"\.\[(?P<attribute>[-a-zA-Z0-9._]*)\])#\}")
ATTRIBUTE_PATTERN_GUID_SUB = r"{#[%(guid)s]%(expr)s#}"
COMPONENT_PATTERN = re.compile(r"(?P<kind>[a-z]*)\[(?P<index>.*)\]")
GUID_LABEL = re.compile(r"^GUID-(?P<guid>[0-9]{1,19})$")

ADDRESS_FIELDS = ("Address", "NetPrefix", "Broadcast")
ROUTE_FIELDS = ("Destination", "NetPrefix", "NextHop", "Metric", "Device")
TRACE_FIELDS = ("value", "path", "filename")


class Netref(NamedTuple):
    text: str            # the whole ``{#...#}`` expression
    label: str
    kind: str            # "", "addr", "route" or "trace"
    index: Optional[str]  # address/route number or trace name
    attribute: str

    @property
    def guid(self) -> Optional[int]:
        """The guid named by a ``GUID-n`` label, else None."""
        m = GUID_LABEL.match(self.label)
        return int(m.group("guid")) if m else None


def find_netrefs(value) -> List[Netref]:
    if not isinstance(value, str) or "{#" not in value:
        return []
    refs = []
    for m in ATTRIBUTE_PATTERN_BASE.finditer(value):
        comp = m.group("component") or ""
        kind, index = "", None
        if comp:
            cm = COMPONENT_PATTERN.match(comp[1:])
            kind, index = cm.group("kind"), cm.group("index")
        refs.append(Netref(m.group(0), m.group("label"), kind, index, m.group("attribute")))
    return refs


def has_netref(value) -> bool:
    return bool(find_netrefs(value))


def malformed_netref(value) -> Optional[str]:
    """The first ``{#...`` fragment that is not a well-formed netref, or None."""
    if not isinstance(value, str) or "{#" not in value:
        return None
    rest = ATTRIBUTE_PATTERN_BASE.sub("", value)
    pos = rest.find("{#")
    if pos < 0:
        return None
    end = rest.find("#}", pos)
    return rest[pos:end + 2] if end >= 0 else rest[pos:pos + 40]


def is_single_netref(value) -> bool:
    """True if the whole value is exactly one netref (what non-string attributes may hold)."""
    return isinstance(value, str) and ATTRIBUTE_PATTERN_BASE.fullmatch(value) is not None


def guid_form(ref: Netref, guid: int) -> str:
    return ATTRIBUTE_PATTERN_GUID_SUB % {"guid": "GUID-%d" % guid,
                                         "expr": ref.text[len("{#[" + ref.label + "]"):-2]}
