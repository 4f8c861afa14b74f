"""What the ns3 testbed offers, as plain data (no ns-3 import, no nepi objects).

``FACTORIES`` maps each NEPI factory id (NEPI 2's ids, kept for compatibility) to the
ns-3 TypeId it is built from, how it is built (``kind``), its connectors, traces and tags,
and the few NEPI-only attributes. Attribute names, types, defaults and help come from
ns-3's own TypeId information through the generated table ``typeids.py`` (see
``gen_typeids.py``); this file names only what ns-3 cannot say.

NEPI 2 factories that ns-3 3.44 no longer has (ns3::EmuNetDevice, ns3::Ping6, WiMAX,
ns3::NscTcpL4Protocol...) are simply absent, so a design using them fails validation with
"unknown factory".
"""

from nepi.util.constants import FactoryCategories as FC
from nepi.util import tags

# -- connector types (id -> definition); names repeat across ids on purpose ----------------

CONNECTOR_TYPES = {
    "node": dict(name="node", help="Connector to a ns3::Node", max=1, min=1),
    "devs": dict(name="devs", help="Connector from a node to its network devices", max=-1,
                 min=0),
    "apps": dict(name="apps", help="Connector from a node to its applications", max=-1,
                 min=0),
    "protos": dict(name="protos", help="Connector from a node to its protocol stack",
                   max=-1, min=0),
    "mobility": dict(name="mobility", help="Connector from a node to its mobility model",
                     max=1, min=0),
    "queue": dict(name="queue", help="Connector to the transmit queue of a device", max=1,
                  min=0),
    "err": dict(name="err", help="Connector to a receive error model", max=1, min=0),
    "chan": dict(name="chan", help="Connector to a channel", max=1, min=0),
    "dev2": dict(name="dev2", help="Connector to the two ends of a point-to-point link",
                 max=2, min=2),
    "devs_chan": dict(name="devs", help="Connector from a channel to its devices", max=-1,
                      min=0),
    "dev": dict(name="dev", help="Connector to the device this element belongs to", max=1,
                min=1),
    "mac": dict(name="mac", help="Connector to the MAC layer of a wifi device", max=1, min=1),
    "phy": dict(name="phy", help="Connector to the PHY layer of a wifi device", max=1, min=1),
    "manager": dict(name="manager", help="Connector to the rate control manager of a wifi "
                    "device (default: ns-3 WifiHelper's)", max=1, min=0),
    "err_phy": dict(name="phy", help="Connector to the wifi PHY using this error rate model",
                    max=1, min=1),
    "phys": dict(name="phys", help="Connector from a wifi channel to its PHYs", max=-1,
                 min=0),
    "loss": dict(name="loss", help="Connector to the propagation loss model (default "
                 "ns3::LogDistancePropagationLossModel)", max=1, min=0),
    "delay": dict(name="delay", help="Connector to the propagation delay model (default "
                  "ns3::ConstantSpeedPropagationDelayModel)", max=1, min=0),
    "prev": dict(name="prev", help="Connector to the channel, or to the previous loss model "
                 "of a chain", max=1, min=0),
    "next": dict(name="next", help="Connector to the next loss model of a chain", max=1,
                 min=0),
    "mobpair": dict(name="mobpair", help="Connector to the mobility pairs of a matrix loss "
                    "model", max=-1, min=0),
    "mob_node": dict(name="node", help="Connector to the node that moves with this model",
                     max=1, min=0),
    "mp": dict(name="mp", help="Connector to the mobility pairs this model is part of",
               max=-1, min=0),
    "matrix": dict(name="matrix", help="Connector to the matrix propagation loss model",
                   max=1, min=1),
    "ma": dict(name="ma", help="Connector to the first mobility model of the pair", max=1,
               min=1),
    "mb": dict(name="mb", help="Connector to the second mobility model of the pair", max=1,
               min=1),
    "fd": dict(name="->fd", help="File descriptor receptor of a file-descriptor device "
               "(cross connection with a netns TAP/TUN interface, or an "
               "ns3::Nepi::TunChannel of this testbed)", max=1, min=0),
    "fd_provider": dict(name="fd->", help="File descriptor provider: the FdNetDevice whose "
                        "frames this channel carries", max=1, min=0),
    "udp": dict(name="udp", help="Frames tunneled over UDP datagrams to a TunChannel of "
                "another testbed", max=1, min=0),
    "tcp": dict(name="tcp", help="Frames tunneled over a TCP connection to a TunChannel of "
                "another testbed", max=1, min=0),
    "tap": dict(name="tap", help="Connector to a ns3::TapBridge bridging this device", max=1,
                min=0),
    "bridge": dict(name="bridge", help="Connector to the ns-3 device this TapBridge bridges "
                   "(a CSMA or wifi device)", max=1, min=1),
}

# -- traces (id -> definition) -------------------------------------------------------------

TRACES = {
    "p2ppcap": dict(name="P2PPcapTrace", help="Trace to sniff packets from a P2P network "
                    "device (pcap, DLT_PPP)"),
    "p2pascii": dict(name="P2PAsciiTrace", help="Ascii trace from a P2P network device"),
    "csmapcap": dict(name="CsmaPcapTrace", help="Trace to sniff packets from a Csma network "
                     "device (pcap, DLT_EN10MB)"),
    "csmapcap_promisc": dict(name="CsmaPromiscPcapTrace", help="Trace to sniff packets "
                             "from a Csma network device in promiscuous mode"),
    "csmaascii": dict(name="CsmaAsciiTrace", help="Ascii trace from a Csma network device"),
    "fdpcap": dict(name="FdPcapTrace", help="Trace to sniff packets from a file descriptor "
                   "network device (pcap, DLT_EN10MB)"),
    "fdascii": dict(name="FdAsciiTrace", help="Ascii trace from a file descriptor network "
                    "device"),
    "yanswifipcap": dict(name="YansWifiPhyPcapTrace", help="Trace to sniff frames from a "
                         "wifi PHY (pcap, DLT_IEEE802_11)"),
    "rtt": dict(name="Rtt", help="Round trip time of each echo reply: one line "
                "'+<simulation time>ns<TAB>+<rtt>ns' per reply"),
}

# -- NEPI-only attributes (id -> definition; validation named, resolved in metadata) ----

_NEPI_ONLY = 0x40  # Attribute.Metadata: stored by nepi, never pushed as such to ns-3

WIFI_STANDARDS = ["WIFI_STANDARD_80211a", "WIFI_STANDARD_80211b", "WIFI_STANDARD_80211g",
                  "WIFI_STANDARD_80211p", "WIFI_STANDARD_80211n", "WIFI_STANDARD_80211ac",
                  "WIFI_STANDARD_80211ad", "WIFI_STANDARD_80211ax", "WIFI_STANDARD_80211be"]
# NEPI 2 (ns-3.11 WifiPhyStandard) names and what they mean in 3.44.
OLD_WIFI_STANDARDS = {
    "WIFI_PHY_STANDARD_80211a": "WIFI_STANDARD_80211a",
    "WIFI_PHY_STANDARD_80211b": "WIFI_STANDARD_80211b",
    "WIFI_PHY_STANDARD_80211g": "WIFI_STANDARD_80211g",
    "WIFI_PHY_STANDARD_80211_10Mhz": "WIFI_STANDARD_80211p",
    "WIFI_PHY_STANDARD_80211_5Mhz": "WIFI_STANDARD_80211p",
    "WIFI_PHY_STANDARD_holland": "WIFI_STANDARD_80211a",
    "WIFI_PHY_STANDARD_80211p_CCH": "WIFI_STANDARD_80211p",
    "WIFI_PHY_STANDARD_80211p_SCH": "WIFI_STANDARD_80211p",
}

EXTRA_ATTRIBUTES = {
    "Up": dict(name="Up", help="Whether every IPv4 interface of the node is up (setting it "
               "brings them all up or down)", type="BOOL", value=True, validation="bool"),
    "Standard": dict(name="Standard", help="Wifi standard the device is configured for "
                     "(WifiHelper::SetStandard; NEPI 2's WIFI_PHY_STANDARD_* names are "
                     "accepted)", type="ENUM", value="WIFI_STANDARD_80211a",
                     allowed=WIFI_STANDARDS + list(OLD_WIFI_STANDARDS), flags=_NEPI_ONLY,
                     validation="enum"),
    "Remote": dict(name="Remote", help="NEPI 2 name of Destination: the IPv4 address to "
                   "ping", type="STRING", flags=0x20, validation="ref_address",
                   alias="Destination"),
    "Verbose": dict(name="Verbose", help="NEPI 2 name of VerboseMode: True is 'Verbose', "
                    "False is 'Quiet'", type="BOOL", value=False, flags=0x20,
                    validation="bool", alias="VerboseMode"),
    "MaxPackets": dict(name="MaxPackets", help="NEPI 2 name: maximum number of packets "
                       "accepted by the queue (sets MaxSize to '<n>p')", type="INTEGER",
                       flags=0x20, validation="positive_integer", alias="MaxSize"),
    "MaxBytes": dict(name="MaxBytes", help="NEPI 2 name: maximum number of bytes accepted "
                     "by the queue (sets MaxSize to '<n>B')", type="INTEGER", flags=0x20,
                     validation="positive_integer", alias="MaxSize"),
    "Loss": dict(name="Loss", help="Propagation loss (dB) between the two mobility models",
                 type="DOUBLE", value=0.0, flags=_NEPI_ONLY, validation="double"),
    "Symmetric": dict(name="Symmetric", help="Whether the loss applies in both directions",
                      type="BOOL", value=True, flags=_NEPI_ONLY, validation="bool"),
    "WaypointList": dict(name="WaypointList", help="Waypoints as 't:x:y:z, ...' (t a time "
                         "such as 1s; parentheses and spaces are ignored)", type="STRING",
                         flags=_NEPI_ONLY, validation="waypoints"),
}

# -- factories --------------------------------------------------------------------------

_DEVICE_TAGS = [tags.INTERFACE, tags.ALLOW_ADDRESSES]
_APP_TAGS = [tags.APPLICATION]
_APP_CONNECTORS = ["node"]
# StartTime cannot move once the simulation runs (NEPI 2's flags).
_APP_FLAGS = {"StartTime": 0x04 | 0x10}

_WIFI_MANAGERS = ["ns3::ConstantRateWifiManager", "ns3::ArfWifiManager",
                  "ns3::AarfWifiManager", "ns3::AarfcdWifiManager", "ns3::AmrrWifiManager",
                  "ns3::CaraWifiManager", "ns3::IdealWifiManager", "ns3::MinstrelWifiManager",
                  "ns3::OnoeWifiManager", "ns3::RraaWifiManager"]
LOSS_MODELS = ["ns3::LogDistancePropagationLossModel", "ns3::FriisPropagationLossModel",
               "ns3::FixedRssLossModel", "ns3::RangePropagationLossModel",
               "ns3::RandomPropagationLossModel",
               "ns3::ThreeLogDistancePropagationLossModel",
               "ns3::TwoRayGroundPropagationLossModel", "ns3::NakagamiPropagationLossModel",
               "ns3::Cost231PropagationLossModel"]
DELAY_MODELS = ["ns3::ConstantSpeedPropagationDelayModel",
                "ns3::RandomPropagationDelayModel"]
MOBILITY_MODELS = ["ns3::ConstantPositionMobilityModel", "ns3::ConstantVelocityMobilityModel",
                   "ns3::ConstantAccelerationMobilityModel",
                   "ns3::RandomWalk2dMobilityModel", "ns3::RandomDirection2dMobilityModel",
                   "ns3::RandomWaypointMobilityModel", "ns3::GaussMarkovMobilityModel",
                   "ns3::SteadyStateRandomWaypointMobilityModel",
                   "ns3::WaypointMobilityModel"]
WIFI_MACS = ["ns3::AdhocWifiMac", "ns3::StaWifiMac", "ns3::ApWifiMac"]
ERROR_MODELS = ["ns3::RateErrorModel", "ns3::ListErrorModel", "ns3::ReceiveListErrorModel"]
PROTOCOLS = ["ns3::Ipv4L3Protocol", "ns3::ArpL3Protocol", "ns3::Icmpv4L4Protocol",
             "ns3::UdpL4Protocol", "ns3::TcpL4Protocol"]
