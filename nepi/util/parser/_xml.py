"""Design/execute XML in NEPI 2's format, read safely with lxml and written byte-stably."""

import io
import logging
import re
from typing import Optional, Union

from lxml import etree

from nepi.errors import AttributeValueError, XmlFormatError, brief, describe_element
from nepi.util.netrefs import is_single_netref
from nepi.util.gcpause import gc_paused
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
        """The XML of ``data``, written as text: building an lxml tree first costs three
        times as much. Data the text writer does not take as it is (a value XML cannot
        hold, a value of no XML type, an entry of an unexpected shape) goes through the
        tree writer, which writes it or says exactly which element and attribute is at
        fault; both write the same bytes."""
        with gc_paused():
            try:
                return _TextWriter(data).document()
            except Exception:
                return self._tree_to_xml(data)

    def _tree_to_xml(self, data: ExperimentData) -> str:
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
        """The data of a design XML; XmlFormatError naming the first fault of a bad one."""
        with gc_paused():
            xml = _document_bytes(xml, source)
            data = _Reader.stream(xml, source)
            if data is None:       # a faulty document: read() says what is wrong
                data = _Reader(source).read(parse_document(xml, source))
            return data


class _Unwritable(Exception):
    """Data the text writer leaves to the tree writer."""


_TYPE_NAMES = {bool: "BOOL", int: "INTEGER", float: "DOUBLE", str: "STRING"}
# What lxml escapes in an attribute value, and the characters XML cannot hold at all.
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                          "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"})
_SPECIAL = re.compile('[&<>"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')


def _quoted(value) -> str:
    """An attribute value as lxml writes it (None, or one XML cannot hold: _Unwritable)."""
    t = type(value)
    if t is int or t is float or t is bool:
        return str(value)
    if value is None:
        raise _Unwritable()
    text = value if t is str else str(value)
    if _SPECIAL.search(text) is None:
        return text
    if _NOT_IN_XML.search(text):
        raise _Unwritable()
    return text.translate(_ESCAPES)


def _leaf(indent: str, tag: str, fields) -> str:
    """``<tag name="value" .../>`` of the (name, value) ``fields`` not None, in order."""
    return "%s<%s%s/>\n" % (indent, tag, "".join(' %s="%s"' % (n, _quoted(v))
                                               for n, v in fields if v is not None))


class _QuotedNames(dict):
    """name -> _quoted(name) for the names of a design (factories, connectors, attributes,
    traces): few, each written again and again. Only strings are kept: True and 1 would
    share a key."""

    def __missing__(self, name) -> str:
        quoted = _quoted(name)
        if type(name) is str:
            self[name] = quoted
        return quoted


