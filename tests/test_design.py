"""Design layer tests: NEPI 2's test/core/design.py ported exactly, plus guids, connectors,
attributes, validation functions, netrefs and XML round trips.

References (the project's notes, not read by the tests): reference/core.md (sections 2-10,
15, 16), reference/daemons-and-tests.md (sections 7, 8.1, 8.2), SPEC.md (3, 12).
"""

import math

import pytest
from lxml import etree

from nepi.core.attributes import Attribute, AttributesMap
from nepi.core.connector import ConnectorType
from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.errors import AttributeValueError, DesignError, NepiError
from nepi.util import netrefs, validation
from nepi.util.guid import GuidGenerator
from nepi.util.parser._xml import XmlExperimentParser


def new_mock(testbed_id="mock", exp=None):
    exp = exp if exp is not None else ExperimentDescription()
    desc = exp.add_testbed_description(FactoriesProvider(testbed_id))
    return exp, desc


def roundtrip(exp):
    """to_xml -> from_xml -> to_xml; returns (first xml, reloaded description, second xml)."""
    xml = exp.to_xml()
    exp2 = ExperimentDescription()
    exp2.from_xml(xml)
    return xml, exp2, exp2.to_xml()


def xml_tree(xml):
    return etree.fromstring(xml.encode("utf-8"))


# ---------------------------------------------------------------------------------------
# NEPI 2 test/core/design.py  (daemons-and-tests.md 8.2), ported literally
# ---------------------------------------------------------------------------------------

def test_design():
    exp_desc = ExperimentDescription()
    testbed_id = "mock"
    provider = FactoriesProvider(testbed_id)
    desc = exp_desc.add_testbed_description(provider)
    desc.set_attribute_value("fake", True)
    node1 = desc.create("Node")
    node2 = desc.create("Node")
    iface1 = desc.create("Interface")
    iface1.set_attribute_value("fake", True)
    addr1 = iface1.add_address()
    addr2 = iface1.add_address()
    addr3 = iface1.add_address()
    with pytest.raises(RuntimeError, match=r"^Maximun number of addresses for this box reached\.$"):
        iface1.add_address()
    node1.connector("devs").connect(iface1.connector("node"))
    iface2 = desc.create("Interface")
    iface2.set_attribute_value("fake", True)
    node2.connector("devs").connect(iface2.connector("node"))
    iface1.connector("iface").connect(iface2.connector("iface"))
    app = desc.create("Application")
    app.connector("node").connect(node1.connector("apps"))
    app.enable_trace("fake")

    assert node1.tags == ["mobile", "node", "allow_routes"]

    # guids as NEPI 2 allocates them
    assert (desc.guid, node1.guid, node2.guid, iface1.guid, iface2.guid, app.guid) == \
        (1, 2, 3, 4, 5, 6)
    assert iface1.addresses == [addr1, addr2, addr3]
    assert iface1.max_addresses == 3

    xml = exp_desc.to_xml()
    exp_desc2 = ExperimentDescription()
    exp_desc2.from_xml(xml)
    xml2 = exp_desc2.to_xml()
    assert xml == xml2


def test_design_xml_layout_matches_nepi2():
    """The document has NEPI 2's layout (core.md 10.1): declaration, 4-space indentation,
    alphabetical XML attributes, connections on both ends, maxAddresses twice."""
    exp, desc = new_mock()
    desc.set_attribute_value("fake", True)
    node = desc.create("Node")
    iface = desc.create("Interface")
    node.connector("devs").connect(iface.connector("node"))
    xml = exp.to_xml()
    assert isinstance(xml, str)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<experiment>\n    <testbeds>\n')
    assert xml.endswith("</experiment>\n")
    assert '<testbed guid="1" testbed_id="mock" testbed_version="0.1">' in xml
    assert '<graphical_info height="0.0" width="0.0" x="0.0" y="0.0"/>' in xml
    assert '<attribute name="fake" type="BOOL" value="True"/>' in xml
    assert '<element factory_id="Node" guid="2">' in xml
    assert '<connection connector="devs" other_connector="node" other_guid="3"/>' in xml
    assert '<connection connector="node" other_connector="devs" other_guid="2"/>' in xml
    assert '<factory_attribute name="maxAddresses" type="INTEGER" value="3"/>' in xml
    assert '<attribute name="maxAddresses" type="INTEGER" value="3"/>' in xml
    # unmodified defaults are not written
    assert "deployment_host" not in xml
    # element child order
    el = xml_tree(xml).find("testbeds/testbed/elements/element[@guid='3']")
    assert [c.tag for c in el] == ["graphical_info", "factory_attributes", "attributes",
                                   "connections"]


# ---------------------------------------------------------------------------------------
# guids (core.md 3.3, 7.7)
# ---------------------------------------------------------------------------------------

def test_guid_generator_sequence():
    gen = GuidGenerator()
    assert [gen.next(), gen.next(5), gen.next(), gen.next(3), gen.next()] == [1, 5, 6, 3, 7]


def test_guid_generator_duplicate_is_runtime_error():
    gen = GuidGenerator()
    gen.next(4)
    with pytest.raises(RuntimeError, match="guid 4 is already assigned"):
        gen.next(4)
    assert gen.next() == 5


