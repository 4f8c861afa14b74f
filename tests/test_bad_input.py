"""Bad designs and bad XML: each case must be refused with a specific, located message.

SPEC 3: validation reports every problem at once, each with its guid/label; XML input is
untrusted (no DTD/entities, errors name the line).
"""

import time

import pytest

from nepi.core.checks import check_data
from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.errors import AttributeValueError, DesignError, XmlFormatError
from nepi.util.parser._xml import XmlExperimentParser
from nepi.util.parser.base import ExperimentData

DECL = '<?xml version="1.0" encoding="UTF-8"?>'
GI = '<graphical_info height="0.0" width="0.0" x="0.0" y="0.0"/>'
MAX3 = '<factory_attributes><factory_attribute name="maxAddresses" type="INTEGER" value="3"/>' \
       '</factory_attributes>'


def attr(name, value, type="STRING", tag="attribute"):
    return '<%s name="%s" type="%s" value="%s"/>' % (tag, name, type, value)


def attrs(*items):
    return "<attributes>%s</attributes>" % "".join(items)


def conns(*triples):
    return "<connections>%s</connections>" % "".join(
        '<connection connector="%s" other_connector="%s" other_guid="%s"/>' % (c, oc, og)
        for (c, og, oc) in triples)


def addrs(*items):
    return "<addresses>%s</addresses>" % "".join(
        '<address %s/>' % " ".join('%s="%s"' % kv for kv in item.items()) for item in items)


def routes(*items):
    return "<routes>%s</routes>" % "".join(
        '<route %s/>' % " ".join('%s="%s"' % kv for kv in item.items()) for item in items)


def el(guid, factory_id, *children):
    """One element, on one line."""
    return '<element factory_id="%s" guid="%s">%s%s</element>' % (factory_id, guid, GI,
                                                                  "".join(children))


def doc(*elements, tb_attrs=(), testbed_id="mock", version="0.1", guid=1, extra=()):
    """A design document, one element per line: with no tb_attrs the first element is on
    line 7 (declaration 1, experiment 2, testbeds 3, testbed 4, graphical_info 5,
    elements 6)."""
    lines = [DECL, "<experiment>", "  <testbeds>",
             '    <testbed guid="%s" testbed_id="%s" testbed_version="%s">'
             % (guid, testbed_id, version),
             "      " + GI]
    if tb_attrs:
        lines.append("      " + attrs(*tb_attrs))
    lines.append("      <elements>")
    lines += ["        " + e for e in elements]
    lines += ["      </elements>", "    </testbed>"]
    lines += list(extra)
    lines += ["  </testbeds>", "</experiment>", ""]
    return "\n".join(lines)


def load(xml):
    exp = ExperimentDescription()
    exp.from_xml(xml)
    return exp


def design_error(xml):
    with pytest.raises(DesignError) as info:
        load(xml)
    return info.value


def find(problems, guid, attribute):
    found = [p for p in problems if p.guid == guid and p.attribute == attribute]
    assert len(found) == 1, "expected one problem for guid %s attribute %r in %s" % (
        guid, attribute, problems)
    return found[0]


def data_of(xml):
    return XmlExperimentParser().from_xml_to_data(xml)


# A valid baseline node/interface pair used by several cases.
NODE2 = el(2, "Node", conns(("devs", 3, "node")))
IFACE3 = el(3, "Interface", MAX3, conns(("node", 2, "devs")))


def test_baseline_document_is_valid():
    exp = load(doc(NODE2, IFACE3))
    assert exp.problems() == []
    assert exp.box(3).connector("node").get_connected_box() is exp.box(2)


# ---------------------------------------------------------------------------------------
# XML that cannot be read: XmlFormatError with the line
# ---------------------------------------------------------------------------------------

