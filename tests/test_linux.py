"""The linux testbed over real SSH to simulated hosts (conftest's ``sim_hosts``: network
namespaces on a private bridge, each with its own sshd and its own home directory), through
the public API (ExperimentDescription, create_experiment_controller) as a user would:

NEPI 2 PlanetLab-style applications with sources, build, install, a Dependency, depends
and stdin on three hosts with their stdout/stderr/buildlog traces; sudo and useSudo as
root; status, and stop of a whole process group; shutdown and cleanup by record (nothing
left on any host, masters closed); a host unreachable at deploy and a host lost mid-run,
both reported by name; recovery by a new controller and after a testbed daemon's kill -9
without restarting anything; and design values that must never reach a shell.

Needs root, ssh and sshd (the sim_hosts fixture skips otherwise); the build test needs a
C compiler.
"""

import ipaddress
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import time

import psutil
import pytest

from helpers import wait_finished, wait_until
from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.errors import AttributeValueError, DesignError, NepiError
from nepi.testbeds.linux import transfer
from nepi.testbeds.linux.hosts import RECORD_FILE
from nepi.util import proxy
from nepi.util.constants import ApplicationStatus as AS
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS

TESTBED = "linux"


# ---------------------------------------------------------------------------------------
# designs and what the hosts hold
# ---------------------------------------------------------------------------------------

def make_design(sim, hosts=None, timeout=10.0, known_hosts=True, **testbed_attributes):
    """A linux testbed with one Node per simulated host (keys checked strictly against
    the simulation's known_hosts unless ``known_hosts`` is false)."""
    exp = ExperimentDescription()
    tb = exp.add_testbed_description(FactoriesProvider(TESTBED))
    tb.set_attribute_value("sshKey", sim.key)
    if known_hosts:
        tb.set_attribute_value("sshKnownHosts", sim.known_hosts)
    tb.set_attribute_value("timeout", timeout)
    for name, value in testbed_attributes.items():
        tb.set_attribute_value(name, value)
    nodes = [add_node(tb, h.address) for h in (sim.hosts if hosts is None else hosts)]
    return exp, tb, nodes


def add_node(tb, address):
    node = tb.create("Node")
    node.set_attribute_value("hostname", address)
    return node


def add_app(tb, node, command, traces=("stdout", "stderr"), factory="Application",
            **attributes):
    app = tb.create(factory)
    if command is not None:
        app.set_attribute_value("command", command)
    for name, value in attributes.items():
        app.set_attribute_value(name, value)
    for trace in traces:
        app.enable_trace(trace)
    node.connector("deps" if factory == "Dependency" else "apps").connect(
        app.connector("node"))
    return app


def config(root, **values):
    access = proxy.AccessConfiguration()
    access.set_attribute_value(DC.ROOT_DIRECTORY, str(root))
    for name, value in values.items():
        access.set_attribute_value(name, value)
    return access


def deploy(controllers, exp, root):
    controller = proxy.create_experiment_controller(exp.to_xml(), config(root))
    controllers.append(controller)
    controller.start()
    return controller


def deploy_error(controllers, exp, root) -> str:
    """The message of the NepiError a deployment that must fail raises."""
    with pytest.raises(NepiError) as raised:
        deploy(controllers, exp, root)
    return str(raised.value)


def root_of(controller, testbed_guid=1):
    return controller.deployment_config(testbed_guid)[DC.ROOT_DIRECTORY]


def read_record(root):
    with open(os.path.join(root, RECORD_FILE)) as f:
        return json.load(f)


def on_host(sim, host, command, check=True):
    """Run ``command`` on a simulated host over SSH (as a person would look)."""
    done = subprocess.run(sim.ssh_argv(host, command), capture_output=True, text=True,
                          timeout=30)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def folder_on(sim, host, token, path=""):
    """Does ~/nepi-<token>[/path] exist on the host (asked over SSH)?"""
    return on_host(sim, host, 'test -e "$HOME/nepi-%s/%s"' % (token, path),
                   check=False).returncode == 0


def experiment_folders(sim, host):
    """The nepi-* entries of the host's home (over SSH)."""
    return [n for n in on_host(sim, host, "ls -A ~").stdout.split() if n.startswith("nepi-")]


