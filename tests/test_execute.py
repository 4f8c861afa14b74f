"""Testbed controller tests: NEPI 2's test/core/execute.py ported exactly (a mock
TestbedController driven directly, daemons-and-tests.md 8.3), plus unit tests of the
testbed_impl base (core.md 11, with the fixes of core.md 16 items 25-35).
"""

import getpass
import threading

import pytest

from nepi.core.metadata import Parallel
from nepi.errors import DeploymentError
from nepi.testbeds import mock, mock2
from nepi.util.constants import ApplicationStatus as AS
from nepi.util.constants import TestbedStatus as TS

from helpers import import_lib, wait_until
from mock_experiments import PING_TEXT

failmock = import_lib("failmock")              # tests/lib
failmeta = import_lib("failmock.metadata")


def make_mock_test(testbed):
    """NEPI 2's make_mock_test: the exact programming sequence of test/core/execute.py."""
    testbed.defer_configure("fake", True)
    testbed.defer_create(2, "Node")
    testbed.defer_create(3, "Node")
    testbed.defer_create(4, "Node")
    testbed.defer_create(5, "Interface")
    testbed.defer_create_set(5, "fake", True)
    testbed.defer_connect(2, "devs", 5, "node")
    testbed.defer_create(6, "Interface")
    testbed.defer_create_set(6, "fake", True)
    testbed.defer_connect(3, "devs", 6, "node")
    testbed.defer_connect(5, "iface", 6, "iface")
    testbed.defer_create(7, "Application")
    testbed.defer_add_trace(7, "fake")
    testbed.defer_connect(7, "node", 2, "apps")


def presteps(testbed):
    testbed.do_setup()
    testbed.do_create()
    testbed.do_connect_init()
    testbed.do_connect_compl()
    testbed.do_preconfigure()
    testbed.do_configure()
    testbed.do_prestart()


# ---------------------------------------------------------------------------------------
# NEPI 2 test/core/execute.py
# ---------------------------------------------------------------------------------------

def test_execute():
    instance = mock.TestbedController()
    assert instance.testbed_id == "mock"
    assert instance.testbed_version == "0.1"
    make_mock_test(instance)
    presteps(instance)
    # mock's do_configure is a no-op: the status stays CONNECTED until cross-connect
    assert instance.status() == TS.STATUS_CONNECTED
    instance.start()
    assert instance.status() == TS.STATUS_STARTED

    attr_list = instance.get_attribute_list(5)
    assert set(attr_list) == {"test", "fake", "cross", "maxAddresses", "label"}
    assert len(attr_list) == 5

    assert wait_until(lambda: instance.status(7) == AS.STATUS_FINISHED, timeout=5)
    assert instance.status(7) == AS.STATUS_FINISHED

    trace = instance.trace(7, "fake")
    assert isinstance(trace, str)
    assert trace.startswith(PING_TEXT)
    assert instance.traces_info() == {
        7: {"fake": {"host": "localhost", "user": getpass.getuser(), "filepath": "<test>"}}}

    instance.stop()
    assert instance.status() == TS.STATUS_STOPPED
    instance.shutdown()


def test_execute_statuses_step_by_step():
    tb = mock.TestbedController()
    assert tb.status() == TS.STATUS_ZERO
    make_mock_test(tb)
    tb.do_setup()
    assert tb.status() == TS.STATUS_SETUP
    tb.do_create()
    assert tb.status() == TS.STATUS_CREATED
    tb.do_connect_init()
    assert tb.status() == TS.STATUS_CREATED
    tb.do_connect_compl()
    assert tb.status() == TS.STATUS_CONNECTED
    tb.do_preconfigure()
    tb.do_configure()
    tb.do_prestart()
    assert tb.status() == TS.STATUS_CONNECTED
    assert tb.testbed_status() == TS.STATUS_CONNECTED
    tb.do_cross_connect_init({})
    tb.do_cross_connect_compl({})
    assert tb.status() == TS.STATUS_CROSS_CONNECTED
    tb.start()
    assert tb.status() == TS.STATUS_STARTED
    tb.stop()
    assert tb.status() == TS.STATUS_STOPPED
    tb.shutdown()


