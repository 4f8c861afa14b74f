"""Metadata of the netns testbed: NEPI 2's factories, attributes, connectors and traces,
plus bandwidth shaping. Importing it must stay cheap and free of side effects."""

import functools
import os

from nepi.core import metadata
from nepi.core.attributes import Attribute
from nepi.testbeds.netns.constants import TESTBED_ID, TESTBED_VERSION
from nepi.util import tags, validation
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import FactoryCategories as FC

NODE = "Node"
P2PIFACE = "P2PNodeInterface"
TAPIFACE = "TapNodeInterface"
TUNIFACE = "TunNodeInterface"
NODEIFACE = "NodeInterface"
SWITCH = "Switch"
APPLICATION = "Application"
TUNCHANNEL = "TunChannel"

INTERFACES = (P2PIFACE, TAPIFACE, TUNIFACE, NODEIFACE)


def _netem_available() -> bool:
    """True if the kernel can load the netem qdisc (delay/loss emulation)."""
    release = os.uname().release
    for base in ("/lib/modules", "/usr/lib/modules"):
        mod_dir = os.path.join(base, release)
        if os.path.isdir(mod_dir):
            for root, _, files in os.walk(mod_dir):
                if any(f.startswith("sch_netem.") for f in files):
                    return True
    try:
        with open("/proc/modules") as f:
            return any(line.startswith("sch_netem ") for line in f)
    except OSError:
        return False


def _zero_unless_netem(attribute, value) -> bool:
    if not validation.is_number(attribute, value) or value < 0:
        return False
    return value == 0 or _netem_available()


_zero_unless_netem.expected = ("0: delay and loss need the netem qdisc, and this kernel has "
                               "no sch_netem module (shape bandwidth with 'bandwidth' instead)")


_IFACE_ATTRS = ["lladdr", "up", "device_name", "mtu", "multicast", "broadcast", "arp",
                "bandwidth", "delay", "loss"]

ATTRIBUTES = {
    "forward_X11": dict(name="forward_X11", help="Forward the X11 display to the node",
                        type=Attribute.BOOL, value=False,
                        flags=Attribute.ExecReadOnly | Attribute.ExecImmutable,
                        validation_function=validation.is_bool),
    "forwarding": dict(name="forwarding", help="Forward IPv4 packets between interfaces "
                       "(routers need it; NEPI 2 nodes always forwarded)",
                       type=Attribute.BOOL, value=True,
                       flags=Attribute.ExecReadOnly | Attribute.ExecImmutable,
                       validation_function=validation.is_bool),
    "lladdr": dict(name="lladdr", help="Mac address", type=Attribute.STRING,
                   flags=Attribute.ExecReadOnly | Attribute.ExecImmutable,
                   validation_function=validation.is_mac_address),
    "up": dict(name="up", help="Link up", type=Attribute.BOOL, value=True,
               flags=Attribute.NoDefaultValue, validation_function=validation.is_bool),
    "device_name": dict(name="name", help="Device name (a Linux interface name: 1-15 "
                        "bytes, no '/', ':', whitespace or control characters)",
                        type=Attribute.STRING,
                        flags=Attribute.ExecReadOnly | Attribute.ExecImmutable,
                        validation_function=validation.is_interface_name),
    "mtu": dict(name="mtu", help="Maximum transmition unit for device",
                type=Attribute.INTEGER, validation_function=validation.is_integer_range(68,
                                                                                        65535)),
    "broadcast": dict(name="broadcast", help="Broadcast address", type=Attribute.STRING,
                      validation_function=validation.is_string),
    "multicast": dict(name="multicast", help="Multicast enabled", type=Attribute.BOOL,
                      value=False, validation_function=validation.is_bool),
    "arp": dict(name="arp", help="ARP enabled", type=Attribute.BOOL, value=False,
                validation_function=validation.is_bool),
    "bandwidth": dict(name="bandwidth", help="Egress rate limit in Mbit/s (tbf); 0 = none",
                      type=Attribute.DOUBLE, value=0.0,
                      validation_function=validation.is_number_range(0, 100000)),
    "delay": dict(name="delay", help="Egress delay in ms (needs the netem qdisc)",
                  type=Attribute.DOUBLE, value=0.0, validation_function=_zero_unless_netem),
    "loss": dict(name="loss", help="Egress loss in percent (needs the netem qdisc)",
                 type=Attribute.DOUBLE, value=0.0, validation_function=_zero_unless_netem),
    "command": dict(name="command", help="Command line string", type=Attribute.STRING,
                    flags=Attribute.ExecReadOnly | Attribute.ExecImmutable,
                    validation_function=validation.is_string),
    "user": dict(name="user", help="System user to run the command as (it gets that user's "
                 "login environment plus 'environment', nothing of the controller's)",
                 type=Attribute.STRING,
                 flags=Attribute.ExecReadOnly | Attribute.ExecImmutable,
                 validation_function=validation.is_string),
    "sudo": dict(name="sudo", help="Run as root even if 'user' is set",
                 type=Attribute.BOOL, value=False,
                 flags=Attribute.ExecReadOnly | Attribute.ExecImmutable,
                 validation_function=validation.is_bool),
    "environment": dict(name="environment", help="Extra environment, e.g. 'A=1 B=two'",
                        type=Attribute.STRING,
                        flags=Attribute.ExecReadOnly | Attribute.ExecImmutable,
                        validation_function=validation.is_string),
    "stdin": dict(name="stdin", help="Standard input", type=Attribute.STRING,
                  flags=Attribute.ExecReadOnly | Attribute.ExecImmutable,
                  validation_function=validation.is_string),
}