def pid_file(sim, host, token, guid):
    pid, start = on_host(sim, host, 'cat "$HOME/nepi-%s/app-%d/pid"' % (token, guid)
                         ).stdout.split()
    return int(pid), start


def gone_on_host(sim, host, pid):
    """No such process on the host, or only its zombie (this container's init may not
    reap orphans)."""
    done = on_host(sim, host, "cat /proc/%d/stat" % pid, check=False)
    return done.returncode != 0 or done.stdout.rsplit(")", 1)[1].split()[0] == "Z"


def live_pids(sim, host):
    """Processes running on the host (zombies waiting for this container's init do not)."""
    found = set()
    for pid in sim.pids(host):
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.add(pid)
        except psutil.Error:
            pass
    return found


def describe(pids):
    described = []
    for pid in sorted(pids):
        try:
            described.append("%d: %s" % (pid, " ".join(psutil.Process(pid).cmdline())))
        except psutil.Error:
            pass
    return described


def nothing_left(sim, hosts, token, baseline):
    """No experiment folder on any host (over SSH) and no process beyond what ran there
    before the experiment (its sshd): applications, sessions and masters are gone."""
    for host in hosts:
        assert not folder_on(sim, host, token), "~/nepi-%s left on %s" % (token, host.name)
        assert wait_until(lambda: live_pids(sim, host) <= baseline[host.name], 10), \
            describe(live_pids(sim, host) - baseline[host.name])


def masters_of(control_dir):
    return [p for p in psutil.process_iter(["cmdline"])
            if control_dir and any(control_dir in a for a in p.info["cmdline"] or [])]


HELLO_C = r"""#include <stdio.h>
int main(void) {
    char line[256];
    if (fgets(line, sizeof line, stdin))
        printf("got: %s", line);
    fprintf(stderr, "bye\n");
    return 0;
}
"""


def make_sources(tmp_path):
    """A folder with a C program, a nested script, a link inside it and one out of it."""
    prog = tmp_path / "prog"
    (prog / "lib").mkdir(parents=True)
    (prog / "hello.c").write_text(HELLO_C)
    (prog / "lib" / "greet.sh").write_text(
        'echo "greetings from $(hostname -I | cut -d" " -f1)"\n')
    os.symlink("hello.c", prog / "link_in")
    os.symlink("/etc/passwd", prog / "link_out")
    notes = tmp_path / "notes.txt"
    notes.write_text("a note\n")
    return prog, notes


# ---------------------------------------------------------------------------------------
# applications, traces, sudo, status and stop
# ---------------------------------------------------------------------------------------

def test_sources_build_dependency_and_stdin_on_three_hosts(sim_hosts, controllers, tmp_path):
    if shutil.which("cc") is None:
        pytest.skip("needs a C compiler (build-essential)")
    sim = sim_hosts(3)
    prog, notes = make_sources(tmp_path)
    tool = tmp_path / "tool.sh"
    tool.write_text("echo tool says hi\n")
    exp, tb, nodes = make_design(sim)
    dep = add_app(tb, nodes[0], None, traces=("buildlog",), factory="Dependency",
                  sources=str(tool), build="echo dep built",
                  install='cp tool.sh "$NEPI_HOME/tool.sh" && echo dep installed')
    apps = []
    for i, node in enumerate(nodes):
        command = ('./hello && bash prog/lib/greet.sh && cat notes.txt && '
                   'test -L prog/link_in && test ! -e prog/link_out && echo links ok')
        if i == 0:
            command += ' && bash "$NEPI_HOME/tool.sh"'
        apps.append(add_app(tb, node, command, traces=("stdout", "stderr", "buildlog"),
                            sources="%s %s" % (prog, notes), stdin="line from h%d\n" % i,
                            build="cc -o hello prog/hello.c && echo built",
                            install="chmod 700 hello"))
    controller = deploy(controllers, exp, tmp_path / "exp")
    for i, (app, host) in enumerate(zip(apps, sim.hosts)):
        assert wait_finished(controller, app.guid, 30)
        expected = "got: line from h%d\ngreetings from %s\na note\nlinks ok\n" % (
            i, host.address) + ("tool says hi\n" if i == 0 else "")
        assert controller.trace(app.guid, "stdout") == expected
        assert controller.trace(app.guid, "stderr") == "bye\n"
        assert controller.trace(app.guid, "buildlog") == "built\n"
    assert controller.trace(dep.guid, "buildlog") == "dep built\ndep installed\n"
    root = root_of(controller)
    controller.stop()
    controller.shutdown()
    # the traces were fetched into the testbed's root dir and stay there
    with open(os.path.join(root, "%d-stdout.trace" % apps[1].guid)) as f:
        assert f.read().startswith("got: line from h1\n")


