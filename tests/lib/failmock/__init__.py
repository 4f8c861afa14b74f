"""Test-only testbed ``failmock`` (see metadata.py): NEPI 2's mock with fault injection.

``REGISTRY`` records, in order, ("created" | "shutdown", controller) for every failmock
controller; tests reset it with ``REGISTRY.clear()``.
"""

from nepi.core import testbed_impl
from nepi.testbeds.mockbase import MockTestbedController

from failmock.constants import TESTBED_ID, TESTBED_VERSION

REGISTRY = []


class TestbedController(MockTestbedController):
    TESTBED_ID = TESTBED_ID
    TESTBED_VERSION = TESTBED_VERSION

    def __init__(self):
        super().__init__()
        self.log = []            # (phase, guid...) in execution order
        self.cross_log = []      # (guid, peer testbed guid, peer guid)
        self.connect_tries = {}
        self.shut_down = False
        REGISTRY.append(("created", self))

    def do_configure(self):
        # unlike mock, run the configure functions (so a configure failure can be injected)
        testbed_impl.TestbedController.do_configure(self)

    def shutdown(self):
        self.shut_down = True
        REGISTRY.append(("shutdown", self))
        if self._testbed_attribute("failPhase") == "shutdown":
            raise RuntimeError("injected shutdown failure")