TRACES = {
    "stdout": dict(name="stdout", help="Standard output stream"),
    "stderr": dict(name="stderr", help="Application standard error"),
    "node_pcap": dict(name="pcap", help="tcpdump at all node interfaces"),
    "iface_pcap": dict(name="pcap", help="tcpdump at this interface"),
}

CONNECTOR_TYPES = {
    "apps": dict(name="apps", help="Connector from node to applications", max=-1, min=0),
    "devs": dict(name="devs", help="Connector from node to network interfaces", max=-1,
                 min=0),
    "node": dict(name="node", help="Connector to a Node", max=1, min=1),
    "p2p": dict(name="p2p", help="Connector to a P2PInterface", max=1, min=0),
    "->fd": dict(name="->fd", help="File descriptor receptor for devices with file "
                 "descriptors", max=1, min=0),
    "fd->": dict(name="fd->", help="File descriptor provider for devices with file "
                 "descriptors", max=1, min=0),
    "switch": dict(name="switch", help="Connector to a switch", max=1, min=0),
    "tcp": dict(name="tcp", help="ip-ip tunneling over TCP link", max=1, min=0),
    "udp": dict(name="udp", help="ip-ip tunneling over UDP datagrams", max=1, min=0),
}

T = TESTBED_ID


def _connections():
    from nepi.testbeds.netns import connect
    return [
        {"from": (T, NODE, "devs"), "to": (T, INTERFACES, "node"), "can_cross": False},
        {"from": (T, P2PIFACE, "p2p"), "to": (T, P2PIFACE, "p2p"), "can_cross": False},
        {"from": (T, SWITCH, "devs"), "to": (T, NODEIFACE, "switch"), "can_cross": False},
        {"from": (T, NODE, "apps"), "to": (T, APPLICATION, "node"), "can_cross": False},
        {"from": (T, TUNCHANNEL, "->fd"), "to": (T, (TAPIFACE, TUNIFACE), "fd->"),
         "can_cross": False},
        {"from": (T, (TAPIFACE, TUNIFACE), "fd->"), "to": (None, None, "->fd"),
         "can_cross": True, "compl_code": connect.connect_fd},
        {"from": (T, TUNCHANNEL, "udp"), "to": (None, None, "udp"), "can_cross": True,
         "init_code": functools.partial(connect.tunchannel_init, proto="udp"),
         "compl_code": functools.partial(connect.tunchannel_compl, proto="udp")},
        {"from": (T, TUNCHANNEL, "tcp"), "to": (None, None, "tcp"), "can_cross": True,
         "init_code": functools.partial(connect.tunchannel_init, proto="tcp"),
         "compl_code": functools.partial(connect.tunchannel_compl, proto="tcp")},
    ]