XML_CASES = [
    pytest.param(DECL + "\n<experiment>\n<testbeds>\n<testbed>\n</experiment>\n", 5,
                 r"^line 5: not well-formed XML: Opening and ending tag mismatch: testbed "
                 r"line 4 and experiment", id="not-well-formed"),
    pytest.param(DECL + "\n<foo/>\n", 2, r"^line 2: root element is <foo>, expected "
                                         r"<experiment>$", id="wrong-root"),
    pytest.param(doc(el(2, "Node", '<bogus a="1"/>')), 7,
                 r"^line 7: element 2 \(Node, testbed 1 mock\): unexpected <bogus> inside "
                 r"<element> \(allowed: addresses, "
                 r"attributes, connections, factory_attributes, graphical_info, routes, "
                 r"traces\)$", id="unknown-tag"),
    pytest.param(doc('<element guid="2"/>'), 7,
                 r"^line 7: element 2 \(testbed 1 mock\): <element> lacks the required "
                 r"attribute 'factory_id'$",
                 id="missing-factory_id"),
    pytest.param(doc().replace(' testbed_version="0.1"', ""), 4,
                 r"^line 4: testbed 1 \(mock\): <testbed> lacks the required attribute "
                 r"'testbed_version'$",
                 id="missing-testbed_version"),
    pytest.param(doc(el(2, "Node", conns(("apps", 3, "node")).replace(' other_guid="3"', ""))),
                 7, r"^line 7: element 2 \(Node, testbed 1 mock\), connection #0: "
                    r"<connection> lacks the required attribute 'other_guid'$",
                 id="missing-other_guid"),
    pytest.param(doc(tb_attrs=[attr("deployment_port", "abc", "INTEGER")]), 6,
                 r"^line 6: testbed 1 \(mock\), attribute 'deployment_port': expected an "
                 r"integer, got 'abc'$",
                 id="integer-abc"),
    pytest.param(doc(tb_attrs=[attr("fake", "yes", "BOOL")]), 6,
                 r"^line 6: testbed 1 \(mock\), attribute 'fake': expected a boolean "
                 r"\(True or False\), got 'yes'$",
                 id="bool-yes"),
    pytest.param(doc(tb_attrs=[attr("fake", "True", "FOO")]), 6,
                 r"^line 6: testbed 1 \(mock\), attribute 'fake': unknown type 'FOO' "
                 r"\(expected STRING, BOOL, INTEGER, DOUBLE\)$", id="unknown-type-FOO"),
    pytest.param(doc(el(2, "Node", attrs(attr("fake", "1.x", "DOUBLE")))), 7,
                 r"^line 7: element 2 \(Node, testbed 1 mock\), attribute 'fake': expected "
                 r"a number, got '1.x'$",
                 id="double-not-a-number"),
    pytest.param(doc(el(2, "Node"), el(2, "Interface")), 8,
                 r"^line 8: element 2 \(Interface, testbed 1 mock\): guid 2 is used twice "
                 r"\(first at line 7\)$", id="duplicate-guid"),
    pytest.param(doc(el(1, "Node")), 7, r"^line 7: element 1 \(Node, testbed 1 mock\): guid "
                                        r"1 is used twice \(first at line 4\)$",
                 id="element-reuses-testbed-guid"),
    pytest.param(doc(el("x", "Node")), 7,
                 r"^line 7: element \(Node, testbed 1 mock\), guid: expected a guid \(an "
                 r"integer from 1 to 2\^63-1\), got 'x'$",
                 id="guid-not-integer"),
    pytest.param(doc(el(0, "Node")), 7, r"^line 7: element \(Node, testbed 1 mock\), guid: "
                                        r"expected a guid \(an integer from 1 to 2\^63-1\), "
                                        r"got '0'$",
                 id="guid-zero"),
    pytest.param(DECL + "\n<experiment/>\n", 2,
                 r"^line 2: <experiment> has no <testbeds> section$", id="no-testbeds"),
    pytest.param(doc(el(2, "Node", attrs(attr("test", "a")), attrs(attr("test", "b")))), 7,
                 r"^line 7: element 2 \(Node, testbed 1 mock\): <attributes> appears twice "
                 r"inside <element>$",
                 id="section-twice"),
    pytest.param(doc(el(2, "Interface", addrs({"Address": "10.0.0.1", "NetPrefix": "x"}))), 7,
                 r"^line 7: element 2 \(Interface, testbed 1 mock\), address #0, NetPrefix: "
                 r"expected an integer or a netref, got 'x'$",
                 id="address-netprefix-not-integer"),
    pytest.param(doc(el(2, "Node", conns(("apps", "three", "node")))), 7,
                 r"^line 7: element 2 \(Node, testbed 1 mock\), connection #0, other_guid: "
                 r"expected a guid \(an integer from 1 to 2\^63-1\), got 'three'$",
                 id="other_guid-not-integer"),
    pytest.param(b"\xff\xfe garbage", 1, r"^line 1: not well-formed XML",
                 id="binary-garbage"),
]


@pytest.mark.parametrize("xml, line, message", XML_CASES)
def test_unreadable_xml(xml, line, message):
    with pytest.raises(XmlFormatError, match=message) as info:
        load(xml)
    assert info.value.line == line
    # from_xml_to_data refuses the same way
    with pytest.raises(XmlFormatError, match=message):
        data_of(xml)


