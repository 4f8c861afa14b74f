"""Experiment controller tests, single process: NEPI 2's test/core/integration.py
single-process cases with their exact values (daemons-and-tests.md 8.4.1, 8.4.2, 8.4.7,
8.4.8), plus netrefs, persisted files, errors and recovery (core.md 12, SPEC 5, 7, 12).
"""

import getpass
import json
import os
import time

import pytest
from lxml import etree

from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.core.execute import DEPLOYMENT_JSON, DESIGN_XML, EXECUTE_XML, ExperimentController
from nepi.errors import DesignError, NepiError
from nepi.util import proxy
from nepi.util.constants import ApplicationStatus as AS
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS

from helpers import import_lib, wait_until
from mock_experiments import PING_TEXT, make_cross_test_experiment, make_test_experiment, \
    make_testbed

failmock = import_lib("failmock")              # tests/lib

USER = getpass.getuser()
TRACE_INFO = {"fake": {"host": "localhost", "user": USER, "filepath": "<test>"}}


def labelled_address(iface, label="some", address="10.0.0.2"):
    iface.set_attribute_value("label", label)
    addr = iface.add_address()
    addr.set_attribute_value("Address", address)
    return addr


def deploy(controllers, exp_desc, root_dir):
    controller = ExperimentController(exp_desc.to_xml(), str(root_dir))
    controllers.append(controller)
    controller.start()
    return controller


# ---------------------------------------------------------------------------------------
# NEPI 2 test/core/integration.py, single-process cases
# ---------------------------------------------------------------------------------------

def test_single_process_cross_integration():
    exp_desc, desc1, desc2, iface12, iface21 = make_cross_test_experiment()
    assert (desc1.guid, iface12.guid, desc2.guid, iface21.guid) == (1, 5, 7, 10)
    xml = exp_desc.to_xml()
    controller = proxy.create_experiment_controller(xml, None)
    try:
        controller.start()
        cross1 = controller.get(5, "cross")
        cross2 = controller.get(10, "cross")
        assert cross1 == cross2 == True  # noqa: E712  (NEPI 2's exact assertion)
        assert cross1 is True and cross2 is True
        # the other interfaces were not cross-connected
        assert controller.get(4, "cross") is False
        assert controller.get(11, "cross") is False
        controller.stop()
    finally:
        controller.shutdown()


def test_single_process_integration():
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    assert (desc.guid, node1.guid, node2.guid, iface1.guid, iface2.guid, app.guid) == \
        (1, 2, 3, 4, 5, 6)
    xml = exp_desc.to_xml()
    controller = proxy.create_experiment_controller(xml, None)
    try:
        controller.start()
        started_time = controller.started_time
        assert isinstance(started_time, float)
        assert started_time < time.time()
        assert wait_until(lambda: controller.is_finished(6), timeout=10, interval=0.5)
        fake_result = controller.trace(6, "fake")
        assert fake_result.startswith(PING_TEXT)
        assert controller.get_testbed_id(2) == "mock"
        assert controller.get_testbed_version(2) == "0.1"
        assert controller.get_factory_id(2) == "Node"
        controller.stop()
        stopped_time = controller.stopped_time
        assert isinstance(stopped_time, float)
        assert started_time <= stopped_time < time.time()
    finally:
        controller.shutdown()


@pytest.mark.parametrize("target", ["element", "testbed"])
def test_reference_expressions(target):
    """NEPI 2's test_reference_expressions and test_testbed_reference_expressions: an
    address netref resolves into an element's attribute, or into the deployment_host of a
    second testbed (created once the first one runs)."""
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    labelled_address(iface1)
    netref = "{#[some].addr[0].[Address]#}"
    if target == "element":
        iface2.set_attribute_value("test", netref)
    else:
        desc2 = exp_desc.add_testbed_description(FactoriesProvider("mock2"))
        assert desc2.guid == 7
        desc2.set_attribute_value("deployment_host", netref)
    controller = proxy.create_experiment_controller(exp_desc.to_xml(), None)
    try:
        controller.start()
        assert wait_until(lambda: controller.is_finished(6), timeout=10, interval=0.5)
        assert controller.trace(6, "fake").startswith(PING_TEXT)
        if target == "element":
            assert controller.get(5, "test") == "10.0.0.2"
        else:
            assert controller.deployment_config(7)["deployment_host"] == "10.0.0.2"
            assert controller.status(7) == TS.STATUS_STARTED
        controller.stop()
    finally:
        controller.shutdown()


def test_traces_info_two_testbeds():
    exp_desc, desc1, desc2, iface12, iface21 = make_cross_test_experiment()
    controller = proxy.create_experiment_controller(exp_desc.to_xml(), None)
    try:
        controller.start()
        info = controller.traces_info()
        assert info == {1: {6: TRACE_INFO}, 7: {12: TRACE_INFO}}
        assert all(isinstance(k, int) for k in info)
        assert controller.trace(12, "fake").startswith(PING_TEXT)
        assert controller.get_testbed_id(12) == "mock2"
        assert controller.get_testbed_id(6) == "mock"
        assert controller.is_finished(12)
        controller.stop()
    finally:
        controller.shutdown()


def test_traces_info_follows_testbed_host_and_user(tmp_path, controllers):
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    desc.set_attribute_value("deployment_host", "example.org")
    desc.set_attribute_value("deployment_user", "alice")
    controller = deploy(controllers, exp_desc, tmp_path)
    assert controller.traces_info() == {
        1: {6: {"fake": {"host": "example.org", "user": "alice", "filepath": "<test>"}}}}


# ---------------------------------------------------------------------------------------
# lifecycle, statuses, queries
# ---------------------------------------------------------------------------------------

def test_statuses_through_the_lifecycle(tmp_path, controllers):
    exp_desc, desc1, desc2, iface12, iface21 = make_cross_test_experiment()
    controller = ExperimentController(exp_desc.to_xml(), str(tmp_path))
    controllers.append(controller)
    assert controller.state == "created"
    assert controller.started_time is None and controller.stopped_time is None
    controller.start()
    assert controller.state == "started"
    assert controller.status() == TS.STATUS_STARTED
    assert controller.status(1) == TS.STATUS_STARTED
    assert controller.status(7) == TS.STATUS_STARTED
    assert controller.status(6) == AS.STATUS_FINISHED
    assert controller.status(2) == AS.STATUS_UNDETERMINED
    assert controller.is_finished(6) and controller.is_finished(12)
    assert not controller.is_finished(2)
    assert sorted(controller.guids) == [2, 3, 4, 5, 6, 8, 9, 10, 11, 12]
    controller.stop()
    assert controller.state == "stopped"
    assert controller.status() == TS.STATUS_STOPPED
    assert controller.status(1) == TS.STATUS_STOPPED
    assert controller.status(7) == TS.STATUS_STOPPED
    controller.shutdown()
    assert controller.state == "shutdown"


def test_testbed_status_before_start_is_zero(tmp_path, controllers):
    exp_desc = make_test_experiment()[0]
    controller = ExperimentController(exp_desc.to_xml(), str(tmp_path))
    controllers.append(controller)
    assert controller.status(1) == TS.STATUS_ZERO
    assert controller.status() == TS.STATUS_ZERO
    assert controller.status(6) == AS.STATUS_UNDETERMINED


def test_unknown_guids(tmp_path, controllers):
    exp_desc = make_test_experiment()[0]
    controller = deploy(controllers, exp_desc, tmp_path)
    assert controller.status(99) == AS.STATUS_UNDETERMINED
    with pytest.raises(RuntimeError, match=r"^No element exists with guid 99$"):
        controller.get(99, "test")
    with pytest.raises(RuntimeError, match=r"^No element exists with guid 99$"):
        controller.set(99, "test", "x")
    with pytest.raises(RuntimeError, match=r"^No element exists with guid 99$"):
        controller.is_finished(99)
    with pytest.raises(RuntimeError, match=r"^No element exists with guid 99$"):
        controller.trace(99, "fake")
    with pytest.raises(RuntimeError, match=r"^No element exists with guid 99$"):
        controller.get_factory_id(99)
    with pytest.raises(RuntimeError, match=r"^No element exists with guid 99$"):
        controller.get_testbed_id(99)
    with pytest.raises(RuntimeError, match=r"^No element exists with guid 1$"):
        controller.get(1, "fake")     # a testbed guid is not an element


def test_set_and_get_through_the_controller(tmp_path, controllers):
    exp_desc = make_test_experiment()[0]
    controller = deploy(controllers, exp_desc, tmp_path)
    assert controller.get(4, "fake") is True
    assert controller.get(2, "fake") is False
    controller.set(2, "test", "hello")
    assert controller.get(2, "test") == "hello"
    with pytest.raises(AttributeError, match=r"Invalid value"):
        controller.set(2, "fake", "not a bool")
    with pytest.raises(AttributeError, match=r"can only be modified during experiment design"):
        controller.set(2, "label", "late")


def test_start_twice_raises(tmp_path, controllers):
    exp_desc = make_test_experiment()[0]
    controller = deploy(controllers, exp_desc, tmp_path)
    with pytest.raises(NepiError, match=r"already started"):
        controller.start()
    assert controller.state == "started"
    assert controller.is_finished(6)


@pytest.mark.parametrize("started", [True, False], ids=["after-start", "without-start"])
def test_shutdown_twice_is_fine(tmp_path, started):
    """Shutdown (twice) with or without a start: the experiment is over, recorded as such
    with no daemon; without a start nothing was deployed (no execute XML)."""
    exp_desc = make_test_experiment()[0]
    controller = ExperimentController(exp_desc.to_xml(), str(tmp_path))
    if started:
        controller.start()
        controller.stop()
    controller.shutdown()
    controller.shutdown()
    assert controller.state == "shutdown"
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert (manifest["experiment_state"], manifest["daemons"]) == ("shutdown", {})
    assert (tmp_path / EXECUTE_XML).exists() == started
    with pytest.raises(NepiError, match="already shutdown"):
        controller.start()


def test_controller_without_root_dir_is_a_clear_error():
    xml = make_test_experiment()[0].to_xml()
    with pytest.raises(ValueError, match=r"root directory"):
        ExperimentController(xml, None)


def test_recovery_construction_needs_a_design(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"experiment\.xml"):
        ExperimentController(None, str(tmp_path))


def test_design_with_problems_is_refused_before_anything_is_created(tmp_path, failmock_env):
    exp_desc = ExperimentDescription()
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_testbed(exp_desc, "failmock")
    make_testbed(exp_desc, "mock")
    iface1.set_attribute_value("test", "{#[nobody].[test]#}")       # unknown label
    node2.set_attribute_value("test", "{#[GUID-99].[test]#}")       # unknown guid
    root = tmp_path / "root"
    with pytest.raises(DesignError) as info:
        ExperimentController(exp_desc.to_xml(), str(root))
    message = str(info.value)
    assert "2 problems" in message
    assert "'nobody'" in message and "element 4" in message
    assert "element 3" in message
    assert len(info.value.problems) == 2
    assert failmock.REGISTRY == []                    # no testbed controller was built
    assert not (root / DESIGN_XML).exists()
    assert not (root / "testbeds").exists()


def test_design_with_cyclic_netrefs_is_refused(tmp_path):
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    node1.set_attribute_value("label", "a")
    node2.set_attribute_value("label", "b")
    node1.set_attribute_value("test", "{#[b].[test]#}")
    node2.set_attribute_value("test", "{#[a].[test]#}")
    with pytest.raises(DesignError, match=r"cycle"):
        ExperimentController(exp_desc.to_xml(), str(tmp_path))


def test_design_connector_minimum_is_enforced(tmp_path):
    exp_desc = ExperimentDescription()
    desc = exp_desc.add_testbed_description(FactoriesProvider("mock"))
    desc.create("Interface")            # its "node" connector needs exactly one node
    with pytest.raises(DesignError):
        ExperimentController(exp_desc.to_xml(), str(tmp_path))