APPLICATIONS = ["ns3::V4Ping", "ns3::Ping", "ns3::UdpEchoClient", "ns3::UdpEchoServer",
                "ns3::OnOffApplication", "ns3::PacketSink", "ns3::UdpClient",
                "ns3::UdpServer"]
WIRED_DEVICES = ["ns3::PointToPointNetDevice", "ns3::CsmaNetDevice"]


def _f(typeid, category, kind, help, connectors=(), traces=(), tags_=(), extra=(),
       flags=None, exclude=(), defaults=None, validations=None):
    """``validations``: ns-3 attribute name -> a name in metadata's _NAMED_VALIDATIONS,
    for values ns-3's type says too little about (e.g. host interface names)."""
    return dict(typeid=typeid, category=category, kind=kind, help=help,
                connectors=list(connectors), traces=list(traces), tags=list(tags_),
                extra=list(extra), flags=dict(flags or {}), exclude=list(exclude),
                defaults=dict(defaults or {}), validations=dict(validations or {}))


FACTORIES = {
    "ns3::Node": _f("ns3::Node", FC.CATEGORY_NODES, "node",
                    "An ns-3 node: devices, protocol stack, applications and mobility",
                    ["devs", "apps", "protos", "mobility"], (), [tags.NODE, tags.ALLOW_ROUTES],
                    ["Up"]),
    "ns3::Ipv4L3Protocol": _f("ns3::Ipv4L3Protocol", FC.CATEGORY_PROTOCOLS, "ipv4",
                              "IPv4 layer (a TrafficControlLayer, list routing and static "
                              "routing are added with it)", ["node"], (), [tags.PROTOCOL]),
    "ns3::ArpL3Protocol": _f("ns3::ArpL3Protocol", FC.CATEGORY_PROTOCOLS, "protocol",
                             "ARP protocol", ["node"], (), [tags.PROTOCOL]),
    "ns3::Icmpv4L4Protocol": _f("ns3::Icmpv4L4Protocol", FC.CATEGORY_PROTOCOLS, "protocol",
                                "ICMPv4 protocol", ["node"], (), [tags.PROTOCOL]),
    "ns3::UdpL4Protocol": _f("ns3::UdpL4Protocol", FC.CATEGORY_PROTOCOLS, "protocol",
                             "UDP protocol", ["node"], (), [tags.PROTOCOL]),
    "ns3::TcpL4Protocol": _f("ns3::TcpL4Protocol", FC.CATEGORY_PROTOCOLS, "protocol",
                             "TCP protocol", ["node"], (), [tags.PROTOCOL]),
    "ns3::PointToPointNetDevice": _f(
        "ns3::PointToPointNetDevice", FC.CATEGORY_DEVICES, "device",
        "Point-to-point network device (a DropTailQueue is added when none is connected)",
        ["node", "err", "queue", "chan"], ["p2ppcap", "p2pascii"], _DEVICE_TAGS),
    "ns3::PointToPointChannel": _f("ns3::PointToPointChannel", FC.CATEGORY_CHANNELS,
                                   "object", "Point-to-point channel", ["dev2"]),
    "ns3::CsmaNetDevice": _f(
        "ns3::CsmaNetDevice", FC.CATEGORY_DEVICES, "device",
        "CSMA (Ethernet-like) network device (a DropTailQueue is added when none is "
        "connected)", ["node", "chan", "err", "queue", "tap"],
        ["csmapcap", "csmapcap_promisc", "csmaascii"], _DEVICE_TAGS),
    "ns3::CsmaChannel": _f("ns3::CsmaChannel", FC.CATEGORY_CHANNELS, "object",
                           "CSMA channel (shared bus)", ["devs_chan"]),
    "ns3::DropTailQueue": _f("ns3::DropTailQueue<Packet>", FC.CATEGORY_QUEUES, "queue",
                             "Drop-tail packet queue (ns-3 DropTailQueue<Packet>)", ["dev"],
                             (), (), ["MaxPackets", "MaxBytes"]),
    "ns3::FdNetDevice": _f(
        "ns3::FdNetDevice", FC.CATEGORY_DEVICES, "device",
        "Network device reading and writing Ethernet frames on a file descriptor: a netns "
        "TAP interface's (->fd cross connection) or an ns3::Nepi::TunChannel's; needs "
        "RealtimeSimulatorImpl and ChecksumEnabled",
        ["node", "fd"], ["fdpcap", "fdascii"], _DEVICE_TAGS,
        ["tun_proto", "tun_addr", "tun_port", "tun_key", "fd_tun_cipher"]),
    "ns3::TapBridge": _f(
        "ns3::TapBridge", FC.CATEGORY_DEVICES, "tapbridge",
        "Bridges an ns-3 CSMA or wifi device to a host TAP device (needs "
        "RealtimeSimulatorImpl, ChecksumEnabled and usually root)", ["node", "bridge"],
        validations={"DeviceName": "interface_name_or_empty"}),
    "ns3::WifiNetDevice": _f(
        "ns3::WifiNetDevice", FC.CATEGORY_DEVICES, "wifi_device",
        "Wifi network device, built with ns-3's WifiHelper from its PHY, MAC and manager",
        ["node", "mac", "phy", "manager", "tap"], (),
        _DEVICE_TAGS + [tags.WIRELESS]),
    "ns3::YansWifiPhy": _f("ns3::YansWifiPhy", FC.CATEGORY_PHY_MODELS, "wifi_phy",
                           "YANS wifi PHY", ["dev", "err", "chan"], ["yanswifipcap"], (),
                           ["Standard"]),
    "ns3::YansWifiChannel": _f("ns3::YansWifiChannel", FC.CATEGORY_CHANNELS, "wifi_channel",
                               "YANS wifi channel", ["phys", "delay", "loss"]),
    "ns3::NistErrorRateModel": _f("ns3::NistErrorRateModel", FC.CATEGORY_ERROR_MODELS,
                                  "wifi_error", "NIST error rate model of a wifi PHY",
                                  ["err_phy"]),
    "ns3::YansErrorRateModel": _f("ns3::YansErrorRateModel", FC.CATEGORY_ERROR_MODELS,
                                  "wifi_error", "YANS error rate model of a wifi PHY",
                                  ["err_phy"]),
    "ns3::MatrixPropagationLossModel": _f(
        "ns3::MatrixPropagationLossModel", FC.CATEGORY_LOSS_MODELS, "object",
        "Propagation loss given per pair of mobility models (ns3::Nepi::MobilityPair)",
        ["mobpair", "chan", "prev", "next"]),
    "ns3::Nepi::TunChannel": _f(
        None, FC.CATEGORY_TUNNELS, "tunchannel",
        "NEPI-only element: carries the Ethernet frames of an FdNetDevice (fd->) over UDP or "
        "TCP to a TunChannel of another testbed (udp/tcp cross connection), e.g. a netns "
        "TunChannel feeding a TAP interface. Needs RealtimeSimulatorImpl and ChecksumEnabled",
        ["fd_provider", "udp", "tcp"], (), [tags.TUNNEL],
        ["tun_proto", "tun_addr", "tun_port", "tun_key", "tun_cipher", "tun_stats"]),
    "ns3::Nepi::MobilityPair": _f(
        None, FC.CATEGORY_LOSS_MODELS, "mobility_pair",
        "NEPI-only element: the loss between two mobility models of a "
        "MatrixPropagationLossModel", ["matrix", "ma", "mb"], (), (), ["Loss", "Symmetric"]),
}

for _tid in ERROR_MODELS:
    FACTORIES[_tid] = _f(_tid, FC.CATEGORY_ERROR_MODELS, "object",
                         "Receive error model of a P2P or CSMA device", ["dev"])
for _tid in _WIFI_MANAGERS:
    FACTORIES[_tid] = _f(_tid, FC.CATEGORY_MANAGERS, "wifi_manager",
                         "Wifi rate control manager", ["dev"])
for _tid in WIFI_MACS:
    FACTORIES[_tid] = _f(_tid, FC.CATEGORY_MAC_MODELS, "wifi_mac",
                         {"ns3::AdhocWifiMac": "Ad hoc wifi MAC",
                          "ns3::StaWifiMac": "Infrastructure (station) wifi MAC",
                          "ns3::ApWifiMac": "Infrastructure (access point) wifi MAC"}[_tid],
                         ["dev"], (), (), ["Standard"])
for _tid in LOSS_MODELS:
    FACTORIES[_tid] = _f(_tid, FC.CATEGORY_LOSS_MODELS, "object",
                         "Propagation loss model of a wifi channel (chainable)",
                         ["prev", "next"])
for _tid in DELAY_MODELS:
    FACTORIES[_tid] = _f(_tid, FC.CATEGORY_DELAY_MODELS, "object",
                         "Propagation delay model of a wifi channel", ["chan"])
