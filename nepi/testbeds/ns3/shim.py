"""C++ compiled into the ns-3 process with cppyy.

Every cppyy call with a new C++ signature costs 10-40 ms of code generation, so the
deployment does not drive ns-3 object by object from Python: ``CORE`` holds one registry
of ns-3 objects keyed by nepi guid and one entry point, ``Exec(command)``, that creates,
wires, addresses, routes and traces them and reads or writes attributes. It is compiled
once, right after the import. ``RunOnSim`` runs a Python callable as a simulator event
(ns-3 cannot schedule Python callables directly).

``RTT`` (Ping's Rtt trace sink) and ``WIFI`` (wifi device parts, 802.11 frames to pcap)
pull in more templates and are compiled only when a design uses them.

Compiling all this with cling takes ~1-1.5 s in every ns-3 process, so when a C++ compiler
is available the same source is built once into a shared library cached in an owner-only
directory (``~/.cache/nepi``, or $NEPI_NS3_SHIM_CACHE), keyed by the source, the ns-3
wheel and the compiler; loading it costs a few milliseconds. The build starts in the
background while ns-3 is imported (``start_build``); ``load`` uses the library when it is
there and falls back to cling otherwise (NEPI_NS3_SHIM=cling forces cling).
``python -m nepi.testbeds.ns3.shim`` builds it.

Values reaching ``Exec`` were validated by nepi first: several ns-3 parsers abort the
process on malformed input.
"""

CORE = r"""
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace nepi_ns3 {
using namespace ns3;

static std::map<int, Ptr<Object>> g_objects;
static std::map<int, Ptr<Ipv4StaticRouting>> g_static;
static std::vector<Ptr<OutputStreamWrapper>> g_ascii;
static std::vector<Ptr<PcapFileWrapper>> g_pcap;
static std::vector<std::shared_ptr<std::ofstream>> g_text;

// Run a Python callable on the simulator thread, as soon as possible.
void RunOnSim(std::function<void()> f) {
  Simulator::ScheduleWithContext(0xffffffff, Seconds(0), [f]() { f(); });
}

void StopNow() {
  Simulator::ScheduleWithContext(0xffffffff, Seconds(0), []() { Simulator::Stop(); });
}

bool Has(int guid) { return g_objects.count(guid) > 0; }

Ptr<Object> Get(int guid) {
  auto it = g_objects.find(guid);
  if (it == g_objects.end()) {
    throw std::runtime_error("element " + std::to_string(guid) + " has no ns-3 object");
  }
  return it->second;
}

void Put(int guid, Ptr<Object> object) { g_objects[guid] = object; }

void AddTextStream(std::shared_ptr<std::ofstream> out) { g_text.push_back(out); }

template <class T>
static Ptr<T> As(int guid, const char* what) {
  Ptr<T> p = Get(guid)->GetObject<T>();
  if (!p) {
    throw std::runtime_error("element " + std::to_string(guid) + " is not " + what);
  }
  return p;
}

static int Int(const std::string& s) { return std::stoi(s); }

static Address ParseAddress(const std::string& text) {
  if (text.empty()) return Address();
  size_t dot = text.find('.');
  size_t colon = text.rfind(':');
  if (dot != std::string::npos) {
    if (colon != std::string::npos && colon > dot) {
      return InetSocketAddress(Ipv4Address(text.substr(0, colon).c_str()),
                               (uint16_t)Int(text.substr(colon + 1)));
    }
    return Ipv4Address(text.c_str());
  }
  return Mac48Address(text.c_str());
}

static std::string FormatAddress(const Address& a) {
  std::ostringstream s;
  if (InetSocketAddress::IsMatchingType(a)) {
    InetSocketAddress i = InetSocketAddress::ConvertFrom(a);
    s << i.GetIpv4() << ":" << i.GetPort();
  } else if (Ipv4Address::IsMatchingType(a)) {
    s << Ipv4Address::ConvertFrom(a);
  } else if (Mac48Address::IsMatchingType(a)) {
    s << Mac48Address::ConvertFrom(a);
  }
  return s.str();
}

// A TypeId name ns-3 does not know makes its parser abort: check it first.
static void CheckTypeId(const std::string& name, const std::string& value) {
  TypeId tid;
  if (!TypeId::LookupByNameFailSafe(value, &tid)) {
    throw std::runtime_error(name + ": ns-3 has no TypeId '" + value + "'");
  }
}

// kind "a": an Address ("a.b.c.d", "a.b.c.d:port", a MAC); "t": a TypeId name; "s":
// anything else, parsed by ns-3 itself.
static void SetValue(Ptr<Object> o, const std::string& name, const std::string& kind,
                     const std::string& value) {
  if (kind == "t") CheckTypeId(name, value);
  bool ok = kind == "a" ? o->SetAttributeFailSafe(name, AddressValue(ParseAddress(value)))
                        : o->SetAttributeFailSafe(name, StringValue(value));
  if (!ok) throw std::runtime_error("ns-3 refused " + name + " = '" + value + "'");
}

static Ptr<PointToPointNetDevice> P2P(int guid) {
  return Get(guid)->GetObject<PointToPointNetDevice>();
}

static Ptr<CsmaNetDevice> Csma(int guid) { return Get(guid)->GetObject<CsmaNetDevice>(); }

static void SetQueue(int dev, Ptr<Queue<Packet>> q) {
  if (auto p = P2P(dev)) { p->SetQueue(q); return; }
  if (auto c = Csma(dev)) { c->SetQueue(q); return; }
  throw std::runtime_error("element " + std::to_string(dev) + " has no transmit queue");
}

static int InterfaceFor(Ptr<Ipv4> ipv4, Ipv4Address target) {
  for (uint32_t i = 0; i < ipv4->GetNInterfaces(); ++i) {
    for (uint32_t j = 0; j < ipv4->GetNAddresses(i); ++j) {
      Ipv4InterfaceAddress a = ipv4->GetAddress(i, j);
      if (a.GetLocal() != Ipv4Address::GetLoopback() &&
          a.GetMask().IsMatch(a.GetLocal(), target)) {
        return (int)i;
      }
    }
  }
  return -1;
}

static Ipv4Mask Prefix(const std::string& n) { return Ipv4Mask(("/" + n).c_str()); }

static Ptr<PcapFileWrapper> NewPcap(const std::string& path, PcapHelper::DataLinkType dlt) {
  Ptr<PcapFileWrapper> f = PcapHelper().CreateFile(path, std::ios::out, dlt);
  g_pcap.push_back(f);
  return f;
}

// Ping::PrintReport, also run at dispose, divides by the number of echoes sent whatever
// the verbosity: a ping that never sent one kills the process (SIGFPE) in
// Simulator::Destroy. Its private fields are reached through the standard loophole for
// explicit instantiations, to mark such a report as already printed.
template <typename Tag, typename Tag::type M>
struct Expose {
  friend typename Tag::type Member(Tag) { return M; }
};
struct PingSeq {
  typedef uint16_t Ping::*type;
  friend type Member(PingSeq);
};
struct PingReported {
  typedef bool Ping::*type;
  friend type Member(PingReported);
};
template struct Expose<PingSeq, &Ping::m_seq>;
template struct Expose<PingReported, &Ping::m_reportPrinted>;

// PcapFileWrapper has no flush: its stream is reached the same way, so that a pcap trace
// can be read while the simulation runs.
struct WrapperFile {
  typedef PcapFile PcapFileWrapper::*type;
  friend type Member(WrapperFile);
};
struct PcapStream {
  typedef std::fstream PcapFile::*type;
  friend type Member(PcapStream);
};
template struct Expose<WrapperFile, &PcapFileWrapper::m_file>;
template struct Expose<PcapStream, &PcapFile::m_file>;

static void FlushPcap(Ptr<PcapFileWrapper> p) {
  std::fstream& stream = (PeekPointer(p)->*Member(WrapperFile())).*Member(PcapStream());
  if (stream.is_open()) stream.flush();
}

static std::string Exec1(const std::vector<std::string>& c) {
  const std::string& op = c.at(0);
  if (op == "create") {                       // guid typeid [name kind value]...
    ObjectFactory f;
    f.SetTypeId(c.at(2));
    for (size_t i = 3; i + 2 < c.size(); i += 3) {
      if (c[i + 1] == "a") {
        f.Set(c[i], AddressValue(ParseAddress(c[i + 2])));
      } else {
        if (c[i + 1] == "t") CheckTypeId(c[i], c[i + 2]);
        f.Set(c[i], StringValue(c[i + 2]));
      }
    }
    g_objects[Int(c.at(1))] = f.Create();
  } else if (op == "set") {                   // guid name kind value
    SetValue(Get(Int(c.at(1))), c.at(2), c.at(3), c.at(4));
  } else if (op == "get") {                   // guid name kind
    Ptr<Object> o = Get(Int(c.at(1)));
    if (c.at(3) == "a") {
      AddressValue v;
      if (!o->GetAttributeFailSafe(c.at(2), v)) throw std::runtime_error("no " + c[2]);
      return FormatAddress(v.Get());
    }
    StringValue v;
    if (!o->GetAttributeFailSafe(c.at(2), v)) throw std::runtime_error("no " + c[2]);
    return v.Get();
  } else if (op == "node") {                  // guid: what NEPI added to every node
    As<Node>(Int(c.at(1)), "a node")->AggregateObject(CreateObject<PacketSocketFactory>());
  } else if (op == "adddev") {                // node dev allocate-mac
    Ptr<NetDevice> d = As<NetDevice>(Int(c.at(2)), "a device");
    if (c.at(3) == "1") d->SetAddress(Mac48Address::Allocate());
    As<Node>(Int(c.at(1)), "a node")->AddDevice(d);
  } else if (op == "addapp") {                // node app
    As<Node>(Int(c.at(1)), "a node")
        ->AddApplication(As<Application>(Int(c.at(2)), "an application"));
  } else if (op == "aggregate") {             // a b
    Get(Int(c.at(1)))->AggregateObject(Get(Int(c.at(2))));
  } else if (op == "ipv4") {                  // node proto global: NEPI's routing set up
    int nodeGuid = Int(c.at(1));
    Ptr<Node> node = As<Node>(nodeGuid, "a node");
    if (!node->GetObject<TrafficControlLayer>()) {
      node->AggregateObject(CreateObject<TrafficControlLayer>());
    }
    node->AggregateObject(Get(Int(c.at(2))));
    Ptr<Ipv4> ipv4 = node->GetObject<Ipv4>();
    Ptr<Ipv4ListRouting> list = CreateObject<Ipv4ListRouting>();
    ipv4->SetRoutingProtocol(list);
    Ptr<Ipv4StaticRouting> st = CreateObject<Ipv4StaticRouting>();
    list->AddRoutingProtocol(st, 0);
    if (c.at(3) == "1") list->AddRoutingProtocol(Ipv4GlobalRoutingHelper().Create(node), -10);
    g_static[nodeGuid] = st;
  } else if (op == "stack") {                 // node: ARP needs the traffic control layer
    Ptr<Node> node = As<Node>(Int(c.at(1)), "a node");
    Ptr<ArpL3Protocol> arp = node->GetObject<ArpL3Protocol>();
    Ptr<TrafficControlLayer> tc = node->GetObject<TrafficControlLayer>();
    if (arp && tc) arp->SetTrafficControl(tc);
    return node->GetObject<Ipv4>() ? "1" : "0";
  } else if (op == "queue") {                 // dev queue
    SetQueue(Int(c.at(1)), As<Queue<Packet>>(Int(c.at(2)), "a packet queue"));
  } else if (op == "defaultqueue") {          // dev
    int dev = Int(c.at(1));
    if ((P2P(dev) && !P2P(dev)->GetQueue()) || (Csma(dev) && !Csma(dev)->GetQueue())) {
      ObjectFactory f;
      f.SetTypeId("ns3::DropTailQueue<Packet>");
      SetQueue(dev, f.Create()->GetObject<Queue<Packet>>());
    }
  } else if (op == "err") {                   // dev model
    Ptr<ErrorModel> em = As<ErrorModel>(Int(c.at(2)), "an error model");
    int dev = Int(c.at(1));
    if (auto p = P2P(dev)) p->SetReceiveErrorModel(em);
    else if (auto cs = Csma(dev)) cs->SetReceiveErrorModel(em);
    else throw std::runtime_error("device has no receive error model");
  } else if (op == "attach") {                // dev chan
    int dev = Int(c.at(1));
    bool ok = false;
    if (auto p = P2P(dev)) ok = p->Attach(As<PointToPointChannel>(Int(c.at(2)), "a P2P channel"));
    else if (auto cs = Csma(dev)) ok = cs->Attach(As<CsmaChannel>(Int(c.at(2)), "a CSMA channel"));
    if (!ok) throw std::runtime_error("cannot attach the device to the channel");
  } else if (op == "loss") {                  // chan model
    As<YansWifiChannel>(Int(c.at(1)), "a YANS channel")
        ->SetPropagationLossModel(As<PropagationLossModel>(Int(c.at(2)), "a loss model"));
  } else if (op == "next") {                  // previous model
    As<PropagationLossModel>(Int(c.at(1)), "a loss model")
        ->SetNext(As<PropagationLossModel>(Int(c.at(2)), "a loss model"));
  } else if (op == "delay") {                 // chan model
    As<YansWifiChannel>(Int(c.at(1)), "a YANS channel")
        ->SetPropagationDelayModel(As<PropagationDelayModel>(Int(c.at(2)), "a delay model"));
  } else if (op == "wifichannel") {           // chan has-loss has-delay: complete it
    Ptr<YansWifiChannel> ch = As<YansWifiChannel>(Int(c.at(1)), "a YANS channel");
    if (c.at(2) == "0") ch->SetPropagationLossModel(CreateObject<LogDistancePropagationLossModel>());
    if (c.at(3) == "0") ch->SetPropagationDelayModel(CreateObject<ConstantSpeedPropagationDelayModel>());
  } else if (op == "mobility") {              // node: a fixed position if it has none
    Ptr<Node> node = As<Node>(Int(c.at(1)), "a node");
    if (!node->GetObject<MobilityModel>()) {
      node->AggregateObject(CreateObject<ConstantPositionMobilityModel>());
    }
  } else if (op == "pairloss") {              // matrix ma mb loss symmetric
    As<MatrixPropagationLossModel>(Int(c.at(1)), "a matrix loss model")
        ->SetLoss(As<MobilityModel>(Int(c.at(2)), "a mobility model"),
                  As<MobilityModel>(Int(c.at(3)), "a mobility model"), std::stod(c.at(4)),
                  c.at(5) == "1");
  } else if (op == "waypoint") {              // guid t x y z
    As<WaypointMobilityModel>(Int(c.at(1)), "a waypoint mobility model")
        ->AddWaypoint(Waypoint(Time(c.at(2)),
                               Vector(std::stod(c.at(3)), std::stod(c.at(4)), std::stod(c.at(5)))));
  } else if (op == "bridge") {                // tapbridge dev
    As<TapBridge>(Int(c.at(1)), "a TapBridge")
        ->SetBridgedNetDevice(As<NetDevice>(Int(c.at(2)), "a device"));
  } else if (op == "fd") {                    // dev fd
    As<FdNetDevice>(Int(c.at(1)), "an FdNetDevice")->SetFileDescriptor(Int(c.at(2)));
  } else if (op == "addr") {                  // node dev address prefix -> ifindex
    Ptr<Ipv4> ipv4 = As<Node>(Int(c.at(1)), "a node")->GetObject<Ipv4>();
    if (!ipv4) {
      throw std::runtime_error("No Ipv4L3Protocol associated to node " + c.at(1) +
                               ": connect one to its protos connector");
    }
    Ptr<NetDevice> d = As<NetDevice>(Int(c.at(2)), "a device");
    int32_t idx = ipv4->GetInterfaceForDevice(d);
    if (idx < 0) idx = ipv4->AddInterface(d);
    ipv4->AddAddress(idx, Ipv4InterfaceAddress(Ipv4Address(c.at(3).c_str()), Prefix(c.at(4))));
    ipv4->SetMetric(idx, 1);
    ipv4->SetUp(idx);
    return std::to_string(idx);
  } else if (op == "route") {                 // node destination prefix nexthop|"" metric
    int nodeGuid = Int(c.at(1));
    auto it = g_static.find(nodeGuid);
    if (it == g_static.end()) {
      throw std::runtime_error("node " + c.at(1) + " has routes but no Ipv4L3Protocol");
    }
    Ptr<Ipv4> ipv4 = As<Node>(nodeGuid, "a node")->GetObject<Ipv4>();
    Ipv4Address dst(c.at(2).c_str());
    int prefix = Int(c.at(3));
    const std::string& nh = c.at(4);
    uint32_t metric = (uint32_t)Int(c.at(5));
    int ifindex = InterfaceFor(ipv4, nh.empty() ? dst : Ipv4Address(nh.c_str()));
    if (ifindex < 0) {
      throw std::runtime_error("Cannot associate interface for routing entry " + c.at(2) + "/" +
                               c.at(3) + (nh.empty() ? "" : " via " + nh) + " on node " +
                               c.at(1) + ": no interface of the node is on that network");
    }
    Ptr<Ipv4StaticRouting> st = it->second;
    if (nh.empty()) {
      if (prefix == 32) st->AddHostRouteTo(dst, ifindex, metric);
      else st->AddNetworkRouteTo(dst, Prefix(c.at(3)), ifindex, metric);
    } else if (prefix == 0) {
      st->SetDefaultRoute(Ipv4Address(nh.c_str()), ifindex, metric);
    } else if (prefix == 32) {
      st->AddHostRouteTo(dst, Ipv4Address(nh.c_str()), ifindex, metric);
    } else {
      st->AddNetworkRouteTo(dst, Prefix(c.at(3)), Ipv4Address(nh.c_str()), ifindex, metric);
    }
  } else if (op == "up") {                    // node 0|1: every interface but the loopback
    Ptr<Ipv4> ipv4 = As<Node>(Int(c.at(1)), "a node")->GetObject<Ipv4>();
    if (ipv4) {
      for (uint32_t i = 1; i < ipv4->GetNInterfaces(); ++i) {
        if (c.at(2) == "1") ipv4->SetUp(i); else ipv4->SetDown(i);
      }
    }
  } else if (op == "isup") {                  // node -> 1 if every interface is up
    Ptr<Ipv4> ipv4 = As<Node>(Int(c.at(1)), "a node")->GetObject<Ipv4>();
    if (!ipv4) return "";
    for (uint32_t i = 1; i < ipv4->GetNInterfaces(); ++i) {
      if (!ipv4->IsUp(i)) return "0";
    }
    return "1";
  } else if (op == "ascii") {                 // dev kind path
    Ptr<OutputStreamWrapper> s = AsciiTraceHelper().CreateFileStream(c.at(3));
    g_ascii.push_back(s);
    Ptr<NetDevice> d = As<NetDevice>(Int(c.at(1)), "a device");
    if (c.at(2) == "p2p") PointToPointHelper().EnableAscii(s, d);
    else if (c.at(2) == "csma") CsmaHelper().EnableAscii(s, d);
    else FdNetDeviceHelper().EnableAscii(s, d);
  } else if (op == "pcap") {                  // dev kind path promiscuous
    int dev = Int(c.at(1));
    bool promisc = c.at(4) == "1";
    if (c.at(2) == "p2p") {
      PcapHelper().HookDefaultSink<PointToPointNetDevice>(
          As<PointToPointNetDevice>(dev, "a P2P device"), "PromiscSniffer",
          NewPcap(c.at(3), PcapHelper::DLT_PPP));
    } else if (c.at(2) == "csma") {
      PcapHelper().HookDefaultSink<CsmaNetDevice>(
          As<CsmaNetDevice>(dev, "a CSMA device"), promisc ? "PromiscSniffer" : "Sniffer",
          NewPcap(c.at(3), PcapHelper::DLT_EN10MB));
    } else {
      PcapHelper().HookDefaultSink<FdNetDevice>(
          As<FdNetDevice>(dev, "an FdNetDevice"), promisc ? "PromiscSniffer" : "Sniffer",
          NewPcap(c.at(3), PcapHelper::DLT_EN10MB));
    }
  } else if (op == "stopapp") {               // app: stop now
    Get(Int(c.at(1)))->SetAttribute("StopTime", TimeValue(Simulator::Now()));
  } else if (op == "status") {                // app -> 0 not started, 1 running, 2 finished
    Ptr<Application> app = As<Application>(Int(c.at(1)), "an application");
    TimeValue start, stop;
    app->GetAttribute("StartTime", start);
    app->GetAttribute("StopTime", stop);
    Time now = Simulator::Now();
    if (now < start.Get()) return "0";
    if (!stop.Get().IsZero() && now >= stop.Get()) return "2";
    return "1";
  } else if (op == "silence") {              // before Destroy: see Expose above
    for (auto& kv : g_objects) {
      Ping* ping = PeekPointer(DynamicCast<Ping>(kv.second));
      if (ping && ping->*Member(PingSeq()) == 0) ping->*Member(PingReported()) = true;
    }
  } else if (op == "populate") {
    Ipv4GlobalRoutingHelper::PopulateRoutingTables();
  } else if (op == "flush") {
    for (auto& s : g_ascii) s->GetStream()->flush();
    for (auto& t : g_text) if (t->is_open()) t->flush();
    for (auto& p : g_pcap) FlushPcap(p);
  } else if (op == "close") {
    for (auto& s : g_ascii) s->GetStream()->flush();
    for (auto& t : g_text) if (t->is_open()) t->close();
    for (auto& p : g_pcap) p->Close();
  } else if (op == "clear") {
    g_objects.clear();
    g_static.clear();
    g_ascii.clear();
    g_pcap.clear();
    g_text.clear();
  } else {
    throw std::runtime_error("unknown command " + op);
  }
  return "";
}

// One entry point for Python: "\x01<message>" reports a failure.
std::string Exec(const std::vector<std::string>& command) {
  try {
    return Exec1(command);
  } catch (const std::exception& e) {
    return std::string("\x01") + e.what();
  }
}

}  // namespace nepi_ns3
"""

RTT = r"""
namespace nepi_ns3 {

// Ping "Rtt" trace: one line per echo reply, "+<now>ns\t+<rtt>ns" as NEPI 2 wrote them.
static void RttSink(std::shared_ptr<std::ofstream> out, uint16_t seq, ns3::Time rtt) {
  (*out) << "+" << ns3::Simulator::Now().GetNanoSeconds() << ".0ns\t+"
         << rtt.GetNanoSeconds() << ".0ns" << std::endl;
}

bool ConnectRtt(int guid, const std::string& path) {
  auto out = std::make_shared<std::ofstream>(path.c_str());
  AddTextStream(out);
  return Get(guid)->TraceConnectWithoutContext("Rtt", ns3::MakeBoundCallback(&RttSink, out));
}

}  // namespace nepi_ns3
"""

WIFI = r"""
namespace nepi_ns3 {

// Wifi frames to a pcap file (DLT_IEEE802_11, no radiotap header).
static void WifiRx(ns3::Ptr<ns3::PcapFileWrapper> file, ns3::Ptr<const ns3::Packet> packet,
                   uint16_t channelFreqMhz, ns3::WifiTxVector txVector, ns3::MpduInfo aMpdu,
                   ns3::SignalNoiseDbm signalNoise, uint16_t staId) {
  file->Write(ns3::Simulator::Now(), packet);
}

static void WifiTx(ns3::Ptr<ns3::PcapFileWrapper> file, ns3::Ptr<const ns3::Packet> packet,
                   uint16_t channelFreqMhz, ns3::WifiTxVector txVector, ns3::MpduInfo aMpdu,
                   uint16_t staId) {
  file->Write(ns3::Simulator::Now(), packet);
}

// The parts of a wifi device built by WifiHelper join the registry.
void PutWifi(int dev, int phy, int mac, int manager, ns3::Ptr<ns3::NetDevice> device) {
  ns3::Ptr<ns3::WifiNetDevice> wd = device->GetObject<ns3::WifiNetDevice>();
  Put(dev, wd);
  Put(phy, wd->GetPhy());
  Put(mac, wd->GetMac());
  if (manager >= 0) Put(manager, wd->GetRemoteStationManager());
}

bool ConnectWifiPcap(int phy, const std::string& path) {
  ns3::Ptr<ns3::PcapFileWrapper> file = NewPcap(path, ns3::PcapHelper::DLT_IEEE802_11);
  ns3::Ptr<ns3::Object> p = Get(phy);
  bool rx = p->TraceConnectWithoutContext("MonitorSnifferRx",
                                          ns3::MakeBoundCallback(&WifiRx, file));
  bool tx = p->TraceConnectWithoutContext("MonitorSnifferTx",
                                          ns3::MakeBoundCallback(&WifiTx, file));
  return rx && tx;
}

}  // namespace nepi_ns3
"""

