"""Commands and shells inside nodes of a live experiment (issue 15, point 1), through nepid
and the testbed daemons: `nepid exec` streams output and returns the command's status,
`nepid shell` is a real terminal; the same from Python (run_in_node) on an in-process
controller and on a proxy to nepid; after a nepid restart; on a linux host; ns-3 refuses
with the reason."""

import importlib.util
import os
import pty
import select
import subprocess
import sys
import time

import pytest

import netns_experiments as nx
from crash_matrix import REPO, nepid
from helpers import daemons_under, kill9, needs_netns, wait_until

from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.rpc.rootdir import attach_nepid
from nepi.util import proxy

pytestmark = needs_netns


@pytest.fixture
def running(tmp_path):
    """Two labelled netns nodes (n1 10.0.0.1, n2 10.0.0.2) run by nepid, the testbed as
    a daemon."""
    exp_desc, b = nx.make_p2p(command="sleep 600")
    nx.as_daemon(b["desc"])
    b["node1"].set_attribute_value("label", "n1")
    b["node2"].set_attribute_value("label", "n2")
    design = tmp_path / "exp.xml"
    design.write_text(exp_desc.to_xml())
    root = str(tmp_path / "exp")
    run = nepid("run", "-q", str(design), "--root-dir", root)
    assert run.returncode == 0, run.stdout + run.stderr
    yield root, b
    nepid("stop", "--root-dir", root, "--no-traces")


def test_exec_streams_output_and_returns_the_status(running):
    root, b = running
    shown = nepid("exec", "--root-dir", root, "n1", "--", "ip", "-4", "-o", "addr", "show")
    assert shown.returncode == 0, shown.stderr
    assert "10.0.0.1/24" in shown.stdout and "10.0.0.2" not in shown.stdout
    by_guid = nepid("exec", "--root-dir", root, str(b["node2"].guid), "--",
                    "ping", "-c1", "-W2", "10.0.0.1")
    assert by_guid.returncode == 0 and "1 received" in by_guid.stdout
    status = nepid("exec", "--root-dir", root, "n1", "--", "sh", "-c",
                   "echo out; echo err >&2; exit 7")
    assert (status.returncode, status.stdout, status.stderr) == (7, "out\n", "err\n")
    piped = subprocess.run([sys.executable, "-m", "nepi.cli.nepid_cmd", "exec", "--root-dir",
                            root, "n2", "--", "tr", "a-z", "A-Z"], input="hello node\n",
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, PYTHONPATH=REPO))
    assert (piped.returncode, piped.stdout) == (0, "HELLO NODE\n")
    # streamed: the first line arrives before the command ends
    slow = subprocess.Popen([sys.executable, "-m", "nepi.cli.nepid_cmd", "exec",
                             "--root-dir", root, "n1", "--", "sh", "-c",
                             "echo first; sleep 3; echo second"],
                            stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO))
    began = time.monotonic()
    assert slow.stdout.readline() == "first\n"
    assert time.monotonic() - began < 2.5
    assert slow.stdout.readline() == "second\n"
    assert slow.wait(30) == 0
    unknown = nepid("exec", "--root-dir", root, "nowhere", "--", "true")
    assert unknown.returncode == 2 and "no element is labelled 'nowhere'" in unknown.stderr
    app = nepid("exec", "--root-dir", root, str(b["app"].guid), "--", "true")
    assert app.returncode == 2 and "commands run in a Node" in app.stderr