class _TextWriter:
    """data_to_xml without a tree: the bytes etree.indent and tostring would write (four
    spaces per level, XML attributes in alphabetical order as NEPI 2 writes them)."""

    def __init__(self, data: ExperimentData) -> None:
        self.data = data
        self.out: list = []
        self.names = _QuotedNames()

    def document(self) -> str:
        data, out = self.data, self.out
        bodies = {}
        for guid in data.box_guids():
            testbed_guid = data.data[guid]["testbed_guid"]
            if testbed_guid not in bodies:
                bodies[testbed_guid] = []
            self.out = bodies[testbed_guid]
            self.element(guid)
        self.out = out
        out.append('<?xml version="1.0" encoding="UTF-8"?>\n<experiment>\n')
        testbeds = data.testbed_guids()
        if set(bodies) - set(testbeds):
            raise _Unwritable()     # elements of a testbed that is not there
        out.append("    <testbeds>\n" if testbeds else "    <testbeds/>\n")
        for guid in testbeds:
            entry = data.data[guid]
            out.append('        <testbed guid="%s" testbed_id="%s" testbed_version="%s">\n'
                       % (_quoted(guid), _quoted(entry["testbed_id"]),
                          _quoted(entry["testbed_version"])))
            self.position(entry, " " * 12)
            self.attributes(entry.get("attributes"), " " * 12, "attributes", "attribute")
            body = bodies.get(guid)
            if body:
                out.append("            <elements>\n")
                out.extend(body)
                out.append("            </elements>\n")
            else:
                out.append("            <elements/>\n")
            out.append("        </testbed>\n")
        if testbeds:
            out.append("    </testbeds>\n")
        out.append("</experiment>\n")
        return "".join(out)

    def position(self, entry: dict, indent: str) -> None:
        gi = entry.get("graphical_info")
        if gi:
            self.out.append('%s<graphical_info height="%s" width="%s" x="%s" y="%s"/>\n'
                            % (indent, float(gi["height"]), float(gi["width"]),
                               float(gi["x"]), float(gi["y"])))
        else:
            self.out.append(indent + _NO_POSITION)

    def attributes(self, values: Optional[dict], indent: str, section: str,
                   tag: str) -> None:
        if not values:
            return
        names = self.names
        lines = ['%s    <%s name="%s" type="%s" value="%s"/>\n'
                 % (indent, tag, names[name], _TYPE_NAMES.get(type(value))
                    or type_to_standard(value), _quoted(value))
                 for name, value in values.items() if value is not None]
        if lines:
            self.out.append("%s<%s>\n" % (indent, section))
            self.out.extend(lines)
            self.out.append("%s</%s>\n" % (indent, section))

    def element(self, guid: int) -> None:
        data, out, names = self.data, self.out, self.names
        entry = data.data[guid]
        indent = " " * 20
        out.append('                <element factory_id="%s" guid="%s">\n'
                   % (names[entry["factory_id"]], _quoted(guid)))
        self.position(entry, indent)
        if entry.get("factory_attributes"):
            self.attributes(entry["factory_attributes"], indent, "factory_attributes",
                            "factory_attribute")
        if entry.get("attributes"):
            self.attributes(entry["attributes"], indent, "attributes", "attribute")
        traces = entry.get("traces")
        if traces:
            out.append(indent + "<traces>\n")
            out.extend('%s    <trace name="%s"/>\n' % (indent, names[name]) for name in traces)
            out.append(indent + "</traces>\n")
        if entry.get("addresses"):
            out.append(indent + "<addresses>\n")
            out.extend(_leaf(indent + "    ", "address", (
                ("Address", address or None), ("Broadcast", broadcast or None),
                ("NetPrefix", netprefix)))
                for (address, netprefix, broadcast) in data.get_address_data(guid))
            out.append(indent + "</addresses>\n")
        if entry.get("routes"):
            out.append(indent + "<routes>\n")
            out.extend(_leaf(indent + "    ", "route", (
                ("Destination", dest), ("Device", device), ("Metric", metric),
                ("NetPrefix", prefix), ("NextHop", nexthop)))
                for (dest, prefix, nexthop, metric, device) in data.get_route_data(guid))
            out.append(indent + "</routes>\n")
        connections = entry.get("connections")
        if connections:
            lines = ['%s    <connection connector="%s" other_connector="%s" other_guid="%s"/>\n'
                     % (indent, names[connector], names[other_connector],
                        _quoted(other_guid))
                     for connector, peers in connections.items()
                     for other_guid, other_connector in peers.items()]
            if lines:
                out.append(indent + "<connections>\n")
                out.extend(lines)
                out.append(indent + "</connections>\n")
        out.append("                </element>\n")


_NO_POSITION = '<graphical_info height="0.0" width="0.0" x="0.0" y="0.0"/>\n'


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


# Untrusted XML: no DTD, no entities, no network, bounded depth. The reader looks at tags
# and XML attributes only: blank text and an id table would be built for nothing.
_PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False,
                       dtd_validation=False, huge_tree=False, remove_comments=True,
                       remove_pis=True, remove_blank_text=True, collect_ids=False)


def _document_bytes(xml: Union[str, bytes], source: Optional[str] = None) -> bytes:
    """The document as bytes, if it is one that may be parsed (XmlFormatError if not)."""
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
    xml = bytes(xml)
    if _has_doctype(xml):
        raise XmlFormatError("documents with a DOCTYPE or entity declarations are refused",
                             1, source)
    return xml


def parse_document(xml: Union[str, bytes], source: Optional[str] = None):
    """Parse untrusted XML: no DTD, no entities, no network, bounded size and depth."""
    xml = _document_bytes(xml, source)
    try:
        root = etree.fromstring(xml, etree.XMLParser(**_PARSER_OPTIONS))
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


# Tags that hold no other tags: each must carry XML attributes.
_LEAVES = frozenset(t for allowed in _CHILDREN.values() for t in allowed) - set(_CHILDREN)
_NO_CHILDREN = frozenset()
# The sections of an <element>, in the order they are read (and duplicates reported).
_ELEMENT_SECTIONS = ("graphical_info", "attributes", "factory_attributes", "traces",
                     "addresses", "routes", "connections")


