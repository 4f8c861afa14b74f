"""ExperimentSuite: an experiment repeated N times, each run in its own root directory
(core.md 13 and the fixes of 16.57-59; SPEC 5, 12)."""

import time

import pytest

from nepi.core.design import ExperimentDescription
from nepi.core.execute import DESIGN_XML, EXECUTE_XML, ExperimentSuite
from nepi.util import proxy
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS

from helpers import import_lib
from mock_experiments import PING_TEXT, make_test_experiment, make_testbed

failmock = import_lib("failmock")              # tests/lib
failmeta = import_lib("failmock.metadata")


@pytest.fixture
def suites():
    made = []
    yield made
    for suite in made:
        suite.shutdown()


def access_config(root):
    config = proxy.AccessConfiguration()
    config.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_SINGLE_PROCESS)
    config.set_attribute_value(DC.ROOT_DIRECTORY, str(root))
    return config


def new_suite(suites, xml, root, **kwargs):
    kwargs.setdefault("poll_interval", 0.01)
    suite = ExperimentSuite(xml, access_config(root), **kwargs)
    suites.append(suite)
    return suite


def test_suite_runs_exactly_n_repetitions(tmp_path, suites):
    xml = make_test_experiment()[0].to_xml()
    suite = new_suite(suites, xml, tmp_path / "run", repetitions=3)
    assert suite.status() == TS.STATUS_ZERO
    assert suite.current() is None
    assert not suite.is_finished()
    suite.start()
    assert suite.status() in (TS.STATUS_STARTED, TS.STATUS_STOPPED)
    assert suite.wait(timeout=30) is True
    assert suite.is_finished()
    assert suite.status() == TS.STATUS_STOPPED
    assert suite.current() == 3
    assert suite.run_status() == {1: "finished", 2: "finished", 3: "finished"}
    assert suite.errors() == {}

    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_1", "run_2", "run_3"]
    for i in (1, 2, 3):
        run_dir = tmp_path / ("run_%d" % i)
        assert (run_dir / DESIGN_XML).read_text(encoding="utf-8") == xml
        assert (run_dir / EXECUTE_XML).exists()

    configs = suite.get_access_configurations()
    assert [c.get_attribute_value(DC.ROOT_DIRECTORY) for c in configs] == \
        [str(tmp_path / ("run_%d" % i)) for i in (1, 2, 3)]
    assert all(c.get_attribute_value(DC.DEPLOYMENT_MODE) == DC.MODE_SINGLE_PROCESS
               for c in configs)
    assert suite.get_current_access_config() is configs[2]

    traces = suite.traces()
    assert sorted(traces) == [1, 2, 3]
    for info in traces.values():
        assert set(info) == {1}
        assert info[1][6]["fake"]["filepath"] == "<test>"
        assert info[1][6]["fake"]["host"] == "localhost"

    controllers = suite.controllers()
    assert len(controllers) == 3
    assert len({id(c) for c in controllers}) == 3
    for c in controllers:
        assert c.state == "stopped"            # each run was stopped ...
        assert c.trace(6, "fake").startswith(PING_TEXT)
    suite.shutdown()
    assert all(c.state == "shutdown" for c in controllers)   # ... and shut down at the end


def test_suite_default_is_one_repetition(tmp_path, suites):
    xml = make_test_experiment()[0].to_xml()
    suite = new_suite(suites, xml, tmp_path / "one")
    suite.start()
    assert suite.wait(timeout=30)
    assert suite.run_status() == {1: "finished"}
    assert [p.name for p in tmp_path.iterdir()] == ["one_1"]


