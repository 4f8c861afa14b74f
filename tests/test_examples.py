"""The README's main example runs end to end (root: it builds real namespaces)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]

needs_root = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/net/tun"),
                                reason="netns experiments need root and /dev/net/tun")


def _namespaces():
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


@needs_root
def test_netns_routing_example(tmp_path):
    before = _namespaces()
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
    assert not (_namespaces() - before)
    leftovers = [p.pid for p in psutil.process_iter(["cmdline"])
                 if str(root) in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []
