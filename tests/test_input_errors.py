"""Input errors name the culprit, and nepi loads what NEPI 2 loads (points 5 and 6 of
"Working with a live experiment").

Every value error names the element (guid, label when set, factory) and the attribute, says
what was expected, and gives the XML line when the value came from a file; a long value is
cut to about 80 characters followed by its length (nepi.errors.brief), so a megabyte value is
never echoed back. A connection recorded under one of its two elements only loads connected
on both ends, as NEPI 2 loads it.

The designs are variants of tests/fixtures/nepi2-mock-single.xml (written by NEPI 2), whose
element 4 is the Interface labelled 'left' (line 26).
"""

import pytest

from helpers import fixture_path
from mock_experiments import nepi_command
from nepi.core.checks import check_data
from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.errors import AttributeValueError, DesignError, XmlFormatError, brief
from nepi.util.parser._xml import XmlExperimentParser
from nepi.util.parser.base import ExperimentData

BASE = fixture_path("nepi2-mock-single.xml").read_text(encoding="utf-8")
LEFT = "element 4 (label 'left', Interface, testbed 1 mock)"     # line 26
NODE2 = "element 2 (Node, testbed 1 mock)"                       # line 10
MEGA = 10 ** 6
SHORT = 400      # what a message about a 1 MB value may be at most


def variant(line: int, old: str, new: str) -> str:
    """BASE with ``old`` replaced by ``new`` on line ``line`` (1-based) only."""
    lines = BASE.split("\n")
    assert lines[line - 1].count(old) == 1, (line, lines[line - 1])
    lines[line - 1] = lines[line - 1].replace(old, new)
    return "\n".join(lines)


def load(xml) -> ExperimentDescription:
    exp = ExperimentDescription()
    exp.from_xml(xml)
    return exp


def xml_error(xml) -> XmlFormatError:
    with pytest.raises(XmlFormatError) as info:
        load(xml)
    return info.value


def design_problem(xml, guid, attribute):
    """The one blocking problem loading ``xml`` reports for ``guid``/``attribute``."""
    with pytest.raises(DesignError) as info:
        load(xml)
    found = [p for p in info.value.problems if p.guid == guid and p.attribute == attribute]
    assert len(found) == 1, info.value
    assert str(found[0]) in str(info.value)
    return found[0]


def test_base_fixture_is_valid():
    assert load(BASE).problems() == []


# ---------------------------------------------------------------------------------------
# XML that does not convert: line, element, attribute, expectation
# ---------------------------------------------------------------------------------------

XML_TYPE_ERRORS = [
    pytest.param(32, 'value="True"', 'value="x"',
                 LEFT + ", attribute 'fake': expected a boolean (True or False), got 'x'",
                 id="bool"),
    pytest.param(33, 'value="3"', 'value="x"',
                 LEFT + ", attribute 'maxAddresses': expected an integer, got 'x'", id="int"),
    pytest.param(32, 'type="BOOL" value="True"', 'type="DOUBLE" value="1.x"',
                 LEFT + ", attribute 'fake': expected a number, got '1.x'", id="double"),
    pytest.param(29, 'value="3"', 'value="three"',
                 LEFT + ", factory attribute 'maxAddresses': expected an integer, got "
                        "'three'", id="factory-attribute"),
    pytest.param(7, 'value="True"', 'value="yes"',
                 "testbed 1 (mock), attribute 'fake': expected a boolean (True or False), "
                 "got 'yes'", id="testbed-attribute"),
    pytest.param(34, 'type="STRING"', 'type="STRNG"',
                 LEFT + ", attribute 'label': unknown type 'STRNG' (expected STRING, BOOL, "
                        "INTEGER, DOUBLE)", id="unknown-type"),
    pytest.param(37, 'NetPrefix="24"', 'NetPrefix="x"',
                 LEFT + ", address #0, NetPrefix: expected an integer or a netref, got 'x'",
                 id="address-netprefix"),
    pytest.param(13, 'Metric="0"', 'Metric="z"',
                 NODE2 + ", route #0, Metric: expected an integer or a netref, got 'z'",
                 id="route-metric"),
    pytest.param(11, 'x="10.5"', 'x="abc"',
                 NODE2 + ", graphical_info, x: expected a number, got 'abc'",
                 id="graphical-info"),
    pytest.param(41, 'other_guid="5"', 'other_guid="five"',
                 LEFT + ", connection #1, other_guid: expected a guid (an integer from 1 to "
                        "2^63-1), got 'five'", id="connection-other-guid"),
    pytest.param(26, 'guid="4"', 'guid="-4"',
                 "element (label 'left', Interface, testbed 1 mock), guid: expected a guid (an "
                 "integer "
                 "from 1 to 2^63-1), got '-4'", id="element-guid"),
]


