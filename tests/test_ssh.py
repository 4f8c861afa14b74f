"""Daemons launched over SSH and reached through an SSH-forwarded Unix socket, against a
real sshd started on a spare port with throwaway keys."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from helpers import wait_until
from mock_experiments import PING_TEXT, make_test_experiment
from nepi.util import proxy
from nepi.util.constants import DeploymentConfiguration as DC

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
REPO = str(Path(__file__).resolve().parents[1])

pytestmark = pytest.mark.skipif(SSHD is None or shutil.which("ssh") is None,
                                reason="openssh-server/client not installed "
                                       "(the Makefile installs them)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path, monkeypatch):
    d = tmp_path / "ssh"
    d.mkdir(mode=0o700)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                       check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    port = _free_port()
    config = d / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress 127.0.0.1:%d" % port, "HostKey %s" % (d / "host_key"),
        "AuthorizedKeysFile %s" % (d / "authorized_keys"), "PidFile %s" % (d / "sshd.pid"),
        "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "PermitRootLogin yes", "StrictModes no", "UsePAM no",
        "AllowStreamLocalForwarding yes", "AllowAgentForwarding yes", ""]))
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                            stderr=open(d / "sshd.log", "w"))
    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False
    assert wait_until(listening, 10, 0.05), (d / "sshd.log").read_text()
    monkeypatch.setenv("NEPI_SSH_OPTIONS", "-o UserKnownHostsFile=%s" % (d / "known_hosts"))
    monkeypatch.setenv("NEPI_REMOTE_PYTHON", sys.executable)
    yield {"port": port, "key": str(d / "client_key")}
    proc.terminate()
    proc.wait(5)


def _ssh_settings(target, sshd, root):
    target.set_attribute_value(DC.DEPLOYMENT_MODE, DC.MODE_DAEMON)
    target.set_attribute_value(DC.DEPLOYMENT_COMMUNICATION, DC.ACCESS_SSH)
    target.set_attribute_value(DC.DEPLOYMENT_HOST, "localhost")
    target.set_attribute_value(DC.DEPLOYMENT_USER, "root" if os.geteuid() == 0
                               else os.environ.get("USER", "root"))
    target.set_attribute_value(DC.DEPLOYMENT_PORT, sshd["port"])
    target.set_attribute_value(DC.DEPLOYMENT_KEY, sshd["key"])
    target.set_attribute_value(DC.ROOT_DIRECTORY, str(root))
    target.set_attribute_value(DC.DEPLOYMENT_ENVIRONMENT_SETUP,
                               "export PYTHONPATH=%s:$PYTHONPATH" % REPO)


def _nepi_processes(root):
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(root) in cmd and ("daemon_main" in cmd or "ssh" in cmd.split()[0:1]):
            found.append(cmd)
    return found


def _check_experiment(controller):
    assert wait_until(lambda: controller.is_finished(6), 30)
    assert controller.trace(6, "fake").startswith(PING_TEXT)
    assert controller.get_testbed_id(2) == "mock"
    assert controller.get_testbed_version(2) == "0.1"
    assert controller.get_factory_id(2) == "Node"


def test_testbed_daemon_over_ssh(sshd, tmp_path):
    exp, desc, *_ = make_test_experiment()
    _ssh_settings(desc, sshd, tmp_path / "remote-testbed")
    controller = proxy.create_experiment_controller(exp.to_xml(), None,
                                                      allowed_roots=[str(tmp_path)])
    try:
        controller.start()
        _check_experiment(controller)
        summary = controller.testbeds_summary()[0]
        assert summary["mode"] == "daemon" and summary["pid"]
        assert psutil.pid_exists(summary["pid"])
        # reached through a forwarded socket in a private local directory
        record = controller._testbeds[1].record
        assert record["uri"] != record["remote_uri"]
        local_dir = os.path.dirname(record["uri"].split("./u:", 1)[1])
        assert os.stat(local_dir).st_mode & 0o777 == 0o700
        controller.stop()
    finally:
        controller.shutdown()
    assert wait_until(lambda: not _nepi_processes(tmp_path / "remote-testbed"), 10), \
        _nepi_processes(tmp_path / "remote-testbed")


def test_experiment_controller_over_ssh(sshd, tmp_path):
    exp, desc, *_ = make_test_experiment()
    config = proxy.AccessConfiguration()
    _ssh_settings(config, sshd, tmp_path / "remote-ec")
    controller = proxy.create_experiment_controller(exp.to_xml(), config)
    try:
        controller.start()
        _check_experiment(controller)
        assert controller.traces_info()[1][6]["fake"]["filepath"] == "<test>"
        controller.stop()
    finally:
        controller.shutdown()
    assert wait_until(lambda: not _nepi_processes(tmp_path / "remote-ec"), 10), \
        _nepi_processes(tmp_path / "remote-ec")
    assert not (tmp_path / "remote-ec" / "nepid.pid").exists()


def test_wrong_key_is_a_clear_error(sshd, tmp_path):
    exp, desc, *_ = make_test_experiment()
    _ssh_settings(desc, sshd, tmp_path / "remote-bad")
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    desc.set_attribute_value(DC.DEPLOYMENT_KEY, str(other))
    controller = proxy.create_experiment_controller(exp.to_xml(), None,
                                                      allowed_roots=[str(tmp_path)])
    with pytest.raises(Exception, match="ssh root@localhost:%d failed" % sshd["port"]):
        controller.start()
    controller.shutdown()