def test_sudo_and_use_sudo_work_when_the_login_is_root(sim_hosts, controllers, tmp_path):
    """Also: no known_hosts file given, the host key is learnt into the testbed's root
    dir; user and port set on the node itself."""
    sim = sim_hosts(1)
    exp, tb, nodes = make_design(sim, known_hosts=False, useSudo=True, sshUser="nobody",
                                 sshPort=2222)
    nodes[0].set_attribute_value("sshUser", sim.hosts[0].user)
    nodes[0].set_attribute_value("sshPort", sim.hosts[0].port)
    root_app = add_app(tb, nodes[0], "id -u; echo $NEPI_APP", sudo=True,
                       build="id -u > built-as")
    plain = add_app(tb, nodes[0], "cat built-as 2>/dev/null || echo none; pwd")
    controller = deploy(controllers, exp, tmp_path / "exp")
    token = read_record(root_of(controller))["token"]
    assert wait_finished(controller, root_app.guid)
    assert controller.trace(root_app.guid, "stdout") == "0\n%s-%d\n" % (token, root_app.guid)
    assert wait_finished(controller, plain.guid)
    assert controller.trace(plain.guid, "stdout") == "none\n/root/nepi-%s/app-%d\n" % (
        token, plain.guid)
    learnt = subprocess.run(["ssh-keygen", "-F", sim.hosts[0].address, "-f",
                             os.path.join(root_of(controller), "ssh_known_hosts")],
                            capture_output=True, text=True).stdout
    with open(sim.known_hosts) as f:
        real = [line.split()[-1] for line in f if line.startswith(sim.hosts[0].address + " ")]
    assert real and real[0] in learnt
    controller.stop()
    controller.shutdown()


def test_status_and_stop_of_a_whole_process_group(sim_hosts, controllers, tmp_path):
    sim = sim_hosts(1)
    host = sim.hosts[0]
    exp, tb, nodes = make_design(sim)
    long = add_app(tb, nodes[0], "sleep 300 & echo $! > child; sleep 301")
    short = add_app(tb, nodes[0], "sleep 1; echo done")
    controller = deploy(controllers, exp, tmp_path / "exp")
    token = read_record(root_of(controller))["token"]
    assert controller.status(long.guid) == AS.STATUS_RUNNING
    assert controller.status(short.guid) == AS.STATUS_RUNNING
    assert wait_finished(controller, short.guid, 10)
    assert controller.trace(short.guid, "stdout") == "done\n"
    assert on_host(sim, host, 'cat "$HOME/nepi-%s/app-%d/exitcode"' % (token, short.guid)
                   ).stdout == "0\n"
    leader, _ = pid_file(sim, host, token, long.guid)
    child = int(on_host(sim, host, 'cat "$HOME/nepi-%s/app-%d/child"'
                        % (token, long.guid)).stdout)
    assert not gone_on_host(sim, host, leader) and not gone_on_host(sim, host, child)
    assert controller.status(long.guid) == AS.STATUS_RUNNING
    controller.action(long.guid, "stop")
    assert wait_until(lambda: gone_on_host(sim, host, leader) and
                      gone_on_host(sim, host, child), 10)
    assert controller.status(long.guid) == AS.STATUS_FINISHED
    assert controller.is_finished(long.guid)
    controller.stop()
    controller.shutdown()


# ---------------------------------------------------------------------------------------
# shutdown and cleanup
# ---------------------------------------------------------------------------------------

