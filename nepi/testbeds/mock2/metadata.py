"""Metadata of NEPI 2's ``mock2`` test testbed."""

from nepi.testbeds import mockbase
from nepi.testbeds.mock2.constants import TESTBED_ID


class MetadataInfo(mockbase.MockMetadataInfo):
    TESTBED_ID = TESTBED_ID
    OTHER_ID = "mock"
    CROSS_COMPL = staticmethod(mockbase.connect_cross_copy)
