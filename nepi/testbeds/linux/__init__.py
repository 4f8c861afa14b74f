"""The linux testbed: each Node is a Linux host reached over OpenSSH, running NEPI 2
PlanetLab-style applications (sources, build, install, depends, stdin) detached in a
per-experiment folder of the SSH user's home (see execute.py)."""

from nepi.testbeds.linux.constants import TESTBED_ID, TESTBED_VERSION  # noqa: F401


def __getattr__(name):
    # the controller is only needed to deploy; importing the package stays cheap
    if name == "TestbedController":
        from nepi.testbeds.linux.execute import TestbedController
        return TestbedController
    if name == "cleanup":
        from nepi.testbeds.linux.execute import cleanup
        return cleanup
    raise AttributeError(name)