# -- the compiled library -------------------------------------------------------------

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Optional

_logger = logging.getLogger("nepi.testbeds.ns3.shim")

MODULES = ("core", "network", "internet", "point-to-point", "csma", "wifi", "mobility",
           "propagation", "fd-net-device", "tap-bridge", "applications", "internet-apps",
           "traffic-control")

DECLARATIONS = r"""
#include <functional>
#include <string>
#include <vector>
namespace nepi_ns3 {
std::string Exec(const std::vector<std::string>& command);
void RunOnSim(std::function<void()> f);
void StopNow();
bool Has(int guid);
ns3::Ptr<ns3::Object> Get(int guid);
void Put(int guid, ns3::Ptr<ns3::Object> object);
bool ConnectRtt(int guid, const std::string& path);
void PutWifi(int dev, int phy, int mac, int manager, ns3::Ptr<ns3::NetDevice> device);
bool ConnectWifiPcap(int phy, const std::string& path);
}
"""

BUILD_TIMEOUT = 300.0
# How long a deployment waits, once ns-3 is imported, for a build started with the import.
BUILD_WAIT_AFTER_IMPORT = 20.0


def library_source() -> str:
    return "".join('#include "ns3/%s-module.h"\n' % m for m in MODULES) + CORE + RTT + WIFI