@pytest.mark.parametrize("line, old, new, message", XML_TYPE_ERRORS)
def test_xml_type_error_names_element_and_attribute(line, old, new, message):
    err = xml_error(variant(line, old, new))
    assert err.line == line
    assert str(err) == "line %d: %s" % (line, message)
    # the same from the parser alone, with the file name first
    with pytest.raises(XmlFormatError) as info:
        XmlExperimentParser().from_xml_to_data(variant(line, old, new), source="d.xml")
    assert str(info.value) == "d.xml:line %d: %s" % (line, message)


def test_xml_error_names_the_label_written_after_the_bad_value():
    """The label is found wherever it is among the element's attributes."""
    xml = variant(32, 'value="True"', 'value="x"')
    assert BASE.split("\n")[33].strip().startswith('<attribute name="label"')   # line 34
    assert "label 'left'" in str(xml_error(xml))


# ---------------------------------------------------------------------------------------
# XML that reads but does not fit the design: the checks say the same things
# ---------------------------------------------------------------------------------------

DESIGN_ERRORS = [
    pytest.param(variant(34, '<attribute name="label" type="STRING" value="left"/>',
                         '<attribute name="label" type="STRING" value="left"/>'
                         '<attribute name="speed" type="INTEGER" value="3"/>'),
                 4, "speed", "unknown attribute 'speed' for factory Interface (known: cross, "
                             "fake, label, maxAddresses, test)", id="unknown-attribute"),
    pytest.param(variant(32, 'type="BOOL" value="True"', 'type="STRING" value="x"'),
                 4, "fake", "invalid value 'x': expected a boolean (True/False)",
                 id="string-for-bool"),
    pytest.param(variant(37, 'Address="192.168.7.1"', 'Address="192.168.7.999"'),
                 4, "Address", "address #0: '192.168.7.999' is not an IP address",
                 id="address"),
    pytest.param(variant(37, 'NetPrefix="24"', 'NetPrefix="33"'),
                 4, "NetPrefix", "address #0: NetPrefix 33 out of range [0, 32]",
                 id="address-netprefix-range"),
    pytest.param(variant(13, 'NextHop="192.168.7.2"', 'NextHop="gateway"'),
                 2, "NextHop", "route #0: NextHop 'gateway' is not an IP address",
                 id="route-nexthop"),
    pytest.param(variant(40, 'connector="node"', 'connector="nod"'),
                 4, "nod", "connection nod -> 2.devs: factory Interface has no connector "
                           "'nod' (has: node, iface, cross)", id="unknown-connector"),
]


@pytest.mark.parametrize("xml, guid, attribute, message", DESIGN_ERRORS)
def test_design_error_names_element_and_attribute(xml, guid, attribute, message):
    problem = design_problem(xml, guid, attribute)
    where = LEFT if guid == 4 else NODE2
    line = 26 if guid == 4 else 10
    assert str(problem) == "%s, attribute %r: %s (line %d)" % (where, attribute, message, line)


# ---------------------------------------------------------------------------------------
# Bad values through the Python API
# ---------------------------------------------------------------------------------------

@pytest.fixture
def mock():
    exp = ExperimentDescription()
    desc = exp.add_testbed_description(FactoriesProvider("mock"))
    node = desc.create("Node")
    node.set_attribute_value("label", "n1")
    iface = desc.create("Interface")
    iface.set_attribute_value("label", "if0")
    return desc, node, iface


def assert_names(message, *parts):
    for part in parts:
        assert part in message, (part, message)


def test_api_bad_value_names_element_label_attribute_and_expectation(mock):
    _, node, _ = mock
    with pytest.raises(AttributeValueError) as info:
        node.set_attribute_value("fake", "x")
    assert_names(str(info.value), "element 2", "Node", "label 'n1'", "attribute fake",
                 "'x'", "expected a boolean")
    assert node.get_attribute_value("fake") is False


def test_api_testbed_value(mock):
    desc, _, _ = mock
    with pytest.raises(AttributeValueError) as info:
        desc.set_attribute_value("deployment_port", "22")
    assert_names(str(info.value), "testbed 1 (mock)", "attribute deployment_port", "'22'",
                 "expected an integer")


