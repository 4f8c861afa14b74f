from nepi.testbeds.mock.constants import TESTBED_ID, TESTBED_VERSION
from nepi.testbeds.mockbase import MockTestbedController


class TestbedController(MockTestbedController):
    TESTBED_ID = TESTBED_ID
    TESTBED_VERSION = TESTBED_VERSION
