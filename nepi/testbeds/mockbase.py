"""Shared definition of NEPI 2's test testbeds ``mock`` and ``mock2``.

The two differ only in their id, the Node tags, whether Interface overrides maxAddresses,
and on which side (init or completion) their cross-connection code runs.
"""

import functools

from nepi.core import metadata, testbed_impl
from nepi.core.attributes import Attribute
from nepi.util import tags, validation
from nepi.util.constants import ApplicationStatus as AS

PING_TEXT = ("PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n"
             "\n"
             "--- 10.0.0.2 ping statistics ---\n"
             "1 packets transmitted, 1 received, 0% packet loss, time 0ms\n")

NODE = "Node"
IFACE = "Interface"
APP = "Application"


def create_element(testbed_instance, guid):
    testbed_instance.elements[guid] = testbed_instance._create[guid]


def status_application(testbed_instance, guid):
    return AS.STATUS_FINISHED


def connect_cross_true(testbed_instance, guid, cross_data):
    """mock: mark the interface as cross-connected (runs at cross-connect init)."""
    testbed_instance.set(guid, "cross", True)


def connect_cross_copy(testbed_instance, guid, cross_data):
    """mock2: copy the peer's ``cross`` value (runs at cross-connect completion)."""
    testbed_instance.set(guid, "cross", cross_data["cross"])


CONNECTOR_TYPES = {
    "apps": dict(name="apps", help="Connector from node to applications", max=-1, min=0),
    "devs": dict(name="devs", help="Connector from node to network interfaces", max=-1,
                 min=0),
    "node": dict(name="node", help="Connector to a Node", max=1, min=1),
    "iface": dict(name="iface", help="Connector to a Interface", max=1, min=0),
    "cross": dict(name="cross", help="Connector to an Interface in other testbed", max=1,
                  min=0),
}

ATTRIBUTES = {
    "fake": dict(name="fake", help="fake attribute", type=Attribute.BOOL, value=False,
                 validation_function=validation.is_bool),
    "test": dict(name="test", help="test attribute", type=Attribute.STRING,
                 validation_function=validation.is_string),
    "cross": dict(name="cross", help="Attribute that indicates if cross connection was performed",
                  type=Attribute.BOOL, value=False, validation_function=validation.is_bool),
    "maxAddresses": dict(name="maxAddresses",
                         help="Attribute that indicates the maximum number of addresses "
                              "for an interface",
                         type=Attribute.INTEGER, value=3,
                         flags=Attribute.DesignReadOnly | Attribute.ExecInvisible
                         | Attribute.Metadata,
                         validation_function=validation.is_integer),
}

TRACES = {"fake": dict(name="fake", help="fake trace")}

TESTBED_ATTRIBUTES = {
    "fake": dict(name="fake", help="fake attribute", type=Attribute.BOOL, value=False,
                 validation_function=validation.is_bool),
    "test": dict(name="test", help="test attribute", type=Attribute.STRING,
                 validation_function=validation.is_string),
}


class MockMetadataInfo(metadata.MetadataInfo):
    TESTBED_ID = None
    OTHER_ID = None
    NODE_TAGS = [tags.NODE, tags.ALLOW_ROUTES]
    INTERFACE_FACTORY_ATTRIBUTES = ["fake"]
    CROSS_INIT = None
    CROSS_COMPL = None

    @property
    def testbed_id(self):
        return self.TESTBED_ID

    @property
    def testbed_version(self):
        return "0.1"

    @property
    def connector_types(self):
        return CONNECTOR_TYPES

    @property
    def connections(self):
        tid = self.TESTBED_ID
        return [
            dict(to=(tid, IFACE, "node"), can_cross=False, **{"from": (tid, NODE, "devs")}),
            dict(to=(tid, IFACE, "iface"), can_cross=False, **{"from": (tid, IFACE, "iface")}),
            dict(to=(tid, APP, "node"), can_cross=False, **{"from": (tid, NODE, "apps")}),
            dict(to=(self.OTHER_ID, IFACE, "cross"), can_cross=True,
                 init_code=self.CROSS_INIT, compl_code=self.CROSS_COMPL,
                 **{"from": (tid, IFACE, "cross")}),
        ]

    @property
    def attributes(self):
        return ATTRIBUTES

    @property
    def traces(self):
        return TRACES

    @property
    def create_order(self):
        return [NODE, IFACE, APP]

    @property
    def configure_order(self):
        return [NODE, IFACE, APP]

    @property
    def factories_info(self):
        create = functools.partial(create_element)
        return {
            NODE: dict(help="Fake node", category="topology", create_function=create,
                       box_attributes=["fake", "test"], tags=list(self.NODE_TAGS),
                       connector_types=["devs", "apps"]),
            IFACE: dict(help="Fake iface", category="devices", create_function=create,
                        factory_attributes=list(self.INTERFACE_FACTORY_ATTRIBUTES),
                        box_attributes=["fake", "test", "cross"],
                        tags=[tags.INTERFACE, tags.ALLOW_ADDRESSES],
                        connector_types=["node", "iface", "cross"]),
            APP: dict(help="Fake application", category="applications",
                      create_function=create, status_function=status_application,
                      box_attributes=["fake", "test"], tags=[tags.APPLICATION],
                      connector_types=["node"], traces=["fake"]),
        }

    @property
    def testbed_attributes(self):
        return TESTBED_ATTRIBUTES


class MockTestbedController(testbed_impl.TestbedController):
    """NEPI 2's mock controller: canned ping trace, no-op configure and shutdown."""

    TESTBED_ID = None
    TESTBED_VERSION = "0.1"

    def __init__(self) -> None:
        super().__init__(self.TESTBED_ID, self.TESTBED_VERSION)

    def do_configure(self) -> None:
        # deliberately a no-op, as in NEPI 2 (the status stays CONNECTED until cross-connect)
        pass

    def trace(self, guid, trace_id, attribute="value"):
        return {"value": PING_TEXT, "path": "<test>"}.get(attribute)

    def action(self, time, guid, action):
        raise NotImplementedError

    def shutdown(self) -> None:
        pass
