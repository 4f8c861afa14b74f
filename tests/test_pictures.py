"""Pictures: ``nepi plot`` (the topology of a design, graphviz) and ``nepid timeline`` (the
journal of a run, matplotlib), run as real subprocesses; the SVGs are parsed as XML."""

import json
import shutil
import xml.etree.ElementTree as ET

import pytest

import netns_experiments as nx
from helpers import fixture_path, needs_netns
from mock_experiments import cli_env, nepi_command, nepid_command as nepid, \
    write_readme_design

pytest.importorskip("graphviz")
pytest.importorskip("matplotlib")

SVG = "{http://www.w3.org/2000/svg}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CROSS_COLOUR = "#d62728"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="graphviz's dot is not installed (apt-get install "
                                      "graphviz)")


def plot(design, out, *options, cwd):
    return nepi_command("plot", design, "-o", out, *options, cwd=cwd)


def svg_texts(path):
    """Every text of an SVG (it must be well-formed XML)."""
    root = ET.parse(str(path)).getroot()
    return [el.text or "" for el in root.iter(SVG + "text")]


def svg_groups(path, css_class):
    """The <g> elements of an SVG with ``css_class`` among their classes."""
    root = ET.parse(str(path)).getroot()
    return [g for g in root.iter(SVG + "g") if css_class in (g.get("class") or "").split()]


def strokes(group):
    return [(p.get("stroke"), p.get("stroke-dasharray"), p.get("stroke-width"))
            for p in group.iter(SVG + "path")]


def write_design(exp_desc, path):
    path.write_text(exp_desc.to_xml(), encoding="utf-8")
    return path


# ---- nepi plot -----------------------------------------------------------------------------

