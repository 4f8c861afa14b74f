"""``nepi run``: in-process deployment with progress, traces copied, clean shutdown — run
as a real subprocess, with testbed daemons over real sockets where the design asks for
them. Every test checks that no daemon of its root dirs is left (psutil)."""

import base64
import io
import os
import signal
import subprocess
import sys
import time

from helpers import daemons_under, runtime_files
from mock_experiments import cli_env, nepi_command as nepi, nepid_command, write_readme_design

from nepi.cli.progress import ProgressDisplay, follow
from nepi.cli.traces import copy_traces
from nepi.testbeds.mockbase import PING_TEXT


def write_design(path, daemon=False, setup=None):
    """The README's mock example; optionally with testbed 1 (mock) as a daemon."""
    return write_readme_design(path, (1,) if daemon else (), setup)


def write_no_app_design(path):
    """One node in a mock testbed daemon: nothing finishes, so only --duration ends it."""
    from nepi.core.design import ExperimentDescription, FactoriesProvider
    exp = ExperimentDescription()
    tb = exp.add_testbed_description(FactoriesProvider("mock"))
    tb.set_attribute_value("deployment_mode", "DAEMON")
    tb.create("Node")
    path.write_text(exp.to_xml(), encoding="utf-8")
    return path


# ---- nepi run on the main example -------------------------------------------------------