def test_execute_element_values_and_status():
    tb = mock.TestbedController()
    make_mock_test(tb)
    presteps(tb)
    tb.start()
    assert sorted(tb.guids) == [2, 3, 4, 5, 6, 7]
    assert tb.elements == {2: "Node", 3: "Node", 4: "Node", 5: "Interface",
                           6: "Interface", 7: "Application"}
    assert tb.get(5, "fake") is True            # create_set
    assert tb.get(2, "fake") is False           # factory default
    assert tb.get(2, "test") is None
    assert tb.get(5, "maxAddresses") == 1       # box default in execution
    assert tb.get_factory_id(7) == "Application"
    assert tb.status(2) == AS.STATUS_UNDETERMINED   # Node has no status function
    assert tb.status(5) == AS.STATUS_UNDETERMINED
    assert tb.trace(7, "fake", "path") == "<test>"
    assert tb.trace(7, "fake", "other") is None
    assert tb.get_connected(2, "devs", "node") == [5]
    assert tb.get_connected(5, "node", "devs") == [2]
    assert tb.get_connected(2, "apps", "node") == [7]
    assert tb.get_connected(4, "devs", "node") == []
    assert set(tb.get_attribute_list(2)) == {"test", "fake", "label"}
    assert set(tb.get_attribute_list(7)) == {"test", "fake", "label"}
    tb.set(5, "test", "hello")
    assert tb.get(5, "test") == "hello"
    tb.stop()
    tb.shutdown()


def test_mock_action_not_implemented():
    tb = mock.TestbedController()
    make_mock_test(tb)
    with pytest.raises(NotImplementedError):
        tb.action("0s", 7, "anything")


def test_mock_cross_connect_code_init_and_compl():
    """mock's cross code runs at init and sets True; mock2's runs at completion and
    copies the peer's value (daemons-and-tests.md 7.4)."""
    tb1 = mock.TestbedController()
    tb1.defer_create(5, "Interface")
    tb1.defer_cross_connect(5, "cross", 10, 7, "mock2", "Interface", "cross")
    tb2 = mock2.TestbedController()
    tb2.defer_create(10, "Interface")
    tb2.defer_cross_connect(10, "cross", 5, 1, "mock", "Interface", "cross")
    for tb in (tb1, tb2):
        presteps(tb)
    peer_of_5 = {7: {10: {"_guid": 10, "_testbed_guid": 7, "_testbed_id": "mock2",
                          "_testbed_version": "0.1", "cross": False}}}
    tb1.do_cross_connect_init(peer_of_5)
    assert tb1.get(5, "cross") is True
    tb2.do_cross_connect_init({1: {5: {"_guid": 5, "cross": True}}})
    assert tb2.get(10, "cross") is False          # mock2 does nothing at init
    tb2.do_cross_connect_compl({1: {5: {"_guid": 5, "cross": True}}})
    assert tb2.get(10, "cross") is True
    tb1.do_cross_connect_compl(peer_of_5)
    assert tb1.status() == tb2.status() == TS.STATUS_CROSS_CONNECTED


def test_cross_connect_missing_cross_data_is_reported():
    tb = mock.TestbedController()
    tb.defer_create(5, "Interface")
    tb.defer_cross_connect(5, "cross", 10, 7, "mock2", "Interface", "cross")
    presteps(tb)
    with pytest.raises(DeploymentError, match=r"no cross data for element 10 of testbed 7"):
        tb.do_cross_connect_init({})


# ---------------------------------------------------------------------------------------
# defer_* validation (core.md 11.3, with the fixes of 16.26/16.27)
# ---------------------------------------------------------------------------------------