@pytest.mark.parametrize("xml", ["", "   \n\t ", b""], ids=["empty", "whitespace", "bytes"])
def test_empty_document(xml):
    with pytest.raises(XmlFormatError, match=r"^document is empty$") as info:
        load(xml)
    assert info.value.line is None


def test_xml_of_wrong_python_type():
    with pytest.raises(XmlFormatError, match=r"experiment XML must be str or bytes, not int"):
        load(123)


BILLION_LAUGHS = DECL + """
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<experiment><testbeds><testbed guid="1" testbed_id="mock" testbed_version="0.1">
<attributes><attribute name="test" type="STRING" value="x"/></attributes>
<elements/></testbed></testbeds><lolz>&lol9;</lolz></experiment>
"""


def test_billion_laughs_is_refused_not_expanded():
    start = time.monotonic()
    with pytest.raises(XmlFormatError) as info:
        load(BILLION_LAUGHS)
    assert time.monotonic() - start < 2.0
    assert "lollollol" not in str(info.value)
    assert "DOCTYPE or entity declarations are refused" in str(info.value) or \
        "entity amplification" in str(info.value)


def test_entity_declarations_without_references_are_refused():
    xml = BILLION_LAUGHS.replace("<lolz>&lol9;</lolz>", "")
    with pytest.raises(XmlFormatError, match=r"^line 1: documents with a DOCTYPE or entity "
                                             r"declarations are refused$"):
        load(xml)


def test_plain_doctype_is_refused():
    xml = DECL + '\n<!DOCTYPE experiment SYSTEM "http://example.invalid/x.dtd">\n' \
                 '<experiment><testbeds/></experiment>\n'
    with pytest.raises(XmlFormatError, match=r"documents with a DOCTYPE or entity "
                                             r"declarations are refused"):
        load(xml)


XXE = DECL + '\n<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n' \
            '<experiment><testbeds><testbed guid="1" testbed_id="mock" ' \
            'testbed_version="0.1"><attributes>' \
            '<attribute name="test" type="STRING" value="&xxe;"/>' \
            '</attributes><elements/></testbed></testbeds></experiment>\n'


def test_external_entity_is_refused_and_not_fetched():
    with pytest.raises(XmlFormatError) as info:
        load(XXE)
    # refused either as a DOCTYPE or because the entity is not resolved; never expanded
    assert "root:" not in str(info.value)
    assert "DOCTYPE or entity declarations are refused" in str(info.value) or \
        "external entity 'xxe'" in str(info.value)


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_doctype_with_referenced_entities_is_refused_as_doctype(xml):
    with pytest.raises(XmlFormatError, match=r"documents with a DOCTYPE or entity "
                                             r"declarations are refused"):
        load(xml)


# ---------------------------------------------------------------------------------------
# Readable XML, invalid design: DesignError with every blocking problem, located
# ---------------------------------------------------------------------------------------