def test_run_mock_example(tmp_path):
    design = write_design(tmp_path / "mock.xml")
    root = tmp_path / "root"
    proc = nepi("run", design, "--root-dir", root, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    assert (root / "traces" / "tb-mock" / "app1-fake.txt").read_text() == PING_TEXT
    for name in ("experiment.xml", "execute.xml", "manifest.json"):
        assert (root / name).is_file(), name
    lines = proc.stdout.splitlines()
    # one line per phase and testbed, with the testbed id and a duration
    for phase in ("controller", "create", "connect", "configure", "prestart", "start"):
        for testbed in ("testbed 1 (mock)", "testbed 7 (mock2)"):
            assert any(line.split()[0] == phase and testbed in line and " done " in line
                       and line.endswith(" s") for line in lines), (phase, testbed,
                                                                    proc.stdout)
    assert any(line.startswith("experiment started in ") for line in lines)
    assert "all applications finished" in proc.stdout
    assert "traces: %s (1 file)" % (root / "traces") in proc.stdout
    assert proc.stdout.rstrip().endswith("done: experiment shut down")
    assert runtime_files(root) == []


def test_run_with_a_testbed_daemon_copies_its_traces(tmp_path):
    design = write_design(tmp_path / "mock.xml", daemon=True)
    root = tmp_path / "root"
    proc = nepi("run", design, "--root-dir", root, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (root / "traces" / "tb-mock" / "app1-fake.txt").read_text() == PING_TEXT
    assert (root / "logs" / "testbed-1.log").is_file()
    assert "logs:   %s" % (root / "logs") in proc.stdout
    assert runtime_files(root) == []


def test_run_quiet_prints_nothing(tmp_path):
    design = write_design(tmp_path / "mock.xml")
    root = tmp_path / "root"
    proc = nepi("run", "-q", design, "--root-dir", root, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    assert (root / "traces" / "tb-mock" / "app1-fake.txt").read_text() == PING_TEXT


def test_run_design_with_problems_exits_1_and_deploys_nothing(tmp_path):
    from nepi.core.design import ExperimentDescription, FactoriesProvider
    exp = ExperimentDescription()
    tb = exp.add_testbed_description(FactoriesProvider("mock"))
    tb.create("Interface")      # its "node" connector needs one connection
    tb.create("Application")
    design = tmp_path / "bad.xml"
    design.write_text(exp.to_xml(), encoding="utf-8")
    root = tmp_path / "root"
    proc = nepi("run", design, "--root-dir", root, cwd=tmp_path)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("%s: element " % design) and "'node'" in line
               for line in lines)
    # exactly what `nepi validate` reports
    assert nepi("validate", design, cwd=tmp_path).stdout == proc.stdout
    assert not root.exists()


def test_run_unreadable_file_is_a_usage_error(tmp_path):
    proc = nepi("run", tmp_path / "missing.xml", "--root-dir", tmp_path / "root",
                cwd=tmp_path)
    assert proc.returncode == 2
    assert "cannot read" in proc.stderr and "Traceback" not in proc.stderr


def test_run_failing_deployment(tmp_path):
    design = write_design(tmp_path / "fail.xml", daemon=True, setup="exit 3")
    root = tmp_path / "root"
    proc = nepi("run", design, "--root-dir", root, cwd=tmp_path)
    assert proc.returncode == 1
    errors = proc.stderr.splitlines()
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("nepi: deployment failed: testbed 1 (mock) failed in "
                                "create_controller: ")
    assert "exit 3" in errors[0]
    assert "Traceback" not in proc.stderr
    # the progress display showed the failure and the rollback of the other testbed
    assert any("testbed 1 (mock)" in line and "FAILED" in line and "exit 3" in line
               for line in proc.stdout.splitlines())
    assert "deployment FAILED after" in proc.stdout
    assert daemons_under(root) == []
    assert runtime_files(root) == []
    from nepi.rpc.manifest import Manifest
    assert Manifest(str(root)).read()["experiment_state"] == "shutdown"


def test_run_failing_deployment_with_debug_shows_the_traceback(tmp_path):
    design = write_design(tmp_path / "fail.xml", daemon=True, setup="exit 3")
    proc = nepi("--debug", "run", design, "--root-dir", tmp_path / "root", cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("nepi: deployment failed:")


def test_run_ctrl_c_stops_and_shuts_down(tmp_path):
    design = write_no_app_design(tmp_path / "noapp.xml")
    root = tmp_path / "root"
    proc = subprocess.Popen([sys.executable, "-m", "nepi.cli.nepi_cmd", "run", str(design),
                             "--root-dir", str(root), "--duration", "120"],
                            cwd=str(tmp_path), env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if line.startswith("experiment started") or not line:
                break
        assert seen[-1].startswith("experiment started"), "".join(seen)
        assert len(daemons_under(root)) == 1          # the testbed daemon runs
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert time.monotonic() - began < 30
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out + err
    assert "interrupted: stopping the experiment" in out
    assert "shutdown      testbed 1 (mock)" in out
    assert err.strip() == "nepi: interrupted; the experiment was stopped and shut down"
    assert daemons_under(root) == []
    assert runtime_files(root) == []


def test_run_ctrl_c_during_deployment_rolls_back(tmp_path):
    # testbed 1's environment setup takes 30 s: interrupt while it runs. As a terminal
    # does, the whole process group gets SIGINT (so the setup shell dies too).
    design = write_design(tmp_path / "slow.xml", daemon=True, setup="sleep 30")
    root = tmp_path / "root"
    proc = subprocess.Popen([sys.executable, "-m", "nepi.cli.nepi_cmd", "run", str(design),
                             "--root-dir", str(root)], cwd=str(tmp_path), env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout.readline().startswith("deploying ")
        time.sleep(1.0)
        began = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert time.monotonic() - began < 20
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, out + err
    assert "deployment FAILED after" in out
    assert err.strip() == "nepi: interrupted during deployment; what was deployed has " \
                          "been removed"
    assert daemons_under(root) == []
    assert runtime_files(root) == []


def test_run_duration_ends_an_experiment_without_applications(tmp_path):
    design = write_no_app_design(tmp_path / "noapp.xml")
    began = time.monotonic()
    proc = nepi("run", design, "--root-dir", tmp_path / "root", "--duration", "1.5",
                "--timeout", "0.1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert time.monotonic() - began >= 1.5
    assert "--duration of 1.5 s elapsed" in proc.stdout


def test_run_refuses_a_root_dir_served_by_nepid(tmp_path):
    root = tmp_path / "root"
    start = nepid_command("start", "--root-dir", root)
    assert start.returncode == 0, start.stderr
    try:
        proc = nepi("run", write_design(tmp_path / "mock.xml"), "--root-dir", root,
                    cwd=tmp_path)
        assert proc.returncode == 1
        assert "nepid (pid " in proc.stderr and "is serving" in proc.stderr
    finally:
        stop = nepid_command("stop", "--root-dir", root)
        assert stop.returncode == 0, stop.stderr


def test_bad_duration_is_a_usage_error(tmp_path):
    proc = nepi("run", "x.xml", "--root-dir", tmp_path, "--duration", "soon", cwd=tmp_path)
    assert proc.returncode == 2
    assert "not a number of seconds" in proc.stderr


# ---- the progress display ---------------------------------------------------------------

def _event(t, phase, testbed, state, message="", done=0, total=0):
    return {"time": t, "phase": phase, "testbed": testbed, "state": state,
            "message": message, "done": done, "total": total}


def test_progress_lines_and_final_line():
    stream = io.StringIO()
    display = ProgressDisplay({1: "mock", 7: "mock2"}, stream=stream, origin=100.0)
    display.feed([
        _event(100.0, "create_controller", 1, "running"),
        _event(100.5, "create_controller", 1, "done"),
        _event(101.0, "do_create", 1, "done"),
        _event(101.2, "do_create", 7, "failed", "boom\nsecond line"),
        _event(101.3, "deploy", None, "failed", "testbed 7 (mock2) failed in create: boom"),
    ])
    lines = stream.getvalue().splitlines()
    assert lines == [
        "  controller    testbed 1 (mock)        done    0.50 s",
        "  create        testbed 1 (mock)        done    0.50 s",
        "  create        testbed 7 (mock2)       FAILED  0.70 s: boom | second line",
        "deployment FAILED after 1.30 s: testbed 7 (mock2) failed in create: boom",
    ]
    assert display.final["state"] == "failed"
    assert [e["testbed"] for e in display.failures] == [7, None]


def test_progress_final_line_on_success_and_quiet_mode():
    stream = io.StringIO()
    display = ProgressDisplay({1: "mock"}, stream=stream, origin=10.0)
    display(_event(12.25, "deploy", None, "done", "experiment started"))
    assert stream.getvalue() == "experiment started in 2.25 s\n"
    quiet = io.StringIO()
    display = ProgressDisplay({1: "mock"}, stream=quiet, quiet=True, origin=10.0)
    display.feed([_event(11, "do_create", 1, "failed", "x"),
                  _event(12, "deploy", None, "failed", "x")])
    assert quiet.getvalue() == ""
    assert display.final is not None and len(display.failures) == 2


def test_progress_bar_only_on_a_terminal():
    events = [_event(1, "do_create", 1, "running", done=50, total=100),
              _event(2, "do_create", 1, "done")]
    tty = io.StringIO()
    ProgressDisplay({1: "mock"}, stream=tty, tty=True, origin=0).feed(events)
    text = tty.getvalue()
    assert "[" + "#" * 15 + "-" * 15 + "] 50/100" in text
    assert "\r\033[K" in text                        # the bar is erased before the line
    assert text.endswith("  create        testbed 1 (mock)        done    1.00 s\n")
    plain = io.StringIO()
    ProgressDisplay({1: "mock"}, stream=plain, tty=False, origin=0).feed(events)
    assert plain.getvalue() == "  create        testbed 1 (mock)        done    1.00 s\n"


def test_progress_escapes_control_characters():
    stream = io.StringIO()
    ProgressDisplay({1: "mock"}, stream=stream, origin=0)(
        _event(1, "do_create", 1, "failed", "bad \x1b[31m text"))
    assert "\x1b" not in stream.getvalue() and "\\x1b" in stream.getvalue()


def test_follow_polls_until_the_final_event():
    class Remote:
        def __init__(self):
            self.events = [_event(1, "do_create", 1, "done")]
            self.calls = 0

        def progress_events(self, since):
            self.calls += 1
            if self.calls == 3:
                self.events.append(_event(2, "deploy", None, "done", "experiment started"))
            return self.events[since:]

    remote = Remote()
    stream = io.StringIO()
    display = ProgressDisplay({1: "mock"}, stream=stream, origin=0)
    since = follow(remote, display, until=lambda: remote.calls >= 2, poll=0.01)
    assert since == 2
    assert stream.getvalue().splitlines()[-1] == "experiment started in 2.00 s"


def test_copy_traces_writes_each_trace_and_reports_failures(tmp_path):
    """Exact bytes where the testbed gives them (base64), text where it only has text;
    names from labels (guids when missing or shared), extensions from the testbed's file."""
    pcap = b"\xd4\xc3\xb2\xa1" + bytes(range(256))

    class Controller:
        def traces_info(self):
            return {1: {6: {"fake": {}, "bin/ary": {}}, 8: {"broken": {}},
                        9: {"pcap": {"filepath": "/x/9-iface.pcap"}}, 10: {"stdout": {}}}}

        def labels(self):
            return {1: "lab", 6: "ping", 9: "n1", 10: "n1"}

        def trace(self, guid, trace_id, attribute):
            if trace_id == "broken":
                raise RuntimeError("no such trace")
            if attribute == "base64":
                if trace_id == "pcap":
                    return base64.b64encode(pcap).decode()
                raise ValueError("no file")            # e.g. the mock testbed
            return b"\x00\x01" if trace_id == "bin/ary" else "text"

    result = copy_traces(Controller(), str(tmp_path))
    assert (tmp_path / "traces" / "lab" / "ping-fake.txt").read_text() == "text"
    assert (tmp_path / "traces" / "lab" / "ping-bin_ary.txt").read_bytes() == b"\x00\x01"
    # two elements labelled n1: each named by its guid
    assert (tmp_path / "traces" / "lab" / "9-pcap.pcap").read_bytes() == pcap
    assert (tmp_path / "traces" / "lab" / "10-stdout.txt").read_text() == "text"
    assert len(result.written) == 4
    assert result.errors == ["trace 'broken' of element 8: no such trace"]