def test_guid_numbering_across_testbeds():
    exp = ExperimentDescription()
    a = exp.add_testbed_description(FactoriesProvider("mock"))
    boxes_a = [a.create("Node") for _ in range(3)]
    b = exp.add_testbed_description(FactoriesProvider("mock2"))
    boxes_b = [b.create("Node") for _ in range(2)]
    assert a.guid == 1
    assert [x.guid for x in boxes_a] == [2, 3, 4]
    assert b.guid == 5
    assert [x.guid for x in boxes_b] == [6, 7]
    assert exp.get_element(5) is b and exp.get_element(7) is boxes_b[1]
    assert exp.box(3) is boxes_a[1] and exp.box(5) is None


def test_unknown_factory_does_not_consume_a_guid():
    exp, desc = new_mock()
    node = desc.create("Node")
    with pytest.raises(KeyError, match=r"testbed mock has no factory 'Router' "
                                       r"\(known: Application, Interface, Node\)"):
        desc.create("Router")
    assert desc.create("Node").guid == node.guid + 1


def test_explicit_duplicate_guid_raises_runtime_error():
    exp, desc = new_mock()
    desc.create("Node", guid=10)
    with pytest.raises(RuntimeError, match="guid 10 is already assigned"):
        desc.create("Interface", guid=10)
    with pytest.raises(RuntimeError, match="guid 1 is already assigned"):
        desc.create("Node", guid=1)           # the testbed's own guid
    with pytest.raises(RuntimeError, match="guid 1 is already assigned"):
        exp.add_testbed_description(FactoriesProvider("mock2"), guid=1)
    assert desc.create("Node").guid == 11


def test_explicit_lower_guid_is_accepted_and_gaps_are_not_filled():
    exp, desc = new_mock()
    desc.create("Node", guid=5)
    assert desc.create("Node", guid=3).guid == 3
    assert desc.create("Node").guid == 6


def test_deleted_guid_is_not_reused():
    exp, desc = new_mock()
    n = desc.create("Node")
    desc.delete(n.guid)
    assert desc.box(n.guid) is None
    assert desc.create("Node").guid == n.guid + 1


def test_guids_are_preserved_by_from_xml_and_numbering_continues():
    exp, desc = new_mock()
    for _ in range(3):
        desc.create("Node")
    exp2 = ExperimentDescription()
    exp2.from_xml(exp.to_xml())
    tbd = exp2.testbed_description(1)
    assert sorted(b.guid for b in tbd.boxes) == [2, 3, 4]
    assert tbd.create("Node").guid == 5


def test_box_guid_lower_than_testbed_guid_roundtrips():
    exp = ExperimentDescription()
    desc = exp.add_testbed_description(FactoriesProvider("mock"), guid=5)
    desc.create("Node", guid=2)
    desc.create("Node")
    xml, exp2, xml2 = roundtrip(exp)
    assert xml == xml2
    assert exp2.box(2).testbed_guid == 5


# ---------------------------------------------------------------------------------------
# connectors (core.md 6, 7.2; daemons-and-tests.md 7.3, 7.4)
# ---------------------------------------------------------------------------------------

def test_connector_type_max_min_rules():
    with pytest.raises(RuntimeError, match="The maximum number of connections allowed need "
                                           "to be more than 0"):
        ConnectorType("mock", "Node", "x", "help", max=0)
    with pytest.raises(RuntimeError, match="The minimum number of connections allowed needs "
                                           "to be at least 0"):
        ConnectorType("mock", "Node", "x", "help", max=1, min=-1)
    ct = ConnectorType("Mock", "Node", "Devs", "help")
    assert ct.max == math.inf and ct.min == 0
    assert ct.connector_type_id == ("mock", "node", "devs")
    assert ct.name == "Devs"
    assert str(ct) == "ConnectorType(('mock', 'node', 'devs'))"


def test_connector_type_wildcards_and_both_tables():
    ct = ConnectorType("netns", "TunInterface", "tcp", "help", max=1)
    ct.add_to_connection(None, None, "tcp", True)
    assert ct.can_connect("ns3", "ns3::Tun", "tcp", must_cross=True)
    assert not ct.can_connect("ns3", "ns3::Tun", "tcp", must_cross=False)
    assert not ct.can_connect("ns3", "ns3::Tun", "udp", must_cross=True)
    # core.md 16 #17: a wrong can_cross in the "from" table must not hide a "to" entry
    ct2 = ConnectorType("t", "F", "c", "help")
    ct2.add_from_connection("t", "G", "d", False)
    ct2.add_to_connection("t", "G", "d", True, "init", "compl")
    assert ct2.can_connect("t", "G", "d", must_cross=True)
    assert ct2.can_connect("t", "G", "d", must_cross=False)
    assert ct2.connect_to_init_code("t", "G", "d", must_cross=True) == "init"
    assert ct2.connect_to_compl_code("t", "G", "d", must_cross=True) == "compl"
    assert ct2.connect_to_init_code("t", "G", "d", must_cross=False) is False


def test_mock_connector_cardinalities():
    _, desc = new_mock()
    node = desc.create("Node")
    ctypes = {c.connector_type.name: c.connector_type for c in node.connectors}
    assert ctypes["devs"].max == math.inf and ctypes["apps"].min == 0
    iface = desc.create("Interface")
    ctypes = {c.connector_type.name: c.connector_type for c in iface.connectors}
    assert (ctypes["node"].max, ctypes["node"].min) == (1, 1)
    assert (ctypes["iface"].max, ctypes["iface"].min) == (1, 0)
    assert (ctypes["cross"].max, ctypes["cross"].min) == (1, 0)