# (xml, guid, attribute, exact message start)  -- messages carry "(line N)" at the end
DESIGN_CASES = [
    pytest.param(doc(testbed_id="nosuch"), 1, None,
                 "cannot load testbed 'nosuch': unknown testbed 'nosuch' (no module "
                 "nepi.testbeds.nosuch.metadata; known testbeds: ",
                 id="unknown-testbed"),
    pytest.param(doc(version="9.9"), 1, None,
                 "Bad testbed version on testbed mock. Asked for 9.9, got 0.1 (line 4)",
                 id="bad-testbed-version"),
    pytest.param(doc(el(2, "Router")), 2, None,
                 "unknown factory 'Router' in testbed mock (known: Application, Interface, "
                 "Node) (line 7)", id="unknown-factory"),
    pytest.param(doc(el(2, "Node", attrs(attr("bogus", "x")))), 2, "bogus",
                 "unknown attribute 'bogus' for factory Node (known: fake, label, test) "
                 "(line 7)", id="unknown-box-attribute"),
    pytest.param(doc(tb_attrs=[attr("bogus", "x")]), 1, "bogus",
                 "unknown attribute 'bogus' for testbed mock (known: cleanRoot, ",
                 id="unknown-testbed-attribute"),
    pytest.param(doc(el(2, "Interface", '<factory_attributes>%s</factory_attributes>'
                        % attr("bogus", "3", "INTEGER", "factory_attribute"))), 2, "bogus",
                 "unknown attribute 'bogus' for factory Interface (factory attribute) "
                 "(known: fake, maxAddresses) (line 7)", id="unknown-factory-attribute"),
    pytest.param(doc(el(2, "Node", attrs(attr("fake", "x")))), 2, "fake",
                 "invalid value 'x': expected a boolean (True/False) (line 7)",
                 id="string-for-bool"),
    pytest.param(doc(el(2, "Node", attrs(attr("test", "5", "INTEGER")))), 2, "test",
                 "invalid value 5: expected a string (line 7)", id="integer-for-string"),
    pytest.param(doc(tb_attrs=[attr("deployment_port", "22")]), 1, "deployment_port",
                 "invalid value '22': expected an integer (line 4)",
                 id="string-for-integer"),
    pytest.param(doc(tb_attrs=[attr("deployment_mode", "BOGUS")]), 1, "deployment_mode",
                 "invalid value 'BOGUS': expected one of 'DAEMON', 'SINGLE' (line 4)",
                 id="enum-deployment_mode"),
    pytest.param(doc(tb_attrs=[attr("logLevel", "Verbose")]), 1, "logLevel",
                 "invalid value 'Verbose': expected one of 'Error', 'Debug' (line 4)",
                 id="enum-logLevel"),
    pytest.param(doc(el(2, "Interface", MAX3, attrs(attr("maxAddresses", "7", "INTEGER")))),
                 2, "maxAddresses",
                 "read-only attribute set to 7 (it must stay 3) (line 7)",
                 id="read-only-maxAddresses"),
    pytest.param(doc(el(2, "Interface", addrs({"Address": "fd00::1", "NetPrefix": "129"}))),
                 2, "NetPrefix", "address #0: NetPrefix 129 out of range [0, 128] (line 7)",
                 id="netprefix-out-of-range-ipv6"),
    pytest.param(doc(el(2, "Interface", addrs({"Address": "10.0.0.1", "NetPrefix": "33"}))),
                 2, "NetPrefix", "address #0: NetPrefix 33 out of range [0, 32] (line 7)",
                 id="netprefix-33-ipv4"),
    pytest.param(doc(el(2, "Interface", addrs({"Address": "not.an.ip", "NetPrefix": "24"}))),
                 2, "Address", "address #0: 'not.an.ip' is not an IP address (line 7)",
                 id="address-not-ip"),
    pytest.param(doc(el(2, "Interface", addrs({"Address": "10.0.0.1", "NetPrefix": "24",
                                               "Broadcast": "10.0.0.256"}))),
                 2, "Broadcast", "address #0: Broadcast '10.0.0.256' is not an IPv4 address "
                                 "(line 7)", id="bad-broadcast"),
    pytest.param(doc(el(2, "Interface", addrs({"Address": "fd00::1", "NetPrefix": "64",
                                               "Broadcast": "fd00::ff"}))),
                 2, "Broadcast", "address #0: Broadcast 'fd00::ff' is not an IPv4 address",
                 id="ipv6-broadcast"),
    pytest.param(doc(el(2, "Application", addrs({"Address": "10.0.0.1", "NetPrefix": "24"}))),
                 2, "addresses", "factory Application does not accept addresses (line 7)",
                 id="addresses-on-application"),
    pytest.param(doc(el(2, "Interface", MAX3,
                        addrs(*[{"Address": "10.0.0.%d" % i, "NetPrefix": "24"}
                                for i in range(1, 5)]))),
                 2, "addresses", "4 addresses given, at most 3 allowed (line 7)",
                 id="too-many-addresses"),
    pytest.param(doc(el(2, "Node", routes({"Destination": "10.9.0.1", "NetPrefix": "16",
                                           "NextHop": "10.0.0.1", "Metric": "0"}))),
                 2, "Destination", "route #0: 10.9.0.1/16 has host bits set (did you mean "
                                   "10.9.0.0/16?) (line 7)", id="route-host-bits"),
    pytest.param(doc(el(2, "Node", routes({"Destination": "10.9.0.0", "NetPrefix": "16",
                                           "NextHop": "gateway", "Metric": "0"}))),
                 2, "NextHop", "route #0: NextHop 'gateway' is not an IP address (line 7)",
                 id="route-nexthop-not-ip"),
    pytest.param(doc(el(2, "Node", routes({"Destination": "10.9.0.0", "NetPrefix": "16",
                                           "NextHop": "10.0.0.1", "Metric": "-1"}))),
                 2, "Metric", "route #0: Metric -1 is not a non-negative integer (line 7)",
                 id="route-negative-metric"),
    pytest.param(doc(el(2, "Node", routes({"NetPrefix": "16", "NextHop": "10.0.0.1"}))),
                 2, "Destination", "route #0 has no Destination (line 7)",
                 id="route-without-destination"),
    pytest.param(doc(el(2, "Node", routes({"Destination": "None", "NetPrefix": "8",
                                           "NextHop": "None", "Device": "None"}))),
                 2, "Destination", "route #0 has no Destination (line 7)",
                 id="route-nepi2-None-destination"),
    pytest.param(doc(el(2, "Interface", routes({"Destination": "10.0.0.0", "NetPrefix": "8"}))),
                 2, "routes", "factory Interface does not accept routes (line 7)",
                 id="routes-on-interface"),
    pytest.param(doc(el(2, "Interface", "<traces><trace name=\"nope\"/></traces>")),
                 2, "nope", "unknown trace 'nope' (factory Interface has: none) (line 7)",
                 id="unknown-trace"),
    pytest.param(doc(el(2, "Node", attrs(attr("label", "n"))),
                     el(3, "Node", attrs(attr("label", "n")))),
                 3, "label", "Label 'n' is not unique (also used by guid 2) (line 8)",
                 id="duplicate-label"),
    pytest.param(doc(el(2, "Node", attrs(attr("test", "{#[x]addr#}")))), 2, "test",
                 "malformed netref '{#[x]addr#}' (expected {#[label].[Attribute]#}, "
                 "{#[label].addr[N].[Address]#}, {#[label].route[N].[NextHop]#} or "
                 "{#[label].trace[name].[path]#}) (line 7)", id="malformed-netref"),
    pytest.param(doc(el(2, "Node", attrs(attr("test", "{#[n]x[test]#}")))), 2, "test",
                 "malformed netref '{#[n]x[test]#}'", id="netref-unescaped-dot"),
    pytest.param(doc(el(2, "Node", conns(("apps", 99, "node")))), 2, "apps",
                 "connection apps -> 99.node: element 99 does not exist (line 7)",
                 id="connection-to-missing-guid"),
    pytest.param(doc(el(2, "Node", conns(("apps", 3, "node"))),
                     el(3, "Application", conns(("node", 2, "devs")))),
                 2, "apps", "connection apps -> 3.node is not recorded on element 3, which "
                            "records node -> 2.devs instead (the two ends of a connection "
                            "must agree) (line 7)",
                 id="connection-ends-disagree"),
    pytest.param(doc(el(2, "Node", conns(("wires", 3, "node"))),
                     el(3, "Application", conns(("node", 2, "wires")))),
                 2, "wires", "connection wires -> 3.node: factory Node has no connector "
                             "'wires' (has: devs, apps) (line 7)", id="unknown-connector"),
    pytest.param(doc(el(2, "Interface", MAX3, conns(("iface", 2, "iface")))),
                 2, "iface", "connection iface -> 2.iface: an element cannot be connected "
                             "to itself (line 7)", id="self-connection"),
    pytest.param(doc(el(2, "Interface", MAX3, conns(("cross", 3, "cross"))),
                     el(3, "Interface", MAX3, conns(("cross", 2, "cross")))),
                 2, "cross", "connection cross -> 3.cross: Interface.cross may not be "
                             "connected to Interface.cross within one testbed (line 7)",
                 id="cross-within-one-testbed"),
]


