"""Design/execute XML in NEPI 2's format, read safely with lxml and written byte-stably."""

import logging
import re
from typing import Optional, Union

from lxml import etree

from nepi.errors import AttributeValueError, XmlFormatError, brief, describe_element
from nepi.util.netrefs import is_single_netref
from nepi.util.parser.base import ExperimentData, ExperimentParser

log = logging.getLogger(__name__)

MAX_XML_BYTES = 64 * 1024 * 1024
MAX_GUID = 2 ** 63 - 1
LXML_MESSAGE_LIMIT = 160   # lxml's messages quote tag names, which may be long
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

_CHILDREN = {
    "experiment": {"testbeds"},
    "testbeds": {"testbed"},
    "testbed": {"graphical_info", "attributes", "elements"},
    "elements": {"element"},
    "element": {"graphical_info", "factory_attributes", "attributes", "traces", "addresses",
                "routes", "connections"},
    "attributes": {"attribute"},
    "factory_attributes": {"factory_attribute"},
    "traces": {"trace"},
    "addresses": {"address"},
    "routes": {"route"},
    "connections": {"connection"},
}


def type_to_standard(value) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "DOUBLE"
    if isinstance(value, str):
        return "STRING"
    raise TypeError("cannot store a value of type %s in experiment XML: %s"
                    % (type(value).__name__, brief(value)))


# Characters XML 1.0 cannot hold (lxml refuses them with an error naming no value).
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xmlencode(value) -> str:
    text = str(value)
    bad = _NOT_IN_XML.search(text)
    if bad:
        what = "NUL characters" if bad.group() == "\x00" \
            else "control character %s" % ascii(bad.group())
        raise AttributeValueError("%s cannot be stored in XML: %s" % (what, brief(value)))
    return text


class XmlExperimentParser(ExperimentParser):
    def to_xml(self, experiment_description=None, data: Optional[ExperimentData] = None) -> str:
        """The XML of ``data``, or of the description (through its to_data())."""
        if data is None:
            data = self.to_data(experiment_description)
        return self.data_to_xml(data)

    def data_to_xml(self, data: ExperimentData) -> str:
        root = etree.Element("experiment")
        testbeds = etree.SubElement(root, "testbeds")
        elements_of = {}
        for guid in data.testbed_guids():
            testbed_id, version = data.get_testbed_data(guid)
            tb = _sub(testbeds, "testbed", guid=guid, testbed_id=testbed_id,
                      testbed_version=version)
            self._graphical_info_to_xml(tb, data, guid)
            self._attributes_to_xml(tb, "attributes", "attribute",
                                    data.get_attribute_data(guid))
            elements_of[guid] = etree.SubElement(tb, "elements")
        for guid in data.box_guids():
            testbed_guid, factory_id = data.get_box_data(guid)
            el = _sub(elements_of[testbed_guid], "element", factory_id=factory_id, guid=guid)
            self._graphical_info_to_xml(el, data, guid)
            self._attributes_to_xml(el, "factory_attributes", "factory_attribute",
                                    data.get_factory_attribute_data(guid))
            self._attributes_to_xml(el, "attributes", "attribute",
                                    data.get_attribute_data(guid))
            traces = data.get_trace_data(guid)
            if traces:
                parent = etree.SubElement(el, "traces")
                for name in traces:
                    _sub(parent, "trace", name=name)
            addresses = data.get_address_data(guid)
            if addresses:
                parent = etree.SubElement(el, "addresses")
                for (address, netprefix, broadcast) in addresses:
                    _sub(parent, "address", Address=address or None, NetPrefix=netprefix,
                         Broadcast=broadcast or None)
            routes = data.get_route_data(guid)
            if routes:
                parent = etree.SubElement(el, "routes")
                for (dest, prefix, nexthop, metric, device) in routes:
                    _sub(parent, "route", Destination=dest, NetPrefix=prefix, NextHop=nexthop,
                         Metric=metric, Device=device)
            connections = data.get_connection_data(guid)
            if connections:
                parent = etree.SubElement(el, "connections")
                for (connector, other_guid, other_connector) in connections:
                    _sub(parent, "connection", connector=connector,
                         other_connector=other_connector, other_guid=other_guid)
        etree.indent(root, space="    ")
        body = etree.tostring(root, encoding="UTF-8", pretty_print=True)
        return (XML_DECLARATION + body).decode("utf-8")

    @staticmethod
    def _graphical_info_to_xml(parent, data, guid) -> None:
        x, y, w, h = data.get_graphical_info_data(guid)
        _sub(parent, "graphical_info", x=float(x), y=float(y), width=float(w), height=float(h))

    @staticmethod
    def _attributes_to_xml(parent, section: str, tag: str, items) -> None:
        items = [(n, v) for (n, v) in items if v is not None]
        if not items:
            return
        node = etree.SubElement(parent, section)
        for name, value in items:
            try:
                _sub(node, tag, name=name, type=type_to_standard(value), value=value)
            except AttributeValueError as e:
                raise AttributeValueError("%s, attribute %s: %s" % (
                    _location(parent), brief(name), e)) from None

    # ---- reading -------------------------------------------------------------------

    def from_xml(self, experiment_description, xml: Union[str, bytes],
                 source: Optional[str] = None) -> None:
        """Add the design in ``xml`` to the description (through its load_data())."""
        self.from_data(experiment_description, self.from_xml_to_data(xml, source))

    def from_xml_to_data(self, xml: Union[str, bytes],
                         source: Optional[str] = None) -> ExperimentData:
        root = parse_document(xml, source)
        return _Reader(source).read(root)