def test_version_mismatch_is_refused():
    from nepi.core import testbed_impl
    with pytest.raises(RuntimeError,
                       match=r"^Bad testbed version on testbed mock\. Asked for 9\.9, got 0\.1$"):
        testbed_impl.TestbedController("mock", "9.9")


def test_defer_configure_errors():
    tb = mock.TestbedController()
    with pytest.raises(AttributeError, match=r"^Invalid testbed attribute nope for testbed"):
        tb.defer_configure("nope", 1)
    with pytest.raises(AttributeError, match=r"^Invalid value 'x' for testbed attribute fake"):
        tb.defer_configure("fake", "x")
    with pytest.raises(AttributeError, match=r"^Invalid value 'Sometimes' for testbed "
                                             r"attribute recoveryPolicy"):
        tb.defer_configure("recoveryPolicy", "Sometimes")
    tb.defer_configure("fake", True)
    tb.defer_configure("test", "hello")
    assert tb._testbed_attribute("fake") is True
    assert tb._testbed_attribute("test") == "hello"


def test_defer_create_errors():
    tb = mock.TestbedController()
    with pytest.raises(AttributeError, match=r"^Invalid element type Router for testbed "
                                             r"version 0\.1$"):
        tb.defer_create(2, "Router")
    tb.defer_create(2, "Node")
    with pytest.raises(AttributeError, match=r"^Cannot add elements with the same guid: 2$"):
        tb.defer_create(2, "Interface")
    assert tb.guids == [2]


def test_defer_create_set_errors():
    tb = mock.TestbedController()
    tb.defer_create(2, "Node")
    with pytest.raises(RuntimeError, match=r"^Element guid 99 doesn't exist"):
        tb.defer_create_set(99, "fake", True)
    with pytest.raises(AttributeError, match=r"^Invalid attribute cross for element type Node$"):
        tb.defer_create_set(2, "cross", True)       # cross is an Interface attribute
    with pytest.raises(AttributeError, match=r"^Invalid value 'yes' for attribute fake"):
        tb.defer_create_set(2, "fake", "yes")
    with pytest.raises(AttributeError, match=r"^Invalid value 1 for attribute fake"):
        tb.defer_create_set(2, "fake", 1)
    tb.defer_create_set(2, "fake", True)


def test_defer_factory_set_errors():
    tb = mock.TestbedController()
    tb.defer_create(5, "Interface")
    with pytest.raises(RuntimeError, match=r"^Element guid 6 doesn't exist"):
        tb.defer_factory_set(6, "fake", True)
    with pytest.raises(AttributeError, match=r"^Invalid attribute test for element type "
                                             r"Interface$"):
        tb.defer_factory_set(5, "test", "x")       # test is a box, not a factory attribute
    with pytest.raises(AttributeError, match=r"^Invalid value 'x' for factory attribute "
                                             r"maxAddresses"):
        tb.defer_factory_set(5, "maxAddresses", "x")


def test_defer_connect_errors():
    tb = mock.TestbedController()
    tb.defer_create(2, "Node")
    tb.defer_create(3, "Node")
    tb.defer_create(5, "Interface")
    tb.defer_create(7, "Application")
    with pytest.raises(RuntimeError, match=r"^Element guid 99 doesn't exist"):
        tb.defer_connect(2, "devs", 99, "node")
    with pytest.raises(AttributeError, match=r"^Can't connect guid 2 to self$"):
        tb.defer_connect(2, "devs", 2, "node")
    with pytest.raises(AttributeError, match=r"has no connector bogus"):
        tb.defer_connect(2, "bogus", 5, "node")
    tb.defer_connect(2, "devs", 5, "node")
    # the experiment controller sends each connection from both ends: tolerated
    tb.defer_connect(5, "node", 2, "devs")
    tb.defer_connect(2, "devs", 5, "node")
    assert tb.get_connected(2, "devs", "node") == [5]
    assert tb.get_connected(5, "node", "devs") == [2]
    with pytest.raises(AttributeError, match=r"^Connector node is full for guid 5$"):
        tb.defer_connect(5, "node", 3, "devs")