@pytest.mark.parametrize("xml, guid, attribute, message", DESIGN_CASES)
def test_invalid_design(xml, guid, attribute, message):
    err = design_error(xml)
    assert str(err).startswith("cannot load experiment: ")
    problem = find(err.problems, guid, attribute)
    assert problem.blocking
    assert problem.message.startswith(message), problem.message
    # the same problem is found without loading
    assert [str(p) for p in check_data(data_of(xml)) if p.blocking] == \
        [str(p) for p in err.problems]
    # and the error text locates it
    assert str(problem) in str(err)


def test_problem_location_text():
    err = design_error(doc(el(2, "Node", attrs(attr("label", "n1"), attr("bogus", "x")))))
    (problem,) = err.problems
    assert (problem.guid, problem.label, problem.factory_id, problem.testbed) == \
        (2, "n1", "Node", "1 mock")
    assert str(problem) == ("element 2 (label 'n1', Node, testbed 1 mock), attribute 'bogus': "
                            "unknown attribute 'bogus' for factory Node (known: fake, label, "
                            "test) (line 7)")
    assert str(err) == "cannot load experiment: 1 problem\n  - " + str(problem)


def test_illegal_connection_node_devs_to_application_node():
    xml = doc(el(2, "Node", conns(("devs", 3, "node"))),
              el(3, "Application", conns(("node", 2, "devs"))))
    err = design_error(xml)
    assert len(err.problems) == 2
    assert find(err.problems, 2, "devs").message == (
        "connection devs -> 3.node: Node.devs may not be connected to Application.node "
        "within one testbed (line 7)")
    assert find(err.problems, 3, "node").message == (
        "connection node -> 2.devs: Application.node may not be connected to Node.devs "
        "within one testbed (line 8)")


def test_connector_max_exceeded():
    xml = doc(el(2, "Node", conns(("apps", 4, "node"))),
              el(3, "Node", conns(("apps", 4, "node"))),
              el(4, "Application", conns(("node", 2, "apps"), ("node", 3, "apps"))))
    err = design_error(xml)
    (problem,) = err.problems
    assert (problem.guid, problem.attribute) == (4, "node")
    assert problem.message == "connector 'node' has 2 connections, at most 1 allowed (line 9)"


def test_connection_across_testbeds_of_internal_connector():
    mock2 = ['    <testbed guid="10" testbed_id="mock2" testbed_version="0.1">',
             "      <elements>",
             "        " + el(11, "Interface", conns(("iface", 2, "iface"))),
             "      </elements>", "    </testbed>"]
    xml = doc(el(2, "Interface", MAX3, conns(("iface", 11, "iface"))), extra=mock2)
    err = design_error(xml)
    assert find(err.problems, 2, "iface").message.startswith(
        "connection iface -> 11.iface: Interface.iface may not be connected to "
        "Interface.iface across testbeds")
    assert find(err.problems, 11, "iface").message.startswith(
        "connection iface -> 2.iface: Interface.iface may not be connected to "
        "Interface.iface across testbeds")


def test_too_many_addresses_without_max_in_file():
    xml = doc(el(2, "Interface", addrs(*[{"Address": "10.0.0.%d" % i, "NetPrefix": "24"}
                                         for i in range(1, 5)])))
    err = design_error(xml)
    assert find(err.problems, 2, "addresses").message.startswith(
        "4 addresses given, at most 3 allowed")


# ---------------------------------------------------------------------------------------
# Non-blocking problems: the design loads for editing, problems()/validate() report them
# ---------------------------------------------------------------------------------------

LEFT = el(2, "Interface", MAX3, attrs(attr("label", "left")),
          addrs({"Address": "10.0.0.1", "NetPrefix": "24"}), conns(("node", 3, "devs")))
NODE3 = el(3, "Node", attrs(attr("label", "n3")), conns(("devs", 2, "node")))


def node_with_test(guid, value):
    return el(guid, "Node", attrs(attr("test", value)))


SOFT_CASES = [
    pytest.param(doc(el(2, "Interface")), 2, "node",
                 "connector 'node' has 0 connections, at least 1 required (Connector to a "
                 "Node)", id="connector-min-unmet"),
    pytest.param(doc(LEFT, NODE3, node_with_test(4, "{#[ghost].[test]#}")), 4, "test",
                 "netref {#[ghost].[test]#} names 'ghost', which is no element's label or "
                 "guid", id="netref-unknown-label"),
    pytest.param(doc(LEFT, NODE3, node_with_test(4, "{#[n3].[nope]#}")), 4, "test",
                 "netref {#[n3].[nope]#}: element 3 (Node) has no attribute 'nope'",
                 id="netref-unknown-attribute"),
    pytest.param(doc(LEFT, NODE3, node_with_test(4, "{#[left].addr[5].[Address]#}")), 4,
                 "test", "netref {#[left].addr[5].[Address]#}: element 2 has 1 address(es), "
                         "no address #5", id="netref-address-index"),
    pytest.param(doc(LEFT, NODE3, node_with_test(4, "{#[left].addr[0].[Foo]#}")), 4, "test",
                 "netref {#[left].addr[0].[Foo]#}: address field must be one of Address, "
                 "NetPrefix, Broadcast", id="netref-address-field"),
    pytest.param(doc(LEFT, NODE3, node_with_test(4, "{#[n3].addr[0].[Address]#}")), 4, "test",
                 "netref {#[n3].addr[0].[Address]#}: element 3 (Node) has no addresses",
                 id="netref-addr-of-node"),
    pytest.param(doc(LEFT, NODE3, node_with_test(4, "{#[left].trace[x].[path]#}")), 4, "test",
                 "netref {#[left].trace[x].[path]#}: element 2 (Interface) has no trace 'x'",
                 id="netref-unknown-trace"),
    pytest.param(doc(LEFT, NODE3, node_with_test(4, "{#[GUID-1].[fake]#}")), 4, "test",
                 "netref {#[GUID-1].[fake]#}: refers to a testbed; netrefs must name an "
                 "element", id="netref-to-testbed"),
    pytest.param(doc(LEFT, NODE3, node_with_test(4, "{#[GUID-77].[test]#}")), 4, "test",
                 "netref {#[GUID-77].[test]#} names 'GUID-77', which is no element's label "
                 "or guid", id="netref-unknown-guid"),
    pytest.param(doc(LEFT, NODE3, tb_attrs=[attr("deployment_host", "{#[nobody].[x]#}")]),
                 1, "deployment_host",
                 "netref {#[nobody].[x]#} names 'nobody', which is no element's label or guid",
                 id="testbed-netref-unknown-label"),
]


