"""netns testbeds on several hosts, linked (issue 14): each testbed daemon is launched over
real SSH on a simulated host (a network namespace on a private bridge with its own sshd,
tests/simhosts.py); a TAP on each, joined by TunChannels that bind the hosts' own
addresses, carries pings from one host to the other. nepid killed during such a run
reconnects to the remote daemons without redeploying."""

import os
import subprocess
import sys

import pytest

import netns_experiments as nx
from crash_matrix import nepid
from helpers import daemons_under, kill9, needs_netns, wait_until

from nepi.util import proxy
from nepi.util.constants import DeploymentConfiguration as DC

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = [needs_netns, pytest.mark.timeout(300)]


@pytest.fixture(autouse=True)
def remote_python(monkeypatch):
    # the simulated hosts share this machine's file system: the same interpreter and tree
    monkeypatch.setenv("NEPI_REMOTE_PYTHON", sys.executable)


def on_host(desc, hosts, host, root):
    """Run this testbed description's daemon on ``host`` over SSH, host key checked."""
    desc.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
    desc.set_attribute_value(DC.DEPLOYMENT_COMMUNICATION, DC.ACCESS_SSH)
    desc.set_attribute_value(DC.DEPLOYMENT_HOST, host.address)
    desc.set_attribute_value(DC.DEPLOYMENT_USER, host.user)
    desc.set_attribute_value(DC.DEPLOYMENT_PORT, host.port)
    desc.set_attribute_value(DC.DEPLOYMENT_KEY, hosts.key)
    desc.set_attribute_value(DC.DEPLOYMENT_KNOWN_HOSTS, hosts.known_hosts)
    desc.set_attribute_value(DC.ROOT_DIRECTORY, str(root))
    desc.set_attribute_value(DC.DEPLOYMENT_ENVIRONMENT_SETUP,
                             "export PYTHONPATH=%s" % REPO)


def ping_on(hosts, host, ns, dst, count=2) -> bool:
    """A ping from namespace ``ns`` of ``host``, run there over SSH (a host's namespaces
    are its own: they are not visible from this one)."""
    argv = hosts.ssh_argv(host, "ip", "netns", "exec", ns, "ping", "-n", "-c", str(count),
                          "-W", "2", dst)
    return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0