@needs_dot
@pytest.mark.parametrize("name, expected", [
    ("nepi2-mock-single.xml", ["mock 1", "Node 2", "Node 3", "192.168.7.1/24",
                               "192.168.7.2/24", "Application 6"]),
    ("nepi2-netns-p2p.xml", ["netns 1", "10.20.0.1/24", "10.20.0.2/24", "Application 6",
                             "ping -qc3 10.20.0.2"]),
    ("nepi2-ns3-p2p.xml", ["ns3 1", "Node 2", "Node 6", "10.30.0.1/24", "10.30.0.2/24",
                           "PointToPointChannel 14", "Ipv4, Arp, Icmpv4"]),
    ("nepi2-mock-cross.xml", ["mock 1", "mock2 7", "Node 8", "cross"]),
])
def test_plot_nepi2_designs(tmp_path, name, expected):
    out = tmp_path / "design.svg"
    proc = plot(fixture_path(name), out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "drawn (dot layout) to %s" % out in proc.stdout
    texts = " | ".join(svg_texts(out))
    for text in expected:
        assert text in texts, (text, texts)
    assert len(svg_groups(out, "testbed")) == (2 if "cross" in name else 1)


@needs_dot
def test_plot_cross_testbed_link_is_drawn_distinctly(tmp_path):
    out = tmp_path / "cross.svg"
    assert plot(fixture_path("nepi2-mock-cross.xml"), out, cwd=tmp_path).returncode == 0
    cross = svg_groups(out, "cross-testbed")
    assert len(cross) == 1
    colour, dashes, width = strokes(cross[0])[0]
    assert colour == CROSS_COLOUR and dashes and float(width) >= 2
    links = svg_groups(out, "link")
    assert links
    for group in links:          # the same-testbed links look different
        assert all(s[0] != CROSS_COLOUR and not s[1] for s in strokes(group))


@needs_dot
@pytest.mark.parametrize("proto, device", [("udp", "TapNodeInterface"),
                                           ("tcp", "TunNodeInterface")])
def test_plot_tunchannels_between_testbeds(tmp_path, proto, device):
    exp_desc, boxes = nx.make_tunnel(device=device, proto=proto)
    out = tmp_path / "tunnel.svg"
    proc = plot(write_design(exp_desc, tmp_path / "tunnel.xml"), out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    texts = svg_texts(out)
    for text in ("netns 1", "netns 6", "Node 2", "Node 7", "10.0.1.1/24", "10.0.1.2/24",
                 "TunChannel 4", "TunChannel 9", proto, "ping -qc1 10.0.1.2"):
        assert text in texts, (text, texts)
    cross = svg_groups(out, "cross-testbed")
    assert len(cross) == 1                       # the channel pair, once
    assert "t4" in cross[0].find(SVG + "title").text
    assert "t9" in cross[0].find(SVG + "title").text
    assert strokes(cross[0])[0][0] == CROSS_COLOUR


@needs_dot
def test_plot_small_star_details(tmp_path):
    exp_desc, boxes = nx.make_star(3)
    out = tmp_path / "star3.svg"
    proc = plot(write_design(exp_desc, tmp_path / "star3.xml"), out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    texts = svg_texts(out)
    switch = boxes["switch"].guid
    assert "Switch %d" % switch in texts
    for node, iface in zip(boxes["nodes"], boxes["ifaces"]):
        assert "Node %d" % node.guid in texts
        assert "Interface %d" % iface.guid in texts      # detailed: interface names too
    for address in ("10.0.1.1/8", "10.0.2.1/8", "10.0.3.1/8"):
        assert address in texts
    assert len(svg_groups(out, "switch")) == 1
    assert len(svg_groups(out, "link")) == 3


@needs_dot
def test_plot_star_of_100_nodes(tmp_path):
    exp_desc, boxes = nx.make_star(100)
    design = write_design(exp_desc, tmp_path / "star100.xml")
    out = tmp_path / "star100.svg"
    proc = plot(design, out, cwd=tmp_path, )
    assert proc.returncode == 0, proc.stderr
    assert "100 nodes drawn (twopi layout, compact)" in proc.stdout   # around the switch
    texts = set(svg_texts(out))
    for k, node in enumerate(boxes["nodes"], 1):
        assert "Node %d" % node.guid in texts
        assert "10.%d.%d.1/8" % (k // 250, k % 250) in texts
    assert len(svg_groups(out, "link")) == 100
    png = tmp_path / "star100.png"
    assert plot(design, png, cwd=tmp_path).returncode == 0
    assert png.read_bytes().startswith(PNG_SIGNATURE)


@needs_dot
def test_plot_formats_from_the_suffix(tmp_path):
    design = fixture_path("nepi2-netns-p2p.xml")
    for name, magic in (("p.png", PNG_SIGNATURE), ("p.PNG", PNG_SIGNATURE),
                        ("p.pdf", b"%PDF"), ("p.svg", b"<?xml")):
        proc = plot(design, tmp_path / name, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / name).read_bytes().startswith(magic), name


def test_plot_unknown_suffix_is_a_usage_error(tmp_path):
    for name in ("picture.jpg", "picture"):
        proc = plot(fixture_path("nepi2-netns-p2p.xml"), tmp_path / name, cwd=tmp_path)
        assert proc.returncode == 2
        assert proc.stderr.strip() == (
            "nepi: cannot tell the picture format of %s: give -o a file name ending in "
            ".pdf, .png, .svg" % (tmp_path / name))
        assert not (tmp_path / name).exists()


def test_plot_without_graphviz_programs_says_what_to_install(tmp_path):
    import subprocess
    import sys
    env = cli_env()
    env["PATH"] = str(tmp_path)          # no dot there
    proc = subprocess.run([sys.executable, "-m", "nepi.cli.nepi_cmd", "plot",
                           str(fixture_path("nepi2-netns-p2p.xml")), "-o",
                           str(tmp_path / "p.svg")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    assert "dot" in proc.stderr and "install graphviz" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "p.svg").exists()


@needs_dot
def test_plot_escapes_untrusted_labels(tmp_path):
    exp_desc, boxes = nx.make_p2p(command='echo "<b>&amp;" \\N')
    boxes["node1"].set_attribute_value("label", 'evil<&>"\\G')
    boxes["desc"].set_attribute_value("label", "site <A> & 'B'")
    out = tmp_path / "evil.svg"
    proc = plot(write_design(exp_desc, tmp_path / "evil.xml"), out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    texts = svg_texts(out)        # parsed: the SVG is well-formed
    assert "netns 1 \u00b7 site <A> & 'B'" in texts
    assert 'evil<&>"\\G %d' % boxes["node1"].guid in texts      # no graphviz expansion
    assert 'echo "<b>&amp;" \\N' in texts


def test_plot_bad_design_is_reported(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<experiment><testbeds>", encoding="utf-8")
    proc = plot(bad, tmp_path / "p.svg", cwd=tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.startswith("nepi: ") and "Traceback" not in proc.stderr
    assert not (tmp_path / "p.svg").exists()


def test_roles_of_the_boxes():
    from nepi.cli.pictures import Topology
    from nepi.cli.common import load_data
    topo = Topology(load_data(str(fixture_path("nepi2-ns3-p2p.xml"))))
    roles = {guid: topo.role[guid] for guid in topo.role}
    assert [g for g, r in roles.items() if r == "node"] == [2, 6]
    assert [g for g, r in roles.items() if r == "device"] == [10, 11]
    assert [g for g, r in roles.items() if r == "channel"] == [14]
    assert [g for g, r in roles.items() if r == "app"] == [15]
    assert topo.anchor[3] == 2 and topo.anchor[12] == 10      # protocol -> node, queue -> dev
    assert topo.node_of[10] == 2 and topo.node_of[15] == 2


# ---- nepid timeline ------------------------------------------------------------------------

T0 = 1700000000.0
PHASES = ("create_controller", "program", "do_setup", "do_create", "do_connect_init",
          "do_connect_compl", "do_preconfigure", "program_cross", "do_configure",
          "do_cross_connect", "do_prestart", "start")


def event(t, kind, state=None, testbed=None, guid=None, phase=None, message=""):
    return {"time": T0 + t, "event": kind, "state": state, "testbed": testbed,
            "guid": guid, "phase": phase, "message": message}


def synthetic_journal(root, n_apps=3):
    """Two testbeds (1 and 7) through every phase, ``n_apps`` applications (the last one
    never finishes), testbed 7's daemon lost then restarted, a policy applied, and a last
    line half written."""
    events = [event(0, "experiment", "deploying")]
    t = 0.1
    for phase in PHASES:
        for tb in (1, 7):
            events.append(event(t, "phase", "running", tb, phase=phase))
        for tb in (1, 7):
            events.append(event(t + 0.05 * (1 + tb / 7.0), "phase", "done", tb, phase=phase))
        t += 0.12
    events.append(event(t, "experiment", "started"))
    for k in range(n_apps):
        events.append(event(t, "application", "started", 1 if k % 2 == 0 else 7, 100 + k))
    for k in range(n_apps - 1):
        events.append(event(t + 3 + k % 17, "application", "finished",
                            1 if k % 2 == 0 else 7, 100 + k))
    events += [event(t + 5, "daemon", "lost", 7, message="daemon process 4242 died"),
               event(t + 5.1, "policy", "Restart", 7, message="restarting it"),
               event(t + 7, "daemon", "restarted", 7, message="new daemon 4300"),
               event(t + 25, "experiment", "stopping"),
               event(t + 25.2, "experiment", "stopped")]
    events.sort(key=lambda e: e["time"])
    root.mkdir(parents=True, exist_ok=True)
    with open(str(root / "journal.jsonl"), "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
        f.write('{"time": %r, "event": "experiment", "sta' % (T0 + t + 26))
    return events


def timeline(root, out, *options):
    return nepid("timeline", "--root-dir", root, "-o", out, *options)


def test_timeline_of_a_synthetic_journal(tmp_path):
    root = tmp_path / "root"
    events = synthetic_journal(root)
    out = tmp_path / "timeline.svg"
    proc = timeline(root, out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "%s: %d events, 2 testbeds, 3 applications drawn to %s" \
        % (root, len(events), out)
    texts = svg_texts(out)
    for text in ("experiment", "testbed 1", "testbed 7", "application 100 (tb 1)",
                 "application 101 (tb 7)", "application 102 (tb 1)",
                 "testbed 7 lost, testbed 7: policy Restart", "testbed 7 restarted",
                 "create_controller", "start", "app lifetime", "app running at the end",
                 "daemon lost", "daemon restarted", "policy Restart"):
        assert any(text == t.strip() for t in texts), (text, texts)
    assert any(t.startswith("seconds since the first event") for t in texts)
    assert any(t.startswith("the deployment, zoomed") for t in texts)
    assert not any("sta" == t for t in texts)


def test_timeline_png_and_pdf(tmp_path):
    root = tmp_path / "root"
    synthetic_journal(root)
    for name, magic in (("t.png", PNG_SIGNATURE), ("t.pdf", b"%PDF")):
        proc = timeline(root, tmp_path / name)
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / name).read_bytes().startswith(magic)


def test_timeline_of_100_applications(tmp_path):
    root = tmp_path / "root"
    synthetic_journal(root, n_apps=100)
    out = tmp_path / "grouped.svg"
    assert timeline(root, out).returncode == 0
    texts = [t.strip() for t in svg_texts(out)]
    assert "50 applications, testbed 1" in texts and "50 applications, testbed 7" in texts
    assert not any(t.startswith("application 1") for t in texts)
    out = tmp_path / "rows.svg"
    proc = timeline(root, out, "--max-app-rows", "100")
    assert proc.returncode == 0, proc.stderr
    texts = [t.strip() for t in svg_texts(out)]
    for k in range(100):
        assert "application %d (tb %d)" % (100 + k, 1 if k % 2 == 0 else 7) in texts


def test_timeline_names_rows_after_the_design(tmp_path):
    root = tmp_path / "root"
    synthetic_journal(root)
    exp_desc, boxes = nx.make_tunnel()             # testbeds 1 and 6
    (root / "experiment.xml").write_text(exp_desc.to_xml(), encoding="utf-8")
    out = tmp_path / "named.svg"
    assert timeline(root, out).returncode == 0
    texts = [t.strip() for t in svg_texts(out)]
    assert "netns 1" in texts and "testbed 7" in texts     # 7 is not in that design


def test_timeline_errors(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    proc = timeline(root, tmp_path / "t.svg")
    assert proc.returncode == 2
    assert proc.stderr.startswith("nepid: no journal in %s" % root)
    synthetic_journal(root)
    proc = timeline(root, tmp_path / "t.gif")
    assert proc.returncode == 2
    assert "cannot tell the picture format" in proc.stderr
    proc = timeline(tmp_path / "nowhere", tmp_path / "t.svg")
    assert proc.returncode == 2
    (root / "journal.jsonl").write_text('{"time": 1.0, "event": "pha', encoding="utf-8")
    proc = timeline(root, tmp_path / "t.svg")
    assert proc.returncode == 1 and "no event" in proc.stderr
    assert not (tmp_path / "t.svg").exists()


# ---- end to end: a real run, then its timeline ---------------------------------------------

def test_timeline_of_a_mock_run_with_a_nepid_recovery(tmp_path):
    from helpers import kill9
    root = tmp_path / "root"
    design = write_readme_design(tmp_path / "mock.xml", (1, 7))
    run = nepid("run", "-q", design, "--root-dir", root)
    assert run.returncode == 0, run.stderr
    kill9(int((root / "nepid.pid").read_text().split()[0]))
    recover = nepid("recover", "--root-dir", root)
    assert recover.returncode == 0, recover.stdout + recover.stderr
    assert nepid("stop", "--root-dir", root).returncode == 0
    out = tmp_path / "timeline.svg"
    proc = timeline(root, out)
    assert proc.returncode == 0, proc.stderr
    texts = [t.strip() for t in svg_texts(out)]
    assert "mock 1 \u00b7 tb-mock" in texts and "mock2 7 \u00b7 tb-mock2" in texts
    assert any(t.startswith("app1: ") for t in texts)
    assert any("nepid recovered" in t for t in texts)
    for phase in ("create_controller", "start", "shutdown"):
        assert phase in texts


@needs_netns
@pytest.mark.usefixtures("netns_leftovers")
def test_timeline_of_a_netns_run(tmp_path):
    exp_desc, boxes = nx.make_p2p(command="ping -qc2 -i 0.2 10.0.0.2")
    nx.as_daemon(boxes["desc"])
    design = write_design(exp_desc, tmp_path / "p2p.xml")
    root = tmp_path / "root"
    run = nepid("run", "-q", design, "--root-dir", root)
    assert run.returncode == 0, run.stdout + run.stderr
    stop = nepid("stop", "--root-dir", root)
    assert stop.returncode == 0, stop.stderr
    out = tmp_path / "timeline.svg"
    proc = timeline(root, out)
    assert proc.returncode == 0, proc.stderr
    assert "1 testbed, 1 application drawn" in proc.stdout
    texts = [t.strip() for t in svg_texts(out)]
    assert "netns 1" in texts
    assert "app %d: ping -qc2 -i 0.2 10.0.0.2" % boxes["app"].guid in texts
    png = tmp_path / "timeline.png"
    assert timeline(root, png).returncode == 0
    assert png.read_bytes().startswith(PNG_SIGNATURE)
