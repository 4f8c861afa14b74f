"""Applications inherit nothing of the controller's process they do not need (issue 11,
point 5).

An application with ``user`` starts with a login's environment for that user (PATH, HOME,
USER, LOGNAME, SHELL from its passwd entry, LANG) plus what the design sets, and nothing of
root's; every application, demoted or not, holds only fds 0-2 (no namespace fd, netlink
or RPC socket, TAP device or log). Each test runs a real application that prints ``env``
and lists /proc/self/fd into its stdout trace, in-process and inside a testbed daemon.
"""

import os
import pwd
import re
import uuid

import pytest

if os.geteuid() != 0:
    pytest.skip("applications run in network namespaces: needs root",
                allow_module_level=True)

from nepi.testbeds.netns.apps import DEMOTED_PATH  # noqa: E402
from nepi.util import proxy  # noqa: E402
from nepi.util.constants import DeploymentConfiguration as DC  # noqa: E402

import netns_experiments as nx  # noqa: E402
from helpers import wait_finished  # noqa: E402

pytestmark = pytest.mark.usefixtures("netns_leftovers")

PROBE = "env; echo --fds--; ls -l /proc/self/fd/"
# what bash itself exports to the commands it runs
SHELL_ADDED = {"PWD", "SHLVL", "_", "OLDPWD"}
MODES = ["in-process", "daemon"]


@pytest.fixture
def leak(monkeypatch):
    """A variable only the controller's own environment has."""
    name = "NEPI_TEST_LEAK_%s" % uuid.uuid4().hex[:8].upper()
    monkeypatch.setenv(name, "root's environment")
    return name


def run_probe(root, mode, **app_attrs):
    """Run PROBE as application 6 of the p2p design, with an in-process controller whose
    root dir is ``root``; (environment, {fd: target})."""
    exp_desc, b = nx.make_p2p(command=PROBE, **app_attrs)
    if mode == "daemon":
        nx.as_daemon(b["desc"])
    config = proxy.AccessConfiguration({DC.ROOT_DIRECTORY: str(root)})
    controller = proxy.create_experiment_controller(exp_desc.to_xml(), config)
    try:
        controller.start()
        assert wait_finished(controller, 6), "the probe never finished"
        out = controller.trace(6, "stdout")
        controller.stop()
    finally:
        controller.shutdown()
    env_text, _, fd_text = out.partition("--fds--\n")
    env = dict(line.split("=", 1) for line in env_text.splitlines() if "=" in line)
    fds = {}
    for line in fd_text.splitlines():
        words = line.split()
        if "->" in words:
            arrow = words.index("->")
            fds[int(words[arrow - 1])] = " ".join(words[arrow + 1:])
    # ls's own handle on the directory it lists
    own = [fd for fd, target in fds.items() if re.fullmatch(r"/proc/\d+/fd", target)]
    assert len(own) == 1, fd_text
    del fds[own[0]]
    return env, fds


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lang", [None, "fr_FR.UTF-8"])
def test_demoted_application_gets_a_login_environment_and_no_fds(tmp_path, mode, lang, leak,
                                                                  monkeypatch):
    if lang is None:
        monkeypatch.delenv("LANG", raising=False)
    else:
        monkeypatch.setenv("LANG", lang)
    env, fds = run_probe(tmp_path, mode, user="nobody",
                         environment="DESIGN_VAR='set by the design'")
    pw = pwd.getpwnam("nobody")
    assert leak not in env
    assert set(env) - SHELL_ADDED == {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG",
                                      "DESIGN_VAR"}, env
    assert {k: env[k] for k in ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG",
                                "DESIGN_VAR")} == {
        "PATH": DEMOTED_PATH, "HOME": pw.pw_dir, "USER": "nobody", "LOGNAME": "nobody",
        "SHELL": pw.pw_shell, "LANG": lang or "C.UTF-8", "DESIGN_VAR": "set by the design"}
    assert sorted(fds) == [0, 1, 2], fds


@pytest.mark.parametrize("mode", MODES)
def test_root_application_keeps_its_environment_but_no_fds(tmp_path, mode, leak):
    env, fds = run_probe(tmp_path, mode, environment="DESIGN_VAR=yes")
    assert env[leak] == "root's environment"       # as before: the design file is code
    assert env["DESIGN_VAR"] == "yes"
    assert sorted(fds) == [0, 1, 2], fds