def test_connect_max_exceeded_is_refused():
    _, desc = new_mock()
    n1, n2 = desc.create("Node"), desc.create("Node")
    iface = desc.create("Interface")
    n1.connector("devs").connect(iface.connector("node"))
    assert iface.connector("node").is_full()
    assert not iface.connector("node").can_connect(n2.connector("devs"))
    with pytest.raises(RuntimeError, match=r"Could not connect\..*connector 'node' of box 4 "
                                           r"is full \(max 1\)"):
        n2.connector("devs").connect(iface.connector("node"))
    with pytest.raises(RuntimeError, match="already connected"):
        n1.connector("devs").connect(iface.connector("node"))
    # an unlimited connector accepts many
    for _ in range(5):
        n1.connector("apps").connect(desc.create("Application").connector("node"))
    assert len(n1.connector("apps").connections) == 5


def test_can_connect_is_false_when_far_side_is_full():
    _, desc = new_mock()
    n1, n2 = desc.create("Node"), desc.create("Node")
    iface = desc.create("Interface")
    n1.connector("devs").connect(iface.connector("node"))
    assert not n2.connector("devs").can_connect(iface.connector("node"))


def test_connector_min_is_reported_by_problems_not_by_connect():
    exp, desc = new_mock()
    iface = desc.create("Interface")
    assert not iface.connector("node").is_complete()
    problems = exp.problems()
    assert len(problems) == 1
    p = problems[0]
    assert (p.guid, p.attribute, p.blocking) == (2, "node", False)
    assert "connector 'node' has 0 connections, at least 1 required" in p.message
    with pytest.raises(DesignError) as info:
        exp.validate()
    assert len(info.value.problems) == 1
    assert "connector 'node' has 0 connections" in str(info.value)


def test_self_connection_is_refused():
    _, desc = new_mock()
    iface = desc.create("Interface")
    with pytest.raises(RuntimeError, match="a box cannot be connected to itself"):
        iface.connector("iface").connect(iface.connector("iface"))
    assert iface.connector("iface").connections == []


def test_illegal_connection_names_both_connectors():
    _, desc = new_mock()
    node = desc.create("Node")
    app = desc.create("Application")
    assert not node.connector("devs").can_connect(app.connector("node"))
    with pytest.raises(RuntimeError) as info:
        node.connector("devs").connect(app.connector("node"))
    msg = str(info.value)
    assert msg.startswith("Could not connect.")
    assert "Node.devs may not be connected to Application.node within a testbed" in msg
    assert "ConnectorType(('mock', 'node', 'devs'))" in msg
    assert "ConnectorType(('mock', 'application', 'node'))" in msg
    assert node.connector("devs").connections == [] and app.connector("node").connections == []


def test_cross_connection_only_between_mock_and_mock2_across_testbeds():
    exp = ExperimentDescription()
    tb1 = exp.add_testbed_description(FactoriesProvider("mock"))
    tb2 = exp.add_testbed_description(FactoriesProvider("mock2"))
    tb3 = exp.add_testbed_description(FactoriesProvider("mock"))
    a, b = tb1.create("Interface"), tb1.create("Interface")
    c = tb2.create("Interface")
    d = tb3.create("Interface")
    # within one testbed: refused
    with pytest.raises(RuntimeError, match="Interface.cross may not be connected to "
                                           "Interface.cross within a testbed"):
        a.connector("cross").connect(b.connector("cross"))
    # two instances of mock: cross, but mock only cross-connects to mock2
    with pytest.raises(RuntimeError, match="Interface.cross may not be connected to "
                                           "Interface.cross across testbeds"):
        a.connector("cross").connect(d.connector("cross"))
    # internal connectors may not cross testbeds
    with pytest.raises(RuntimeError, match="Interface.iface may not be connected to "
                                           "Interface.iface across testbeds"):
        a.connector("iface").connect(c.connector("iface"))
    # mock <-> mock2 across testbeds: allowed, symmetric
    a.connector("cross").connect(c.connector("cross"))
    assert a.connector("cross").get_connected_box() is c
    assert c.connector("cross").get_connected_box() is a
    assert a.connector("cross").is_connected(c.connector("cross"))


def test_disconnect_and_destroy_release_every_peer():
    _, desc = new_mock()
    node = desc.create("Node")
    apps = [desc.create("Application") for _ in range(4)]
    for app in apps:
        app.connector("node").connect(node.connector("apps"))
    apps[0].connector("node").disconnect(node.connector("apps"))
    assert len(node.connector("apps").connections) == 3
    with pytest.raises(RuntimeError, match="Could not disconnect"):
        apps[0].connector("node").disconnect(node.connector("apps"))
    # core.md 16 #9: deleting a box must disconnect *all* of its peers
    desc.delete(node.guid)
    assert all(app.connector("node").connections == [] for app in apps)
    assert all(app.connector("node").get_connected_box() is None for app in apps)


# ---------------------------------------------------------------------------------------
# attributes (core.md 2.2-2.4, 4.3, 7.4)
# ---------------------------------------------------------------------------------------

def test_flag_values():
    assert (Attribute.NoFlags, Attribute.DesignReadOnly, Attribute.DesignInvisible,
            Attribute.ExecReadOnly, Attribute.ExecInvisible, Attribute.ExecImmutable,
            Attribute.NoDefaultValue, Attribute.Metadata) == \
        (0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40)
    assert Attribute.types == ["STRING", "BOOL", "ENUM", "DOUBLE", "INTEGER"]


