"""Metadata of the test-only ``failmock`` testbed: NEPI 2's mock plus fault injection.

Extra testbed attributes:
  failPhase     "" (no failure) or the phase in which element ``failGuid`` raises
                RuntimeError("injected failure"): create, connect, preconfigure,
                configure, prestart, start, cross; "shutdown" makes the
                controller's shutdown() raise (after recording the call)
  failGuid      the element that fails (0: none)
  delayConnect  how many times each Node->Interface connection asks to be retried
                (returns CONNECTION_DELAY) before succeeding

Extra box attribute ``number`` (INTEGER) on every factory, for netref conversion tests.
The ``cross`` connector is unlimited and connects failmock Interfaces across testbeds;
every cross connection made is logged in the controller's ``cross_log``.

Orders are class attributes so a test can monkeypatch them (Parallel entries, factories
left out of an order list).
"""

from nepi.core.attributes import Attribute
from nepi.testbeds import mockbase
from nepi.testbeds.mockbase import APP, IFACE, NODE
from nepi.util import tags, validation
from nepi.util.constants import CONNECTION_DELAY

from failmock.constants import TESTBED_ID

PHASES = ["", "create", "connect", "preconfigure", "configure", "prestart", "start", "cross",
          "shutdown"]

INJECTED = "injected failure"


def maybe_fail(testbed, phase, *guids):
    if testbed._testbed_attribute("failPhase") == phase and \
            testbed._testbed_attribute("failGuid") in guids:
        raise RuntimeError(INJECTED)


def create(testbed, guid):
    maybe_fail(testbed, "create", guid)
    testbed.elements[guid] = testbed._create[guid]
    testbed.log.append(("create", guid))


def _phase_function(phase):
    def fn(testbed, guid):
        maybe_fail(testbed, phase, guid)
        testbed.log.append((phase, guid))
    fn.__name__ = phase + "_function"
    return fn


def connect_node_iface(testbed, node_guid, iface_guid):
    maybe_fail(testbed, "connect", node_guid, iface_guid)
    key = (node_guid, iface_guid)
    tries = testbed.connect_tries.get(key, 0) + 1
    testbed.connect_tries[key] = tries
    if tries <= testbed._testbed_attribute("delayConnect"):
        return CONNECTION_DELAY
    testbed.log.append(("connect", node_guid, iface_guid))
    return None


def connect_cross(testbed, guid, cross_data):
    maybe_fail(testbed, "cross", guid)
    testbed.cross_log.append((guid, cross_data["_testbed_guid"], cross_data["_guid"]))
    testbed.set(guid, "cross", True)


CONNECTOR_TYPES = dict(mockbase.CONNECTOR_TYPES)
CONNECTOR_TYPES["cross"] = dict(CONNECTOR_TYPES["cross"], max=-1)

ATTRIBUTES = dict(mockbase.ATTRIBUTES)
ATTRIBUTES["number"] = dict(name="number", help="an integer", type=Attribute.INTEGER,
                            value=0, validation_function=validation.is_integer)

TESTBED_ATTRIBUTES = dict(mockbase.TESTBED_ATTRIBUTES)
TESTBED_ATTRIBUTES.update({
    "failPhase": dict(name="failPhase", help="phase in which failGuid fails",
                      type=Attribute.STRING, value="",
                      validation_function=lambda attr, v: v in PHASES),
    "failGuid": dict(name="failGuid", help="element that fails", type=Attribute.INTEGER,
                     value=0, validation_function=validation.is_integer),
    "delayConnect": dict(name="delayConnect", help="connection retries requested",
                         type=Attribute.INTEGER, value=0,
                         validation_function=validation.is_integer),
})


class MetadataInfo(mockbase.MockMetadataInfo):
    TESTBED_ID = TESTBED_ID
    OTHER_ID = TESTBED_ID
    NODE_TAGS = [tags.NODE, tags.ALLOW_ROUTES]
    INTERFACE_FACTORY_ATTRIBUTES = ["fake"]
    CROSS_INIT = staticmethod(connect_cross)
    CREATE_ORDER = [NODE, IFACE, APP]
    CONFIGURE_ORDER = [NODE, IFACE, APP]

    @property
    def connector_types(self):
        return CONNECTOR_TYPES

    @property
    def connections(self):
        conns = super().connections
        conns[0] = dict(conns[0], init_code=connect_node_iface)   # Node.devs -> Iface.node
        return conns

    @property
    def attributes(self):
        return ATTRIBUTES

    @property
    def create_order(self):
        return list(self.CREATE_ORDER)

    @property
    def configure_order(self):
        return list(self.CONFIGURE_ORDER)

    @property
    def factories_info(self):
        info = super().factories_info
        for finfo in info.values():
            finfo["create_function"] = create
            finfo["box_attributes"] = finfo["box_attributes"] + ["number"]
            for phase in ("preconfigure", "configure", "prestart", "start"):
                finfo[phase + "_function"] = _phase_function(phase)
        return info

    @property
    def testbed_attributes(self):
        return TESTBED_ATTRIBUTES