for _tid in MOBILITY_MODELS:
    FACTORIES[_tid] = _f(_tid, FC.CATEGORY_MOBILITY_MODELS, "mobility",
                         "Mobility model of a node", ["mob_node", "mp"], (), [tags.MOBILE],
                         ["WaypointList"] if _tid == "ns3::WaypointMobilityModel" else ())
for _tid in APPLICATIONS:
    _typeid = "ns3::Ping" if _tid == "ns3::V4Ping" else _tid
    FACTORIES[_tid] = _f(_typeid, FC.CATEGORY_APPLICATIONS, "application",
                         {"ns3::V4Ping": "ICMP echo (NEPI 2 name of ns3::Ping)",
                          "ns3::Ping": "ICMP echo (ping) application",
                          "ns3::UdpEchoClient": "UDP echo client",
                          "ns3::UdpEchoServer": "UDP echo server",
                          "ns3::OnOffApplication": "On/off traffic generator",
                          "ns3::PacketSink": "Packet sink",
                          "ns3::UdpClient": "UDP client sending sequence-numbered packets",
                          "ns3::UdpServer": "UDP server counting received packets"}[_tid],
                         _APP_CONNECTORS,
                         ["rtt"] if _typeid == "ns3::Ping" else (), _APP_TAGS,
                         ["Remote", "Verbose"] if _tid == "ns3::V4Ping" else (),
                         flags=_APP_FLAGS)

# Attribute ids of the standard tunnel contract, with FdNetDevice's own cipher (no crypto
# on a local fd: PLAIN only).
FD_TUN_CIPHER = dict(name="tun_cipher", help="Cipher used for the tunnel (file descriptors "
                     "are passed locally: PLAIN only)", type="ENUM", value="PLAIN",
                     allowed=["PLAIN"], flags=0x10 | 0x40, validation="enum")

# -- connections ------------------------------------------------------------------------
# (from (factories, connector), to (factories, connector), init, compl); function names
# are resolved in nepi.testbeds.ns3.functions. A tuple of factories expands to each.

_ID = "ns3"
_TAPPABLE = ("ns3::CsmaNetDevice", "ns3::WifiNetDevice")

