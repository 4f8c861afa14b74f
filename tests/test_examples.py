"""The README's main example runs end to end (root: it builds real namespaces)."""

import os
import re
import subprocess
import sys

import psutil

from helpers import REPO, needs_netns


@needs_netns
def test_netns_routing_example(tmp_path, netns_leftovers):
    root = tmp_path / "routing"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "netns_routing.py"),
                           str(root)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("3 packets transmitted, 3 received, 0% packet loss") == 2
    assert int(re.search(r"n1 capture: (\d+) ICMP packets", proc.stdout).group(1)) >= 12
    assert "echo request" in proc.stdout and "echo reply" in proc.stdout
    for name in ("experiment.xml", "execute.xml", "manifest.json"):
        assert (root / name).exists()
    assert (root / "logs").is_dir()
    assert not (root / "nepid.pid").exists()
    # its testbed was seen deployed (under tmp_path), and nothing named after it is left
    assert len(netns_leftovers.tokens) == 1
    assert not any(netns_leftovers.wait_gone().values())
    leftovers = [(p.pid, p.info["cmdline"]) for p in psutil.process_iter(["cmdline"])
                 if str(root) in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []


@needs_netns
def test_multi_host_example(tmp_path, sim_hosts):
    """examples/multi_host.py on three simulated hosts (make hosts-up's kind): a probe on
    every host pings the next one, and two hosts' namespaces ping through a TunChannel."""
    hosts = sim_hosts(3)
    root = tmp_path / "multi"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "multi_host.py"),
                           hosts.hosts_file, "--root-dir", str(root)],
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in hosts.hosts:
        assert "addresses: %s" % host.address in proc.stdout, proc.stdout
    assert proc.stdout.count("3 packets transmitted, 3 received, 0% packet loss") == 3
    assert "5 packets transmitted, 5 received, 0% packet loss" in proc.stdout
    leftovers = [(p.pid, p.info["cmdline"]) for p in psutil.process_iter(["cmdline"])
                 if str(root) in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []
