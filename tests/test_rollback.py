"""Rollback of a failed deployment (SPEC 1.3, 5): a failure in any phase raises a
DeploymentError naming the testbed, element and phase, and every testbed controller
created so far is shut down.

Failures are injected with the test-only testbed ``failmock`` (tests/lib/failmock),
registered through NEPI_TESTBEDS. The experiment has three testbeds:

    guid 1   failmock  (the failing one: testbed attributes failPhase / failGuid)
             node 2, node 3, iface 4, iface 5, app 6
    guid 7   failmock  (healthy; its iface 10 is cross-connected to iface 5)
             node 8, node 9, iface 10, iface 11, app 12
    guid 13  mock      (healthy) node 14, node 15, iface 16, iface 17, app 18
"""

import pytest

from nepi.core.design import ExperimentDescription
from nepi.core.execute import DESIGN_XML, EXECUTE_XML, ExperimentController
from nepi.errors import DeploymentError, NepiError
from nepi.testbeds import mock
from nepi.util.constants import TestbedStatus as TS

from mock_experiments import make_testbed


# phase -> (failing element guid, phase name in the error message)
PHASES = {
    "create": (4, "create"),
    "connect": (4, "connect_init"),
    "preconfigure": (6, "preconfigure"),
    "configure": (6, "configure"),
    "prestart": (6, "prestart"),
    "start": (6, "start"),
    "cross": (5, "cross_connect_init"),
}

FACTORY = {2: "Node", 4: "Interface", 5: "Interface", 6: "Application"}


@pytest.fixture
def registry(failmock_env, monkeypatch):
    """Register failmock and record creation/shutdown of every mock-based controller
    (failmock records itself; the plain mock controller is wrapped here)."""
    failmock = failmock_env
    original_init = mock.TestbedController.__init__
    original_shutdown = mock.TestbedController.shutdown

    def init(self):
        original_init(self)
        failmock.REGISTRY.append(("created", self))

    def shutdown(self):
        failmock.REGISTRY.append(("shutdown", self))
        original_shutdown(self)

    monkeypatch.setattr(mock.TestbedController, "__init__", init)
    monkeypatch.setattr(mock.TestbedController, "shutdown", shutdown)
    return failmock.REGISTRY


def created(registry):
    return [c for event, c in registry if event == "created"]


def shut_down(registry):
    return [c for event, c in registry if event == "shutdown"]


def all_shut_down(registry, count=None):
    """Every controller created was shut down, exactly once (``count`` of them); returns them."""
    made = created(registry)
    assert count is None or len(made) == count, made
    assert sorted(map(id, shut_down(registry))) == sorted(map(id, made))
    return made


def make_experiment(fail_phase="", fail_guid=0, healthy_phase=None, healthy_guid=0):
    exp_desc = ExperimentDescription()
    _, desc1, app1, n11, n12, i11, i12 = make_testbed(exp_desc, "failmock")
    _, desc2, app2, n21, n22, i21, i22 = make_testbed(exp_desc, "failmock")
    _, desc3, app3, n31, n32, i31, i32 = make_testbed(exp_desc, "mock")
    assert (desc1.guid, desc2.guid, desc3.guid) == (1, 7, 13)
    assert (i12.guid, i21.guid, app1.guid) == (5, 10, 6)
    i12.connector("cross").connect(i21.connector("cross"))
    desc1.set_attribute_value("failPhase", fail_phase)
    desc1.set_attribute_value("failGuid", fail_guid)
    if healthy_phase is not None:
        desc2.set_attribute_value("failPhase", healthy_phase)
        desc2.set_attribute_value("failGuid", healthy_guid)
    for desc in (desc1, desc2, desc3):
        desc.set_attribute_value("test", "tb%d" % desc.guid)
    return exp_desc


def test_healthy_experiment_deploys(registry, tmp_path):
    """The fixture experiment itself is sound: everything starts and shuts down once."""
    controller = ExperimentController(make_experiment().to_xml(), str(tmp_path))
    try:
        controller.start()
        assert controller.get(5, "cross") is True
        assert controller.get(10, "cross") is True
        assert controller.is_finished(6) and controller.is_finished(18)
        assert len(created(registry)) == 3
        assert shut_down(registry) == []
        controller.stop()
    finally:
        controller.shutdown()
    all_shut_down(registry)


@pytest.mark.parametrize("phase", list(PHASES))
def test_failure_in_phase_rolls_back(registry, tmp_path, phase):
    fail_guid, phase_name = PHASES[phase]
    xml = make_experiment(phase, fail_guid).to_xml()
    controller = ExperimentController(xml, str(tmp_path))
    with pytest.raises(DeploymentError) as info:
        controller.start()
    err = info.value
    message = str(err)

    # the message names the testbed (guid and id), the element and the phase
    assert "testbed 1 (failmock)" in message
    if phase == "connect":
        assert "connecting element 2 (Node) to %d (%s)" % (fail_guid, FACTORY[fail_guid]) \
            in message
    else:
        assert "element %d (%s)" % (fail_guid, FACTORY[fail_guid]) in message
    assert "failed in %s" % phase_name in message
    assert "injected failure" in message
    assert "testbed 7" not in message and "testbed 13" not in message
    assert err.testbed_guid == 1
    assert err.guid in (fail_guid, 2)       # a connection is reported from its Node side
    assert phase_name in err.phase
    assert isinstance(err.__cause__, Exception)

    # every controller created so far (the failing one and the healthy failmock and mock
    # testbeds) was shut down, exactly once
    made = all_shut_down(registry, 3)
    assert {c.testbed_id for c in made} == {"failmock", "mock"}
    assert all(c.shut_down for c in made if c.testbed_id == "failmock")

    # the experiment reports the failure
    assert controller.state == "failed"
    assert controller.status() == TS.STATUS_FAILED
    assert controller.status(1) == TS.STATUS_FAILED
    assert phase_name in controller.error
    with pytest.raises(RuntimeError, match=r"^No element exists with guid 6$"):
        controller.get(6, "test")
    assert controller.traces_info() == {}

    # the design is kept for inspection
    assert (tmp_path / DESIGN_XML).read_text(encoding="utf-8") == xml
    assert (tmp_path / EXECUTE_XML).exists() == (phase == "start")

    # nothing is shut down twice, and the controller cannot be started again
    controller.shutdown()
    controller.shutdown()
    assert len(shut_down(registry)) == 3
    with pytest.raises(NepiError, match=r"already failed"):
        controller.start()
    assert len(created(registry)) == 3


def test_failures_in_two_testbeds_are_both_reported(registry, tmp_path):
    xml = make_experiment("create", 4, healthy_phase="create", healthy_guid=10).to_xml()
    controller = ExperimentController(xml, str(tmp_path))
    with pytest.raises(DeploymentError) as info:
        controller.start()
    message = str(info.value)
    assert "testbed 1 (failmock) failed in create" in message
    assert "testbed 7 (failmock) failed in create" in message
    assert "element 4 (Interface)" in message
    assert "element 10 (Interface)" in message
    assert info.value.testbed_guid == 1
    all_shut_down(registry)
    assert controller.status(1) == controller.status(7) == TS.STATUS_FAILED


def test_failing_shutdown_during_rollback_keeps_the_original_error(registry, tmp_path):
    """A testbed whose shutdown also fails neither hides the deployment error nor stops
    the other testbeds from being shut down."""
    xml = make_experiment("configure", 6, healthy_phase="shutdown").to_xml()
    controller = ExperimentController(xml, str(tmp_path))
    with pytest.raises(DeploymentError, match=r"element 6 \(Application\) failed in "
                                              r"configure"):
        controller.start()
    all_shut_down(registry, 3)
    assert controller.state == "failed"


def test_failure_in_a_later_round_shuts_down_earlier_rounds(registry, tmp_path):
    """The failing testbed is created in a second round (its deployment host comes from a
    running testbed): the first-round testbeds are shut down too."""
    exp_desc = ExperimentDescription()
    _, desc1, app1, *_ = make_testbed(exp_desc, "mock")
    app1.set_attribute_value("label", "app")
    _, desc2, *_ = make_testbed(exp_desc, "failmock")
    assert desc2.guid == 7
    desc2.set_attribute_value("deployment_host", "{#[app].trace[fake].[path]#}")
    desc2.set_attribute_value("failPhase", "prestart")
    desc2.set_attribute_value("failGuid", 12)
    controller = ExperimentController(exp_desc.to_xml(), str(tmp_path))
    with pytest.raises(DeploymentError) as info:
        controller.start()
    assert "testbed 7 (failmock) failed in prestart" in str(info.value)
    assert "element 12 (Application)" in str(info.value)
    assert [c.testbed_id for c in all_shut_down(registry)] == ["mock", "failmock"]
    assert controller.status(7) == TS.STATUS_FAILED


def test_shutdown_failure_is_reported_after_shutting_down_the_others(registry, tmp_path):
    """core.md 16.47/16.48: every testbed is shut down and errors are aggregated."""
    xml = make_experiment(healthy_phase="shutdown").to_xml()
    controller = ExperimentController(xml, str(tmp_path))
    controller.start()
    controller.stop()
    with pytest.raises(NepiError, match=r"shutdown failed: testbed 7 \(failmock\) failed in "
                                        r"shutdown: injected shutdown failure"):
        controller.shutdown()
    all_shut_down(registry, 3)
    controller.shutdown()                      # second call: nothing left to do
    assert len(shut_down(registry)) == 3