def test_shutdown_kills_everything_and_removes_the_folder_on_every_host(
        sim_hosts, controllers, tmp_path):
    sim = sim_hosts(2)
    baseline = {h.name: live_pids(sim, h) for h in sim.hosts}
    exp, tb, nodes = make_design(sim)
    for node in nodes:
        add_app(tb, node, "sleep 300")
        # a process that leaves the application's session and group: found by its tag
        add_app(tb, node, "setsid sleep 302 < /dev/null > /dev/null 2>&1 & sleep 303")
    controller = deploy(controllers, exp, tmp_path / "exp")
    root = root_of(controller)
    record = read_record(root)
    token, control_dir = record["token"], record["control_dir"]
    assert sorted(record["hosts"]) == sorted(str(n.guid) for n in nodes)
    # the ControlMaster sockets live in a short private directory
    assert os.stat(control_dir).st_mode & 0o777 == 0o700
    assert all(len(os.path.join(control_dir, name)) < 108 for name in os.listdir(control_dir))
    assert masters_of(control_dir)
    for host in sim.hosts:
        assert folder_on(sim, host, token)
        assert wait_until(lambda: len(live_pids(sim, host) - baseline[host.name]) >= 4, 5)
    controller.stop()
    controller.shutdown()
    nothing_left(sim, sim.hosts, token, baseline)
    assert not os.path.exists(os.path.join(root, RECORD_FILE))
    assert not os.path.exists(control_dir)
    assert wait_until(lambda: not masters_of(control_dir), 5)


def test_nepid_clean_removes_an_experiment_by_its_record_alone(sim_hosts, controllers,
                                                                 tmp_path):
    """A controller that vanished: the root dir's cleanup (nepid clean) finds the hosts
    in the testbed's record and removes the experiment from each."""
    from nepi.rpc.cleanup import clean_root
    sim = sim_hosts(2)
    baseline = {h.name: live_pids(sim, h) for h in sim.hosts}
    exp, tb, nodes = make_design(sim)
    for node in nodes:
        add_app(tb, node, "sleep 300")
    controller = deploy(controllers, exp, tmp_path / "exp")
    root = root_of(controller)
    token = read_record(root)["token"]
    report = clean_root(str(tmp_path / "exp"))
    assert report.problems == [], report.problems
    assert not os.path.exists(os.path.join(root, RECORD_FILE))
    nothing_left(sim, sim.hosts, token, baseline)
    controller.shutdown()                  # finds nothing more to do


# ---------------------------------------------------------------------------------------
# hosts that cannot be reached, or are lost
# ---------------------------------------------------------------------------------------

def test_an_unreachable_host_at_deploy_is_named_and_nothing_is_left(sim_hosts, controllers,
                                                                      tmp_path):
    sim = sim_hosts(2)
    baseline = {h.name: live_pids(sim, h) for h in sim.hosts}
    subnet = ipaddress.ip_network(sim.subnet)
    nobody = str(subnet[200])                     # on the bridge, but nobody answers
    exp, tb, nodes = make_design(sim, timeout=3.0)
    dead = add_node(tb, nobody)
    for node in nodes + [dead]:
        add_app(tb, node, "sleep 300")
    began = time.monotonic()
    message = deploy_error(controllers, exp, tmp_path / "exp")
    assert time.monotonic() - began < 20
    assert nobody in message and "node %d" % dead.guid in message, message
    for host in sim.hosts:
        assert experiment_folders(sim, host) == []
        assert wait_until(lambda: live_pids(sim, host) <= baseline[host.name], 10)
    assert not os.path.exists(os.path.join(str(tmp_path / "exp"), RECORD_FILE))


