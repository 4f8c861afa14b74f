"""Experiment builders shared by the execution tests (NEPI 2's test/core/integration.py
helpers, daemons-and-tests.md 8.1), the README's mock design, and running ``nepi`` /
``nepid`` from this checkout. Waiting, killing and leftover checks are in helpers.py.

A plain module, not a test file: pytest's default "prepend" import mode puts tests/ on
sys.path, so test files simply ``import mock_experiments``.

Guids (one generator per ExperimentDescription):

    single testbed:        desc 1, node1 2, node2 3, iface1 4, iface2 5, app 6
    cross experiment:      mock part as above; mock2 desc 7, node1 8, node2 9,
                           iface1 10, iface2 11, app 12
"""

import importlib.util
import os
import subprocess
import sys

from nepi.core.design import ExperimentDescription, FactoriesProvider

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README_EXAMPLE = os.path.join(REPO, "examples", "mock_design.py")


def cli_env() -> dict:
    """The environment for running nepi's commands from this checkout (even if another
    one is installed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    return env


def run_module(module, *args, cwd=None, timeout=120) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS...`` from this checkout in a subprocess (text output)."""
    return subprocess.run([sys.executable, "-m", module] + [str(a) for a in args],
                          cwd=None if cwd is None else str(cwd), env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def nepid_command(*args, timeout=120) -> subprocess.CompletedProcess:
    """``nepid ARGS...`` in a subprocess (output captured as text)."""
    return run_module("nepi.cli.nepid_cmd", *args, timeout=timeout)


def nepi_command(*args, cwd, timeout=120) -> subprocess.CompletedProcess:
    """``nepi ARGS...`` in a subprocess run in ``cwd`` (output captured as text)."""
    return run_module("nepi.cli.nepi_cmd", *args, cwd=cwd, timeout=timeout)


def write_readme_design(path, daemons=(), setup=None):
    """The README's mock example (examples/mock_design.py) written to ``path``, with the
    testbeds of guids ``daemons`` run as daemons (environment setup ``setup``)."""
    spec = importlib.util.spec_from_file_location("mock_design_example", README_EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exp = module.build()
    for tb in exp.testbed_descriptions:
        if tb.guid in daemons:
            tb.set_attribute_value("deployment_mode", "DAEMON")
            if setup is not None:
                tb.set_attribute_value("deployment_environment_setup", setup)
    path.write_text(exp.to_xml(), encoding="utf-8")
    return path

# The 4-line trace every mock Application returns (daemons-and-tests.md 7.6).
PING_TEXT = ("PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n"
             "\n"
             "--- 10.0.0.2 ping statistics ---\n"
             "1 packets transmitted, 1 received, 0% packet loss, time 0ms\n")


def make_testbed(exp_desc, testbed_id):
    """One testbed: two nodes, one interface each, linked; an app with trace "fake".

    Returns (exp_desc, desc, app, node1, node2, iface1, iface2)."""
    provider = FactoriesProvider(testbed_id)
    desc = exp_desc.add_testbed_description(provider)
    desc.set_attribute_value("fake", True)
    node1 = desc.create("Node")
    node2 = desc.create("Node")
    iface1 = desc.create("Interface")
    iface1.set_attribute_value("fake", True)
    node1.connector("devs").connect(iface1.connector("node"))
    iface2 = desc.create("Interface")
    iface2.set_attribute_value("fake", True)
    node2.connector("devs").connect(iface2.connector("node"))
    iface1.connector("iface").connect(iface2.connector("iface"))
    app = desc.create("Application")
    app.connector("node").connect(node1.connector("apps"))
    app.enable_trace("fake")
    return exp_desc, desc, app, node1, node2, iface1, iface2


def make_test_experiment(testbed_id="mock"):
    """Returns (exp_desc, desc, app, node1, node2, iface1, iface2) with guids 1..6."""
    return make_testbed(ExperimentDescription(), testbed_id)


def make_cross_test_experiment():
    """mock (guids 1-6) and mock2 (7-12); mock iface2 (5) cross <-> mock2 iface1 (10).

    Returns (exp_desc, desc1, desc2, iface12, iface21)."""
    exp_desc = ExperimentDescription()
    (exp_desc, desc1, app1, node11, node12, iface11, iface12) = make_testbed(exp_desc, "mock")
    (exp_desc, desc2, app2, node21, node22, iface21, iface22) = make_testbed(exp_desc, "mock2")
    iface12.connector("cross").connect(iface21.connector("cross"))
    return exp_desc, desc1, desc2, iface12, iface21
