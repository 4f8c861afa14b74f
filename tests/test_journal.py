"""The event journal (ROOT/journal.jsonl, nepi.core.journal), ``nepid events`` and the
progress display of ``nepi run``.

The journal itself: exact keys, 0600, whole lines (threads and a writer killed -9 never
leave a torn or lost line), ``read`` tolerant of a partial last line. Then real runs: a
netns experiment through nepid with an application that finishes (phases in order per
testbed, applications started and finished, a runtime set, the experiment's life), nepid
killed -9 and recovered (every earlier line kept, recovery lines added), a testbed daemon
killed under policy Restart (daemon lost, policy Restart). ``nepid events`` prints it
readably, ``--follow`` prints what is appended after it started. The progress display:
a bar per phase on a terminal (unit-tested with a fake terminal stream, and a real
``nepi run`` on a pseudo-terminal), plain lines otherwise, application states while
``nepi run`` waits.
"""

import io
import json
import os
import pty
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time

import pytest

from helpers import kill9, needs_netns, wait_until
from mock_experiments import cli_env, nepi_command as nepi, nepid_command as nepid

from nepi.cli.events_cmd import format_event
from nepi.cli.progress import ProgressDisplay
from nepi.core.journal import KEYS, Journal, read
from nepi.util.rootfiles import JOURNAL

TIME_RE = r"\d\d:\d\d:\d\d\.\d{3}"
# a single netns testbed's deployment, as the journal shows it (no cross-connections)
DEPLOY_ORDER = ["create_controller", "program", "do_setup", "do_create", "do_connect_init",
                "do_connect_compl", "do_preconfigure", "program_cross", "do_configure",
                "do_prestart", "start"]


def events_of(root):
    return read(str(root))[0]


def pick(events, **match):
    return [e for e in events if all(e.get(k) == v for k, v in match.items())]


def assert_well_formed(events):
    for e in events:
        assert tuple(e) == KEYS, e
        assert isinstance(e["time"], float) and isinstance(e["event"], str)
        assert isinstance(e["message"], str)
        for key in ("testbed", "guid"):
            assert e[key] is None or isinstance(e[key], int), e
    times = [e["time"] for e in events]
    assert times == sorted(times)


# ---- the journal file -------------------------------------------------------------------

def test_append_writes_whole_lines_with_exactly_the_journal_keys(tmp_path):
    journal = Journal(str(tmp_path))
    journal.append("experiment", "deploying")
    journal.append("phase", "done", testbed=1, phase="do_create")
    journal.append("set", testbed=1, guid=4, message="up=False")
    path = tmp_path / JOURNAL
    assert os.stat(path).st_mode & 0o777 == 0o600
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    assert json.loads(lines[1]) == {"time": json.loads(lines[1])["time"], "event": "phase",
                                    "state": "done", "testbed": 1, "guid": None,
                                    "phase": "do_create", "message": ""}
    events, offset = read(str(tmp_path))
    assert_well_formed(events)
    assert [e["event"] for e in events] == ["experiment", "phase", "set"]
    assert offset == path.stat().st_size
    assert read(str(path), offset) == ([], offset)


def test_read_tolerates_a_partial_last_line(tmp_path):
    path = tmp_path / JOURNAL
    Journal(str(tmp_path)).append("experiment", "started")
    whole = path.read_bytes()
    line = json.dumps({"time": 2.0, "event": "application", "state": "started",
                       "testbed": 1, "guid": 6, "phase": None, "message": ""}) + "\n"
    with open(path, "ab") as f:
        f.write(line[:25].encode())                        # a writer caught mid-line
    events, offset = read(str(path))
    assert [e["state"] for e in events] == ["started"]
    assert offset == len(whole)                            # the partial line is left
    with open(path, "ab") as f:
        f.write(line[25:].encode())
    events, offset = read(str(path), offset)
    assert [(e["event"], e["guid"]) for e in events] == [("application", 6)]
    assert offset == path.stat().st_size
    with open(path, "ab") as f:                            # garbage is skipped, not fatal
        f.write(b"not json\n" + line.encode())
    events, _ = read(str(path), offset)
    assert [e["guid"] for e in events] == [6]
    assert read(str(tmp_path / "nowhere.jsonl")) == ([], 0)


def test_concurrent_appends_never_mix(tmp_path):
    journal = Journal(str(tmp_path))
    message = "x" * 5000                                   # more than a pipe buffer

    def writer(n):
        for i in range(25):
            journal.append("set", testbed=n, guid=i, message=message)
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / JOURNAL).read_text().splitlines()
    assert len(lines) == 200
    assert all(json.loads(line)["message"] == message for line in lines)


def test_every_line_survives_kill9_of_the_writer(tmp_path):
    """Each append is written and fsync'd before it returns: SIGKILL right after the
    last one loses nothing."""
    code = ("import os, signal, sys\n"
            "from nepi.core.journal import Journal\n"
            "j = Journal(sys.argv[1])\n"
            "for i in range(50):\n"
            "    j.append('application', 'started', testbed=1, guid=i)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=cli_env(),
                          capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    events = events_of(tmp_path)
    assert [e["guid"] for e in events] == list(range(50))


# ---- nepid events -----------------------------------------------------------------------

def _sample_journal(root):
    j = Journal(str(root))
    j.append("experiment", "deploying")
    j.append("phase", "running", testbed=1, phase="do_create")
    j.append("phase", "done", testbed=1, phase="do_create")
    j.append("application", "started", testbed=1, guid=5)
    j.append("set", testbed=1, guid=4, message="up=False")
    j.append("daemon", "lost", testbed=1, message="daemon process 42 died;\nline 2")
    j.append("policy", "Restart", testbed=1, message="redeployed on a new daemon")
    j.append("daemon", "recovered", message="nepid restarted \x1b[31m")
    return j


def test_events_prints_readable_aligned_lines(tmp_path):
    _sample_journal(tmp_path)
    proc = nepid("events", "--root-dir", tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 8
    assert all(re.match(TIME_RE + "  ", line) for line in lines)
    body = [line[14:] for line in lines]
    assert body[0].split() == ["experiment", "deploying"]
    assert body[1].split() == ["testbed", "1", "do_create", "running"]
    assert body[2].split() == ["testbed", "1", "do_create", "done"]
    assert body[3].split() == ["testbed", "1", "application", "5", "started"]
    assert body[4].split() == ["testbed", "1", "element", "4", "set", "up=False"]
    assert body[5].split()[:4] == ["testbed", "1", "daemon", "lost"]
    assert body[5].endswith("daemon process 42 died; | line 2")
    assert body[6].split()[:5] == ["testbed", "1", "policy", "Restart", "applied"]
    assert body[7].startswith("nepid")
    assert "\x1b" not in proc.stdout                      # escaped, not sent to a terminal
    # aligned: the state column starts at the same place on every line
    assert len({line.index(" done") for line in lines[2:3]} |
               {line.index(" running") for line in lines[1:2]}) == 1
    raw = nepid("events", "--root-dir", tmp_path, "--json")
    assert raw.returncode == 0
    assert raw.stdout == (tmp_path / JOURNAL).read_text()


def test_events_without_a_journal(tmp_path):
    proc = nepid("events", "--root-dir", tmp_path)
    assert proc.returncode == 1
    assert "no journal in %s" % tmp_path in proc.stderr
    assert nepid("events", "--root-dir", tmp_path / "missing").returncode == 2


class _Lines:
    """The lines a subprocess prints, read by a thread (a test waits with a timeout)."""

    def __init__(self, stream):
        self._lines = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            self._lines.put(line)

    def next(self, timeout=20.0):
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no output within %s s" % timeout) from None


def test_events_follow_prints_what_is_appended_and_ends_at_shutdown(tmp_path):
    journal = _sample_journal(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "nepi.cli.nepid_cmd", "events",
                             "--root-dir", str(tmp_path), "--follow"], env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = _Lines(proc.stdout)
    try:
        for _ in range(8):                              # what was there already
            lines.next()
        journal.append("application", "finished", testbed=1, guid=5, message="exit 0")
        line = lines.next()
        assert line.split()[1:] == ["testbed", "1", "application", "5", "finished",
                                    "exit", "0"]
        assert proc.poll() is None                      # still following
        journal.append("experiment", "shutdown")
        assert lines.next().split()[1:] == ["experiment", "shutdown"]
        assert proc.wait(20) == 0                       # the experiment is shut down
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


def test_events_follow_ends_with_ctrl_c(tmp_path):
    _sample_journal(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "nepi.cli.nepid_cmd", "events",
                             "--root-dir", str(tmp_path), "-f"], env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _Lines(proc.stdout).next()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_format_event_of_each_kind():
    when = time.mktime((2026, 1, 2, 3, 4, 5, 0, 0, -1)) + 0.25
    assert format_event({"time": when, "event": "phase", "state": "done", "testbed": 1,
                         "guid": None, "phase": "do_create", "message": ""}) == \
        "03:04:05.250  testbed 1   do_create               done"
    assert format_event({"time": when, "event": "experiment", "state": "failed",
                         "testbed": None, "guid": None, "phase": None,
                         "message": "boom"}).split()[1:] == ["experiment", "failed", "boom"]


# ---- progress on a terminal and not ------------------------------------------------------

def _event(t, phase, testbed, state, message="", guid=None):
    event = {"time": t, "phase": phase, "testbed": testbed, "state": state,
             "message": message, "done": 0, "total": 0}
    if guid is not None:
        event["guid"] = guid
    return event


DEPLOYMENT = ([_event(0.1, "do_create", g, "running") for g in range(1, 6)] +
              [_event(0.2 * g, "do_create", g, "done") for g in range(1, 4)] +
              [_event(0.9, "do_create", 4, "failed", "boom"),
               _event(1.0, "do_create", 5, "done")] +
              [_event(1.1, "start", g, "running") for g in (1, 2)] +
              [_event(1.2, "start", 1, "done"),
               _event(1.25, "application", 1, "started", guid=10),
               _event(1.3, "start", 2, "done"),
               _event(1.5, "deploy", None, "done", "experiment started")])
TESTBEDS = {g: "netns" for g in range(1, 6)}


def _visible(text):
    """What a terminal shows: each \\r\\033[K erases the line written before it."""
    return [re.sub(r".*\r\x1b\[K", "", line) for line in text.split("\n")]


def test_a_big_deployment_shows_one_live_bar_per_phase_on_a_terminal():
    stream = io.StringIO()
    display = ProgressDisplay(TESTBEDS, stream=stream, tty=True, origin=0, elements=150)
    display.feed(DEPLOYMENT)
    display.show_applications()
    display(_event(2.0, "application", 1, "finished", "exit status 0", guid=10))
    display.close()
    text = stream.getvalue()
    assert "  create        [" + "#" * 18 + "-" * 12 + "]   3/5 testbeds  0.6 s\r\x1b[K" \
        in text                                          # live, while the phase runs
    assert _visible(text) == [
        "  create        testbed 4 (netns)       FAILED  0.80 s: boom",
        "  create        [" + "#" * 30 + "]   4/5 testbeds, 1 failed  1.0 s",
        "  start         [" + "#" * 30 + "]   2/2 testbeds  0.3 s",
        "experiment started in 1.50 s",
        "  application 10 of testbed 1 (netns) finished (exit status 0)  [1/1 finished]",
        ""]
    assert "  applications: 1 running, 0 finished\r\x1b[K" in text
    assert text.endswith("  applications: 0 running, 1 finished\r\x1b[K")


def test_plain_lines_when_not_a_terminal_even_for_a_big_deployment():
    stream = io.StringIO()
    display = ProgressDisplay(TESTBEDS, stream=stream, tty=False, origin=0, elements=150)
    display.feed(DEPLOYMENT)
    display.show_applications()
    display(_event(2.0, "application", 1, "finished", guid=10))
    display.close()
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text and "[#" not in text
    assert text.splitlines() == [
        "  create        testbed 1 (netns)       done    0.10 s",
        "  create        testbed 2 (netns)       done    0.30 s",
        "  create        testbed 3 (netns)       done    0.50 s",
        "  create        testbed 4 (netns)       FAILED  0.80 s: boom",
        "  create        testbed 5 (netns)       done    0.90 s",
        "  start         testbed 1 (netns)       done    0.10 s",
        "  start         testbed 2 (netns)       done    0.20 s",
        "experiment started in 1.50 s",
        "  applications: 1 running, 0 finished",
        "  application 10 of testbed 1 (netns) finished  [1/1 finished]"]


def test_small_deployment_keeps_its_lines_on_a_terminal():
    stream = io.StringIO()
    display = ProgressDisplay(TESTBEDS, stream=stream, tty=True, origin=0, elements=12)
    display.feed(DEPLOYMENT)
    display.close()
    assert "[#" not in stream.getvalue()
    assert "  create        testbed 1 (netns)       done    0.10 s" in stream.getvalue()


def _big_mock_design(path, nodes=120):
    from nepi.core.design import ExperimentDescription, FactoriesProvider
    exp = ExperimentDescription()
    for testbed_id in ("mock", "mock2"):
        desc = exp.add_testbed_description(FactoriesProvider(testbed_id))
        first = None
        for _ in range(nodes // 2):
            node = desc.create("Node")
            first = first or node
        app = desc.create("Application")
        app.connector("node").connect(first.connector("apps"))
    path.write_text(exp.to_xml(), encoding="utf-8")
    return path


def _run_on_a_pty(args, cwd, timeout=120):
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, cwd=str(cwd), env=cli_env(), stdin=slave, stdout=slave,
                            stderr=slave, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            exited = proc.poll() is not None
            ready, _, _ = select.select([master], [], [], 0 if exited else 0.5)
            if not ready:
                if exited:                           # and everything it wrote was read
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:                          # EIO: the child closed the pty
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout) == 0, b"".join(chunks).decode(errors="replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def test_nepi_run_of_a_big_design_on_a_pseudo_terminal(tmp_path):
    design = _big_mock_design(tmp_path / "big.xml")
    text = _run_on_a_pty([sys.executable, "-m", "nepi.cli.nepi_cmd", "run", str(design),
                          "--root-dir", str(tmp_path / "root")], tmp_path)
    assert "\r\x1b[K" in text
    shown = "\n".join(_visible(text))
    for phase in ("controller", "create", "configure", "start"):
        assert re.search(r"^  %-13s \[#{30}\]   2/2 testbeds  \d+\.\d s$" % phase, shown,
                         re.M), shown
    assert "testbed 1 (mock)        done" not in shown          # bars, not lines
    assert re.search(r"^experiment started in ", shown, re.M)
    assert "done: experiment shut down" in shown
    events = events_of(tmp_path / "root")
    assert len(pick(events, event="application", state="started")) == 2
    assert len(pick(events, event="application", state="finished")) == 2


def test_nepi_run_shows_application_states_without_a_terminal(tmp_path):
    design = _big_mock_design(tmp_path / "big.xml", nodes=4)
    proc = nepi("run", design, "--root-dir", tmp_path / "root", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert "\r" not in proc.stdout and "\x1b" not in proc.stdout
    assert any(re.match(r"  applications: \d running, \d finished$", line) for line in lines)
    finished = [line for line in lines if re.match(r"  application \d+ of testbed \d+ "
                                                   r"\(mock2?\) finished", line)]
    assert len(finished) == 2, proc.stdout
    assert finished[-1].endswith("[2/2 finished]")


# ---- real experiments through nepid -----------------------------------------------------

def _netns_design(path, policy=None, finishing=True):
    """p2p netns design as a testbed daemon (desc 1, node1 2, node2 3, iface1 4,
    iface2 5, then the apps): a ping that finishes (6) and a sleep that does not (7)."""
    import netns_experiments as nx
    exp_desc, b = nx.make_p2p(command="ping -qc1 10.0.0.2" if finishing
                              else "exec sleep 3600")
    if finishing:
        nx.add_app(b["desc"], b["node1"], "exec sleep 3600", traces=())
    nx.as_daemon(b["desc"], policy=policy)
    path.write_text(exp_desc.to_xml(), encoding="utf-8")
    return path


def _manifest(root):
    with open(os.path.join(str(root), "manifest.json")) as f:
        return json.load(f)


def _wait_journal(root, predicate, timeout=60.0, what=None):
    return wait_until(lambda: predicate(events_of(root)), timeout, 0.1, what=what)


def _phases(events, testbed):
    return [(e["phase"], e["state"]) for e in events
            if e["event"] == "phase" and e["testbed"] == testbed]


@needs_netns
@pytest.mark.usefixtures("netns_leftovers")
def test_journal_of_a_netns_run_a_nepid_kill9_and_its_recovery(tmp_path):
    root = tmp_path / "root"
    design = _netns_design(tmp_path / "p2p.xml")
    run = nepid("run", "-q", design, "--root-dir", root)
    assert run.returncode == 0, run.stdout + run.stderr
    try:
        _wait_journal(root, lambda ev: pick(ev, event="application", state="finished",
                                            guid=6), what="the ping to finish")
        from nepi.rpc.ec_client import attach_ec
        proxy = attach_ec(str(root))
        try:
            proxy.set(4, "mtu", 1400)
        finally:
            proxy.close()
        events = events_of(root)
        assert_well_formed(events)
        assert os.stat(root / JOURNAL).st_mode & 0o777 == 0o600
        assert events[0]["event"] == "experiment" and events[0]["state"] == "deploying"
        started = events.index(pick(events, event="experiment", state="started")[0])
        # every phase of the testbed, in order, each running then done
        assert _phases(events[:started], 1) == [(p, s) for p in DEPLOY_ORDER
                                               for s in ("running", "done")]
        start_done = events.index(pick(events, event="phase", phase="start",
                                       state="done")[0])
        apps = pick(events, event="application")
        assert [(e["guid"], e["state"]) for e in apps] == [(6, "started"), (7, "started"),
                                                           (6, "finished")]
        assert all(e["testbed"] == 1 for e in apps)
        assert events.index(apps[0]) > start_done
        assert pick(events, event="set", guid=4, testbed=1, message="mtu=1400")

        shown = nepid("events", "--root-dir", root)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert len(lines) == len(events)
        for pattern in (r"testbed 1   do_create +done$", r"testbed 1   application 6 +started$",
                        r"testbed 1   application 6 +finished$",
                        r"testbed 1   element 4 +set +mtu=1400$",
                        r"experiment  +started$"):
            assert any(re.match(TIME_RE + "  " + pattern, line) for line in lines), \
                (pattern, shown.stdout)

        # nepid killed -9 while the experiment runs, then recovered
        before = (root / JOURNAL).read_bytes()
        kill9(_manifest(root)["daemons"]["ec"]["pid"])
        recover = nepid("recover", "--root-dir", root)
        assert recover.returncode == 0, recover.stdout + recover.stderr
        after = (root / JOURNAL).read_bytes()
        assert after.startswith(before)                 # every earlier line kept
        new = read(str(root), len(before))[0]
        assert_well_formed(events_of(root))
        assert [(e["event"], e["state"], e["testbed"]) for e in new] == [
            ("daemon", "reconnected", 1), ("daemon", "recovered", None),
            ("experiment", "recovered", None)]
        assert "nepid restarted" in new[1]["message"]
        assert new[2]["message"] == "experiment started"
    finally:
        stop = nepid("stop", "--root-dir", root)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    events = events_of(root)
    assert_well_formed(events)
    # the ping's finish was not journaled twice; the sleep ended with the experiment
    assert len(pick(events, event="application", state="finished", guid=6)) == 1
    assert pick(events, event="application", state="finished", guid=7)[0]["message"] == \
        "stopped with the experiment"
    tail = [(e["event"], e["state"], e["phase"]) for e in events
            if e["event"] in ("experiment", "phase")][-6:]
    assert tail == [("experiment", "stopping", None), ("experiment", "stopped", None),
                    ("experiment", "shutting_down", None), ("phase", "running", "shutdown"),
                    ("phase", "done", "shutdown"), ("experiment", "shutdown", None)]


@needs_netns
@pytest.mark.usefixtures("netns_leftovers")
def test_journal_of_a_testbed_daemon_killed_under_policy_restart(tmp_path):
    root = tmp_path / "root"
    design = _netns_design(tmp_path / "p2p.xml", policy="Restart", finishing=False)
    run = nepid("run", "-q", design, "--root-dir", root)
    assert run.returncode == 0, run.stdout + run.stderr
    try:
        pid = _manifest(root)["daemons"]["testbed-1"]["pid"]
        kill9(pid)
        _wait_journal(root, lambda ev: len(pick(ev, event="application", state="started",
                                                guid=6)) == 2,
                      what="the application to be started again")
        events = events_of(root)
        assert_well_formed(events)
        lost = pick(events, event="daemon", state="lost", testbed=1)
        assert len(lost) == 1 and "died" in lost[0]["message"], lost
        policy = pick(events, event="policy", testbed=1)
        assert [e["state"] for e in policy] == ["Restart"], policy
        assert "redeployed on a new daemon" in policy[0]["message"]
        restarted = pick(events, event="daemon", state="restarted", testbed=1)
        assert len(restarted) == 1
        i = events.index(lost[0])
        assert i < events.index(restarted[0]) and i < events.index(policy[0])
        # the redeployment's phases follow, up to start, then the application again
        after = events[i:]
        assert ("start", "done") in _phases(after, 1)
        assert ("do_create", "done") in _phases(after, 1)
        assert pick(after, event="application", state="finished", guid=6) == []
        shown = nepid("events", "--root-dir", root).stdout
        assert re.search(TIME_RE + r"  testbed 1   daemon +lost +daemon process %d died"
                         % pid, shown), shown
        assert re.search(TIME_RE + r"  testbed 1   policy Restart +applied +", shown)
    finally:
        stop = nepid("stop", "--root-dir", root)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert pick(events_of(root), event="experiment")[-1]["state"] == "shutdown"