def test_has_flag_requires_all_bits():
    attr = Attribute("a", "h", Attribute.STRING,
                     flags=Attribute.ExecReadOnly | Attribute.ExecImmutable)
    assert attr.has_flag(Attribute.ExecReadOnly)
    assert attr.has_flag(Attribute.ExecReadOnly | Attribute.ExecImmutable)
    assert not attr.has_flag(Attribute.ExecReadOnly | Attribute.Metadata)
    assert attr.has_flag(Attribute.NoFlags)
    assert attr.is_exec_read_only and attr.is_exec_immutable and not attr.is_metadata
    assert Attribute("b", "h", Attribute.STRING).flags == Attribute.NoFlags


def test_standard_attribute_flags():
    _, desc = new_mock()
    iface = desc.create("Interface")
    assert iface.get_attribute("maxAddresses").flags == 0x49
    assert iface.get_attribute("label").flags == 0x54
    assert desc.get_attribute("deployment_mode").flags == 0x54
    assert desc.get_attribute_category("deployment_mode") == "Deployment"
    assert desc.get_attribute_allowed("deployment_mode") == ["DAEMON", "SINGLE"]
    assert desc.get_attribute_value("deployment_mode") == "SINGLE"
    assert desc.get_attribute_value("deployment_port") == 22
    assert desc.get_attribute_value("homeDirectory") == ""
    assert iface.is_attribute_design_read_only("maxAddresses")
    assert iface.is_attribute_exec_invisible("maxAddresses")
    assert iface.is_attribute_metadata("label")
    assert not iface.is_attribute_design_invisible("fake")


def test_get_attribute_list_filtering():
    _, desc = new_mock()
    iface = desc.create("Interface")
    assert set(iface.get_attribute_list()) == {"fake", "test", "cross", "maxAddresses", "label"}
    assert iface.get_attribute_list(Attribute.DesignReadOnly) == ["maxAddresses"]
    assert iface.get_attribute_list(Attribute.DesignReadOnly | Attribute.ExecInvisible) == \
        ["maxAddresses"]
    assert set(iface.get_attribute_list(Attribute.DesignReadOnly, exclude=True)) == \
        {"fake", "test", "cross", "label"}
    # exclude=True keeps attributes lacking at least one of the bits (core.md 2.4)
    assert set(iface.get_attribute_list(Attribute.DesignReadOnly | Attribute.ExecReadOnly,
                                        exclude=True)) == \
        {"fake", "test", "cross", "maxAddresses", "label"}
    assert set(iface.get_attribute_list(Attribute.Metadata)) == {"maxAddresses", "label"}
    tb_attrs = desc.get_attribute_list()
    assert len(tb_attrs) == 18 and {"fake", "test", "homeDirectory", "label",
                                    "deployment_mode", "recoveryPolicy",
                                    "useSudo"} <= set(tb_attrs)
    assert "fake" not in desc.get_attribute_list(Attribute.ExecImmutable)


def test_attribute_map_basics():
    with pytest.raises(AttributeError, match="invalid type FOO"):
        Attribute("x", "h", "FOO")
    amap = AttributesMap()
    amap.add_attribute("a", "help a", Attribute.STRING, category="cat")
    with pytest.raises(AttributeError, match="Attribute a already exists"):
        amap.add_attribute("a", "h", Attribute.STRING)
    assert amap.get_attribute_range("a") == (None, None)
    assert amap.get_attribute_help("a") == "help a"
    assert amap.get_attribute_type("a") == "STRING"
    assert amap.get_attribute_category("a") == "cat"
    assert not amap.is_attribute_modified("a")
    with pytest.raises(KeyError):
        amap.get_attribute_value("zz")
    amap.del_attribute("a")
    assert not amap.has_attribute("a")


def test_set_value_marks_modified_even_when_equal_to_default():
    _, desc = new_mock()
    node = desc.create("Node")
    assert not node.is_attribute_modified("fake")
    node.set_attribute_value("fake", False)
    assert node.is_attribute_modified("fake")


def test_double_accepts_int_and_type_is_enforced():
    attr = Attribute("d", "h", Attribute.DOUBLE)
    attr.set_value(3)
    assert attr.value == 3.0 and isinstance(attr.value, float)
    integer = Attribute("i", "h", Attribute.INTEGER, range=(0, 10))
    for bad in (True, "5", 5.0, None, 11, -1):
        assert not integer.is_valid_value(bad)
        with pytest.raises(ValueError):
            integer.set_value(bad)
    integer.set_value(10)
    assert integer.value == 10


def test_set_value_error_names_element_and_expectation():
    _, desc = new_mock()
    node = desc.create("Node")
    node.set_attribute_value("label", "n1")
    with pytest.raises(AttributeValueError) as info:
        node.set_attribute_value("fake", "notabool")
    assert isinstance(info.value, ValueError) and isinstance(info.value, NepiError)
    assert str(info.value) == ("element 2 (Node, label 'n1'): Invalid value 'notabool' for "
                               "attribute fake: expected a boolean (True/False)")
    with pytest.raises(AttributeValueError,
                       match=r"^testbed 1 \(mock\): Invalid value 'BOGUS' for attribute "
                             r"deployment_mode: expected one of 'DAEMON', 'SINGLE'$"):
        desc.set_attribute_value("deployment_mode", "BOGUS")
    with pytest.raises(AttributeValueError, match=r"Invalid value '22' for attribute "
                                                  r"deployment_port: expected an integer"):
        desc.set_attribute_value("deployment_port", "22")
    with pytest.raises(KeyError, match=r"element 2 \(Node, label 'n1'\) has no attribute "
                                       r"'nope' \(known: fake, label, test\)"):
        node.set_attribute_value("nope", 1)
    # the failed sets left the old values in place
    assert node.get_attribute_value("fake") is False
    assert desc.get_attribute_value("deployment_mode") == "SINGLE"


@pytest.mark.parametrize("target,name,value,match", [
    ("address", "Address", "nope", r"address of element 3 \(Interface\): Invalid value 'nope' "
                                   r"for attribute Address: expected an IP address"),
    ("address", "NetPrefix", 200, r"NetPrefix: expected an integer in range \[0, 128\]"),
    ("address", "Broadcast", "fe80::1", r"Broadcast: expected an IPv4 address"),
    ("route", "Destination", "nope", r"route of element 2 \(Node\): Invalid value 'nope' for "
                                     r"attribute Destination: expected an IP address or a "
                                     r"netref"),
    ("route", "Device", 5, r"Invalid value 5 for attribute Device: expected a string"),
    ("route", "Metric", True, r"Invalid value True for attribute Metric"),
])
def test_address_and_route_value_errors(target, name, value, match):
    _, desc = new_mock()
    node = desc.create("Node")
    iface = desc.create("Interface")
    item = iface.add_address() if target == "address" else node.add_route()
    before = item.get_attribute_value(name)
    with pytest.raises(AttributeValueError, match=match):
        item.set_attribute_value(name, value)
    assert item.get_attribute_value(name) == before          # the old value stays


def test_route_nexthop_may_be_a_netref():
    _, desc = new_mock()
    route = desc.create("Node").add_route()
    route.set_attribute_value("NextHop", "{#[x].addr[0].[Address]#}")
    assert route.get_attribute_value("NextHop") == "{#[x].addr[0].[Address]#}"


def test_trace_and_connector_lookup_errors():
    _, desc = new_mock()
    app = desc.create("Application")
    assert app.traces_list == ["fake"]
    assert app.trace_help("fake") == "fake trace"
    assert not app.is_trace_enabled("fake")
    app.enable_trace("fake")
    assert app.is_trace_enabled("fake")
    app.disable_trace("fake")
    assert not app.is_trace_enabled("fake")
    with pytest.raises(KeyError, match=r"element 2 \(Application\) has no trace 'nope' "
                                       r"\(has: fake\)"):
        app.enable_trace("nope")
    with pytest.raises(KeyError, match=r"element 2 \(Application\) has no connector 'devs' "
                                       r"\(has: node\)"):
        app.connector("devs")


def test_box_capabilities_from_tags():
    exp, desc = new_mock()
    node, iface, app = desc.create("Node"), desc.create("Interface"), desc.create("Application")
    assert hasattr(node, "add_route") and not hasattr(node, "add_address")
    assert hasattr(iface, "add_address") and not hasattr(iface, "add_route")
    assert not hasattr(app, "add_address") and not hasattr(app, "add_route")
    assert iface.tags == ["interface", "allow_addresses"]
    assert app.tags == ["application"]
    _, desc2 = new_mock("mock2", exp)
    assert desc2.create("Node").tags == ["node", "allow_routes"]
    iface2 = desc2.create("Interface")
    assert iface2.max_addresses == 1
    iface2.add_address()
    with pytest.raises(RuntimeError, match="Maximun number of addresses for this box reached."):
        iface2.add_address()


def test_get_element_by_label():
    exp, desc = new_mock()
    desc.set_attribute_value("label", "tb")
    node = desc.create("Node")
    desc.create("Node")                     # unlabelled
    node.set_attribute_value("label", "n1")
    assert exp.get_element_by_label("tb") is desc
    assert exp.get_element_by_label("n1") is node
    assert exp.get_element_by_label("zz") is None
    assert exp.get_element_by_label(None) is None       # core.md 16 #12


# ---------------------------------------------------------------------------------------
# validation functions (core.md 2.5, 16 #4, #61)
# ---------------------------------------------------------------------------------------

def test_is_integer_rejects_bool():
    assert validation.is_integer(None, 3)
    assert validation.is_integer(None, 0)
    assert not validation.is_integer(None, True)
    assert not validation.is_integer(None, False)
    assert not validation.is_integer(None, 3.0)
    assert not validation.is_integer(None, "3")
    assert not validation.is_integer(None, 3, 0, 2)
    assert validation.is_integer_range(0, 5)(None, 5)
    assert not validation.is_integer_range(0, 5)(None, 6)
    assert not validation.is_integer_range(0, 5)(None, True)


def test_is_bool_double_number_string_enum():
    assert validation.is_bool(None, True) and not validation.is_bool(None, 1)
    assert not validation.is_bool(None, "true")
    assert validation.is_double(None, 1.0) and not validation.is_double(None, 1)
    assert validation.is_number(None, 1) and validation.is_number(None, 1.5)
    assert not validation.is_number(None, True)
    assert validation.is_number_range(0, 1)(None, 0.5)
    assert not validation.is_number_range(0, 1)(None, 1.5)
    assert validation.is_string(None, "café") and not validation.is_string(None, b"x")
    enum = Attribute("e", "h", Attribute.ENUM, allowed=["A", "B"],
                     validation_function=validation.is_enum)
    assert validation.is_enum(enum, "A") and not validation.is_enum(enum, "C")
    with pytest.raises(ValueError, match=r"Invalid value 'C' for attribute e: expected one of "
                                         r"'A', 'B'"):
        enum.set_value("C")