def _sub(parent, tag: str, **attrs):
    """A child element with its attributes in alphabetical order (NEPI 2's byte layout)."""
    el = etree.SubElement(parent, tag)
    for name in sorted(attrs):
        if attrs[name] is not None:
            el.set(name, xmlencode(attrs[name]))
    return el


def _int_or_netref(text: str):
    """Integer fields of addresses and routes may hold a netref resolved at deployment."""
    return text if is_single_netref(text) else int(text)


def _guid_number(text: str) -> int:
    guid = int(text)
    if not 1 <= guid <= MAX_GUID:
        raise ValueError("guid out of range")
    return guid


# What each conversion of an XML attribute expects, for error messages.
_EXPECTED = {int: "an integer", float: "a number", bool: "a boolean (True or False)",
             _int_or_netref: "an integer or a netref",
             _guid_number: "a guid (an integer from 1 to 2^63-1)"}

# Tags whose ``name`` says which attribute of their element they are.
_NAMED = {"attribute": "attribute", "factory_attribute": "factory attribute"}


def _guid_text(text) -> Optional[str]:
    """A guid as read from XML, or None if it is not one (then messages leave it out)."""
    try:
        return str(_guid_number(text)) if text is not None and len(text) < 30 else None
    except ValueError:
        return None


def _label_of(holder) -> Optional[str]:
    """The label attribute of a <testbed> or <element>, as written in the XML."""
    attrs = holder.find("attributes")
    if attrs is not None:
        for a in attrs.iterchildren("attribute"):
            if a.get("name") == "label":
                return a.get("value")
    return None


def _part(node) -> Optional[str]:
    """Which part of its element ``node`` is: ``attribute 'x'``, ``address #0``..."""
    tag = node.tag
    if tag in _NAMED and node.get("name") is not None:
        return "%s %s" % (_NAMED[tag], brief(node.get("name")))
    if tag in _NAMED or tag in ("address", "route", "connection", "trace"):
        index = sum(1 for _ in node.itersiblings(tag, preceding=True))
        return "%s #%d" % (_NAMED.get(tag, tag), index)
    if tag == "graphical_info":
        return tag
    return None


def _location(node) -> str:
    """The testbed or element holding ``node``, named as nepi.errors.describe_element does
    (guid, label, factory, testbed), then the part of it ``node`` is; '' outside them."""
    holder = node
    while holder is not None and holder.tag not in ("element", "testbed"):
        holder = holder.getparent()
    if holder is None:
        return ""
    guid, label = _guid_text(holder.get("guid")), _label_of(holder)
    if holder.tag == "testbed":
        where = describe_element(guid, label, holder.get("testbed_id"), kind="testbed")
    else:
        parent = holder.getparent()
        tb = parent.getparent() if parent is not None else None
        testbed = None
        if tb is not None and tb.tag == "testbed":
            testbed = " ".join(t for t in (_guid_text(tb.get("guid")), tb.get("testbed_id"))
                               if t) or None
        where = describe_element(guid, label, holder.get("factory_id"), testbed)
    part = _part(node) if node is not holder else None
    return where + ", " + part if part else where