def ns3_prefix() -> Optional[str]:
    """The ns3 wheel's directory (include/, lib64/), found without importing ns-3."""
    import importlib.util
    spec = importlib.util.find_spec("ns3")
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _compiler() -> Optional[str]:
    return shutil.which(os.environ.get("CXX", "g++"))


def cache_dir() -> str:
    base = os.environ.get("NEPI_NS3_SHIM_CACHE")
    if not base:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or
                            os.path.join(os.path.expanduser("~"), ".cache"), "nepi")
    from nepi.rpc.security import ensure_private_dir
    return ensure_private_dir(base)


def _key(prefix: str, compiler: str) -> str:
    try:
        from importlib.metadata import version
        wheel = version("ns3")
    except Exception:
        wheel = "unknown"
    try:
        cc = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                            timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        cc = compiler
    digest = hashlib.sha256("\0".join([library_source(), wheel, prefix, cc, sys.version])
                            .encode()).hexdigest()[:16]
    return "%s-%s" % (wheel, digest)


def library_path() -> Optional[str]:
    """Where the library for this source, wheel and compiler is (or would be) cached."""
    prefix, compiler = ns3_prefix(), _compiler()
    if prefix is None or compiler is None:
        return None
    return os.path.join(cache_dir(), "ns3shim-%s.so" % _key(prefix, compiler))