def test_defer_connect_incompatible_raises():
    """Fix of core.md 16.26: can_connect's verdict is enforced, not ignored."""
    tb = mock.TestbedController()
    tb.defer_create(2, "Node")
    tb.defer_create(5, "Interface")
    tb.defer_create(6, "Interface")
    tb.defer_create(7, "Application")
    with pytest.raises(AttributeError, match=r"^Connector devs of Node \(guid 2\) may not be "
                                             r"connected to mock/Application/node$"):
        tb.defer_connect(2, "devs", 7, "node")
    with pytest.raises(AttributeError, match=r"may not be connected"):
        tb.defer_connect(2, "apps", 5, "node")
    # a cross-only connector type may not be used within a testbed
    with pytest.raises(AttributeError, match=r"may not be connected"):
        tb.defer_connect(5, "cross", 6, "cross")
    assert tb.get_connected(2, "devs", "node") == []


def test_defer_cross_connect_errors():
    tb = mock.TestbedController()
    tb.defer_create(5, "Interface")
    tb.defer_create(2, "Node")
    with pytest.raises(RuntimeError, match=r"^Element guid 99 doesn't exist"):
        tb.defer_cross_connect(99, "cross", 10, 7, "mock2", "Interface", "cross")
    # mock's cross connector only accepts mock2 Interfaces, and only across testbeds
    with pytest.raises(AttributeError, match=r"may not be connected to mock/Interface/cross"):
        tb.defer_cross_connect(5, "cross", 10, 7, "mock", "Interface", "cross")
    with pytest.raises(AttributeError, match=r"may not be connected"):
        tb.defer_cross_connect(2, "devs", 10, 7, "mock2", "Interface", "node")
    tb.defer_cross_connect(5, "cross", 10, 7, "mock2", "Interface", "cross")
    # the same cross connection again is tolerated
    tb.defer_cross_connect(5, "cross", 10, 7, "mock2", "Interface", "cross")
    # a different one counts as a second connection: cross has max 1 (count = entries,
    # not the length of the stored tuple, core.md 16.27)
    with pytest.raises(AttributeError, match=r"^Connector cross is full for guid 5$"):
        tb.defer_cross_connect(5, "cross", 11, 7, "mock2", "Interface", "cross")


def test_several_cross_connections_per_connector_are_kept(failmock_env):
    """Fix of core.md 16.27: a second cross connection does not overwrite the first."""
    tb = failmock.TestbedController()
    tb.defer_create(5, "Interface")
    tb.defer_cross_connect(5, "cross", 10, 7, "failmock", "Interface", "cross")
    tb.defer_cross_connect(5, "cross", 11, 7, "failmock", "Interface", "cross")
    tb.defer_cross_connect(5, "cross", 12, 8, "failmock", "Interface", "cross")
    presteps(tb)
    cross_data = {7: {10: {"_guid": 10, "_testbed_guid": 7},
                      11: {"_guid": 11, "_testbed_guid": 7}},
                  8: {12: {"_guid": 12, "_testbed_guid": 8}}}
    tb.do_cross_connect_init(cross_data)
    assert tb.cross_log == [(5, 7, 10), (5, 7, 11), (5, 8, 12)]
    assert tb.get(5, "cross") is True


def test_defer_add_trace_errors():
    tb = mock.TestbedController()
    tb.defer_create(2, "Node")
    tb.defer_create(7, "Application")
    with pytest.raises(RuntimeError, match=r"^Element type 'Node' has no trace 'fake'$"):
        tb.defer_add_trace(2, "fake")
    with pytest.raises(RuntimeError, match=r"^Element type 'Application' has no trace 'pcap'$"):
        tb.defer_add_trace(7, "pcap")
    with pytest.raises(RuntimeError, match=r"^Element guid 9 doesn't exist"):
        tb.defer_add_trace(9, "fake")
    tb.defer_add_trace(7, "fake")
    tb.defer_add_trace(7, "fake")      # idempotent
    assert tb.traces_info() == {
        7: {"fake": {"host": "localhost", "user": getpass.getuser(), "filepath": "<test>"}}}


