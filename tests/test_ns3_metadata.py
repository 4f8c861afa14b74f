"""ns3 testbed metadata and validation: no ns-3 import, no simulator, no daemon.

Factories keep NEPI 2's ids (reference/testbeds.md 2.2, 5.1); attribute names, types,
defaults and help come from ns-3 3.44's TypeIds (the generated nepi/testbeds/ns3/typeids.py,
5.2); values ns-3 would abort the process on are refused at validation (5.3).
"""

import subprocess
import sys

import pytest

from helpers import fixture_path
from nepi.core.attributes import Attribute
from nepi.core.design import ExperimentDescription, FactoriesProvider
from nepi.core.metadata import Metadata
from nepi.errors import AttributeValueError, DesignError
from nepi.testbeds.ns3 import values
from nepi.testbeds.ns3.single import TestbedController as SingleTestbedController

FIXTURE = fixture_path("nepi2-ns3-p2p.xml")


@pytest.fixture(scope="module")
def provider():
    return FactoriesProvider("ns3")


def test_metadata_loads_fast_without_importing_ns3():
    code = ("import sys, time; t = time.time()\n"
            "from nepi.core.design import FactoriesProvider\n"
            "from nepi.testbeds.ns3 import TestbedController, DaemonTestbedController\n"
            "p = FactoriesProvider('ns3')\n"
            "assert 'ns' not in sys.modules and 'cppyy' not in sys.modules, 'ns-3 imported'\n"
            "print(len(p.factories), time.time() - t)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    count, seconds = out.stdout.split()
    assert int(count) >= 60
    assert float(seconds) < 3.0


def test_identity_and_versions():
    metadata = Metadata("ns3")
    assert metadata.testbed_version == "3.44"
    assert metadata.accepts_version("3.44") and metadata.accepts_version("3.11")
    assert not metadata.accepts_version("3.10")
    from nepi.testbeds import ns3
    assert (ns3.TESTBED_ID, ns3.TESTBED_VERSION) == ("ns3", "3.44")


def test_nepi2_factory_ids_required_by_the_issue(provider):
    required = [
        "ns3::Node", "ns3::Ipv4L3Protocol", "ns3::ArpL3Protocol", "ns3::Icmpv4L4Protocol",
        "ns3::UdpL4Protocol", "ns3::TcpL4Protocol", "ns3::PointToPointNetDevice",
        "ns3::PointToPointChannel", "ns3::CsmaNetDevice", "ns3::CsmaChannel",
        "ns3::WifiNetDevice", "ns3::YansWifiChannel", "ns3::YansWifiPhy", "ns3::AdhocWifiMac",
        "ns3::StaWifiMac", "ns3::ApWifiMac", "ns3::ConstantRateWifiManager",
        "ns3::NistErrorRateModel", "ns3::ConstantPositionMobilityModel",
        "ns3::RandomWalk2dMobilityModel", "ns3::RateErrorModel", "ns3::ListErrorModel",
        "ns3::DropTailQueue", "ns3::V4Ping", "ns3::Ping", "ns3::UdpEchoClient",
        "ns3::UdpEchoServer", "ns3::OnOffApplication", "ns3::PacketSink", "ns3::FdNetDevice",
        "ns3::TapBridge", "ns3::LogDistancePropagationLossModel",
        "ns3::ConstantSpeedPropagationDelayModel", "ns3::MatrixPropagationLossModel",
        "ns3::Nepi::MobilityPair", "ns3::Nepi::TunChannel"]
    for factory_id in required:
        assert provider.has_factory(factory_id), factory_id
    # gone from ns-3 3.44: simply absent
    for gone in ("ns3::EmuNetDevice", "ns3::Ping6", "ns3::NscTcpL4Protocol"):
        assert not provider.has_factory(gone)


def test_attributes_come_from_ns3_typeids(provider):
    p2p = provider.factory("ns3::PointToPointNetDevice").box_attributes
    assert p2p.get_attribute_type("Mtu") == Attribute.INTEGER
    assert p2p.get_attribute_value("Mtu") == 1500
    assert p2p.get_attribute_help("Mtu") == "The MAC-level Maximum Transmission Unit"
    assert p2p.get_attribute_value("DataRate") == "32768bps"
    assert p2p.get_attribute_value("InterframeGap") == "0s"
    assert not p2p.is_attribute_value_valid("Mtu", 70000)          # uint16_t range
    ping = provider.factory("ns3::V4Ping").box_attributes
    assert ping.get_attribute_value("Interval") == "1s"              # '+1e+09ns' canonical
    assert ping.get_attribute_value("Size") == 56
    assert ping.get_attribute_allowed("VerboseMode") == ["Verbose", "Quiet", "Silent"]
    # NEPI 2 names of renamed ns-3 attributes
    assert ping.get_attribute_type("Remote") == Attribute.STRING
    assert ping.get_attribute_type("Verbose") == Attribute.BOOL
    assert ping.is_attribute_exec_read_only("StartTime")
    assert not ping.is_attribute_exec_read_only("StopTime")
    assert "Remote" not in provider.factory("ns3::Ping").box_attributes.get_attribute_list()
    queue = provider.factory("ns3::DropTailQueue").box_attributes
    assert queue.get_attribute_value("MaxSize") == "100p"
    assert {"MaxPackets", "MaxBytes"} <= set(queue.get_attribute_list())
    rem = provider.factory("ns3::RateErrorModel").box_attributes
    assert rem.get_attribute_value("ErrorUnit") == "ERROR_UNIT_BYTE"
    assert {"ERROR_UNIT_PACKET", "EU_PKT"} <= set(rem.get_attribute_allowed("ErrorUnit"))
    assert rem.get_attribute_value("RanVar") == "ns3::UniformRandomVariable[Min=0.0|Max=1.0]"
    phy = provider.factory("ns3::YansWifiPhy").box_attributes
    assert phy.get_attribute_value("RxSensitivity") == -101.0
    assert phy.get_attribute_type("Standard") == Attribute.ENUM
    assert phy.is_attribute_design_read_only("ChannelNumber")         # get-only in ns-3
    mac = provider.factory("ns3::ApWifiMac").box_attributes
    assert mac.get_attribute_value("Ssid") == "default"
    assert mac.is_attribute_exec_immutable("QosSupported")            # construct-only
    node = provider.factory("ns3::Node").box_attributes
    assert node.get_attribute_value("Up") is True
    assert node.is_attribute_design_read_only("Id")


def test_connectors_and_traces(provider):
    node = provider.factory("ns3::Node")
    assert {c.name for c in node.connector_types} >= {"devs", "apps", "protos", "mobility"}
    p2p = provider.factory("ns3::PointToPointNetDevice")
    assert p2p.traces_list == ["P2PPcapTrace", "P2PAsciiTrace"]
    assert provider.factory("ns3::CsmaNetDevice").traces_list == [
        "CsmaPcapTrace", "CsmaPromiscPcapTrace", "CsmaAsciiTrace"]
    assert provider.factory("ns3::YansWifiPhy").traces_list == ["YansWifiPhyPcapTrace"]
    assert provider.factory("ns3::V4Ping").traces_list == ["Rtt"]
    assert provider.factory("ns3::FdNetDevice").traces_list == ["FdPcapTrace", "FdAsciiTrace"]
    chan = provider.factory("ns3::PointToPointChannel").connector_type("dev2")
    assert (chan.min, chan.max) == (2, 2)
    assert p2p.connector_type("chan").can_connect("ns3", "ns3::PointToPointChannel", "dev2")
    assert not p2p.connector_type("chan").can_connect("ns3", "ns3::CsmaChannel", "devs")
    fd = provider.factory("ns3::FdNetDevice").connector_type("->fd")
    assert fd.can_connect("netns", "TapNodeInterface", "fd->", must_cross=True)
    assert fd.can_connect("ns3", "ns3::Nepi::TunChannel", "fd->")
    tun = provider.factory("ns3::Nepi::TunChannel")
    assert [c.name for c in tun.connector_types] == ["fd->", "udp", "tcp"]
    assert tun.box_attributes.get_attribute_list() == [
        "tun_proto", "tun_addr", "tun_port", "tun_key", "tun_cipher", "tun_stats", "label"]
    for proto in ("udp", "tcp"):
        # the netns TunChannel declares the mirror rule: both ends accept the link
        assert tun.connector_type(proto).can_connect("netns", "TunChannel", proto,
                                                     must_cross=True)
        assert not tun.connector_type(proto).can_connect("netns", "TunChannel", proto)
        netns_tun = FactoriesProvider("netns").factory("TunChannel").connector_type(proto)
        assert netns_tun.can_connect("ns3", "ns3::Nepi::TunChannel", proto, must_cross=True)


def test_testbed_attributes():
    exp = ExperimentDescription()
    tb = exp.add_testbed_description(FactoriesProvider("ns3"))
    assert tb.get_attribute_value("SimulatorImplementationType") == "ns3::DefaultSimulatorImpl"
    assert tb.get_attribute_allowed("SimulatorImplementationType") == [
        "ns3::DefaultSimulatorImpl", "ns3::RealtimeSimulatorImpl"]
    assert tb.get_attribute_value("ChecksumEnabled") is False
    assert tb.get_attribute_value("StopTime") is None
    tb.set_attribute_value("StopTime", "20s")
    with pytest.raises(AttributeValueError):
        tb.set_attribute_value("StopTime", "soon")
    with pytest.raises(AttributeValueError):
        tb.set_attribute_value("SimulatorImplementationType", "ns3::DistributedSimulatorImpl")


@pytest.mark.parametrize("factory_id,name,bad", [
    ("ns3::ConstantPositionMobilityModel", "Position", "bogus"),     # Vector3D: ns-3 aborts
    ("ns3::V4Ping", "Interval", "xx"),                                # Time: ns-3 aborts
    ("ns3::ConstantRateWifiManager", "DataMode", "OfdmRate7Mbps"),    # unknown WifiMode
    ("ns3::PointToPointNetDevice", "DataRate", "fast"),
    ("ns3::PointToPointNetDevice", "Address", "00:11:22"),
    ("ns3::DropTailQueue", "MaxSize", "100 packets"),
    ("ns3::RateErrorModel", "RanVar", "ns3::NoSuchRandomVariable[Min=0]"),
    ("ns3::RateErrorModel", "RanVar", "ns3::UniformRandomVariable[Low=0]"),
    ("ns3::RandomWalk2dMobilityModel", "Bounds", "0|100|0"),
    ("ns3::V4Ping", "Remote", "somewhere"),
    ("ns3::UdpEchoClient", "Remote", "10.0.0.2:99999"),
])
def test_values_ns3_would_abort_on_are_refused(provider, factory_id, name, bad):
    exp = ExperimentDescription()
    tb = exp.add_testbed_description(FactoriesProvider("ns3"))
    box = tb.create(factory_id)
    with pytest.raises(AttributeValueError) as info:
        box.set_attribute_value(name, bad)
    assert name in str(info.value)


@pytest.mark.parametrize("factory_id,name,good", [
    ("ns3::RateErrorModel", "RanVar", "Uniform:0:1"),                        # NEPI 2 spelling
    ("ns3::RateErrorModel", "RanVar", "ns3::ExponentialRandomVariable[Mean=2|Bound=10]"),
    ("ns3::RateErrorModel", "ErrorUnit", "EU_PKT"),
    ("ns3::RandomWaypointMobilityModel", "PositionAllocator",
     "ns3::RandomRectanglePositionAllocator[X=ns3::UniformRandomVariable[Min=0|Max=100]"
     "|Y=ns3::UniformRandomVariable[Min=0|Max=100]]"),
    ("ns3::OnOffApplication", "Remote", "10.0.0.2:9"),
    ("ns3::OnOffApplication", "DataRate", "1.5Mb/s"),
    ("ns3::OnOffApplication", "Protocol", "ns3::TcpSocketFactory"),
    ("ns3::WaypointMobilityModel", "WaypointList", "(0s:0:0:0), (1s:10:0:0)"),
])
def test_good_values_are_accepted(factory_id, name, good):
    """The value is kept as given, and validation finds nothing wrong with it."""
    exp = ExperimentDescription()
    tb = exp.add_testbed_description(FactoriesProvider("ns3"))
    box = tb.create(factory_id)
    box.set_attribute_value(name, good)
    assert box.get_attribute_value(name) == good
    assert [p for p in exp.problems() if p.attribute == name] == []


def test_value_helpers():
    assert values.canonical_time("+1e+09ns") == "1s"
    assert values.canonical_time("+250000ns") == "250us"
    assert values.canonical_time("1.5s") == "1500ms"
    assert values.canonical_time("+41992188ns") == "41992188ns"
    assert values.canonical_time("0") == "0s"
    assert values.legacy_random_variable("Uniform:0:1") == \
        "ns3::UniformRandomVariable[Min=0|Max=1]"
    assert values.parse_socket_address("10.0.0.2:9") == ("10.0.0.2", 9)
    assert values.parse_socket_address("10.0.0.2") == ("10.0.0.2", None)
    assert values.parse_socket_address("nope") is None


def test_unknown_factories_are_rejected_at_validation():
    text = FIXTURE.read_text().replace('factory_id="ns3::V4Ping"', 'factory_id="ns3::Ping6"')
    with pytest.raises(DesignError) as info:
        ExperimentDescription().from_xml(text)
    messages = [p.message for p in info.value.problems]
    assert any("unknown factory 'ns3::Ping6' in testbed ns3" in m for m in messages), messages


def test_nepi2_fixture_loads_and_validates():
    exp = ExperimentDescription()
    exp.from_xml(FIXTURE.read_text())
    (tb,) = exp.testbed_descriptions
    assert tb.get_attribute_value("SimulatorImplementationType") == "ns3::RealtimeSimulatorImpl"
    ping = tb.box(15)
    assert ping.factory_id == "ns3::V4Ping"
    assert ping.get_attribute_value("Remote") == "10.30.0.2"
    assert ping.get_attribute_value("StopTime") == "5s"
    assert exp.problems() == []


def test_validate_cli_accepts_the_fixture():
    out = subprocess.run([sys.executable, "-m", "nepi.cli.nepi_cmd", "validate",
                          str(FIXTURE)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_single_mode_controller_checks_programming_without_a_daemon():
    """The SINGLE-mode controller validates locally; no daemon starts before a root dir
    is known or do_setup is called."""
    tc = SingleTestbedController()
    try:
        tc.defer_create(2, "ns3::Node")
        tc.defer_create(3, "ns3::PointToPointNetDevice")
        with pytest.raises(AttributeError):
            tc.defer_create(4, "ns3::EmuNetDevice")
        with pytest.raises(AttributeError):
            tc.defer_create_set(3, "Mtu", "big")
        with pytest.raises(AttributeError):
            tc.defer_create_set(3, "NoSuchAttribute", 1)
        with pytest.raises(AttributeError):
            tc.defer_connect(2, "devs", 3, "chan")
        tc.defer_connect(2, "devs", 3, "node")
        tc.defer_add_address(3, "10.0.0.1", 24, None)
        assert tc.get(3, "Mtu") == 1500
        assert tc.daemon_pid is None and tc.daemon_root is None
    finally:
        tc.shutdown()


def test_typeid_table_matches_the_installed_wheel():
    from nepi.testbeds.ns3.typeids import NS3_VERSION
    try:
        from importlib.metadata import version
        installed = version("ns3")
    except Exception:
        pytest.skip("the ns3 wheel is not installed")
    assert installed == NS3_VERSION, ("typeids.py was generated from ns3 %s; run python -m "
                                      "nepi.testbeds.ns3.gen_typeids" % NS3_VERSION)