@pytest.mark.parametrize("xml, guid, attribute, message", SOFT_CASES)
def test_non_blocking_problem(xml, guid, attribute, message):
    exp = load(xml)                      # loads: the problem does not block editing
    problems = exp.problems()
    problem = find(problems, guid, attribute)
    assert not problem.blocking
    assert problem.message.startswith(message), problem.message
    with pytest.raises(DesignError) as info:
        exp.validate()
    assert str(problem) in str(info.value)


def test_netref_cycle():
    xml = doc(el(2, "Node", attrs(attr("label", "a"), attr("test", "{#[b].[test]#}"))),
              el(3, "Node", attrs(attr("label", "b"), attr("test", "x{#[c].[test]#}"))),
              el(4, "Node", attrs(attr("label", "c"), attr("test", "{#[a].[test]#}"))))
    exp = load(xml)
    problems = exp.problems()
    assert len(problems) == 1
    (p,) = problems
    assert not p.blocking and p.attribute == "test"
    assert p.message.startswith("netrefs form a cycle: ")
    cycle = p.message[len("netrefs form a cycle: "):].split(" (line")[0]
    assert set(cycle.split(" -> ")) == {"2.test", "3.test", "4.test"}
    assert len(cycle.split(" -> ")) == 4


def test_self_referencing_netref_is_a_cycle():
    exp = load(doc(el(2, "Node", attrs(attr("label", "a"), attr("test", "{#[a].[test]#}")))))
    (p,) = exp.problems()
    assert p.message.startswith("netrefs form a cycle: 2.test -> 2.test")


# ---------------------------------------------------------------------------------------
# Data that XML cannot express
# ---------------------------------------------------------------------------------------

def test_element_whose_testbed_guid_is_missing():
    data = data_of(doc(NODE2, IFACE3))
    data.add_box_data(5, 99, "Node")
    problems = check_data(data)
    assert len(problems) == 1
    p = problems[0]
    assert (p.guid, p.blocking) == (5, True)
    assert p.message == "belongs to testbed 99, which does not exist"
    with pytest.raises(DesignError, match="belongs to testbed 99, which does not exist"):
        XmlExperimentParser().from_data(ExperimentDescription(), data)


def test_entry_that_is_neither_testbed_nor_element():
    data = data_of(doc(NODE2, IFACE3))
    data.data[8] = {"attributes": {"label": "x"}}
    problems = check_data(data)
    assert [(p.guid, p.message) for p in problems] == \
        [(8, "entry is neither a testbed nor an element")]


def test_data_built_in_code_has_no_line_numbers():
    data = ExperimentData()
    data.add_testbed_data(1, "mock", "0.1")
    data.add_box_data(2, 1, "Node")
    data.add_attribute_data(2, "fake", "yes")
    (p,) = check_data(data)
    assert p.message == "invalid value 'yes': expected a boolean (True/False)"


# ---------------------------------------------------------------------------------------
# All problems at once
# ---------------------------------------------------------------------------------------

def test_many_problems_reported_together():
    xml = doc(
        el(2, "Node", attrs(attr("bogus", "x"))),                                   # 1
        el(3, "Node", attrs(attr("fake", "maybe"))),                                # 2
        el(4, "Interface", MAX3, addrs({"Address": "300.1.1.1", "NetPrefix": "24"}, # 3
                                       {"Address": "10.0.0.1", "NetPrefix": "40"})),  # 4
        el(5, "Router"),                                                            # 5
        el(6, "Node", attrs(attr("label", "dup"))),
        el(7, "Node", attrs(attr("label", "dup")), conns(("apps", 99, "node"))),    # 6, 7
        el(8, "Application", addrs({"Address": "10.0.0.2", "NetPrefix": "24"})),    # 8
        el(9, "Node", routes({"Destination": "10.1.2.3", "NetPrefix": "8",          # 9
                              "NextHop": "10.0.0.1"})),
        el(10, "Node", attrs(attr("test", "{#[oops#}"))),                            # 10
        el(11, "Interface", attrs(attr("label", "lonely"))),        # non-blocking: no node
        el(12, "Node", attrs(attr("test", "{#[ghost].[x]#}"))),     # non-blocking
        tb_attrs=[attr("deployment_mode", "BOGUS"), attr("nothing", "x")])           # 11, 12
    expected_blocking = {
        (2, "bogus"), (3, "fake"), (4, "Address"), (4, "NetPrefix"), (5, None), (7, "label"),
        (7, "apps"), (8, "addresses"), (9, "Destination"), (10, "test"),
        (1, "deployment_mode"), (1, "nothing"),
    }
    err = design_error(xml)
    assert len(err.problems) == 12
    assert {(p.guid, p.attribute) for p in err.problems} == expected_blocking
    assert all(p.blocking for p in err.problems)
    assert str(err).startswith("cannot load experiment: 12 problems\n")
    assert len(str(err).splitlines()) == 13
    # check_data also has the non-blocking ones
    problems = check_data(data_of(xml))
    assert len(problems) == 16
    soft = {(p.guid, p.attribute) for p in problems if not p.blocking}
    # the Interfaces and the Application lack their mandatory node connection
    assert soft == {(4, "node"), (8, "node"), (11, "node"), (12, "test")}