def _factories():
    create = metadata.controller_method("create_element")
    iface = dict(category=FC.CATEGORY_DEVICES, create_function=create,
                 box_attributes=list(_IFACE_ATTRS), traces=["iface_pcap"],
                 tags=[tags.INTERFACE, tags.ALLOW_ADDRESSES])
    return {
        NODE: dict(help="Emulated Node with virtualized network stack",
                   category=FC.CATEGORY_NODES, create_function=create,
                   box_attributes=["forward_X11", "forwarding"], traces=["node_pcap"],
                   connector_types=["devs", "apps"], tags=[tags.NODE, tags.ALLOW_ROUTES]),
        P2PIFACE: dict(iface, help="Point to point network interface",
                       connector_types=["node", "p2p"]),
        TAPIFACE: dict(iface, help="Virtual TAP network interface",
                       connector_types=["node", "fd->"]),
        TUNIFACE: dict(iface, help="Virtual TUN network interface",
                       connector_types=["node", "fd->"]),
        NODEIFACE: dict(iface, help="Node network interface",
                        connector_types=["node", "switch"]),
        SWITCH: dict(help="Switch interface", category=FC.CATEGORY_DEVICES,
                     create_function=create,
                     box_attributes=["up", "device_name", "mtu", "multicast"],
                     connector_types=["devs"], tags=[tags.SWITCH]),
        APPLICATION: dict(help="Generic executable command line application",
                          category=FC.CATEGORY_APPLICATIONS,
                          start_function=metadata.controller_method("start_application"),
                          stop_function=metadata.controller_method("stop_application"),
                          status_function=metadata.controller_method("application_status"),
                          box_attributes=["command", "user", "sudo", "environment", "stdin"],
                          connector_types=["node"], traces=["stdout", "stderr"],
                          tags=[tags.APPLICATION]),
        TUNCHANNEL: dict(help="Channel to forward TUN/TAP frames over UDP or TCP to "
                         "another testbed", category=FC.CATEGORY_TUNNELS,
                         create_function=create,
                         prestart_function=metadata.controller_method("wait_tunchannel"),
                         box_attributes=["tun_proto", "tun_addr", "tun_port", "tun_key",
                                         "tun_cipher", "tun_stats"],
                         connector_types=["->fd", "udp", "tcp"], tags=[tags.TUNNEL]),
    }


class MetadataInfo(metadata.MetadataInfo):
    @property
    def connector_types(self):
        return CONNECTOR_TYPES

    @property
    def connections(self):
        return _connections()

    @property
    def attributes(self):
        return ATTRIBUTES

    @property
    def traces(self):
        return TRACES

    @property
    def create_order(self):
        return [NODE, P2PIFACE, NODEIFACE, TAPIFACE, TUNIFACE, TUNCHANNEL, SWITCH,
                APPLICATION]

    @property
    def configure_order(self):
        return [P2PIFACE, NODEIFACE, TAPIFACE, TUNIFACE, TUNCHANNEL, SWITCH, NODE,
                APPLICATION]

    @property
    def factories_info(self):
        return _factories()

    @property
    def testbed_attributes(self):
        return {
            "enable_debug": dict(name="enableDebug", help="Enable netns debug output",
                                 type=Attribute.BOOL, value=False,
                                 validation_function=validation.is_bool),
        }

    @property
    def testbed_id(self):
        return TESTBED_ID

    @property
    def testbed_version(self):
        return TESTBED_VERSION

    @property
    def supported_recovery_policies(self):
        return [DC.POLICY_FAIL, DC.POLICY_RECOVER, DC.POLICY_RESTART]