def test_api_unknown_attribute(mock):
    _, node, _ = mock
    with pytest.raises(KeyError) as info:
        node.set_attribute_value("speed", 3)
    assert_names(str(info.value), "element 2", "Node", "label 'n1'", "attribute 'speed'",
                 "known: fake, label, test")


@pytest.mark.parametrize("kind, attribute, value, expected", [
    ("address", "Address", "10.0.0.300", "expected an IP address"),
    ("address", "NetPrefix", "24", "expected an integer"),
    ("address", "Broadcast", "fd00::ff", "expected an IPv4 address"),
    ("route", "Destination", "nope", "expected an IP address or a netref"),
    ("route", "Metric", True, "expected an integer"),
])
def test_api_address_and_route_values(mock, kind, attribute, value, expected):
    _, node, iface = mock
    entry = iface.add_address() if kind == "address" else node.add_route()
    owner = "element 3" if kind == "address" else "element 2"
    label = "label 'if0'" if kind == "address" else "label 'n1'"
    with pytest.raises(AttributeValueError) as info:
        entry.set_attribute_value(attribute, value)
    assert_names(str(info.value), "%s of %s" % (kind, owner), label,
                 "attribute %s" % attribute, brief(value), expected)


# ---------------------------------------------------------------------------------------
# A megabyte value is cut, and its length given
# ---------------------------------------------------------------------------------------

def assert_cut(message: str, length: int = MEGA):
    assert len(message) < SHORT, len(message)
    assert "... (%d characters)" % length in message, message


def test_megabyte_value_in_xml_integer(mock):
    err = xml_error(variant(33, 'value="3"', 'value="%s"' % ("9" * (MEGA - 1) + "x")))
    assert_cut(str(err))
    assert str(err).startswith("line 33: " + LEFT + ", attribute 'maxAddresses': expected an "
                               "integer, got '999")


def test_megabyte_value_in_xml_boolean_attribute():
    problem = design_problem(variant(32, 'type="BOOL" value="True"',
                                     'type="STRING" value="%s"' % ("y" * MEGA)), 4, "fake")
    assert_cut(str(problem))
    assert str(problem).startswith(LEFT + ", attribute 'fake': invalid value 'yyy")
    assert "expected a boolean" in str(problem) and str(problem).endswith("(line 26)")


def test_megabyte_address_in_xml():
    problem = design_problem(variant(37, 'Address="192.168.7.1"',
                                     'Address="%s"' % ("1" * MEGA)), 4, "Address")
    assert_cut(str(problem))
    assert "is not an IP address" in str(problem)


def test_megabyte_value_and_label_through_the_api(mock):
    _, node, iface = mock
    with pytest.raises(AttributeValueError) as info:
        node.set_attribute_value("fake", "z" * MEGA)
    assert_cut(str(info.value))
    assert_names(str(info.value), "element 2", "label 'n1'", "attribute fake",
                 "expected a boolean")
    # a megabyte label is cut as well
    iface.set_attribute_value("label", "L" * MEGA)
    with pytest.raises(AttributeValueError) as info:
        iface.add_address().set_attribute_value("Address", "a" * MEGA)
    message = str(info.value)
    assert len(message) < SHORT, len(message)
    assert message.count("... (%d characters)" % MEGA) == 2


def test_megabyte_attribute_name_through_the_api(mock):
    _, node, _ = mock
    with pytest.raises(KeyError) as info:
        node.set_attribute_value("n" * MEGA, 1)
    assert_cut(str(info.value))


# ---------------------------------------------------------------------------------------
# `nepi validate` prints the same
# ---------------------------------------------------------------------------------------

def validate(tmp_path, name, xml):
    path = tmp_path / name
    path.write_text(xml, encoding="utf-8")
    proc = nepi_command("validate", path, cwd=tmp_path)
    assert "Traceback" not in proc.stdout + proc.stderr
    return path, proc


def test_nepi_validate_names_an_xml_type_error(tmp_path):
    path, proc = validate(tmp_path, "bool.xml", variant(32, 'value="True"', 'value="x"'))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "nepi: %s:line 32: %s, attribute 'fake': expected a boolean (True or False), got 'x'"
        % (path, LEFT))


