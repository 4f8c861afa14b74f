"""The ns3 testbed: NEPI 2's ns-3 factories on the ns3 wheel (ns-3 3.44).

ns-3 allows one simulator per process, so the real controller
(``DaemonTestbedController``, nepi.testbeds.ns3.execute) runs inside a testbed daemon; the
``TestbedController`` used in SINGLE mode (nepi.testbeds.ns3.single) starts a private
daemon for it. Importing this package does not import ns-3.
"""

from nepi.testbeds.ns3.constants import TESTBED_ID, TESTBED_VERSION
from nepi.testbeds.ns3.execute import DaemonTestbedController
from nepi.testbeds.ns3.single import TestbedController, cleanup

__all__ = ["TESTBED_ID", "TESTBED_VERSION", "DaemonTestbedController", "TestbedController",
           "cleanup"]