# ---------------------------------------------------------------------------------------
# netrefs
# ---------------------------------------------------------------------------------------

def test_netref_to_plain_attribute_and_guid_form(tmp_path, controllers):
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    labelled_address(iface1)
    node1.set_attribute_value("test", "{#[GUID-4].addr[0].[Address]#}")   # explicit guid form
    node2.set_attribute_value("label", "n2")
    node2.set_attribute_value("test", "ping -c1 {#[some].addr[0].[Address]#} "
                                      "&& echo {#[some].[label]#}")
    app.set_attribute_value("test", "{#[GUID-3].[label]#}")
    controller = deploy(controllers, exp_desc, tmp_path)
    assert controller.get(2, "test") == "10.0.0.2"
    assert controller.get(3, "test") == "ping -c1 10.0.0.2 && echo some"
    assert controller.get(6, "test") == "n2"


def test_netrefs_are_converted_to_the_target_type(tmp_path, controllers, failmock_env):
    """SPEC 12: netrefs work in attributes of any type (BOOL, INTEGER, STRING)."""
    exp_desc = ExperimentDescription()
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_testbed(exp_desc, "failmock")
    labelled_address(iface1)
    iface2.set_attribute_value("number", "{#[some].addr[0].[NetPrefix]#}")   # INTEGER
    node2.set_attribute_value("fake", "{#[some].[fake]#}")                   # BOOL
    node1.set_attribute_value("test", "{#[some].addr[0].[NetPrefix]#}")      # STRING
    app.set_attribute_value("label", "app")
    node1.set_attribute_value("number", "{#[app].[number]#}")
    app.set_attribute_value("number", 7)
    controller = deploy(controllers, exp_desc, tmp_path)
    assert controller.get(5, "number") == 24
    assert type(controller.get(5, "number")) is int
    assert controller.get(3, "fake") is True
    assert controller.get(2, "test") == "24"
    assert controller.get(2, "number") == 7


def test_netref_conversion_of_a_testbed_deployment_attribute(tmp_path, controllers):
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    labelled_address(iface1)
    desc2 = exp_desc.add_testbed_description(FactoriesProvider("mock2"))
    desc2.set_attribute_value("deployment_port", "{#[some].addr[0].[NetPrefix]#}")
    controller = deploy(controllers, exp_desc, tmp_path)
    assert controller.deployment_config(7)["deployment_port"] == 24


def test_chained_netrefs(tmp_path, controllers):
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    labelled_address(iface1, "c")
    node1.set_attribute_value("label", "a")
    node2.set_attribute_value("label", "b")
    node1.set_attribute_value("test", "via b: {#[b].[test]#}")
    node2.set_attribute_value("test", "{#[c].addr[0].[Address]#}/{#[c].addr[0].[NetPrefix]#}")
    app.set_attribute_value("test", "{#[a].[test]#}!")
    controller = deploy(controllers, exp_desc, tmp_path)
    assert controller.get(3, "test") == "10.0.0.2/24"
    assert controller.get(2, "test") == "via b: 10.0.0.2/24"
    assert controller.get(6, "test") == "via b: 10.0.0.2/24!"


def test_netrefs_to_falsy_values_resolve(tmp_path, controllers):
    """Fix of core.md 16.37: "", False and 0 are values, not "unresolved"."""
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    node1.set_attribute_value("label", "n1")
    node1.set_attribute_value("test", "")
    node2.set_attribute_value("test", "{#[n1].[fake]#}")        # default False, STRING target
    iface2.set_attribute_value("fake", "{#[n1].[fake]#}")       # BOOL target
    app.set_attribute_value("test", "x{#[n1].[test]#}y")
    controller = deploy(controllers, exp_desc, tmp_path)
    assert controller.get(3, "test") == "False"
    assert controller.get(5, "fake") is False
    assert controller.get(6, "test") == "xy"