def test_is_mac_address_really_checks():
    assert validation.is_mac_address(None, "00:11:22:33:44:55")
    assert validation.is_mac_address(None, "aa:BB:cc:DD:ee:FF")
    assert not validation.is_mac_address(None, ":::::")           # NEPI 2 accepted this
    assert not validation.is_mac_address(None, "00:11:22:33:44:5G")
    assert not validation.is_mac_address(None, "00-11-22-33-44-55")
    assert not validation.is_mac_address(None, "00:11:22:33:44")
    assert not validation.is_mac_address(None, "00:11:22:33:44:55:66")
    assert not validation.is_mac_address(None, None)


def test_is_time_really_checks():
    for ok in ("1.5s", "200ms", "0s", "10us"):
        assert validation.is_time(None, ok), ok
    for bad in ("abc", "", "1.5 parsecs", 5):
        assert not validation.is_time(None, bad), bad


def test_ip_validation():
    assert validation.is_ip4_address(None, "10.0.0.1")
    assert not validation.is_ip4_address(None, "fe80::1")
    assert validation.is_ip6_address(None, "fe80::1")
    assert not validation.is_ip6_address(None, "10.0.0.1")
    assert validation.is_ip_address(None, "10.0.0.1") and validation.is_ip_address(None, "::1")
    assert not validation.is_ip_address(None, "10.0.0.256")
    assert not validation.is_ip_address(None, None)


def test_is_ref_address_accepts_ip_or_single_netref():
    assert validation.is_ref_address(None, "10.0.0.1")
    assert validation.is_ref_address(None, "fd00::1")
    assert validation.is_ref_address(None, "{#[a].addr[0].[Address]#}")
    assert validation.is_ref_address(None, "{#[GUID-7].addr[1].[Address]#}")
    assert not validation.is_ref_address(None, "x {#[a].addr[0].[Address]#}")
    assert not validation.is_ref_address(None, "{#[a].[b]#}{#[a].[b]#}")
    assert not validation.is_ref_address(None, "host")
    assert not validation.is_ref_address(None, "{#[a]x[b]#}")


# ---------------------------------------------------------------------------------------
# netrefs (core.md 12.4; SPEC 12: the separating dot is escaped)
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, label, kind, index, attribute", [
    ("{#[lbl].[Attr]#}", "lbl", "", None, "Attr"),
    ("{#[ifA].addr[0].[Address]#}", "ifA", "addr", "0", "Address"),
    ("{#[ifA].addr[12].[NetPrefix]#}", "ifA", "addr", "12", "NetPrefix"),
    ("{#[r-1].route[3].[NextHop]#}", "r-1", "route", "3", "NextHop"),
    ("{#[app.x].trace[stdout].[path]#}", "app.x", "trace", "stdout", "path"),
    ("{#[GUID-7].addr[0].[Address]#}", "GUID-7", "addr", "0", "Address"),
    ("{#[].[x]#}", "", "", None, "x"),
])
def test_netref_forms(text, label, kind, index, attribute):
    refs = netrefs.find_netrefs(text)
    assert len(refs) == 1
    ref = refs[0]
    assert (ref.text, ref.label, ref.kind, ref.index, ref.attribute) == \
        (text, label, kind, index, attribute)
    assert netrefs.is_single_netref(text)
    assert netrefs.has_netref(text)
    assert netrefs.malformed_netref(text) is None


@pytest.mark.parametrize("text", [
    "{#[a]x[b]#}",                    # unescaped dot in NEPI 2 accepted any character here
    "{#[a].foo[1].[b]#}",             # unknown component
    "{#[a b].[c]#}",                  # space in label
    "{#[a].addr[x].[Address]#}",      # non-numeric address index
    "{#[a].[b]",                      # unterminated
])
def test_malformed_netrefs(text):
    assert netrefs.find_netrefs(text) == []
    assert not netrefs.is_single_netref(text)
    assert netrefs.malformed_netref(text) is not None
    assert netrefs.malformed_netref(text).startswith("{#")


def test_netrefs_embedded_in_text():
    text = "ping -c1 {#[ifA].addr[0].[Address]#} && echo {#[nodeB].[hostname]#}"
    refs = netrefs.find_netrefs(text)
    assert [(r.label, r.kind, r.attribute) for r in refs] == \
        [("ifA", "addr", "Address"), ("nodeB", "", "hostname")]
    assert not netrefs.is_single_netref(text)
    assert netrefs.malformed_netref(text) is None
    assert netrefs.find_netrefs("no refs here") == [] and netrefs.find_netrefs(5) == []


def test_netref_guid_form():
    ref = netrefs.find_netrefs("{#[ifA].addr[0].[Address]#}")[0]
    assert ref.guid is None
    assert netrefs.guid_form(ref, 7) == "{#[GUID-7].addr[0].[Address]#}"
    assert netrefs.find_netrefs(netrefs.guid_form(ref, 7))[0].guid == 7
    assert netrefs.find_netrefs("{#[GUID-12].[x]#}")[0].guid == 12


def test_single_netref_is_valid_for_any_attribute_type():
    _, desc = new_mock()
    node = desc.create("Node")
    node.set_attribute_value("fake", "{#[other].[fake]#}")            # BOOL attribute
    desc.set_attribute_value("deployment_port", "{#[n].[test]#}")      # INTEGER attribute
    with pytest.raises(AttributeValueError):
        node.set_attribute_value("fake", "x {#[other].[fake]#}")


