"""Inputs that made nepi crash under fuzzing (tests/fuzz/, `make fuzz`), each now refused
with a clear error naming the element, attribute or line.

Each test feeds the input that crashed through the public path it crashed in: a document
under tests/fuzz/regressions/ (what the harness handed to the loader), or, for designs
thousands of elements long, the same document built here.
"""

import os
import time

import pytest

from nepi.cli import nepi_cmd
from nepi.core.checks import check_data
from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.core.execute import ExperimentController
from nepi.core.netref_resolution import MAX_RESOLVED_LENGTH, NetrefResolver
from nepi.errors import AttributeValueError, DesignError, XmlFormatError
from nepi.util import netrefs
from nepi.util.parser._xml import MAX_GUID, XmlExperimentParser

REGRESSIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz", "regressions")

# What a message may quote of a bad value (nepi.errors.brief) plus its own words.
SHORT_MESSAGE = 400


def regression_file(name: str) -> str:
    return os.path.join(REGRESSIONS, name)


def mock_design(*values: str, factory_attribute: str = "") -> bytes:
    """A mock design, one element per line from line 3: a Node per value (guids 2, 3...)
    whose ``test`` attribute holds it; ``factory_attribute`` goes into the first one."""
    elements = "\n".join(
        '<element factory_id="Node" guid="%d">%s<attributes>'
        '<attribute name="test" type="STRING" value="%s"/></attributes></element>'
        % (guid, factory_attribute if guid == 2 else "", value)
        for guid, value in enumerate(values, 2))
    return ('<experiment><testbeds>\n<testbed guid="1" testbed_id="mock" '
            'testbed_version="0.1"><elements>\n%s\n</elements></testbed></testbeds>'
            '</experiment>' % elements).encode("utf-8")


def netref_to(guid: int) -> str:
    return "{#[GUID-%d].[test]#}" % guid


def deploy(xml, root_dir):
    """Start an in-process controller on ``xml``: the error it raises, after shutdown."""
    controller = ExperimentController(xml.decode("utf-8"), str(root_dir))
    try:
        with pytest.raises(Exception) as info:
            controller.start()
        assert controller.state == "failed"
    finally:
        controller.shutdown()
    return info.value