CONNECTIONS = [
    (("ns3::Node", "devs"), (WIRED_DEVICES + ["ns3::FdNetDevice", "ns3::TapBridge"], "node"),
     "connect_node_device", None),
    (("ns3::Node", "devs"), (["ns3::WifiNetDevice"], "node"), None, "connect_node_wifi"),
    (("ns3::Node", "apps"), (APPLICATIONS, "node"), "connect_node_application", None),
    (("ns3::Node", "protos"), (PROTOCOLS, "node"), "connect_node_protocol", None),
    (("ns3::Node", "mobility"), (MOBILITY_MODELS, "node"), "connect_node_mobility", None),
    (("ns3::DropTailQueue", "dev"), (WIRED_DEVICES, "queue"), "connect_queue_device", None),
    ((ERROR_MODELS, "dev"), (WIRED_DEVICES, "err"), "connect_error_model_device", None),
    (("ns3::PointToPointChannel", "dev2"), (["ns3::PointToPointNetDevice"], "chan"),
     "connect_channel_device", None),
    (("ns3::CsmaChannel", "devs"), (["ns3::CsmaNetDevice"], "chan"),
     "connect_channel_device", None),
    (("ns3::YansWifiPhy", "dev"), (["ns3::WifiNetDevice"], "phy"), None, None),
    ((WIFI_MACS, "dev"), (["ns3::WifiNetDevice"], "mac"), None, None),
    ((_WIFI_MANAGERS, "dev"), (["ns3::WifiNetDevice"], "manager"), None, None),
    ((["ns3::NistErrorRateModel", "ns3::YansErrorRateModel"], "phy"),
     (["ns3::YansWifiPhy"], "err"), None, None),
    (("ns3::YansWifiChannel", "phys"), (["ns3::YansWifiPhy"], "chan"), None, None),
    ((LOSS_MODELS + ["ns3::MatrixPropagationLossModel"], "prev"),
     (["ns3::YansWifiChannel"], "loss"), "connect_loss_channel", None),
    ((["ns3::MatrixPropagationLossModel"], "chan"), (["ns3::YansWifiChannel"], "loss"),
     "connect_loss_channel", None),
    ((LOSS_MODELS + ["ns3::MatrixPropagationLossModel"], "prev"),
     (LOSS_MODELS + ["ns3::MatrixPropagationLossModel"], "next"), "connect_loss_chain", None),
    ((DELAY_MODELS, "chan"), (["ns3::YansWifiChannel"], "delay"), "connect_delay_channel",
     None),
    (("ns3::Nepi::MobilityPair", "matrix"), (["ns3::MatrixPropagationLossModel"], "mobpair"),
     None, "connect_mobility_pair"),
    (("ns3::Nepi::MobilityPair", "ma"), (MOBILITY_MODELS, "mp"), None, None),
    (("ns3::Nepi::MobilityPair", "mb"), (MOBILITY_MODELS, "mp"), None, None),
    (("ns3::TapBridge", "bridge"), (list(_TAPPABLE), "tap"), None, "connect_tap_bridge"),
    (("ns3::Nepi::TunChannel", "fd->"), (["ns3::FdNetDevice"], "->fd"),
     "connect_tunchannel_fd", None),
]

# Cross connections: (local (factory, connector), far (testbed, factories, connector),
# init, compl). A TunChannel joins any testbed's udp/tcp connector (the netns TunChannel
# declares the mirror rule), as in NEPI 2.
CROSS_CONNECTIONS = [
    (("ns3::FdNetDevice", "->fd"), ("netns", ("TapNodeInterface", "TunNodeInterface"), "fd->"),
     "connect_fd_cross_init", None),
    (("ns3::Nepi::TunChannel", "udp"), (None, None, "udp"),
     "tunchannel_cross_init_udp", "tunchannel_cross_compl_udp"),
    (("ns3::Nepi::TunChannel", "tcp"), (None, None, "tcp"),
     "tunchannel_cross_init_tcp", "tunchannel_cross_compl_tcp"),
]

# Elements that exchange frames with the real world (the kernel drops packets without
# checksums, and a simulation ahead of or behind the clock breaks real protocols).
EMULATION_FACTORIES = ("ns3::FdNetDevice", "ns3::Nepi::TunChannel", "ns3::TapBridge")

# Deployment orders (factories not named are appended by nepi, none is skipped).
CREATE_ORDER = (["ns3::Node", "ns3::YansWifiChannel", "ns3::PointToPointChannel",
                 "ns3::CsmaChannel"] + PROTOCOLS + LOSS_MODELS + DELAY_MODELS
                + ["ns3::MatrixPropagationLossModel"] + MOBILITY_MODELS
                + ["ns3::Nepi::MobilityPair"] + WIRED_DEVICES
                + ["ns3::FdNetDevice", "ns3::Nepi::TunChannel", "ns3::DropTailQueue"]
                + ERROR_MODELS
                + ["ns3::YansWifiPhy"] + WIFI_MACS + _WIFI_MANAGERS
                + ["ns3::NistErrorRateModel", "ns3::YansErrorRateModel",
                   "ns3::WifiNetDevice", "ns3::TapBridge"] + APPLICATIONS)
# Devices get their addresses before nodes add routes; applications come last.
CONFIGURE_ORDER = (WIRED_DEVICES + ["ns3::FdNetDevice", "ns3::WifiNetDevice",
                                    "ns3::YansWifiPhy", "ns3::TapBridge", "ns3::Node"]
                   + APPLICATIONS)
