"""Design values never become shell text (issue 11, point 3).

Interface names are refused unless Linux would accept them as they are (1-15 bytes; no
'/', ':', whitespace or control characters; not '.' or '..'): by set_attribute_value, by
``nepi validate``, and by the testbed controller when a netref resolves into one. Behind
that, the pcap capture runs tcpdump from an argument list, so neither a crafted name that
slipped through nor a root directory full of shell syntax runs anything: captures are
made on real namespaces and read back with tcpdump.
"""

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest

from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.errors import AttributeValueError, DeploymentError
from nepi.util import proxy
from nepi.util.constants import DeploymentConfiguration as DC

import netns_experiments as nx
from helpers import needs_netns, processes_in, wait_finished, wait_until
from mock_experiments import nepi_command

EXPECTED = "expected a Linux interface name: 1 to 15 bytes"


@pytest.fixture
def marker():
    """A file that only an injected command would create (removed if it was)."""
    path = Path("/tmp/nepi-injected-%s" % uuid.uuid4().hex[:12])
    yield path
    if path.exists():
        path.unlink()


def bad_names(marker):
    """(name, what the error says about it): shell payloads and plain Linux violations."""
    return [("$(touch %s)" % marker, "contains ' '"),
            ("x;touch %s" % marker, "contains ' '"),
            ("`touch %s`" % marker, "contains ' '"),
            ("$(touch${IFS}%s)" % marker, "contains '/'"),
            ("eth 0", "contains ' '"),
            ("a" * 16, "16 bytes long, at most 15 allowed"),
            ("\u00e9" * 8, "16 bytes long, at most 15 allowed"),     # 8 chars, 16 bytes
            ("a/b", "contains '/'"),
            ("a:b", "contains ':'"),
            ("tab\there", "contains '\\t'"),
            ("bell\x07", "contains '\\x07'"),
            ("..", "'..' is reserved"),
            ("", "empty")]


def labelled_p2p():
    exp_desc, b = nx.make_p2p()
    b["iface1"].set_attribute_value("label", "left")
    return exp_desc, b


# ---------------------------------------------------------------------------------------
# validation: set_attribute_value, nepi validate, the testbed controller
# ---------------------------------------------------------------------------------------

def test_set_attribute_value_refuses_bad_interface_names(marker):
    _, b = labelled_p2p()
    for name, detail in bad_names(marker):
        with pytest.raises(AttributeValueError) as info:
            b["iface1"].set_attribute_value("name", name)
        message = str(info.value)
        assert message.startswith("element 4 (P2PNodeInterface, label 'left'): Invalid value "
                                  "%r for attribute name: %s" % (name, EXPECTED)), message
        assert message.endswith(")") and detail in message.rsplit("(", 1)[1], message
        assert b["iface1"].get_attribute_value("name") is None
    assert not marker.exists()


@pytest.mark.parametrize("name", ["eth0", "a" * 15, "$(id>m)", "`id`;x", "\u00e9" * 7, "-i"])
def test_linux_names_are_accepted_as_they_are(name):
    """What Linux accepts is accepted unchanged (shell syntax included: it is data)."""
    _, b = labelled_p2p()
    b["iface1"].set_attribute_value("name", name)
    assert b["iface1"].get_attribute_value("name") == name


@pytest.mark.parametrize("factory", ["NodeInterface", "TapNodeInterface", "TunNodeInterface",
                                     "Switch"])
def test_every_netns_device_name_is_checked(factory):
    attr = FactoriesProvider("netns").factory(factory).box_attributes.get_attribute("name")
    assert attr.check_value("ok0") is None
    assert attr.check_value("a" * 16).startswith(EXPECTED)


def test_ns3_tapbridge_device_name_is_a_host_interface_name(marker):
    """TapBridge's DeviceName names a host TAP device; '' lets ns-3 choose one."""
    desc = ExperimentDescription().add_testbed_description(FactoriesProvider("ns3"))
    tap = desc.create("ns3::TapBridge")
    tap.set_attribute_value("DeviceName", "")
    tap.set_attribute_value("DeviceName", "tap-nepi0")
    with pytest.raises(AttributeValueError, match=r"attribute DeviceName: expected '' \(a name "
                                                  r"is chosen\) or a Linux interface name.*"
                                                  r"\(contains ' '; 40 bytes long"):
        tap.set_attribute_value("DeviceName", "$(touch %s)" % marker)
    assert tap.get_attribute_value("DeviceName") == "tap-nepi0"


def test_nepi_validate_refuses_bad_interface_names(marker, tmp_path):
    """The XML is written by hand (set_attribute_value would refuse these values), then
    ``nepi validate`` names each element, label, attribute and what was expected."""
    exp_desc, b = labelled_p2p()
    b["iface2"].set_attribute_value("label", "right")
    b["iface1"].set_attribute_value("name", "PLACEHOLDER1")
    b["iface2"].set_attribute_value("name", "PLACEHOLDER2")
    template = exp_desc.to_xml()
    names = [name for name, _ in bad_names(marker) if name and "\x07" not in name]
    for i, name in enumerate(names):
        path = tmp_path / ("design%d.xml" % i)
        path.write_text(template.replace('value="PLACEHOLDER1"', "value=" + quoteattr(name))
                        .replace('value="PLACEHOLDER2"', 'value="a:b"'), encoding="utf-8")
        proc = nepi_command("validate", path, cwd=tmp_path)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = proc.stdout.splitlines()
        left = [line for line in lines if "label 'left'" in line]
        right = [line for line in lines if "label 'right'" in line]
        assert len(left) == 1 and len(right) == 1, proc.stdout
        assert "element 4 (" in left[0] and "attribute 'name'" in left[0], left[0]
        assert "invalid value %r: %s" % (name, EXPECTED) in left[0], left[0]
        assert "element 5 (" in right[0] and "(contains ':')" in right[0], right[0]
        assert "Traceback" not in proc.stdout + proc.stderr
    assert not marker.exists()