class _Reader:
    """Reads a parsed document into ExperimentData.

    What is wrong is reported as NEPI 2 input errors are: the first fault in the order it
    reads, located (see error). The loops over elements, attributes and connections run
    for every node of a large design, so they only recognise well-formed content; a node
    they do not is handed to the general methods (check_child, attr, typed_value...),
    which find what exactly is wrong with it, in the same order."""

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

    def check_child(self, node, child) -> bool:
        """Whether ``child`` of ``node`` is a tag to read (False: a comment or the like);
        XmlFormatError if it is not allowed there, or is a leaf without attributes."""
        tag = child.tag
        allowed = _CHILDREN.get(node.tag, _NO_CHILDREN)
        if tag not in allowed:
            if not isinstance(tag, str):
                return False
            raise self.error(child, "unexpected <%s> inside <%s> (allowed: %s)"
                             % (brief(tag, quote=False), node.tag,
                                ", ".join(sorted(allowed)) or "none"))
        if tag in _LEAVES and len(child.attrib) == 0:
            raise self.error(child, "<%s> has no attributes" % tag)
        return True

    def children(self, node):
        """The child tags of ``node``, each checked (check_child) as it comes."""
        for child in node:
            if self.check_child(node, child):
                yield child

    def sections(self, node) -> dict:
        """The children of ``node`` by tag, all checked at once (see check_child)."""
        found: dict = {}
        allowed = _CHILDREN.get(node.tag, _NO_CHILDREN)
        for child in node:
            tag = child.tag
            if (tag in allowed and tag not in _LEAVES) or self.check_child(node, child):
                nodes = found.get(tag)
                if nodes is None:
                    found[tag] = [child]
                else:
                    nodes.append(child)
        return found

    def section(self, node, tag: str, found: Optional[dict] = None):
        """The one child ``tag`` of ``node`` or None (``found``: its sections())."""
        if found is None:
            found = self.sections(node)
        nodes = found.get(tag)
        if not nodes:
            return None
        if len(nodes) > 1:
            raise self.error(nodes[1], "<%s> appears twice inside <%s>" % (tag, node.tag))
        return nodes[0]

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

    def named_values(self, section, tag: str):
        """(name, value) of each <attribute> or <factory_attribute> of ``section``."""
        for a in section:
            if a.tag == tag:
                name, typ, text = a.get("name"), a.get("type"), a.get("value")
                if name is not None and text is not None:
                    if typ == "STRING" or typ == "ENUM":
                        yield name, text
                        continue
                    if typ == "BOOL":
                        if text == "True" or text == "False":
                            yield name, text == "True"
                            continue
                    elif typ == "INTEGER":
                        try:
                            value = int(text)
                        except ValueError:
                            pass
                        else:
                            yield name, value
                            continue
                    elif typ == "DOUBLE":
                        try:
                            value = float(text)
                        except ValueError:
                            pass
                        else:
                            yield name, value
                            continue
            if self.check_child(section, a):
                yield self.attr(a, "name"), self.typed_value(a)

    def read(self, root) -> ExperimentData:
        data = ExperimentData()
        for testbed_guid, elements in self.testbeds(root, data):
            for el in elements:
                if el.tag == "element" or self.check_child(elements, el):
                    self.element(el, testbed_guid, data)
        _complete_connections(data)
        return data

    @classmethod
    def stream(cls, xml: bytes, source: Optional[str]) -> Optional[ExperimentData]:
        """read() as the document is parsed, each <element> dropped from the tree once
        read: the tree of a large design is never whole in memory (200 MB for 50,000
        elements), which makes reading it a fifth faster. None at the first fault of any
        kind: read() says what it is (it reads in another order, so its first fault may
        be another one); anything unusual (an element out of place) is left to it too."""
        reader = cls(source)
        elements = ExperimentData()       # read as they come, added after the testbeds
        testbed_guids: dict = {}          # <testbed> node -> its guid
        try:
            events = etree.iterparse(io.BytesIO(xml), events=("end",), tag="element",
                                     **_PARSER_OPTIONS)
            for _, el in events:
                holder = el.getparent()       # an element where read() expects one?
                testbed = holder.getparent() if holder is not None and \
                    holder.tag == "elements" else None
                testbeds = testbed.getparent() if testbed is not None and \
                    testbed.tag == "testbed" else None
                if testbeds is None or testbeds.tag != "testbeds":
                    return None
                testbed_guid = testbed_guids.get(testbed)
                if testbed_guid is None:
                    testbed_guid = testbed_guids[testbed] = _guid_number(testbed.get("guid"))
                reader.element(el, testbed_guid, elements)
                el.clear()
                previous = el.getprevious()
                while previous is not None:     # elements read before: nothing else
                    if previous.tag != "element":
                        return None
                    holder.remove(previous)
                    previous = el.getprevious()
            root = events.root
            docinfo = root.getroottree().docinfo
            if docinfo.doctype or docinfo.internalDTD is not None:
                return None
            data = ExperimentData()
            for _, holder in reader.testbeds(root, data):
                if any(el.tag != "element" for el in holder):
                    return None
        except (XmlFormatError, etree.XMLSyntaxError, TypeError, ValueError):
            return None
        if not data.data.keys().isdisjoint(elements.data):
            return None
        data.data.update(elements.data)
        data.lines.update(elements.lines)
        _complete_connections(data)
        return data

    def testbeds(self, root, data: ExperimentData) -> list:
        """Read the testbeds of the document ``root`` into ``data``: (guid, <elements>) of
        each that has elements."""
        if root.tag != "experiment":
            raise self.error(root, "root element is <%s>, expected <experiment>"
                             % brief(root.tag, quote=False))
        testbeds = self.section(root, "testbeds")
        if testbeds is None:
            raise self.error(root, "<experiment> has no <testbeds> section")
        pending = []
        for tb in self.children(testbeds):
            guid = self.guid(tb, data)
            data.add_testbed_data(guid, self.attr(tb, "testbed_id"),
                                  self.attr(tb, "testbed_version"))
            data.lines[guid] = tb.sourceline
            found = self.sections(tb)
            gi = self.section(tb, "graphical_info", found)
            if gi is not None:
                data.add_graphical_info_data(guid, *self.position(gi))
            attrs = self.section(tb, "attributes", found)
            if attrs is not None:
                for name, value in self.named_values(attrs, "attribute"):
                    data.add_attribute_data(guid, name, value)
            elements = self.section(tb, "elements", found)
            if elements is not None:
                pending.append((guid, elements))
        return pending

    def guid(self, node, data):
        try:
            guid = _guid_number(node.get("guid"))
        except (TypeError, ValueError):
            guid = self.attr(node, "guid", _guid_number)
        if guid in data.data:
            raise self.error(node, "guid %d is used twice (first at line %s)"
                             % (guid, data.lines.get(guid)))
        return guid

    def position(self, gi) -> tuple:
        """x, y, width, height of a <graphical_info>."""
        try:
            return (float(gi.get("x")), float(gi.get("y")), float(gi.get("width")),
                    float(gi.get("height")))
        except (TypeError, ValueError):
            return tuple(self.attr(gi, n, float) for n in ("x", "y", "width", "height"))

    def element(self, el, testbed_guid, data) -> None:
        guid = self.guid(el, data)
        factory_id = el.get("factory_id")
        if factory_id is None:
            factory_id = self.attr(el, "factory_id")
        data.add_box_data(guid, testbed_guid, factory_id)
        data.lines[guid] = el.sourceline
        found = self.sections(el)
        for tag in _ELEMENT_SECTIONS:
            nodes = found.get(tag)
            if nodes is None:
                continue
            if len(nodes) > 1:
                raise self.error(nodes[1], "<%s> appears twice inside <element>" % tag)
            section = nodes[0]
            if tag == "connections":
                self.connections(section, guid, data)
            elif tag == "graphical_info":
                data.add_graphical_info_data(guid, *self.position(section))
            elif tag == "attributes":
                for name, value in self.named_values(section, "attribute"):
                    data.add_attribute_data(guid, name, value)
            elif tag == "factory_attributes":
                for name, value in self.named_values(section, "factory_attribute"):
                    data.add_factory_attribute_data(guid, name, value)
            elif tag == "traces":
                for t in section:
                    name = t.get("name") if t.tag == "trace" else None
                    if name is not None:
                        data.add_trace_data(guid, name)
                    elif self.check_child(section, t):
                        data.add_trace_data(guid, self.attr(t, "name"))
            elif tag == "addresses":
                for a in self.children(section):
                    data.add_address_data(guid, self.attr(a, "Address", required=False),
                                          self.attr(a, "NetPrefix", _int_or_netref,
                                                    required=False, none_text=True),
                                          self.attr(a, "Broadcast", required=False,
                                                    none_text=True))
            elif tag == "routes":
                for r in self.children(section):
                    data.add_route_data(
                        guid, self.attr(r, "Destination", required=False, none_text=True),
                        self.attr(r, "NetPrefix", _int_or_netref, none_text=True),
                        self.attr(r, "NextHop", required=False, none_text=True),
                        self.attr(r, "Metric", _int_or_netref, required=False,
                                  none_text=True) or 0,
                        self.attr(r, "Device", required=False, none_text=True))

    def connections(self, section, guid: int, data) -> None:
        add = data.add_connection_data
        for c in section:
            if c.tag == "connection":
                connector, other_connector = c.get("connector"), c.get("other_connector")
                if connector is not None and other_connector is not None:
                    try:
                        add(guid, connector, _guid_number(c.get("other_guid")),
                            other_connector)
                        continue
                    except (TypeError, ValueError):
                        pass
            if self.check_child(section, c):
                add(guid, self.attr(c, "connector"), self.attr(c, "other_guid", _guid_number),
                    self.attr(c, "other_connector"))



def _complete_connections(data: ExperimentData) -> None:
    """NEPI 2 loads a connection recorded on one of its ends only, and connects both."""
    for guid, connector, other_guid, other_connector in data.complete_connections():
        log.debug("connection %s.%s -> %s.%s was recorded on element %s only; recorded "
                  "on both ends", other_guid, brief(other_connector, quote=False), guid,
                  brief(connector, quote=False), other_guid)
