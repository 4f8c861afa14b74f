"""The ``nepi`` command line, run as a real subprocess, and the main example."""

import subprocess
import sys

import pytest

from mock_experiments import README_EXAMPLE as EXAMPLE, cli_env, nepi_command


def run(args, cwd):
    return nepi_command(*args, cwd=cwd)


@pytest.fixture(scope="module")
def example_xml(tmp_path_factory):
    out = tmp_path_factory.mktemp("example") / "mock.xml"
    proc = subprocess.run([sys.executable, EXAMPLE, str(out)], cwd=str(out.parent),
                          env=cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


def test_example_runs_and_writes_xml(tmp_path):
    proc = subprocess.run([sys.executable, EXAMPLE], cwd=str(tmp_path), env=cli_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    written = tmp_path / "mock-experiment.xml"      # the default output path
    assert written.read_text(encoding="utf-8").startswith("<?xml")
    assert "mock2" in proc.stdout


def test_example_design_content(example_xml):
    from nepi.core.design import ExperimentDescription
    exp = ExperimentDescription()
    exp.from_xml(example_xml.read_bytes())
    ids = [tbd.provider.testbed_id for tbd in exp.testbed_descriptions]
    assert ids == ["mock", "mock2"]
    if1 = exp.get_element_by_label("if1")
    assert if1.addresses[0].get_attribute_value("Address") == "10.0.0.1"
    assert if1.addresses[0].get_attribute_value("NetPrefix") == 24
    assert exp.get_element_by_label("if2").get_attribute_value("test") == \
        "{#[if1].addr[0].[Address]#}"
    assert exp.get_element_by_label("app1").is_trace_enabled("fake")
    assert exp.get_element_by_label("node1").routes
    peer = if1.connector("cross").get_connected_box()
    assert peer.testbed_guid != if1.testbed_guid
    assert exp.problems() == []


def test_validate_ok(example_xml, tmp_path):
    proc = run(["validate", example_xml], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "%s: OK (2 testbeds, 7 elements)" % example_xml


def test_show_lists_factories_and_cross_connection(example_xml, tmp_path):
    proc = run(["show", example_xml], tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for factory in ("Node", "Interface", "Application"):
        assert factory in text
    assert "mock2" in text
    cross = [line for line in text.splitlines() if "cross-testbed" in line]
    assert len(cross) == 1 and "4.cross <-> 9.cross" in cross[0]
    assert "10.0.0.1/24" in text
    assert "10.0.1.0/24 via 10.0.0.2" in text
    assert "fake" in text.split("Traces:")[1]
    assert "Problems:" not in text


@pytest.fixture
def problem_xml(example_xml, tmp_path):
    xml = example_xml.read_text(encoding="utf-8")
    xml = xml.replace('value="if2"', 'value="if1"')                 # duplicate label
    xml = xml.replace('Address="10.0.0.1"', 'Address="10.0.0.300"')  # bad address
    path = tmp_path / "problems.xml"
    path.write_text(xml, encoding="utf-8")
    return path


def test_validate_reports_problems(problem_xml, tmp_path):
    proc = run(["validate", problem_xml], tmp_path)
    assert proc.returncode == 1
    assert "Label 'if1' is not unique" in proc.stdout
    assert "'10.0.0.300' is not an IP address" in proc.stdout
    assert "OK" not in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_validate_several_files_worst_exit_code(example_xml, problem_xml, tmp_path):
    proc = run(["validate", example_xml, problem_xml], tmp_path)
    assert proc.returncode == 1
    assert "%s: OK" % example_xml in proc.stdout
    assert "not unique" in proc.stdout


def test_show_still_works_with_problems(problem_xml, tmp_path):
    proc = run(["show", problem_xml], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Connections:" in proc.stdout
    problems = proc.stdout.split("Problems:")[1]
    assert "not unique" in problems and "10.0.0.300" in problems


@pytest.fixture
def broken_xml(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text("<experiment>\n  <testbeds>\n</experiment>\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["validate", "show"])
def test_not_well_formed(broken_xml, tmp_path, command):
    proc = run([command, broken_xml], tmp_path)
    assert proc.returncode == 1
    assert "line 3" in proc.stderr
    assert "broken.xml" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_missing_file(tmp_path):
    proc = run(["validate", tmp_path / "nope.xml"], tmp_path)
    assert proc.returncode == 2
    assert "cannot read" in proc.stderr and "nope.xml" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["--debug", "validate"], ["validate", "--debug"]])
def test_debug_shows_traceback(broken_xml, tmp_path, args):
    proc = run(args + [broken_xml], tmp_path)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert "XmlFormatError" in proc.stderr


def test_usage_errors(tmp_path):
    assert run([], tmp_path).returncode == 2
    assert run(["show"], tmp_path).returncode == 2
    assert run(["frobnicate"], tmp_path).returncode == 2
