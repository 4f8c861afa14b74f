"""Metadata of NEPI 2's ``mock`` test testbed."""

from nepi.testbeds import mockbase
from nepi.testbeds.mock.constants import TESTBED_ID
from nepi.util import tags


class MetadataInfo(mockbase.MockMetadataInfo):
    TESTBED_ID = TESTBED_ID
    OTHER_ID = "mock2"
    NODE_TAGS = [tags.MOBILE, tags.NODE, tags.ALLOW_ROUTES]
    INTERFACE_FACTORY_ATTRIBUTES = ["fake", "maxAddresses"]
    CROSS_INIT = staticmethod(mockbase.connect_cross_true)