def test_a_host_lost_mid_run_is_reported_by_name(sim_hosts, controllers, tmp_path):
    """Policy Fail: a host dies (its sshd and every process killed, unplugged) while the
    experiment runs; within seconds the experiment fails naming the host, and nothing of
    the experiment stays on the other hosts."""
    sim = sim_hosts(3)
    baseline = {h.name: live_pids(sim, h) for h in sim.hosts}
    exp, tb, nodes = make_design(sim, timeout=4.0)
    tb.set_attribute_value(DC.RECOVERY_POLICY, DC.POLICY_FAIL)
    apps = [add_app(tb, node, "sleep 300") for node in nodes]
    controller = deploy(controllers, exp, tmp_path / "exp")
    token = read_record(root_of(controller))["token"]
    assert [controller.status(a.guid) for a in apps] == [AS.STATUS_RUNNING] * 3
    victim = sim.hosts[1]
    sim.kill_host(victim)
    began = time.monotonic()
    assert wait_until(lambda: controller.state == "failed", 15, 0.2), controller.state
    assert time.monotonic() - began < 15
    message = controller.error
    assert victim.address in message and "node %d" % nodes[1].guid in message, message
    assert "testbed %d" % tb.guid in message and "Fail" in message, message
    others = [sim.hosts[0], sim.hosts[2]]
    nothing_left(sim, others, token, baseline)      # the policy, before any shutdown
    controller.shutdown()
    nothing_left(sim, others, token, baseline)


# ---------------------------------------------------------------------------------------
# recovery
# ---------------------------------------------------------------------------------------

def test_a_new_controller_reattaches_without_restarting(sim_hosts, controllers, tmp_path):
    """The experiment controller is lost (this one simply forgotten); a new one on the
    same root dir with recover=True re-attaches the testbed (Recover policy): the
    application keeps its pid, finished ones their traces."""
    sim = sim_hosts(2)
    baseline = {h.name: live_pids(sim, h) for h in sim.hosts}
    exp, tb, nodes = make_design(sim)
    tb.set_attribute_value(DC.RECOVERY_POLICY, DC.POLICY_RECOVER)
    long = [add_app(tb, node, "sleep 300") for node in nodes]
    short = add_app(tb, nodes[1], "echo hi")
    first = proxy.create_experiment_controller(exp.to_xml(), config(tmp_path / "exp"))
    first.start()
    token = read_record(root_of(first))["token"]
    assert wait_finished(first, short.guid)
    pids = {a.guid: pid_file(sim, h, token, a.guid) for a, h in zip(long, sim.hosts)}
    del first                               # its controller is gone, its hosts are not
    second = proxy.create_experiment_controller(None, config(tmp_path / "exp",
                                                             **{DC.RECOVER: True}))
    controllers.append(second)
    assert second.failed_testbeds() == {}
    for app, host in zip(long, sim.hosts):
        assert second.status(app.guid) == AS.STATUS_RUNNING
        assert pid_file(sim, host, token, app.guid) == pids[app.guid]
        pid, start = pids[app.guid]
        assert not gone_on_host(sim, host, pid)
    assert second.status(short.guid) == AS.STATUS_FINISHED
    assert second.trace(short.guid, "stdout") == "hi\n"
    second.stop()
    assert all(second.status(a.guid) == AS.STATUS_FINISHED for a in long)
    second.shutdown()
    nothing_left(sim, sim.hosts, token, baseline)


def test_recover_policy_after_the_testbed_daemon_is_killed(sim_hosts, nepi_kit, tmp_path):
    """The testbed runs as a daemon; kill -9 it: the watcher starts a new one that
    re-attaches (Recover) -- same application process, status and traces answered."""
    sim = sim_hosts(2)
    baseline = {h.name: live_pids(sim, h) for h in sim.hosts}
    exp, tb, nodes = make_design(sim)
    nepi_kit.daemon_testbed(tb, policy=DC.POLICY_RECOVER)
    apps = [add_app(tb, node, "echo started; sleep 300") for node in nodes]
    controller = nepi_kit.track(proxy.create_experiment_controller(
        exp.to_xml(), config(tmp_path)))
    controller.start()
    token = read_record(str(tmp_path / "testbeds" / "1"))["token"]
    pids = {a.guid: pid_file(sim, h, token, a.guid) for a, h in zip(apps, sim.hosts)}
    dead = nepi_kit.testbed_pid(tmp_path, 1)
    nepi_kit.kill9(dead)
    assert nepi_kit.wait_until(lambda: nepi_kit.testbed_pid(tmp_path, 1) not in (None, dead)
                               and controller.status(1) == TS.STATUS_STARTED, 20)
    assert controller.failed_testbeds() == {}
    for app, host in zip(apps, sim.hosts):
        assert controller.status(app.guid) == AS.STATUS_RUNNING
        assert pid_file(sim, host, token, app.guid) == pids[app.guid]
        assert controller.trace(app.guid, "stdout") == "started\n"
    controller.stop()
    controller.shutdown()
    nothing_left(sim, sim.hosts, token, baseline)