def test_netref_to_a_value_that_never_exists_fails_deployment(tmp_path, failmock_env):
    """A netref whose target has no value at run time is reported (not left as literal
    text) and the deployment is rolled back."""
    exp_desc = ExperimentDescription()
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_testbed(exp_desc, "failmock")
    node1.set_attribute_value("label", "n1")                      # n1.test never set
    node2.set_attribute_value("test", "{#[n1].[test]#}")
    controller = ExperimentController(exp_desc.to_xml(), str(tmp_path))
    with pytest.raises(NepiError, match=r"Unresolvable netref in: element 3 attribute "
                                        r"'test' = '\{#\[n1\]\.\[test\]#\}'"):
        controller.start()
    assert controller.state == "failed"
    made = [c for event, c in failmock.REGISTRY if event == "created"]
    assert len(made) == 1 and made[0].shut_down


def test_netref_in_a_non_deployment_testbed_attribute(tmp_path, controllers):
    """Fix of core.md 16.40: the resolved value reaches the testbed itself."""
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    labelled_address(iface1)
    app.set_attribute_value("label", "app")
    desc2 = exp_desc.add_testbed_description(FactoriesProvider("mock2"))
    desc2.set_attribute_value("test", "{#[some].addr[0].[Address]#}")       # from the design
    desc3 = exp_desc.add_testbed_description(FactoriesProvider("mock2"))
    desc3.set_attribute_value("test", "{#[app].trace[fake].[path]#}")      # from a testbed
    assert (desc2.guid, desc3.guid) == (7, 8)
    controller = deploy(controllers, exp_desc, tmp_path)
    # no public query for a testbed attribute: look at the in-process controllers
    assert controller._testbeds[7]._testbed_attribute("test") == "10.0.0.2"
    assert controller._testbeds[8]._testbed_attribute("test") == "<test>"
    tree = etree.fromstring((tmp_path / EXECUTE_XML).read_bytes())
    for guid, value in ((7, "10.0.0.2"), (8, "<test>")):
        assert tree.xpath('//testbed[@guid="%d"]/attributes/attribute[@name="test"]/@value'
                          % guid) == [value]


def test_netref_to_a_trace_path(tmp_path, controllers):
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    app.set_attribute_value("label", "app")
    iface2.set_attribute_value("test", "{#[app].trace[fake].[path]#}")
    node1.set_attribute_value("test", "file={#[app].trace[fake].[path]#}")
    controller = deploy(controllers, exp_desc, tmp_path)
    assert controller.get(5, "test") == "<test>"
    assert controller.get(2, "test") == "file=<test>"


def test_netref_to_a_route_field(tmp_path, controllers):
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    node1.set_attribute_value("label", "n1")
    route = node1.add_route()
    route.set_attribute_value("Destination", "10.1.0.0")
    route.set_attribute_value("NetPrefix", 16)
    route.set_attribute_value("NextHop", "10.0.0.254")
    node2.set_attribute_value("test", "{#[n1].route[0].[NextHop]#} "
                                      "{#[n1].route[0].[Destination]#}")
    controller = deploy(controllers, exp_desc, tmp_path)
    assert controller.get(3, "test") == "10.0.0.254 10.1.0.0"


def test_netref_in_an_address(tmp_path, controllers):
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    iface1.set_attribute_value("label", "some")
    iface1.set_attribute_value("test", "10.0.0.9")
    addr = iface2.add_address()
    addr.set_attribute_value("Address", "{#[some].[test]#}")
    node1.set_attribute_value("test", "{#[GUID-5].addr[0].[Address]#}")
    controller = deploy(controllers, exp_desc, tmp_path)
    assert controller.get(2, "test") == "10.0.0.9"


def test_netref_value_lands_in_the_testbed_not_the_raw_text(tmp_path, controllers):
    """The testbed never sees the raw {#...#} expression in a non-string attribute."""
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    app.set_attribute_value("label", "app")
    node2.set_attribute_value("label", "n2")
    node2.set_attribute_value("test", "{#[app].trace[fake].[path]#}")
    node1.set_attribute_value("test", "{#[n2].[test]#}")
    controller = deploy(controllers, exp_desc, tmp_path)
    assert controller.get(3, "test") == "<test>"
    assert controller.get(2, "test") == "<test>"