# ---------------------------------------------------------------------------------------
# XML round trips (core.md 9, 10; SPEC 12)
# ---------------------------------------------------------------------------------------

def test_roundtrip_enabled_traces():
    exp, desc = new_mock()
    node = desc.create("Node")
    apps = [desc.create("Application") for _ in range(2)]
    for app in apps:
        app.connector("node").connect(node.connector("apps"))
    apps[0].enable_trace("fake")
    xml, exp2, xml2 = roundtrip(exp)
    assert xml == xml2
    assert exp2.box(apps[0].guid).is_trace_enabled("fake")
    assert not exp2.box(apps[1].guid).is_trace_enabled("fake")
    assert xml.count('<trace name="fake"/>') == 1


def test_roundtrip_addresses_with_broadcast():
    exp, desc = new_mock()
    node = desc.create("Node")
    iface = desc.create("Interface")
    node.connector("devs").connect(iface.connector("node"))
    a1 = iface.add_address()
    a1.set_attribute_value("Address", "192.168.7.1")
    a1.set_attribute_value("Broadcast", "192.168.7.255")
    a2 = iface.add_address()
    a2.set_attribute_value("Address", "fd00::1")
    a2.set_attribute_value("NetPrefix", 64)
    a3 = iface.add_address()
    a3.set_attribute_value("Address", "10.0.0.1")
    a3.set_attribute_value("NetPrefix", 8)
    xml, exp2, xml2 = roundtrip(exp)
    assert xml == xml2
    assert '<address Address="192.168.7.1" Broadcast="192.168.7.255" NetPrefix="24"/>' in xml
    assert '<address Address="fd00::1" NetPrefix="64"/>' in xml
    assert '<address Address="10.0.0.1" NetPrefix="8"/>' in xml
    loaded = [(a.get_attribute_value("Address"), a.get_attribute_value("NetPrefix"),
               a.get_attribute_value("Broadcast")) for a in exp2.box(iface.guid).addresses]
    assert loaded == [("192.168.7.1", 24, "192.168.7.255"), ("fd00::1", 64, None),
                      ("10.0.0.1", 8, None)]
    assert exp2.problems() == []


def test_roundtrip_routes_with_and_without_device():
    exp, desc = new_mock()
    node = desc.create("Node")
    r1 = node.add_route()
    r1.set_attribute_value("Destination", "10.9.0.0")
    r1.set_attribute_value("NetPrefix", 16)
    r1.set_attribute_value("NextHop", "192.168.7.2")
    r1.set_attribute_value("Device", "eth0")
    r2 = node.add_route()
    r2.set_attribute_value("Destination", "10.8.0.0")
    r2.set_attribute_value("NextHop", "192.168.7.3")
    r2.set_attribute_value("Metric", 5)
    xml, exp2, xml2 = roundtrip(exp)
    assert xml == xml2
    assert ('<route Destination="10.9.0.0" Device="eth0" Metric="0" NetPrefix="16" '
            'NextHop="192.168.7.2"/>') in xml
    assert '<route Destination="10.8.0.0" Metric="5" NetPrefix="24" NextHop="192.168.7.3"/>' \
        in xml
    fields = ("Destination", "NetPrefix", "NextHop", "Metric", "Device")
    loaded = [tuple(r.get_attribute_value(f) for f in fields)
              for r in exp2.box(node.guid).routes]
    assert loaded == [("10.9.0.0", 16, "192.168.7.2", 0, "eth0"),
                      ("10.8.0.0", 24, "192.168.7.3", 5, None)]
    assert exp2.problems() == []


def test_route_fields_that_are_none_are_omitted_from_xml():
    exp, desc = new_mock()
    node = desc.create("Node")
    route = node.add_route()
    route.set_attribute_value("Destination", "10.0.0.0")   # NextHop and Device stay None
    xml = exp.to_xml()
    (route_el,) = xml_tree(xml).iter("route")
    assert dict(route_el.attrib) == {"Destination": "10.0.0.0", "Metric": "0",
                                     "NetPrefix": "24"}
    assert '"None"' not in xml and "None" not in xml
    xml2_exp = ExperimentDescription()
    xml2_exp.from_xml(xml)
    (r,) = xml2_exp.box(node.guid).routes
    assert r.get_attribute_value("NextHop") is None
    assert r.get_attribute_value("Device") is None
    assert xml2_exp.to_xml() == xml


def test_roundtrip_graphical_info():
    exp, desc = new_mock()
    desc.graphical_info.x, desc.graphical_info.y = 1.5, -2.0
    node = desc.create("Node")
    gi = node.graphical_info
    gi.x, gi.y, gi.width, gi.height = 10.5, 20.0, 32.0, 16.25
    xml, exp2, xml2 = roundtrip(exp)
    assert xml == xml2
    assert '<graphical_info height="16.25" width="32.0" x="10.5" y="20.0"/>' in xml
    assert '<graphical_info height="0.0" width="0.0" x="1.5" y="-2.0"/>' in xml
    gi2 = exp2.box(node.guid).graphical_info
    assert (gi2.x, gi2.y, gi2.width, gi2.height) == (10.5, 20.0, 32.0, 16.25)
    tgi = exp2.testbed_description(1).graphical_info
    assert (tgi.x, tgi.y, tgi.width, tgi.height) == (1.5, -2.0, 0.0, 0.0)


