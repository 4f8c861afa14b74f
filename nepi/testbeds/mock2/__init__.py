from nepi.testbeds.mock2.constants import TESTBED_ID, TESTBED_VERSION  # noqa: F401