def namespaces_on(hosts, host, token) -> list:
    """The named network namespaces of testbed ``token`` on ``host`` (asked over SSH)."""
    proc = subprocess.run(hosts.ssh_argv(host, "ip", "netns", "list"), capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return [line.split()[0] for line in proc.stdout.splitlines()
            if line.startswith("nepi-%s-" % token)]


def two_host_tunnel(hosts, root, proto, command="ping -c5 -i0.2 10.0.1.2"):
    exp_desc, b = nx.make_tunnel("TapNodeInterface", proto, command=command)
    on_host(b["desc_a"], hosts, hosts.hosts[0], os.path.join(root, "a"))
    on_host(b["desc_b"], hosts, hosts.hosts[1], os.path.join(root, "b"))
    return exp_desc, b


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_tunchannel_between_two_hosts(sim_hosts, tmp_path, proto):
    hosts = sim_hosts(2)
    root = str(tmp_path / "exp")
    exp_desc, b = two_host_tunnel(hosts, root, proto)
    config = proxy.AccessConfiguration()
    config.set_attribute_value(DC.ROOT_DIRECTORY, root)
    controller = proxy.create_experiment_controller(exp_desc.to_xml(), config)
    try:
        controller.start()
        assert wait_until(lambda: controller.is_finished(b["app"].guid), 60)
        out = controller.trace(b["app"].guid, "stdout")
        assert "5 packets transmitted, 5 received, 0% packet loss" in out, out
        # each end bound its own host's address: the frames crossed between the hosts
        a, z = hosts.hosts[0].address, hosts.hosts[1].address
        assert controller.get(b["chan_a"].guid, "tun_addr") == a
        assert controller.get(b["chan_b"].guid, "tun_addr") == z
        summary = {tb["guid"]: tb for tb in controller.testbeds_summary()}
        assert summary[b["desc_a"].guid]["host"] == a
        assert summary[b["desc_b"].guid]["host"] == z
        tokens = [nx.testbed_token(os.path.join(root, side)) for side in "ab"]
        assert namespaces_on(hosts, hosts.hosts[0], tokens[0])
        controller.stop()
    finally:
        controller.shutdown()
    assert wait_until(lambda: not daemons_under(root), 10), daemons_under(root)
    for host, token in zip(hosts.hosts, tokens):
        assert namespaces_on(hosts, host, token) == []


def test_remote_testbed_daemon_killed_fail_cleans_that_host(sim_hosts, tmp_path):
    """Policy Fail: the daemon on host B is killed mid-run; the experiment fails naming
    the testbed, and what that testbed left on B is removed there, over SSH, by its
    record; after shutdown nothing of the experiment remains on either host."""
    hosts = sim_hosts(2)
    root = str(tmp_path / "exp")
    exp_desc, b = two_host_tunnel(hosts, root, "udp", command="sleep 600")
    config = proxy.AccessConfiguration()
    config.set_attribute_value(DC.ROOT_DIRECTORY, root)
    controller = proxy.create_experiment_controller(exp_desc.to_xml(), config)
    try:
        controller.start()
        tokens = [nx.testbed_token(os.path.join(root, side)) for side in "ab"]
        assert namespaces_on(hosts, hosts.hosts[1], tokens[1])
        victim = daemons_under(os.path.join(root, "b"))
        assert len(victim) == 1
        kill9(victim[0].pid)
        guid_b = b["desc_b"].guid
        assert wait_until(lambda: controller.state == "failed", 15)
        failed = {tb["guid"]: tb for tb in controller.testbeds_summary()}[guid_b]
        assert failed["failed"], failed
        assert "testbed %d" % guid_b in controller.error
        assert wait_until(lambda: namespaces_on(hosts, hosts.hosts[1], tokens[1]) == [], 10)
    finally:
        controller.shutdown()
    assert wait_until(lambda: not daemons_under(root), 10), daemons_under(root)
    for host, token in zip(hosts.hosts, tokens):
        assert namespaces_on(hosts, host, token) == []


def test_nepid_killed_during_multi_host_run_reconnects(sim_hosts, tmp_path):
    """kill -9 of nepid while two remote testbed daemons run: `nepid recover` reconnects
    to both over SSH (same pids, same namespaces: nothing redeployed) and the link still
    carries pings; `nepid status` names each host."""
    hosts = sim_hosts(2)
    root = str(tmp_path / "exp")
    design = str(tmp_path / "exp.xml")
    exp_desc, b = two_host_tunnel(hosts, root, "udp", command="sleep 600")
    with open(design, "w") as f:
        f.write(exp_desc.to_xml())
    run = nepid("run", "-q", design, "--root-dir", root)
    assert run.returncode == 0, run.stdout + run.stderr
    try:
        token_a = nx.testbed_token(os.path.join(root, "a"))
        ns_a = nx.ns_name(token_a, b["node_a"].guid)
        assert ping_on(hosts, hosts.hosts[0], ns_a, "10.0.1.2")
        status = nepid("status", "--root-dir", root).stdout
        for host in hosts.hosts:
            assert host.address in status, status
        before = sorted(p.pid for p in daemons_under(os.path.join(root, "a")) +
                        daemons_under(os.path.join(root, "b")))
        assert len(before) == 2, before
        ec = [p for p in daemons_under(root) if p.pid not in before]
        assert len(ec) == 1
        kill9(ec[0].pid)
        recover = nepid("recover", "--root-dir", root)
        assert recover.returncode == 0, recover.stdout + recover.stderr
        assert recover.stdout.count("reconnected to its daemon") == 2, recover.stdout
        after = sorted(p.pid for p in daemons_under(os.path.join(root, "a")) +
                       daemons_under(os.path.join(root, "b")))
        assert after == before
        assert nx.testbed_token(os.path.join(root, "a")) == token_a
        assert ping_on(hosts, hosts.hosts[0], ns_a, "10.0.1.2")
    finally:
        stop = nepid("stop", "--root-dir", root, "--no-traces")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert wait_until(lambda: not daemons_under(root), 10), daemons_under(root)