@pytest.mark.parametrize("third_host,expected", [
    ("x{#[app2].trace[fake].[path]#}", "x<test>"),       # a trace of the second round
    ("{#[n21].[test]#}", "host-<test>"),                 # an element netref of it
], ids=["runtime-value", "through-an-element-netref"])
def test_testbed_netref_to_a_runtime_value_waits_for_a_later_round(tmp_path, controllers,
                                                                    third_host, expected):
    """A testbed whose deployment attribute needs a value only a running testbed knows is
    created in a later round; rounds chain through testbeds (core.md 16.41): mock2 (7)
    needs a trace path of mock (1), the third testbed (13) ``third_host``."""
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    app.set_attribute_value("label", "app")
    exp_desc, desc2, app2, n21, n22, i21, i22 = make_testbed(exp_desc, "mock2")
    assert desc2.guid == 7
    desc2.set_attribute_value("deployment_host", "{#[app].trace[fake].[path]#}")
    app2.set_attribute_value("label", "app2")
    n21.set_attribute_value("label", "n21")
    n21.set_attribute_value("test", "host-{#[app].trace[fake].[path]#}")
    desc3 = exp_desc.add_testbed_description(FactoriesProvider("mock"))
    assert desc3.guid == 13
    desc3.set_attribute_value("deployment_host", third_host)
    controller = deploy(controllers, exp_desc, tmp_path)
    assert controller.deployment_config(7)["deployment_host"] == "<test>"
    assert controller.deployment_config(13)["deployment_host"] == expected
    assert controller.get(8, "test") == "host-<test>"
    assert controller.traces_info()[7] == {12: {"fake": {"host": "<test>", "user": USER,
                                                         "filepath": "<test>"}}}
    assert controller.status(7) == controller.status(13) == TS.STATUS_STARTED
    assert controller.is_finished(12)
    saved = json.loads((tmp_path / DEPLOYMENT_JSON).read_text())
    assert saved["7"]["deployment_host"] == "<test>"
    assert saved["13"]["deployment_host"] == expected
    # later rounds are shut down first
    assert controller._testbed_order == [[1], [7], [13]]


def test_testbed_circular_netrefs_are_refused(tmp_path):
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    node1.set_attribute_value("label", "n1")
    exp_desc, desc2, app2, n21, n22, i21, i22 = make_testbed(exp_desc, "mock2")
    n21.set_attribute_value("label", "n21")
    desc.set_attribute_value("deployment_host", "{#[n21].[test]#}")
    desc2.set_attribute_value("deployment_host", "{#[n1].[test]#}")
    n21.set_attribute_value("test", "{#[n1].[test]#}")
    node1.set_attribute_value("test", "{#[n21].[test]#}")
    with pytest.raises(DesignError, match=r"cycle"):
        ExperimentController(exp_desc.to_xml(), str(tmp_path))


# ---------------------------------------------------------------------------------------
# persisted files
# ---------------------------------------------------------------------------------------

