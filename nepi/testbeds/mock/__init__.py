from nepi.testbeds.mock.constants import TESTBED_ID, TESTBED_VERSION  # noqa: F401