def test_netref_naming_a_guid_of_thousands_of_digits(capsys):
    """Both harnesses: a netref to ``GUID-`` and 5000 digits raised ValueError (Python's
    4300-digit limit for int()) from the design checks. Now it is a label that names
    nothing, reported without echoing the 5000 digits."""
    path = regression_file("netref-guid-of-5000-digits.xml")
    with open(path, "rb") as f:
        data = XmlExperimentParser().from_xml_to_data(f.read(), source=path)
    value = data.get_attribute_data(6, "user")
    assert [r.guid for r in netrefs.find_netrefs(value)] == [None, None]
    problems = [p for p in check_data(data) if "GUID-" in p.message]
    assert len(problems) == 1
    (problem,) = problems
    assert (problem.guid, problem.attribute, problem.blocking) == (6, "user", False)
    assert "names 'GUID-99999" in problem.message
    assert "(5005 characters), which is no element's label or guid (line 56)" \
        in problem.message
    assert len(str(problem)) < SHORT_MESSAGE
    # what `nepi validate` prints: one short line per problem, exit 1
    assert nepi_cmd.main(["validate", path]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(len(line) < SHORT_MESSAGE for line in lines)
    assert "GUID-99999" in lines[1] and "(5005 characters)" in lines[1]


def test_long_bad_value_is_quoted_cut_short():
    """XML harness: a value of 5000 characters that is not an integer was echoed whole in
    the error (and so by `nepi validate`); now cut to 80 characters with its length."""
    value = "1{#[left].addr[" + "9" * 5000 + "].[Address]#}"
    xml = mock_design("x", factory_attribute='<factory_attributes><factory_attribute '
                      'name="maxAddresses" type="INTEGER" value="%s"/></factory_attributes>'
                      % value)
    with pytest.raises(XmlFormatError) as info:
        XmlExperimentParser().from_xml_to_data(xml, source="fuzz.xml")
    message = str(info.value)
    assert message.startswith("fuzz.xml:line 3: element 2 (Node, testbed 1 mock), factory "
                              "attribute 'maxAddresses': expected an integer, got "
                              "'1{#[left].addr[9999")
    assert message.endswith("... (5028 characters)")
    assert len(message) < SHORT_MESSAGE


def test_guid_beyond_64_bits_is_refused():
    """Guids are printed in every message about their element: one of 4000 digits made
    each such message 4000 characters long."""
    xml = mock_design("x").replace(b'guid="2"', b'guid="%d"' % (10 ** 4000))
    with pytest.raises(XmlFormatError) as info:
        XmlExperimentParser().from_xml_to_data(xml)
    message = str(info.value)
    assert message.startswith("line 3: element (Node, testbed 1 mock), guid: expected a guid "
                              "(an integer from 1 to 2^63-1), got '1000")
    assert str(MAX_GUID + 1) not in message
    assert message.endswith("... (4001 characters)")


def test_netref_in_a_factory_attribute_is_refused():
    """Found reading the loader for the XML harness (a mutation it had not reached yet):
    factory attributes are never resolved, so a netref in ``maxAddresses`` passed the
    checks and `from_xml` raised TypeError comparing the address count with the text."""
    with open(regression_file("netref-in-factory-attribute.xml"), "rb") as f:
        xml = f.read()
    with pytest.raises(DesignError) as info:
        ExperimentDescription().from_xml(xml)
    (problem,) = info.value.problems
    assert (problem.guid, problem.attribute, problem.blocking) == (4, "maxAddresses", True)
    assert problem.message == ("factory attribute holds the netref "
                               "'{#[left].[maxAddresses]#}'; factory attributes are fixed "
                               "when the element is created and cannot refer to other "
                               "elements (line 26)")


def test_netref_whose_value_does_not_fit_its_attribute(tmp_path):
    """Netref harness: a route Metric taking an address through a netref raised a bare
    ValueError (could not convert '192.168.7.1') out of deployment."""
    with open(regression_file("netref-metric-from-address.xml"), "rb") as f:
        xml = f.read()
    error = deploy(xml, tmp_path)
    assert isinstance(error, AttributeValueError)
    assert str(error) == ("element 2 route #0 Metric = '{#[left].addr[0].[Address]#}' "
                          "(line 10): it resolves to '192.168.7.1', which is not a valid "
                          "INTEGER")


def test_cycle_of_thousands_of_netrefs_is_reported_briefly():
    """Each Node's ``test`` reads the next one's, the last reads the first: the cycle
    check recursed once per netref and raised RecursionError."""
    count = 3000
    xml = mock_design(*(netref_to(guid + 1) for guid in range(2, count + 1)), netref_to(2))
    (problem,) = check_data(XmlExperimentParser().from_xml_to_data(xml))
    assert not problem.blocking and problem.attribute == "test"
    assert problem.message == ("netrefs form a cycle: 2.test -> 3.test -> 4.test -> 5.test "
                               "-> 6.test -> 7.test -> 8.test -> 9.test -> 10.test -> 11.test "
                               "-> ... (%d netrefs in all) (line 3)" % count)


def test_chain_of_thousands_of_netrefs_resolves_in_linear_time():
    """The same chain left open: resolution went over the whole design once per link
    (3000 links took about 40 s); now each value is retried only when its source is."""
    count = 3000
    xml = mock_design(*(netref_to(guid + 1) for guid in range(2, count + 1)), "end")
    data = XmlExperimentParser().from_xml_to_data(xml)
    assert check_data(data) == []
    resolver = NetrefResolver(data, lambda guid, name: "STRING")
    started = time.monotonic()
    resolved = resolver.resolve(resolver.static_getter)
    assert time.monotonic() - started < 10
    assert len(resolved) == count - 1 and resolver.pending() == []
    assert {data.get_attribute_data(guid, "test") for guid in data.box_guids()} == {"end"}


def test_netrefs_doubling_at_each_step_are_refused(tmp_path):
    """Each Node's ``test`` is the next one's twice: 30 elements (5 KB of XML) expanded to
    gigabytes in memory at deployment. Now a value may grow to MAX_RESOLVED_LENGTH."""
    count = 30
    xml = mock_design(*(netref_to(guid + 1) * 2 for guid in range(2, count + 1)), "x" * 16)
    assert check_data(XmlExperimentParser().from_xml_to_data(xml)) == []
    error = deploy(xml, tmp_path)
    assert isinstance(error, AttributeValueError)
    assert str(error) == ("element 14 attribute 'test' = '%s' (line 15): it resolves to %d "
                          "characters, more than the %d allowed"
                          % (netref_to(15) * 2, 2 * MAX_RESOLVED_LENGTH, MAX_RESOLVED_LENGTH))


def test_value_xml_cannot_hold_is_refused_when_writing():
    """Turning a netref harness input into a file (``--show``): a control character in a
    value made lxml raise its own ValueError, naming neither element nor attribute."""
    exp = ExperimentDescription()
    node = exp.add_testbed_description(FactoriesProvider("mock")).create("Node")
    node.set_attribute_value("test", "{#[GUID-0].route[1].[Device]#}\x02")
    with pytest.raises(AttributeValueError) as info:
        exp.to_xml()
    assert str(info.value) == ("element 2 (Node, testbed 1 mock), attribute 'test': "
                               "control character '\\x02' "
                               "cannot be stored in XML: '{#[GUID-0].route[1].[Device]#}\\x02'")