def test_root_dir_files(tmp_path, controllers):
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    labelled_address(iface1)
    iface2.set_attribute_value("test", "{#[some].addr[0].[Address]#}")
    xml = exp_desc.to_xml()
    controller = ExperimentController(xml, str(tmp_path))
    controllers.append(controller)
    assert (tmp_path / DESIGN_XML).read_text(encoding="utf-8") == xml
    assert not (tmp_path / EXECUTE_XML).exists()
    controller.start()
    assert {DESIGN_XML, EXECUTE_XML, DEPLOYMENT_JSON} <= set(os.listdir(tmp_path))
    assert (tmp_path / DESIGN_XML).read_text(encoding="utf-8") == xml
    assert controller.experiment_design_xml == xml

    execute_xml = (tmp_path / EXECUTE_XML).read_text(encoding="utf-8")
    assert controller.experiment_execute_xml == execute_xml
    tree = etree.fromstring(execute_xml.encode("utf-8"))
    values = tree.xpath('//element[@guid="5"]/attributes/attribute[@name="test"]/@value')
    assert values == ["10.0.0.2"]
    assert "{#" not in execute_xml
    assert "{#[some].addr[0].[Address]#}" in xml
    # the execute XML is a valid design
    loaded = ExperimentDescription()
    loaded.from_xml(execute_xml)
    assert loaded.box(5).get_attribute_value("test") == "10.0.0.2"
    assert loaded.box(4).addresses[0].get_attribute_value("Address") == "10.0.0.2"
    assert loaded.testbed_description(1).provider.testbed_id == "mock"

    saved = json.loads((tmp_path / DEPLOYMENT_JSON).read_text())
    assert set(saved) == {"1"}
    assert saved["1"]["deployment_mode"] == "SINGLE"
    assert saved["1"]["deployment_host"] == "localhost"
    assert DC.RECOVER not in saved["1"]
    assert controller.deployment_config(1)["deployment_mode"] == "SINGLE"
    with pytest.raises(KeyError):
        controller.deployment_config(99)


def test_execute_xml_holds_deployment_config(tmp_path, controllers):
    exp_desc, desc1, desc2, iface12, iface21 = make_cross_test_experiment()
    controller = deploy(controllers, exp_desc, tmp_path)
    tree = etree.fromstring((tmp_path / EXECUTE_XML).read_bytes())
    for tb in ("1", "7"):
        roots = tree.xpath('//testbed[@guid="%s"]/attributes/attribute'
                           '[@name="rootDirectory"]/@value' % tb)
        assert roots == [controller.deployment_config(int(tb))[DC.ROOT_DIRECTORY]]


def test_execute_xml_holds_testbed_generated_values(tmp_path, controllers):
    exp_desc, desc1, desc2, iface12, iface21 = make_cross_test_experiment()
    controller = deploy(controllers, exp_desc, tmp_path)
    assert controller.get(5, "cross") is True
    tree = etree.fromstring((tmp_path / EXECUTE_XML).read_bytes())
    # values the testbeds produced (cross connection) are persisted
    for guid in ("5", "10"):
        cross = tree.xpath('//element[@guid="%s"]/attributes/attribute[@name="cross"]/@value'
                           % guid)
        assert cross == ["True"]


def test_create_experiment_controller_with_single_access_config(tmp_path):
    exp_desc = make_test_experiment()[0]
    config = proxy.AccessConfiguration()
    config.set_attribute_value(DC.ROOT_DIRECTORY, str(tmp_path / "exp"))
    assert config.get_attribute_value(DC.DEPLOYMENT_MODE) == DC.MODE_SINGLE_PROCESS
    controller = proxy.create_experiment_controller(exp_desc.to_xml(), config)
    try:
        assert controller.root_dir == str(tmp_path / "exp")
        controller.start()
        assert controller.is_finished(6)
        assert (tmp_path / "exp" / EXECUTE_XML).exists()
        controller.stop()
    finally:
        controller.shutdown()


# ---------------------------------------------------------------------------------------
# recovery, single process (core.md 12.9, SPEC 7)
# ---------------------------------------------------------------------------------------

def test_recover_with_fail_policy_marks_testbeds_failed(tmp_path, controllers):
    exp_desc = make_test_experiment()[0]
    first = deploy(controllers, exp_desc, tmp_path)
    assert first.is_finished(6)
    recovered = ExperimentController(None, str(tmp_path))
    controllers.append(recovered)
    recovered.recover()
    assert recovered.status(1) == TS.STATUS_FAILED
    failed = recovered.failed_testbeds()
    assert set(failed) == {1}
    assert failed[1]
    with pytest.raises(RuntimeError, match=r"^No element exists with guid 6$"):
        recovered.is_finished(6)
    with pytest.raises(RuntimeError, match=r"^No element exists with guid 6$"):
        recovered.trace(6, "fake")
    assert recovered.traces_info() == {}