_PROLOG_SKIP = re.compile(rb"\s*(<\?.*?\?>|<!--.*?-->)", re.S)


def _has_doctype(xml: bytes) -> bool:
    pos = 0
    while True:
        m = _PROLOG_SKIP.match(xml, pos)
        if not m:
            break
        pos = m.end()
    return xml[pos:].lstrip().startswith(b"<!DOCTYPE")


def parse_document(xml: Union[str, bytes], source: Optional[str] = None):
    """Parse untrusted XML: no DTD, no entities, no network, bounded size and depth."""
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    if not isinstance(xml, (bytes, bytearray)):
        raise XmlFormatError("experiment XML must be str or bytes, not %s"
                             % type(xml).__name__, source=source)
    if len(xml) > MAX_XML_BYTES:
        raise XmlFormatError("document is %d bytes, more than the %d allowed"
                             % (len(xml), MAX_XML_BYTES), source=source)
    if not xml.strip():
        raise XmlFormatError("document is empty", source=source)
    if _has_doctype(bytes(xml)):
        raise XmlFormatError("documents with a DOCTYPE or entity declarations are refused",
                             1, source)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             dtd_validation=False, huge_tree=False, remove_comments=True,
                             remove_pis=True)
    try:
        root = etree.fromstring(bytes(xml), parser)
    except etree.XMLSyntaxError as e:
        line = e.lineno if hasattr(e, "lineno") else None
        msg = getattr(e, "msg", None) or str(e)
        raise XmlFormatError("not well-formed XML: %s"
                             % brief(msg.split(", line")[0], LXML_MESSAGE_LIMIT, quote=False),
                             line, source) from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XmlFormatError("documents with a DOCTYPE or entity declarations are refused",
                             1, source)
    return root