def test_traces_info_uses_deployment_host_and_user():
    tb = mock.TestbedController()
    tb.defer_configure("deployment_host", "example.org")
    tb.defer_configure("deployment_user", "alice")
    tb.defer_create(7, "Application")
    tb.defer_add_trace(7, "fake")
    assert tb.traces_info() == {
        7: {"fake": {"host": "example.org", "user": "alice", "filepath": "<test>"}}}


def test_traces_info_empty_without_traces():
    tb = mock.TestbedController()
    make_mock_test(tb)
    tb._add_trace.clear()
    assert tb.traces_info() == {}


def test_defer_add_address_to_a_node_is_refused():
    tb = mock.TestbedController()
    tb.defer_create(2, "Node")
    with pytest.raises(RuntimeError, match=r"^Element type 'Node' doesn't support addresses$"):
        tb.defer_add_address(2, "10.0.0.1", 24, None)


@pytest.mark.parametrize("testbed,set_max,limit", [
    (mock, None, 3),                      # no design value: the factory's (mock overrides it)
    (mock, "defer_create_set", 2),        # the design value arrives with defer_create_set
    (mock, "defer_factory_set", 2),       # ... or as a factory attribute
    (mock2, None, 1),                     # mock2 does not override the tag default
], ids=["mock-factory", "create-set", "factory-set", "mock2-default"])
def test_defer_add_address_limit(testbed, set_max, limit):
    tb = testbed.TestbedController()
    tb.defer_create(5, "Interface")
    if set_max:
        getattr(tb, set_max)(5, "maxAddresses", limit)
    for i in range(limit):
        tb.defer_add_address(5, "10.0.0.%d" % (i + 1), 24, "10.0.0.255" if i else None)
    with pytest.raises(RuntimeError, match=r"^Element guid 5 of type 'Interface' can't accept "
                                           r"more addresses$"):
        tb.defer_add_address(5, "10.0.0.%d" % (limit + 1), 24, None)


def test_get_address():
    tb = mock.TestbedController()
    tb.defer_create(5, "Interface")
    tb.defer_create(6, "Interface")
    tb.defer_add_address(5, "10.0.0.1", 24, "10.0.0.255")
    assert tb.get_address(5, 0) == "10.0.0.1"
    assert tb.get_address(5, 0, "Address") == "10.0.0.1"
    assert tb.get_address(5, 0, "NetPrefix") == 24
    assert tb.get_address(5, 0, "Broadcast") == "10.0.0.255"
    with pytest.raises(AttributeError):
        tb.get_address(5, 0, "Gateway")
    with pytest.raises(KeyError, match=r"GUID 6 not found in mock"):
        tb.get_address(6, 0)
    with pytest.raises(AttributeError, match=r"^GUID 5 at mock does not have an address #1$"):
        tb.get_address(5, 1)