def test_validate_lists_every_problem_of_a_design_built_in_code():
    exp = ExperimentDescription()
    desc = exp.add_testbed_description(FactoriesProvider("mock"))
    a = desc.create("Interface")
    b = desc.create("Interface")
    a.set_attribute_value("label", "same")
    b.set_attribute_value("label", "same")
    app = desc.create("Application")
    app.set_attribute_value("test", "{#[missing].[test]#}")
    with pytest.raises(DesignError) as info:
        exp.validate()
    got = {(p.guid, p.attribute) for p in info.value.problems}
    assert got == {(2, "node"), (3, "node"), (3, "label"), (4, "node"), (4, "test")}
    assert str(info.value).startswith("invalid experiment design: 5 problems")


# ---------------------------------------------------------------------------------------
# Bad values through the design API
# ---------------------------------------------------------------------------------------

@pytest.fixture
def design():
    exp = ExperimentDescription()
    desc = exp.add_testbed_description(FactoriesProvider("mock"))
    return exp, desc


def test_api_enum_value(design):
    _, desc = design
    with pytest.raises(AttributeValueError, match=r"^testbed 1 \(mock\): Invalid value "
                                                  r"'BOGUS' for attribute deployment_mode: "
                                                  r"expected one of 'DAEMON', 'SINGLE'$"):
        desc.set_attribute_value("deployment_mode", "BOGUS")


def test_api_bool_value(design):
    _, desc = design
    box = desc.create("Node")
    with pytest.raises(ValueError, match=r"^element 2 \(Node\): Invalid value 'notabool' for "
                                         r"attribute fake: expected a boolean \(True/False\)$"):
        box.set_attribute_value("fake", "notabool")


def test_api_unknown_attribute(design):
    _, desc = design
    box = desc.create("Application")
    with pytest.raises(KeyError, match=r"element 2 \(Application\) has no attribute 'speed' "
                                       r"\(known: fake, label, test\)"):
        box.set_attribute_value("speed", 3)
    with pytest.raises(KeyError, match=r"testbed 1 \(mock\) has no attribute 'speed'"):
        desc.set_attribute_value("speed", 3)


def test_api_integer_value(design):
    _, desc = design
    with pytest.raises(AttributeValueError, match=r"Invalid value 22\.5 for attribute "
                                                  r"deployment_port: expected an integer$"):
        desc.set_attribute_value("deployment_port", 22.5)


def test_api_address_value(design):
    _, desc = design
    iface = desc.create("Interface")
    iface.set_attribute_value("label", "if0")
    addr = iface.add_address()
    with pytest.raises(AttributeValueError, match=r"^address of element 2 \(Interface, label "
                                                  r"'if0'\): Invalid value '10\.0\.0\.300' for "
                                                  r"attribute Address: expected an IP "
                                                  r"address$"):
        addr.set_attribute_value("Address", "10.0.0.300")


def test_api_unknown_factory_and_trace(design):
    _, desc = design
    with pytest.raises(KeyError, match=r"testbed mock has no factory 'Switch'"):
        desc.create("Switch")
    app = desc.create("Application")
    with pytest.raises(KeyError, match=r"has no trace 'pcap' \(has: fake\)"):
        app.enable_trace("pcap")


def test_api_unknown_testbed():
    with pytest.raises(ValueError, match=r"unknown testbed 'nosuch' \(no module "
                                         r"nepi\.testbeds\.nosuch\.metadata; known testbeds: "
                                         r"(\w+, )*mock, mock2\b"):
        FactoriesProvider("nosuch")
