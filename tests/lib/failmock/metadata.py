"""Metadata of the test-only ``failmock`` testbed: NEPI 2's mock plus fault injection.

Extra testbed attributes:
  failPhase     "" (no failure) or the phase in which element ``failGuid`` raises
                RuntimeError("injected failure"): create, connect, preconfigure,
                configure, prestart, start, cross; "shutdown" makes the
                controller's shutdown() raise (after recording the call)
  failGuid      the element that fails (0: none)
  diePhase      "" or the phase in which the controller's process kills itself
                (SIGKILL, as kill -9 would) at its first element: create, connect,
                preconfigure, configure, prestart, start, cross
  dieTimes      how many controllers of this testbed (counted by marker files
                ``died-<phase>-<n>`` in its root directory) die so: 1 by default, so a
                restarted one lives; 2 makes the restarted one die too
  slowPhase     "" or a phase (as failPhase) in which the controller sleeps slowSeconds
                once (the first element reaching it), to kill something inside it
  slowSeconds   how long (DOUBLE)
  delayConnect  how many times each Node->Interface connection asks to be retried
                (returns CONNECTION_DELAY) before succeeding

Extra box attribute ``number`` (INTEGER) on every factory, for netref conversion tests.
The ``cross`` connector is unlimited and connects failmock Interfaces across testbeds;
every cross connection made is logged in the controller's ``cross_log``.

Orders are class attributes so a test can monkeypatch them (Parallel entries, factories
left out of an order list).
"""

import os
import signal

import time

from nepi.core.attributes import Attribute
from nepi.testbeds import mockbase
from nepi.testbeds.mockbase import APP, IFACE, NODE
from nepi.util import tags, validation
from nepi.util.constants import CONNECTION_DELAY
from nepi.util.constants import DeploymentConfiguration as DC

from failmock.constants import TESTBED_ID

PHASES = ["", "create", "connect", "preconfigure", "configure", "prestart", "start", "cross",
          "shutdown"]

INJECTED = "injected failure"


def maybe_die(testbed, phase):
    """Kill this process (SIGKILL) if diePhase says so and fewer than dieTimes
    controllers of this testbed died so far (marker files in its root directory)."""
    if testbed._testbed_attribute("diePhase") != phase:
        return
    root = testbed._testbed_attribute(DC.ROOT_DIRECTORY) or "."
    died = [n for n in os.listdir(root) if n.startswith("died-%s-" % phase)]
    if len(died) >= testbed._testbed_attribute("dieTimes"):
        return
    with open(os.path.join(root, "died-%s-%d" % (phase, len(died) + 1)), "w") as f:
        f.write(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)


def maybe_slow(testbed, phase):
    """Sleep ``slowSeconds`` once per controller in phase ``slowPhase`` (so that a test
    can kill a daemon while the deployment is inside that phase)."""
    if testbed._testbed_attribute("slowPhase") == phase:
        slowed = testbed.__dict__.setdefault("_slowed", set())
        if phase not in slowed:
            slowed.add(phase)
            time.sleep(float(testbed._testbed_attribute("slowSeconds")))


def maybe_fail(testbed, phase, *guids):
    maybe_slow(testbed, phase)
    maybe_die(testbed, phase)
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
    "diePhase": dict(name="diePhase", help="phase in which the process kills itself",
                     type=Attribute.STRING, value="",
                     validation_function=lambda attr, v: v in PHASES),
    "dieTimes": dict(name="dieTimes", help="how many controllers die so",
                     type=Attribute.INTEGER, value=1,
                     validation_function=validation.is_integer),
    "slowPhase": dict(name="slowPhase", help="phase in which the controller sleeps "
                      "slowSeconds (once)", type=Attribute.STRING, value="",
                      validation_function=lambda attr, v: v in PHASES),
    "slowSeconds": dict(name="slowSeconds", help="how long slowPhase sleeps",
                        type=Attribute.DOUBLE, value=0.0,
                        validation_function=validation.is_number),
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
