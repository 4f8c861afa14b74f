"""The netns testbed: nodes are Linux network namespaces (see execute.py)."""

from nepi.testbeds.netns.constants import TESTBED_ID, TESTBED_VERSION  # noqa: F401


def __getattr__(name):
    # The controller pulls in pyroute2; load it only when a deployment needs it.
    if name == "TestbedController":
        from nepi.testbeds.netns.execute import TestbedController
        return TestbedController
    if name == "cleanup":
        from nepi.testbeds.netns.execute import cleanup
        return cleanup
    raise AttributeError(name)