class _Reader:
    def __init__(self, source: Optional[str]) -> None:
        self.source = source

    def error(self, node, message: str, field: Optional[str] = None):
        """XmlFormatError at ``node``'s line, naming the testbed or element holding ``node``
        and the part of it at fault (see _location), then ``field`` (an XML attribute)."""
        where = _location(node)
        if field:
            where = (where + ", " if where else "") + field
        if where:
            message = "%s: %s" % (where, message)
        return XmlFormatError(message, getattr(node, "sourceline", None), self.source)

    def children(self, node):
        allowed = _CHILDREN.get(node.tag, set())
        for child in node:
            if not isinstance(child.tag, str):
                continue
            if child.tag not in allowed:
                raise self.error(child, "unexpected <%s> inside <%s> (allowed: %s)"
                                 % (brief(child.tag, quote=False), node.tag,
                                    ", ".join(sorted(allowed)) or "none"))
            if len(child.attrib) == 0 and child.tag not in _CHILDREN:
                raise self.error(child, "<%s> has no attributes" % child.tag)
            yield child

    def section(self, node, tag: str):
        found = [c for c in self.children(node) if c.tag == tag]
        if len(found) > 1:
            raise self.error(found[1], "<%s> appears twice inside <%s>" % (tag, node.tag))
        return found[0] if found else None

    def attr(self, node, name: str, convert=str, required: bool = True, none_text=False):
        text = node.get(name)
        if text is None:
            if required:
                raise self.error(node, "<%s> lacks the required attribute %r" % (node.tag, name))
            return None
        if none_text and text == "None":
            return None
        try:
            return convert(text)
        except (TypeError, ValueError):
            # the value of an <attribute> is the attribute itself (named by _location)
            field = None if node.tag in _NAMED and name == "value" else name
            raise self.error(node, "expected %s, got %s"
                             % (_EXPECTED.get(convert, convert.__name__), brief(text)),
                             field) from None

    def typed_value(self, node):
        typ = self.attr(node, "type")
        text = self.attr(node, "value")
        if typ in ("STRING", "ENUM"):
            return text
        if typ == "BOOL":
            if text not in ("True", "False"):
                raise self.error(node, "expected %s, got %s" % (_EXPECTED[bool], brief(text)))
            return text == "True"
        if typ == "INTEGER":
            return self.attr(node, "value", int)
        if typ == "DOUBLE":
            return self.attr(node, "value", float)
        raise self.error(node, "unknown type %s (expected STRING, BOOL, INTEGER, DOUBLE)"
                         % brief(typ))

    def read(self, root) -> ExperimentData:
        if root.tag != "experiment":
            raise self.error(root, "root element is <%s>, expected <experiment>"
                             % brief(root.tag, quote=False))
        data = ExperimentData()
        testbeds = self.section(root, "testbeds")
        if testbeds is None:
            raise self.error(root, "<experiment> has no <testbeds> section")
        pending = []
        for tb in self.children(testbeds):
            guid = self.guid(tb, data)
            data.add_testbed_data(guid, self.attr(tb, "testbed_id"),
                                  self.attr(tb, "testbed_version"))
            data.lines[guid] = tb.sourceline
            self.common(tb, guid, data)
            elements = self.section(tb, "elements")
            if elements is not None:
                pending.append((guid, elements))
        for testbed_guid, elements in pending:
            for el in self.children(elements):
                self.element(el, testbed_guid, data)
        # NEPI 2 loads a connection recorded on one of its ends only, and connects both
        for guid, connector, other_guid, other_connector in data.complete_connections():
            log.debug("connection %s.%s -> %s.%s was recorded on element %s only; recorded "
                      "on both ends", other_guid, brief(other_connector, quote=False), guid,
                      brief(connector, quote=False), other_guid)
        return data

    def guid(self, node, data):
        guid = self.attr(node, "guid", _guid_number)
        if guid in data.data:
            raise self.error(node, "guid %d is used twice (first at line %s)"
                             % (guid, data.lines.get(guid)))
        return guid

    def common(self, node, guid, data) -> None:
        gi = self.section(node, "graphical_info")
        if gi is not None:
            data.add_graphical_info_data(guid, *(self.attr(gi, n, float)
                                                 for n in ("x", "y", "width", "height")))
        attrs = self.section(node, "attributes")
        if attrs is not None:
            for a in self.children(attrs):
                data.add_attribute_data(guid, self.attr(a, "name"), self.typed_value(a))

    def element(self, el, testbed_guid, data) -> None:
        guid = self.guid(el, data)
        data.add_box_data(guid, testbed_guid, self.attr(el, "factory_id"))
        data.lines[guid] = el.sourceline
        self.common(el, guid, data)
        fattrs = self.section(el, "factory_attributes")
        if fattrs is not None:
            for a in self.children(fattrs):
                data.add_factory_attribute_data(guid, self.attr(a, "name"), self.typed_value(a))
        traces = self.section(el, "traces")
        if traces is not None:
            for t in self.children(traces):
                data.add_trace_data(guid, self.attr(t, "name"))
        addresses = self.section(el, "addresses")
        if addresses is not None:
            for a in self.children(addresses):
                data.add_address_data(guid, self.attr(a, "Address", required=False),
                                      self.attr(a, "NetPrefix", _int_or_netref, required=False,
                                                none_text=True),
                                      self.attr(a, "Broadcast", required=False, none_text=True))
        routes = self.section(el, "routes")
        if routes is not None:
            for r in self.children(routes):
                data.add_route_data(
                    guid, self.attr(r, "Destination", required=False, none_text=True),
                    self.attr(r, "NetPrefix", _int_or_netref, none_text=True),
                    self.attr(r, "NextHop", required=False, none_text=True),
                    self.attr(r, "Metric", _int_or_netref, required=False, none_text=True) or 0,
                    self.attr(r, "Device", required=False, none_text=True))
        connections = self.section(el, "connections")
        if connections is not None:
            for c in self.children(connections):
                data.add_connection_data(guid, self.attr(c, "connector"),
                                         self.attr(c, "other_guid", _guid_number),
                                         self.attr(c, "other_connector"))