def program(tc, root, sim, command="sleep 300"):
    """A testbed controller programmed directly: node 2+i on host i, app 10+i on it."""
    tc.defer_configure(DC.ROOT_DIRECTORY, str(root))
    tc.defer_configure("sshKey", sim.key)
    tc.defer_configure("sshKnownHosts", sim.known_hosts)
    for i, host in enumerate(sim.hosts):
        tc.defer_create(2 + i, "Node")
        tc.defer_create_set(2 + i, "hostname", host.address)
        tc.defer_create(10 + i, "Application")
        tc.defer_create_set(10 + i, "command", command)
        tc.defer_connect(2 + i, "apps", 10 + i, "node")
        tc.defer_connect(10 + i, "node", 2 + i, "apps")


def deploy_programmed(tc):
    for phase in ("do_setup", "do_create", "do_connect_init", "do_connect_compl",
                  "do_preconfigure", "do_configure", "do_prestart", "start"):
        getattr(tc, phase)()


def test_testbed_recover_then_a_fresh_deployment_over_leftovers(sim_hosts, tmp_path):
    """Testbed controllers used directly: a second one re-attaches (recover) to what a
    first one left; a third, deploying afresh in that root dir, first removes it all."""
    sim = sim_hosts(2)
    made = []

    def controller():
        tc = proxy.build_testbed_controller(TESTBED, "0.1")
        program(tc, tmp_path, sim)
        made.append(tc)
        return tc
    try:
        first = controller()
        deploy_programmed(first)
        token = read_record(str(tmp_path))["token"]
        pids = [pid_file(sim, h, token, 10 + i) for i, h in enumerate(sim.hosts)]
        second = controller()                        # "first" crashed
        second.do_setup()
        second.recover()
        assert second.status() == TS.STATUS_STARTED
        assert [second.status(10 + i) for i in range(2)] == [AS.STATUS_RUNNING] * 2
        third = controller()                         # a new run in the same root dir
        deploy_programmed(third)
        assert read_record(str(tmp_path))["token"] == token
        for i, host in enumerate(sim.hosts):
            assert wait_until(lambda: gone_on_host(sim, host, pids[i][0]), 10)
            assert pid_file(sim, host, token, 10 + i) != pids[i]
        assert [third.status(10 + i) for i in range(2)] == [AS.STATUS_RUNNING] * 2
        third.stop()
        third.shutdown()
        assert not os.path.exists(str(tmp_path / RECORD_FILE))
        for host in sim.hosts:
            assert experiment_folders(sim, host) == []
    finally:
        for tc in reversed(made):
            tc.shutdown()


# ---------------------------------------------------------------------------------------
# packages
# ---------------------------------------------------------------------------------------

def test_depends_installed_packages_pass_missing_ones_are_named(sim_hosts, controllers,
                                                                  tmp_path):
    sim = sim_hosts(1)
    exp, tb, nodes = make_design(sim)
    add_app(tb, nodes[0], "true", depends="bash coreutils")
    controller = deploy(controllers, exp, tmp_path / "ok")
    controller.stop()
    controller.shutdown()
    exp, tb, nodes = make_design(sim)
    add_app(tb, nodes[0], "true", depends="bash nepi-no-such-package")
    controller = proxy.create_experiment_controller(exp.to_xml(), config(tmp_path / "bad"))
    controllers.append(controller)
    with pytest.raises(NepiError) as raised:
        controller.start()
    message = str(raised.value)
    assert "nepi-no-such-package" in message and sim.hosts[0].address in message, message
    assert experiment_folders(sim, sim.hosts[0]) == []