def build(path: Optional[str] = None, started=None) -> Optional[str]:
    """Compile the library into the cache (atomically); its path, or None if impossible.
    ``started(popen)`` is told about the compiler process (so that it can be killed)."""
    path = path or library_path()
    if path is None:
        return None
    if os.path.exists(path):
        return path
    prefix, compiler = ns3_prefix(), _compiler()
    libdir = next((os.path.join(prefix, d) for d in ("lib64", "lib")
                   if os.path.isdir(os.path.join(prefix, d))), None)
    if libdir is None:
        return None
    libs = sorted(f for f in os.listdir(libdir) if f.startswith("libns3") and f.endswith(".so"))
    workdir = tempfile.mkdtemp(prefix="ns3shim-", dir=os.path.dirname(path))
    try:
        source = os.path.join(workdir, "shim.cc")
        with open(source, "w") as f:
            f.write(library_source())
        output = os.path.join(workdir, "shim.so")
        cmd = [compiler, "-std=c++20", "-O2", "-fPIC", "-shared", "-w",
               "-I" + os.path.join(prefix, "include"), "-o", output, source,
               "-L" + libdir] + ["-l" + lib[3:-3] for lib in libs] + \
              ["-Wl,-rpath," + libdir]
        begin = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        if started is not None:
            started(proc)
        try:
            _, stderr = proc.communicate(timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        if proc.returncode != 0:
            _logger.warning("building the ns-3 shim library failed (exit %s): %s",
                            proc.returncode, (stderr or "")[-2000:])
            return None
        os.chmod(output, 0o600)
        os.replace(output, path)
        for old in os.listdir(os.path.dirname(path)):      # superseded builds
            if old.startswith("ns3shim-") and old.endswith(".so") and \
                    old != os.path.basename(path):
                try:
                    os.unlink(os.path.join(os.path.dirname(path), old))
                except OSError:
                    pass
        _logger.info("built the ns-3 shim library in %.1f s: %s",
                     time.monotonic() - begin, path)
        return path
    except (OSError, subprocess.SubprocessError) as e:
        _logger.warning("building the ns-3 shim library failed: %s", e)
        return None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class Build:
    """A background build (started before importing ns-3, so both run at once)."""

    def __init__(self) -> None:
        self.path: Optional[str] = None
        self._thread: Optional[threading.Thread] = None
        self._proc: Optional[subprocess.Popen] = None
        if os.environ.get("NEPI_NS3_SHIM") == "cling":
            return                               # asked not to use the compiled library
        try:
            target = library_path()
        except Exception as e:                  # no usable cache directory
            _logger.info("no ns-3 shim library cache: %s", e)
            target = None
        if target is None:
            return
        if os.path.exists(target):
            self.path = target
            return
        self._thread = threading.Thread(target=self._run, args=(target,),
                                        name="ns3-shim-build", daemon=True)
        self._thread.start()

    def _run(self, target: str) -> None:
        self.path = build(target, started=lambda proc: setattr(self, "_proc", proc))

    def wait(self, timeout: float = BUILD_WAIT_AFTER_IMPORT) -> Optional[str]:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                _logger.info("the ns-3 shim library is still being built: using cling now")
                return None
        return self.path

    def cancel(self) -> None:
        """Kill an unfinished compiler (nothing is left running after a testbed)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        if self._thread is not None:
            self._thread.join(10)


def load(cppyy, build_: Optional[Build] = None) -> str:
    """Make nepi_ns3 available in this ns-3 process: 'library' or 'cling'."""
    path = build_.wait() if build_ is not None else None
    if path and os.path.exists(path):
        try:
            cppyy.load_library(path)
            cppyy.cppdef(DECLARATIONS)
            return "library"
        except Exception as e:
            _logger.warning("cannot load %s (%s): compiling the shim with cling", path, e)
    cppyy.cppdef("#pragma cling optimize(0)\n" + CORE)
    return "cling"


def main(argv=None) -> int:
    path = build()
    if path is None:
        print("cannot build the ns-3 shim library (needs the ns3 wheel and a C++ compiler)",
              file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
