"""Traces in their own format under readable names (issue 15, point 2): a real netns run
through nepid with a pcap capture and application output; `nepid traces` lists them,
prints one (a pcap that tshark reads), follows a growing one; `nepid stop` copies them to
traces/<testbed label>/<element label>-<trace>.<ext>."""

import os
import shutil
import subprocess
import sys
import time

import pytest

import netns_experiments as nx
from crash_matrix import REPO, nepid
from helpers import needs_netns, wait_until

pytestmark = [needs_netns,
              pytest.mark.skipif(shutil.which("tshark") is None,
                                 reason="tshark not installed (the Makefile installs it)")]


def tshark_lines(path):
    proc = subprocess.run(["tshark", "-n", "-r", path], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.fixture
def running(tmp_path):
    """A labelled two-node netns experiment run by nepid: ping (3 echoes) and a counter
    that prints a line every 0.2 s, the node interface captured."""
    exp_desc, b = nx.make_p2p(command="ping -n -c3 -i0.2 10.0.0.2")
    b["desc"].set_attribute_value("label", "lab")
    b["app"].set_attribute_value("label", "ping")
    b["iface1"].set_attribute_value("label", "n1eth")
    b["iface1"].enable_trace("pcap")
    counter = nx.add_app(b["desc"], b["node2"],
                         "for i in $(seq 1 25); do echo line $i; sleep 0.2; done")
    counter.set_attribute_value("label", "counter")
    design = tmp_path / "exp.xml"
    design.write_text(exp_desc.to_xml())
    root = tmp_path / "exp"
    run = nepid("run", "-q", str(design), "--root-dir", str(root))
    assert run.returncode == 0, run.stdout + run.stderr
    yield root
    nepid("stop", "--root-dir", str(root), "--no-traces")


def test_list_print_follow_and_native_copies(running):
    root = str(running)
    listing = nepid("traces", "--root-dir", root)
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()]
    assert rows[0] == ["testbed", "element", "guid", "trace", "format"]
    assert ["lab", "n1eth", "pcap", "pcap"] == [rows[1][i] for i in (0, 1, 3, 4)]
    assert {(r[1], r[3]) for r in rows[1:]} == {("n1eth", "pcap"), ("ping", "stdout"),
                                                ("counter", "stdout")}

    # follow: lines keep coming while the counter runs
    follow = subprocess.Popen([sys.executable, "-m", "nepi.cli.nepid_cmd", "traces",
                               "--root-dir", root, "counter", "stdout", "--follow"],
                              env=dict(os.environ, PYTHONPATH=REPO), stdout=subprocess.PIPE,
                              text=True)
    try:
        seen = [follow.stdout.readline().strip() for _ in range(8)]
    finally:
        follow.terminate()
        follow.wait(10)
    assert seen == ["line %d" % i for i in range(1, 9)], seen

    ping = nepid("traces", "--root-dir", root, "ping", "stdout")
    assert wait_until(lambda: "3 packets transmitted" in
                      nepid("traces", "--root-dir", root, "ping", "stdout").stdout, 20)
    assert ping.returncode == 0
    pcap = os.path.join(root, "live.pcap")
    with open(pcap, "wb") as f:
        dump = subprocess.run([sys.executable, "-m", "nepi.cli.nepid_cmd", "traces",
                               "--root-dir", root, "n1eth", "pcap"], stdout=f,
                              env=dict(os.environ, PYTHONPATH=REPO), timeout=60)
    assert dump.returncode == 0
    assert sum("Echo (ping) request" in line for line in tshark_lines(pcap)) >= 3

    bad = nepid("traces", "--root-dir", root, "ping", "pcap")
    assert bad.returncode == 2 and "has no trace 'pcap' (it has stdout)" in bad.stderr

    # the copies at stop: native format, readable names
    assert wait_until(lambda: "line 25" in
                      nepid("traces", "--root-dir", root, "counter", "stdout").stdout, 20)
    stop = nepid("stop", "--root-dir", root)
    assert stop.returncode == 0, stop.stderr
    traces = os.path.join(root, "traces", "lab")
    assert sorted(os.listdir(traces)) == ["counter-stdout.txt", "n1eth-pcap.pcap",
                                          "ping-stdout.txt"]
    lines = tshark_lines(os.path.join(traces, "n1eth-pcap.pcap"))
    assert sum("Echo (ping) reply" in line for line in lines) >= 3
    with open(os.path.join(traces, "ping-stdout.txt")) as f:
        assert "3 packets transmitted, 3 received, 0% packet loss" in f.read()
    with open(os.path.join(traces, "counter-stdout.txt")) as f:
        assert f.read().splitlines()[-1] == "line 25"