def test_suite_waits_on_guids(tmp_path, suites, monkeypatch):
    """wait_guids=[6]: each run is stopped only once application 6 is finished."""
    from nepi.core import execute
    calls = []
    original = execute.ExperimentController.is_finished

    def is_finished(self, guid):
        calls.append((self.root_dir, guid))
        # report "not yet" the first time each run asks
        return original(self, guid) and \
            sum(1 for r, g in calls if r == self.root_dir) > 1

    monkeypatch.setattr(execute.ExperimentController, "is_finished", is_finished)
    xml = make_test_experiment()[0].to_xml()
    suite = new_suite(suites, xml, tmp_path / "run", repetitions=3, wait_guids=[6])
    suite.start()
    assert suite.wait(timeout=30) is True
    assert suite.run_status() == {1: "finished", 2: "finished", 3: "finished"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_1", "run_2", "run_3"]
    for i in (1, 2, 3):
        asked = [g for r, g in calls if r == str(tmp_path / ("run_%d" % i))]
        assert asked == [6, 6]
    assert len(suite.traces()) == 3


def test_suite_duration_bounds_a_run_that_never_finishes(tmp_path, suites):
    xml = make_test_experiment()[0].to_xml()
    # guid 2 is a Node: its status is never FINISHED, so only the duration ends the run
    suite = new_suite(suites, xml, tmp_path / "run", repetitions=2, wait_guids=[2],
                      duration=0.2)
    started = time.monotonic()
    suite.start()
    assert suite.wait(timeout=30) is True
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 10
    assert suite.run_status() == {1: "finished", 2: "finished"}


def test_create_experiment_suite(tmp_path, suites):
    xml = make_test_experiment()[0].to_xml()
    suite = proxy.create_experiment_suite(xml, access_config(tmp_path / "run"),
                                          repetitions=2)
    suites.append(suite)
    suite.start()
    assert suite.wait(timeout=30)
    assert suite.run_status() == {1: "finished", 2: "finished"}


def failing_xml():
    exp_desc = ExperimentDescription()
    _, desc, *_ = make_testbed(exp_desc, "failmock")
    make_testbed(exp_desc, "mock")
    desc.set_attribute_value("failPhase", "configure")
    desc.set_attribute_value("failGuid", 6)
    return exp_desc.to_xml()


def test_failing_runs_are_reported(tmp_path, suites, failmock_env):
    suite = new_suite(suites, failing_xml(), tmp_path / "run", repetitions=3)
    suite.start()
    assert suite.wait(timeout=30) is True
    assert suite.is_finished()
    assert suite.status() == TS.STATUS_FAILED
    assert suite.run_status() == {1: "failed", 2: "failed", 3: "failed"}
    errors = suite.errors()
    assert sorted(errors) == [1, 2, 3]
    for message in errors.values():
        assert "testbed 1 (failmock) failed in configure" in message
        assert "element 6 (Application)" in message
        assert "injected failure" in message
    assert suite.traces() == {}
    # every run was rolled back
    made = [c for event, c in failmock.REGISTRY if event == "created"]
    assert len(made) == 3 and all(c.shut_down for c in made)


def test_one_failing_run_does_not_stop_the_others(tmp_path, suites, failmock_env,
                                                  monkeypatch):
    """The second run fails; the first and third still run; the suite reports FAILED."""
    original = failmeta.create

    def create(testbed, guid):
        made = [c for event, c in failmock.REGISTRY if event == "created"]
        if made.index(testbed) == 1 and guid == 4:
            raise RuntimeError("injected failure in run 2")
        original(testbed, guid)

    monkeypatch.setattr(failmeta, "create", create)
    exp_desc = ExperimentDescription()
    make_testbed(exp_desc, "failmock")
    xml = exp_desc.to_xml()
    suite = new_suite(suites, xml, tmp_path / "run", repetitions=3)
    suite.start()
    assert suite.wait(timeout=30) is True
    assert suite.status() == TS.STATUS_FAILED
    assert suite.run_status() == {1: "finished", 2: "failed", 3: "finished"}
    assert list(suite.errors()) == [2]
    assert "injected failure in run 2" in suite.errors()[2]
    assert "element 4 (Interface) failed in create" in suite.errors()[2]
    assert sorted(suite.traces()) == [1, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_1", "run_2", "run_3"]


def test_suite_shutdown_stops_remaining_repetitions(tmp_path, suites):
    xml = make_test_experiment()[0].to_xml()
    suite = new_suite(suites, xml, tmp_path / "run", repetitions=50, wait_guids=[2],
                      duration=0.05)
    suite.start()
    time.sleep(0.1)
    suite.shutdown()
    assert suite.wait(timeout=5)
    statuses = suite.run_status()
    assert len(statuses) == 50
    assert "pending" in statuses.values()
    assert len(suite.controllers()) < 50