def test_defer_add_route_and_get_route():
    """Fix of core.md 16.25: get_route works and exposes Metric and Device."""
    tb = mock.TestbedController()
    tb.defer_create(2, "Node")
    tb.defer_create(3, "Node")
    tb.defer_create(5, "Interface")
    tb.defer_create(7, "Application")
    with pytest.raises(RuntimeError, match=r"^Element type 'Interface' doesn't support routes$"):
        tb.defer_add_route(5, "10.1.0.0", 16, "10.0.0.254")
    with pytest.raises(RuntimeError, match=r"^Element type 'Application' doesn't support "
                                           r"routes$"):
        tb.defer_add_route(7, "10.1.0.0", 16, "10.0.0.254")
    tb.defer_add_route(2, "10.1.0.0", 16, "10.0.0.254")
    tb.defer_add_route(2, "0.0.0.0", 0, "10.0.0.1", 5, "eth0")
    assert tb.get_route(2, 0, "Destination") == "10.1.0.0"
    assert tb.get_route(2, 0, "NetPrefix") == 16
    assert tb.get_route(2, 0, "NextHop") == "10.0.0.254"
    assert tb.get_route(2, 0, "Metric") == 0
    assert tb.get_route(2, 0, "Device") is None
    assert tb.get_route(2, 1, "Destination") == "0.0.0.0"
    assert tb.get_route(2, 1, "NetPrefix") == 0
    assert tb.get_route(2, 1, "Metric") == 5
    assert tb.get_route(2, 1, "Device") == "eth0"
    with pytest.raises(AttributeError, match=r"Invalid route attribute 'Gateway'"):
        tb.get_route(2, 0, "Gateway")
    with pytest.raises(AttributeError, match=r"^GUID 2 at mock does not have a route #2$"):
        tb.get_route(2, 2, "Destination")
    with pytest.raises(KeyError, match=r"GUID 3 not found in mock"):
        tb.get_route(3, 0, "Destination")


# ---------------------------------------------------------------------------------------
# runtime set/get, status
# ---------------------------------------------------------------------------------------

def test_status_zero_is_an_element_guid_not_the_testbed():
    """Fix of core.md 16.29: only guid=None means 'the testbed status'."""
    tb = mock.TestbedController()
    make_mock_test(tb)
    presteps(tb)
    assert tb.status() == TS.STATUS_CONNECTED
    assert tb.status(None) == TS.STATUS_CONNECTED
    with pytest.raises(RuntimeError, match=r"^Element guid 0 doesn't exist"):
        tb.status(0)
    with pytest.raises(RuntimeError, match=r"^Element guid 42 doesn't exist"):
        tb.status(42)


def test_set_get_validation():
    tb = mock.TestbedController()
    make_mock_test(tb)
    presteps(tb)
    tb.start()
    with pytest.raises(RuntimeError, match=r"^Element guid 42 doesn't exist"):
        tb.set(42, "fake", True)
    with pytest.raises(RuntimeError, match=r"^Element guid 42 doesn't exist"):
        tb.get(42, "fake")
    with pytest.raises(AttributeError, match=r"^Invalid attribute nope for element type Node$"):
        tb.set(2, "nope", 1)
    with pytest.raises(AttributeError, match=r"^Invalid attribute nope for element type Node$"):
        tb.get(2, "nope")
    with pytest.raises(AttributeError, match=r"^Invalid value 'x' for attribute fake"):
        tb.set(2, "fake", "x")
    with pytest.raises(KeyError):
        tb.get_factory_id(42)
    # the last set value wins; time is only a log key
    tb.set(2, "test", "a")
    tb.set(2, "test", "b", "10s")
    assert tb.get(2, "test") == "b"
    assert tb.get(2, "test", "10s") == "b"
    assert tb._setlog[2]["0s"]["test"] == "a"
    assert tb._setlog[2]["10s"]["test"] == "b"


def test_read_only_attribute_cannot_be_set_after_start():
    """Fix of core.md 16.28: ExecReadOnly attributes (label) are frozen once started."""
    tb = mock.TestbedController()
    make_mock_test(tb)
    tb.defer_create_set(2, "label", "n1")
    presteps(tb)
    assert tb.get(2, "label") == "n1"
    tb.set(3, "label", "n2")            # still deploying: allowed
    assert tb.get(3, "label") == "n2"
    tb.start()
    with pytest.raises(AttributeError, match=r"^Attribute label can only be modified during "
                                             r"experiment design$"):
        tb.set(2, "label", "other")
    assert tb.get(2, "label") == "n1"
    tb.set(2, "test", "writable")       # ordinary attributes stay writable
    assert tb.get(2, "test") == "writable"
    tb.stop()
    with pytest.raises(AttributeError, match=r"can only be modified during experiment design"):
        tb.set(3, "label", "again")
    tb.shutdown()