def test_a_netref_resolving_to_a_bad_name_is_refused_before_deployment(marker,
                                                                        netns_leftovers):
    """Netrefs are resolved after the design checks: the testbed controller checks the
    resolved value, names the element, and nothing is created or run."""
    exp_desc, b = nx.make_p2p(command="cat", stdin="$(touch %s)" % marker)
    b["app"].set_attribute_value("label", "app")
    b["iface1"].set_attribute_value("name", "{#[app].[stdin]#}")
    b["iface1"].enable_trace("pcap")
    controller = proxy.create_experiment_controller(exp_desc.to_xml(), None)
    try:
        with pytest.raises(DeploymentError) as info:
            controller.start()
    finally:
        controller.shutdown()
    message = str(info.value)
    assert "Invalid value '$(touch %s)' for attribute name of element 4 (P2PNodeInterface): " \
           "%s" % (marker, EXPECTED) in message, message
    assert not marker.exists()
    assert not any(netns_leftovers.wait_gone().values())     # and fixture checks again


# ---------------------------------------------------------------------------------------
# defence in depth: the capture itself never goes through a shell
# ---------------------------------------------------------------------------------------

def need_tcpdump():
    if shutil.which("tcpdump") is None:
        pytest.skip("needs tcpdump (installed by `make install`)")


def tcpdump_read(path):
    return subprocess.run(["tcpdump", "-r", str(path), "-n"], capture_output=True,
                          text=True, timeout=60)


def icmp_counts(path):
    out = tcpdump_read(path).stdout
    return out.count("ICMP echo request"), out.count("ICMP echo reply")


@needs_netns
def test_capture_with_shell_syntax_in_root_dir_and_names(tmp_path, monkeypatch,
                                                         netns_leftovers):
    """A whole experiment whose root dir holds a space, quotes and $(...), and whose
    interfaces have Linux-valid names full of shell syntax: the pcaps are made where they
    belong and read back; no command in any of those strings ran (they would write in
    the working directory, which is tmp_path here)."""
    need_tcpdump()
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "it's a \"$(touch pwned0)\" dir"
    exp_desc, b = nx.make_p2p(command="ping -qc3 -i0.2 10.0.0.2")
    b["iface1"].set_attribute_value("name", "$(id>pwned1)")
    b["iface2"].set_attribute_value("name", "`id>pwned2`;")
    for box in ("node1", "iface1", "iface2"):
        b[box].enable_trace("pcap")
    config = proxy.AccessConfiguration()
    config.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_SINGLE_PROCESS)
    config.set_attribute_value(DC.ROOT_DIRECTORY, str(root))
    controller = proxy.create_experiment_controller(exp_desc.to_xml(), config)
    try:
        controller.start()
        assert wait_finished(controller, 6)
        assert "3 packets transmitted, 3 received" in controller.trace(6, "stdout")
        paths = [controller.trace(guid, "pcap", "path") for guid in (2, 4, 5)]
        for path in paths:
            assert path.startswith(str(root) + os.sep), path
            assert wait_until(lambda: icmp_counts(path) == (3, 3), 5), \
                (path, tcpdump_read(path))
        header = tcpdump_read(paths[1]).stderr
        assert "EN10MB" in header, header          # the interface itself, not 'any'
        controller.stop()
    finally:
        controller.shutdown()
    assert not any(netns_leftovers.wait_gone().values())
    assert sorted(p.name for p in tmp_path.rglob("pwned*")) == []


@pytest.fixture
def namespace():
    """A namespace of this test's own (removed afterwards with whatever runs in it)."""
    from nepi.testbeds.netns import nsutil
    name = "nepi-injtest-%s" % uuid.uuid4().hex[:8]
    nsutil.create(name)
    try:
        yield name
    finally:
        for pid in nsutil.pids_in(name):
            os.kill(pid, 9)
        nsutil.remove(name)


@needs_netns
def test_crafted_name_reaching_the_capture_runs_nothing(marker, namespace, tmp_path):
    """Validation bypassed: names Linux refuses, given straight to the capture function,
    reach tcpdump as one argument; tcpdump finds no such device and nothing runs."""
    from nepi.testbeds.netns.execute import start_capture
    need_tcpdump()
    for i, (name, _) in enumerate(bad_names(marker)[:4]):
        with pytest.raises(DeploymentError, match=r"tcpdump failed: .*"):
            start_capture(namespace, name, str(tmp_path / ("c%d.pcap" % i)))
        assert not marker.exists(), name
    assert processes_in(namespace) == {}