def test_nepi_validate_names_every_design_error(tmp_path):
    xml = variant(34, '<attribute name="label" type="STRING" value="left"/>',
                  '<attribute name="label" type="STRING" value="left"/>'
                  '<attribute name="speed" type="INTEGER" value="3"/>')
    xml = xml.replace('<address Address="192.168.7.1" NetPrefix="24"/>',
                      '<address Address="192.168.7.999" NetPrefix="24"/>')
    xml = xml.replace('NextHop="192.168.7.2"', 'NextHop="gateway"')
    path, proc = validate(tmp_path, "design.xml", xml)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert all(line.startswith("%s: " % path) for line in lines), lines
    expected = [
        (LEFT, "attribute 'speed'", "unknown attribute 'speed'", "(line 26)"),
        (LEFT, "attribute 'Address'", "'192.168.7.999' is not an IP address", "(line 26)"),
        (NODE2, "attribute 'NextHop'", "NextHop 'gateway' is not an IP address", "(line 10)"),
    ]
    for parts in expected:
        assert len([line for line in lines if all(p in line for p in parts)]) == 1, \
            (parts, lines)


def test_nepi_validate_cuts_a_megabyte_value(tmp_path):
    xml = variant(32, 'type="BOOL" value="True"', 'type="STRING" value="%s"' % ("y" * MEGA))
    path, proc = validate(tmp_path, "mega.xml", xml)
    assert proc.returncode == 1
    (line,) = proc.stdout.splitlines()
    assert_cut(line[len(str(path)):])
    assert_names(line, LEFT, "attribute 'fake'", "expected a boolean", "(line 26)")
    # a megabyte value the XML reader cannot convert
    path, proc = validate(tmp_path, "mega-int.xml",
                          variant(33, 'value="3"', 'value="%s"' % ("x" * MEGA)))
    assert proc.returncode == 1
    assert_cut(proc.stderr.strip()[len(str(path)):])
    assert_names(proc.stderr, "line 33", LEFT, "attribute 'maxAddresses'", "expected an integer")


# ---------------------------------------------------------------------------------------
# NEPI 2 leniency: a connection recorded on one end only
# ---------------------------------------------------------------------------------------

ONE_SIDED = "nepi2-mock-single-one-sided.xml"


def test_nepi_validate_accepts_a_connection_recorded_on_one_end(tmp_path):
    proc = nepi_command("validate", fixture_path(ONE_SIDED), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith(": OK (1 testbed, 5 elements)")
    assert proc.stderr == ""


def test_data_built_in_code_with_a_one_sided_connection():
    """The checks and load_data are as lenient as the reader (which completes the record)."""
    data = ExperimentData()
    data.add_testbed_data(1, "mock", "0.1")
    data.add_box_data(2, 1, "Node")
    data.add_box_data(3, 1, "Interface")
    data.add_connection_data(3, "node", 2, "devs")
    assert check_data(data) == []
    assert data.get_connection_data(2) == []          # check_data leaves its input as it is
    exp = ExperimentDescription()
    exp.load_data(data)
    assert exp.box(2).connector("devs").get_connected_box() is exp.box(3)
    assert exp.box(3).connector("node").get_connected_box() is exp.box(2)
    assert data.one_sided_connections() == [(2, "devs", 3, "node")]
    assert data.complete_connections() == [(2, "devs", 3, "node")]
    assert data.one_sided_connections() == []


def test_ends_that_disagree_are_still_refused():
    """Interface 5 records its iface link to 4 under another connector than 4 records:
    which connection was meant cannot be told, so both ends are named."""
    xml = variant(59, '<connection connector="iface"', '<connection connector="cross"')
    with pytest.raises(DesignError) as info:
        load(xml)
    text = str(info.value)
    assert (LEFT + ", attribute 'iface': connection iface -> 5.iface is not recorded on "
            "element 5, which records cross -> 4.iface instead (the two ends of a connection "
            "must agree) (line 26)") in text
    assert ("element 5 (Interface, testbed 1 mock), attribute 'cross': connection cross -> "
            "4.iface is not recorded on element 4, which records iface -> 5.iface instead"
            in text)


def test_a_second_connection_recorded_on_one_end_is_added():
    """Two elements may be linked twice; one end recording both and the other one of them
    is a missing record, not a disagreement."""
    data = ExperimentData()
    data.add_testbed_data(1, "mock", "0.1")
    for guid in (2, 3):
        data.add_box_data(guid, 1, "Interface")
    data.add_connection_data(2, "iface", 3, "iface")
    data.add_connection_data(2, "cross", 3, "cross")
    data.add_connection_data(3, "iface", 2, "iface")
    assert data.one_sided_connections() == [(3, "cross", 2, "cross")]