def test_recover_with_restart_policy_redeploys(tmp_path, controllers):
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    desc.set_attribute_value(DC.RECOVERY_POLICY, DC.POLICY_RESTART)
    labelled_address(iface1)
    iface2.set_attribute_value("test", "{#[some].addr[0].[Address]#}")
    first = deploy(controllers, exp_desc, tmp_path)
    assert first.is_finished(6)
    first_root = first.deployment_config(1)[DC.ROOT_DIRECTORY]
    recovered = ExperimentController(None, str(tmp_path))
    controllers.append(recovered)
    recovered.recover()
    assert recovered.failed_testbeds() == {}
    assert recovered.status(1) == TS.STATUS_STARTED
    assert recovered.is_finished(6) is True
    assert recovered.trace(6, "fake").startswith(PING_TEXT)
    assert recovered.get(5, "test") == "10.0.0.2"
    assert recovered.get_testbed_id(2) == "mock"
    assert recovered.deployment_config(1)[DC.ROOT_DIRECTORY] == first_root
    recovered.stop()
    assert recovered.status(1) == TS.STATUS_STOPPED


def test_recover_restart_redoes_cross_connections(tmp_path, controllers):
    exp_desc, desc1, desc2, iface12, iface21 = make_cross_test_experiment()
    desc1.set_attribute_value(DC.RECOVERY_POLICY, DC.POLICY_RESTART)
    desc2.set_attribute_value(DC.RECOVERY_POLICY, DC.POLICY_RESTART)
    deploy(controllers, exp_desc, tmp_path)
    recovered = ExperimentController(None, str(tmp_path))
    controllers.append(recovered)
    recovered.recover()
    assert recovered.get(5, "cross") is True
    assert recovered.get(10, "cross") is True
    assert recovered.traces_info() == {1: {6: TRACE_INFO}, 7: {12: TRACE_INFO}}


def test_recover_mixed_policies(tmp_path, controllers):
    exp_desc, desc1, desc2, iface12, iface21 = make_cross_test_experiment()
    desc2.set_attribute_value(DC.RECOVERY_POLICY, DC.POLICY_RESTART)
    deploy(controllers, exp_desc, tmp_path)
    recovered = ExperimentController(None, str(tmp_path))
    controllers.append(recovered)
    recovered.recover()
    assert set(recovered.failed_testbeds()) == {1}
    assert recovered.status(1) == TS.STATUS_FAILED
    assert recovered.status(7) == TS.STATUS_STARTED
    assert recovered.is_finished(12)
    with pytest.raises(RuntimeError, match=r"^No element exists with guid 6$"):
        recovered.is_finished(6)
    assert recovered.traces_info() == {7: {12: TRACE_INFO}}


def test_recover_through_the_proxy(tmp_path, controllers):
    exp_desc, desc, app, node1, node2, iface1, iface2 = make_test_experiment()
    desc.set_attribute_value(DC.RECOVERY_POLICY, DC.POLICY_RESTART)
    xml = exp_desc.to_xml()
    config = proxy.AccessConfiguration()
    config.set_attribute_value(DC.ROOT_DIRECTORY, str(tmp_path))
    first = proxy.create_experiment_controller(xml, config)
    controllers.append(first)
    first.start()
    config.set_attribute_value(DC.RECOVER, True)
    recovered = proxy.create_experiment_controller(xml, config)
    controllers.append(recovered)
    assert recovered.is_finished(6)
    assert recovered.trace(6, "fake").startswith(PING_TEXT)


def test_recover_without_execute_xml_is_refused(tmp_path, controllers):
    exp_desc = make_test_experiment()[0]
    ExperimentController(exp_desc.to_xml(), str(tmp_path))     # never started
    recovered = ExperimentController(None, str(tmp_path))
    controllers.append(recovered)
    with pytest.raises(NepiError, match=r"execute\.xml"):
        recovered.recover()