def test_a_failed_build_names_host_and_element_and_is_rolled_back(sim_hosts, controllers,
                                                                   tmp_path):
    sim = sim_hosts(2)
    exp, tb, nodes = make_design(sim)
    add_app(tb, nodes[0], "sleep 300", build="true")
    bad = add_app(tb, nodes[1], "true", build="echo compiling; echo oops >&2; exit 3")
    message = deploy_error(controllers, exp, tmp_path / "exp")
    assert "build of element %d (Application) failed" % bad.guid in message, message
    assert sim.hosts[1].address in message and "compiling" in message and "oops" in message
    for host in sim.hosts:
        assert experiment_folders(sim, host) == []


# ---------------------------------------------------------------------------------------
# values from design files
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("hostname", ["bad host", "-oProxyCommand=touch /tmp/x", "a;b",
                                      "$(touch x)", "h`id`", "h\nx", ""])
def test_a_bad_hostname_is_refused_when_set(hostname):
    exp = ExperimentDescription()
    tb = exp.add_testbed_description(FactoriesProvider(TESTBED))
    node = tb.create("Node")
    with pytest.raises(AttributeValueError) as raised:
        node.set_attribute_value("hostname", hostname)
    assert "element %d (Node)" % node.guid in str(raised.value)
    assert "hostname" in str(raised.value)


@pytest.mark.parametrize("name, value", [("sshUser", "-oProxyCommand=x"),
                                         ("sshKey", "/tmp/a key"),
                                         ("sshKnownHosts", "/tmp/%h"),
                                         ("sshPort", 0)])
def test_bad_ssh_settings_are_refused_when_set(name, value):
    tb = ExperimentDescription().add_testbed_description(FactoriesProvider(TESTBED))
    with pytest.raises(AttributeValueError) as raised:
        tb.set_attribute_value(name, value)
    assert name in str(raised.value)


def test_bad_packages_are_refused_when_set():
    tb = ExperimentDescription().add_testbed_description(FactoriesProvider(TESTBED))
    app = tb.create("Application")
    with pytest.raises(AttributeValueError):
        app.set_attribute_value("depends", "gcc; rm -rf /")


def test_a_bad_hostname_in_a_design_file_stops_everything_before_deploying(tmp_path):
    exp = ExperimentDescription()
    tb = exp.add_testbed_description(FactoriesProvider(TESTBED))
    node = add_node(tb, "placeholder.example")
    add_app(tb, node, "true")
    marker = tmp_path / "pwned"
    xml = exp.to_xml().replace('value="placeholder.example"',
                               'value="-oProxyCommand=touch %s"' % marker)
    with pytest.raises(DesignError) as raised:
        proxy.create_experiment_controller(xml, config(tmp_path / "exp"))
    message = str(raised.value)
    assert "element %d" % node.guid in message and "hostname" in message, message
    assert not marker.exists()
    assert not os.path.exists(str(tmp_path / "exp" / RECORD_FILE))


def test_missing_sources_are_named_before_any_host_is_touched(sim_hosts, controllers,
                                                               tmp_path):
    sim = sim_hosts(1)
    exp, tb, nodes = make_design(sim)
    app = add_app(tb, nodes[0], "true", sources=str(tmp_path / "nothing-here"))
    message = deploy_error(controllers, exp, tmp_path / "exp")
    assert "element %d (Application), attribute 'sources'" % app.guid in message, message
    assert experiment_folders(sim, sim.hosts[0]) == []


def test_sources_never_follow_links_out_of_their_tree(tmp_path):
    prog, _ = make_sources(tmp_path)
    os.mkfifo(str(prog / "fifo"))
    (prog / "setuid").write_text("x")
    os.chmod(str(prog / "setuid"), 0o4755)
    stream = io.BytesIO()
    transfer.write_tar(stream, [str(prog)], "in\n")
    stream.seek(0)
    with tarfile.open(fileobj=stream) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["prog", "prog/hello.c", "prog/lib", "prog/lib/greet.sh",
                               "prog/link_in", "prog/setuid", "stdin"]
    assert members["prog/link_in"].issym() and members["prog/link_in"].linkname == "hello.c"
    assert stat.S_IMODE(members["prog/setuid"].mode) == 0o755
    assert transfer.source_problems([str(prog), str(tmp_path / "notes.txt"),
                                     str(tmp_path / "stdout")]) == \
        ["%s does not exist" % (tmp_path / "stdout")]