def test_shell_is_a_terminal_in_the_node(running):
    root, _ = running
    master, slave = pty.openpty()
    shell = subprocess.Popen([sys.executable, "-m", "nepi.cli.nepid_cmd", "shell",
                              "--root-dir", root, "n2"], stdin=slave, stdout=slave,
                             stderr=slave, env=dict(os.environ, PYTHONPATH=REPO,
                                                    TERM="dumb"), start_new_session=True)
    os.close(slave)
    seen = b""

    def read_until(token, timeout=20):
        nonlocal seen
        deadline = time.monotonic() + timeout
        while token not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        return token in seen
    try:
        assert read_until(b"# "), seen               # the prompt: bash reads input now
        os.write(master, b"tty; ip -4 -o addr show | grep -c 10.0.0.2; echo D$((40+2))ONE\r")
        assert read_until(b"D42ONE\r\n"), seen
        assert b"/dev/pts/" in seen and b"\r\n1\r\n" in seen, seen
        os.write(master, b"exit 5\r")
        assert shell.wait(20) == 5
    finally:
        if shell.poll() is None:
            shell.kill()
        os.close(master)


def test_run_in_node_from_python_and_after_a_nepid_restart(running):
    root, _ = running
    client = attach_nepid(root)
    try:
        result = client.run_in_node("n1", ["sh", "-c", "read x; echo got $x; exit 3"],
                                    stdin="it\n")
        assert result == {"exit": 3, "stdout": "got it\n", "stderr": ""}
    finally:
        client.close()
    ec = [p for p in daemons_under(root) if "testbed" not in " ".join(p.cmdline())]
    assert len(ec) == 1
    kill9(ec[0].pid)
    assert nepid("recover", "--root-dir", root).returncode == 0
    again = nepid("exec", "--root-dir", root, "n2", "--", "ping", "-c1", "-W2", "10.0.0.1")
    assert again.returncode == 0, again.stderr


def test_in_process_controller_and_ns3_refusal(tmp_path, controllers):
    exp_desc, b = nx.make_p2p(command="sleep 600")
    controller = proxy.create_experiment_controller(exp_desc.to_xml(), None)
    controllers.append(controller)
    controller.start()
    result = controller.run_in_node(b["node2"].guid, ["cat", "/proc/net/dev"])
    assert result["exit"] == 0 and "eth0" in result["stdout"] or "p2p" in result["stdout"]
    assert controller.run_in_node(b["node1"].guid, ["sleep", "30"], timeout=1)["exit"] is None
    controller.stop()
    controller.shutdown()


def test_ns3_nodes_say_why(tmp_path, controllers):
    if importlib.util.find_spec("ns") is None:    # never import ns-3 here: its daemon does
        pytest.skip("the ns3 wheel is not installed (make install installs it)")
    exp = ExperimentDescription()
    ns3 = exp.add_testbed_description(FactoriesProvider("ns3"))
    node = ns3.create("ns3::Node")
    node.set_attribute_value("label", "sim")
    controller = proxy.create_experiment_controller(exp.to_xml(), None)
    controllers.append(controller)
    controller.start()
    with pytest.raises(Exception, match="ns-3 nodes are simulated"):
        controller.exec_start("sim", ["true"])
    controller.shutdown()


def test_exec_on_a_linux_host(sim_hosts, tmp_path, controllers):
    """A linux node: the command runs on its host, in the experiment's folder there."""
    sim = sim_hosts(2)
    exp = ExperimentDescription()
    linux = exp.add_testbed_description(FactoriesProvider("linux"))
    linux.set_attribute_value("sshKey", sim.key)
    linux.set_attribute_value("sshKnownHosts", sim.known_hosts)
    nodes = []
    for host in sim.hosts:
        node = linux.create("Node")
        node.set_attribute_value("hostname", host.address)
        nodes.append(node)
    config = proxy.AccessConfiguration()
    config.set_attribute_value("rootDirectory", str(tmp_path / "exp"))
    controller = proxy.create_experiment_controller(exp.to_xml(), config)
    controllers.append(controller)
    controller.start()
    result = controller.run_in_node(nodes[1].guid, ["sh", "-c", "hostname -I; pwd"])
    assert result["exit"] == 0, result
    assert sim.hosts[1].address in result["stdout"]
    assert sim.hosts[0].address not in result["stdout"]
    assert "/nepi-" in result["stdout"].splitlines()[-1]
    controller.shutdown()
