"""The ns3 testbed: NEPI 2's ns-3 factories on the ns3 wheel (ns-3 3.44).

ns-3 allows one simulator per process, so the real controller
(``DaemonTestbedController``, nepi.testbeds.ns3.execute) runs inside a testbed daemon; the
``TestbedController`` used in SINGLE mode (nepi.testbeds.ns3.single) starts a private
daemon for it. Importing this package does not import ns-3, nor the controllers until one
is asked for (a testbed daemon needs only the first, ``python -m nepi.testbeds.ns3.shim``
neither).
"""

from nepi.testbeds.ns3.constants import TESTBED_ID, TESTBED_VERSION

__all__ = ["TESTBED_ID", "TESTBED_VERSION", "DaemonTestbedController", "TestbedController",
           "cleanup"]


def __getattr__(name: str):
    if name == "DaemonTestbedController":
        from nepi.testbeds.ns3.execute import DaemonTestbedController
        return DaemonTestbedController
    if name in ("TestbedController", "cleanup"):
        from nepi.testbeds.ns3 import single
        return getattr(single, name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