def test_get_values_batch():
    tb = mock.TestbedController()
    make_mock_test(tb)
    presteps(tb)
    assert tb.get_values([[5, "fake"], [2, "fake"], [2, "nope"], [99, "fake"]]) == \
        [True, False, None, None]


def test_program_batch():
    tb = mock.TestbedController()
    tb.program([["defer_configure", "fake", True],
                ["defer_create", 2, "Node"],
                ["defer_create", 5, "Interface"],
                ["defer_create_set", 5, "test", "x"],
                ["defer_connect", 2, "devs", 5, "node"]])
    assert tb.guids == [2, 5]
    assert tb.get(5, "test") == "x"
    with pytest.raises(ValueError, match=r"'start' is not a programming call"):
        tb.program([["start"]])


def test_recover_not_supported_by_generic_testbeds():
    tb = mock.TestbedController()
    with pytest.raises(NotImplementedError):
        tb.recover()


# ---------------------------------------------------------------------------------------
# factory order, Parallel, CONNECTION_DELAY (failmock: tests/lib/failmock)
# ---------------------------------------------------------------------------------------

def _program_failmock(tb, apps=1):
    tb.defer_create(2, "Node")
    tb.defer_create(3, "Interface")
    tb.defer_create_set(3, "test", "initial")
    tb.defer_connect(2, "devs", 3, "node")
    app_guids = list(range(10, 10 + apps))
    for g in app_guids:
        tb.defer_create(g, "Application")
        tb.defer_create_set(g, "test", "app%d" % g)
        tb.defer_connect(g, "node", 2, "apps")
    return app_guids


def test_factory_order_is_followed(failmock_env):
    tb = failmock.TestbedController()
    apps = _program_failmock(tb, apps=2)
    presteps(tb)
    created = [g for (phase, g, *rest) in tb.log if phase == "create"]
    assert created == [2, 3] + apps
    configured = [g for (phase, g, *rest) in tb.log if phase == "configure"]
    assert configured == [2, 3] + apps
    tb.start()
    started = [g for (phase, g, *rest) in tb.log if phase == "start"]
    assert started == [2, 3] + apps


def test_factories_missing_from_order_list_are_still_created(failmock_env, monkeypatch):
    """Fix of core.md 16.31: unlisted factories are processed after the listed ones."""
    monkeypatch.setattr(failmeta.MetadataInfo, "CREATE_ORDER", ["Application"])
    monkeypatch.setattr(failmeta.MetadataInfo, "CONFIGURE_ORDER", [])
    tb = failmock.TestbedController()
    apps = _program_failmock(tb, apps=2)
    presteps(tb)
    tb.start()
    created = [g for (phase, g, *rest) in tb.log if phase == "create"]
    assert created == apps + [2, 3]
    assert set(tb.elements) == {2, 3} | set(apps)
    # the create-time values reached every element
    assert tb.get(3, "test") == "initial"
    assert tb._set[3]["test"] == "initial"
    for phase in ("preconfigure", "configure", "prestart", "start"):
        done = [g for (p, g, *rest) in tb.log if p == phase]
        assert done == [2, 3] + apps, phase
    tb.stop()
    tb.shutdown()


def test_parallel_order_entry(failmock_env, monkeypatch):
    """A Parallel(...) entry: its elements are processed (on a pool) before the next entry,
    and their create-time values are applied."""
    monkeypatch.setattr(failmeta.MetadataInfo, "CREATE_ORDER",
                        [Parallel("Application", 4), "Node", "Interface"])
    monkeypatch.setattr(failmeta.MetadataInfo, "CONFIGURE_ORDER",
                        ["Node", Parallel("Application", 3), Parallel("Interface")])
    threads = set()
    original_create = failmeta.create

    def create(testbed, guid):
        threads.add(threading.get_ident())
        original_create(testbed, guid)

    monkeypatch.setattr(failmeta, "create", create)
    tb = failmock.TestbedController()
    apps = _program_failmock(tb, apps=8)
    presteps(tb)
    created = [g for (phase, g, *rest) in tb.log if phase == "create"]
    assert set(created[:8]) == set(apps)
    assert created[8:] == [2, 3]
    for g in apps:
        assert tb.get(g, "test") == "app%d" % g
        assert tb._set[g]["test"] == "app%d" % g
    configured = [g for (phase, g, *rest) in tb.log if phase == "configure"]
    assert configured[0] == 2
    assert set(configured[1:9]) == set(apps)
    assert configured[9] == 3
    assert len(threads) > 1      # the Parallel entry really used a pool
    tb.start()
    tb.stop()
    tb.shutdown()