def test_roundtrip_non_ascii_and_xml_special_characters():
    exp, desc = new_mock()
    text = 'café ñ 日本 & <tag> "quoted" > \'single\''
    desc.set_attribute_value("test", text)
    node = desc.create("Node")
    node.set_attribute_value("test", "a&b<c>d\"e")
    node.set_attribute_value("label", "nœud-日本")
    app = desc.create("Application")
    app.set_attribute_value("test", "tab\there\nnewline & more")
    xml, exp2, xml2 = roundtrip(exp)
    assert xml == xml2
    assert "café ñ 日本 &amp; &lt;tag&gt; &quot;quoted&quot; &gt; 's" in xml   # readable UTF-8
    assert exp2.testbed_description(1).get_attribute_value("test") == text
    assert exp2.box(node.guid).get_attribute_value("test") == "a&b<c>d\"e"
    assert exp2.box(node.guid).get_attribute_value("label") == "nœud-日本"
    assert exp2.box(app.guid).get_attribute_value("test") == "tab\there\nnewline & more"
    # bytes input works too
    exp3 = ExperimentDescription()
    exp3.from_xml(xml.encode("utf-8"))
    assert exp3.to_xml() == xml


def test_nul_character_cannot_be_stored():
    exp, desc = new_mock()
    desc.set_attribute_value("test", "a\x00b")
    with pytest.raises(ValueError, match="NUL characters cannot be stored in XML"):
        exp.to_xml()


def test_roundtrip_value_types_and_netrefs():
    exp, desc = new_mock()
    desc.set_attribute_value("deployment_port", 2222)
    desc.set_attribute_value("useSudo", True)
    desc.set_attribute_value("deployment_mode", "DAEMON")
    desc.set_attribute_value("label", "tbA")
    iface = desc.create("Interface")
    iface.set_attribute_value("label", "ifA")
    app = desc.create("Application")
    app.set_attribute_value("test", "ping -c1 {#[ifA].addr[0].[Address]#}")
    xml, exp2, xml2 = roundtrip(exp)
    assert xml == xml2
    assert '<attribute name="deployment_port" type="INTEGER" value="2222"/>' in xml
    assert '<attribute name="useSudo" type="BOOL" value="True"/>' in xml
    assert '<attribute name="deployment_mode" type="STRING" value="DAEMON"/>' in xml
    tb2 = exp2.testbed_description(1)
    assert tb2.get_attribute_value("deployment_port") == 2222
    assert tb2.get_attribute_value("useSudo") is True
    assert exp2.box(app.guid).get_attribute_value("test") == \
        "ping -c1 {#[ifA].addr[0].[Address]#}"


def test_roundtrip_cross_connection_mock_mock2():
    exp = ExperimentDescription()
    tb1 = exp.add_testbed_description(FactoriesProvider("mock"))
    tb1.set_attribute_value("fake", True)
    n1 = tb1.create("Node")
    i1 = tb1.create("Interface")
    n1.connector("devs").connect(i1.connector("node"))
    tb2 = exp.add_testbed_description(FactoriesProvider("mock2"))
    n2 = tb2.create("Node")
    i2 = tb2.create("Interface")
    n2.connector("devs").connect(i2.connector("node"))
    i1.connector("cross").connect(i2.connector("cross"))
    assert (tb1.guid, n1.guid, i1.guid, tb2.guid, n2.guid, i2.guid) == (1, 2, 3, 4, 5, 6)
    xml, exp2, xml2 = roundtrip(exp)
    assert xml == xml2
    assert '<connection connector="cross" other_connector="cross" other_guid="6"/>' in xml
    assert '<connection connector="cross" other_connector="cross" other_guid="3"/>' in xml
    assert '<factory_attribute name="maxAddresses" type="INTEGER" value="1"/>' in xml
    assert exp2.box(3).connector("cross").get_connected_box() is exp2.box(6)
    assert exp2.box(6).testbed_guid == 4
    assert exp2.problems() == []


def test_roundtrip_empty_experiment():
    exp = ExperimentDescription()
    xml, exp2, xml2 = roundtrip(exp)
    assert xml == xml2
    assert exp2.testbed_descriptions == []


def test_to_data_and_xml_data_agree():
    exp, desc = new_mock()
    node = desc.create("Node")
    iface = desc.create("Interface")
    node.connector("devs").connect(iface.connector("node"))
    data = XmlExperimentParser().from_xml_to_data(exp.to_xml())
    direct = exp.to_data()
    assert data.sorted_guids() == direct.sorted_guids() == [1, 2, 3]
    assert data.get_box_data(3) == direct.get_box_data(3) == (1, "Interface")
    assert data.get_connection_data(2) == direct.get_connection_data(2) == [("devs", 3, "node")]
    assert data.get_graphical_info_data(2) == (0.0, 0.0, 0.0, 0.0)


def test_netref_in_address_netprefix_roundtrips():
    exp, desc = new_mock()
    node = desc.create("Node")
    node.set_attribute_value("label", "n")
    node.set_attribute_value("test", "16")
    iface = desc.create("Interface")
    node.connector("devs").connect(iface.connector("node"))
    addr = iface.add_address()
    addr.set_attribute_value("Address", "10.0.0.1")
    addr.set_attribute_value("NetPrefix", "{#[n].[test]#}")
    route = node.add_route()
    route.set_attribute_value("Destination", "10.1.0.0")
    route.set_attribute_value("Metric", "{#[n].[test]#}")
    assert exp.problems() == []
    xml, exp2, xml2 = roundtrip(exp)
    assert xml == xml2