def test_parallel_entry_errors_are_reported(failmock_env, monkeypatch):
    monkeypatch.setattr(failmeta.MetadataInfo, "CREATE_ORDER",
                        ["Node", "Interface", Parallel("Application", 4)])
    tb = failmock.TestbedController()
    tb.defer_configure("failPhase", "create")
    tb.defer_configure("failGuid", 13)
    _program_failmock(tb, apps=6)
    tb.do_setup()
    with pytest.raises(DeploymentError, match=r"element 13 \(Application\) failed in create: "
                                              r"injected failure") as info:
        tb.do_create()
    assert info.value.guid == 13
    assert info.value.phase == "create"


def test_element_failure_names_element_and_phase(failmock_env):
    for phase, guid in [("create", 3), ("preconfigure", 2), ("configure", 10),
                        ("prestart", 10), ("start", 3)]:
        tb = failmock.TestbedController()
        tb.defer_configure("failPhase", phase)
        tb.defer_configure("failGuid", guid)
        _program_failmock(tb)
        with pytest.raises(DeploymentError) as info:
            presteps(tb)
            tb.start()
        assert "element %d" % guid in str(info.value)
        assert "failed in %s" % phase in str(info.value)
        assert "injected failure" in str(info.value)
        assert info.value.guid == guid
        assert info.value.phase == phase


def test_connection_failure_names_both_elements(failmock_env):
    tb = failmock.TestbedController()
    tb.defer_configure("failPhase", "connect")
    tb.defer_configure("failGuid", 3)
    _program_failmock(tb)
    tb.do_setup()
    tb.do_create()
    with pytest.raises(DeploymentError, match=r"connecting element 2 \(Node\) to 3 "
                                              r"\(Interface\) failed in connect_init: "
                                              r"injected failure"):
        tb.do_connect_init()


def test_connection_delay_is_retried(failmock_env):
    """A connection function returning CONNECTION_DELAY is called again until it succeeds."""
    tb = failmock.TestbedController()
    tb.defer_configure("delayConnect", 3)
    _program_failmock(tb)
    tb.defer_create(4, "Node")
    tb.defer_create(5, "Interface")
    tb.defer_connect(4, "devs", 5, "node")
    tb.do_setup()
    tb.do_create()
    tb.do_connect_init()
    assert tb.connect_tries == {(2, 3): 4, (4, 5): 4}
    assert sorted(e for e in tb.log if e[0] == "connect") == \
        [("connect", 2, 3), ("connect", 4, 5)]
    tb.do_connect_compl()
    assert tb.status() == TS.STATUS_CONNECTED


def test_connection_delay_is_bounded(failmock_env, monkeypatch):
    """Fix of core.md 16.30: a connection that always asks for a retry fails in bounded
    time instead of hanging the deployment."""
    from nepi.core import testbed_impl
    monkeypatch.setattr(testbed_impl, "CONNECTION_RETRY_SECONDS", 0.2)
    tb = failmock.TestbedController()
    tb.defer_configure("delayConnect", 10 ** 9)
    _program_failmock(tb)
    tb.do_setup()
    tb.do_create()
    with pytest.raises(DeploymentError, match=r"connection of element 2 to 3 still delayed"):
        tb.do_connect_init()
