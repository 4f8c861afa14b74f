// nepi's ns-3 shim: the guid registry and Exec(command), the one entry point the ns3
// testbed calls -- through the C function nepi_ns3_exec, with ctypes (declarations.h
// precedes this file; see nepi/testbeds/ns3/shim.py for how it is compiled and loaded).
#include <cstdint>
#include <sstream>
#include <stdexcept>

namespace nepi_ns3 {
using namespace ns3;

static std::map<int, Ptr<Object>> g_objects;
static std::map<int, Ptr<Ipv4StaticRouting>> g_static;
static std::vector<Ptr<OutputStreamWrapper>> g_ascii;
static std::vector<Ptr<PcapFileWrapper>> g_pcap;
static std::vector<std::shared_ptr<std::ofstream>> g_text;
static std::map<std::string, Command> g_commands;       // the optional parts' commands
static void (*g_pump)() = nullptr;                      // runs Python's queued calls

void AddCommand(const std::string& op, Command command) { g_commands[op] = command; }

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

Ptr<PcapFileWrapper> NewPcap(const std::string& path, PcapHelper::DataLinkType dlt) {
  Ptr<PcapFileWrapper> f = PcapHelper().CreateFile(path, std::ios::out, dlt);
  g_pcap.push_back(f);
  return f;
}

// Forget the ARP entries learnt on a device (the peer behind it was replaced).
static void FlushArp(int node, int dev) {
  Ptr<Ipv4L3Protocol> ipv4 = Get(node)->GetObject<Ipv4L3Protocol>();
  Ptr<NetDevice> device = Get(dev)->GetObject<NetDevice>();
  if (!ipv4 || !device) return;
  int32_t index = ipv4->GetInterfaceForDevice(device);
  if (index < 0) return;
  Ptr<ArpCache> cache = ipv4->GetInterface(index)->GetArpCache();
  if (cache) cache->Flush();
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
  } else if (op == "refd") {                  // dev fd node|-1: a new fd while running
    Ptr<FdNetDevice> d = As<FdNetDevice>(Int(c.at(1)), "an FdNetDevice");
    int dev = Int(c.at(1)), fd = Int(c.at(2)), node = Int(c.at(3));
    d->Stop(Seconds(0));                      // StopDevice (closing the old fd) runs first
    Simulator::ScheduleWithContext(0xffffffff, Seconds(0), [d, dev, fd, node]() {
      d->SetFileDescriptor(fd);
      d->Start(Seconds(0));
      if (node >= 0) FlushArp(node, dev);
    });
  } else if (op == "flusharp") {              // node dev
    FlushArp(Int(c.at(1)), Int(c.at(2)));
  } else if (op == "bind") {                  // name kind value: a global value
    if (c.at(2) == "t") CheckTypeId(c.at(1), c.at(3));
    if (!GlobalValue::BindFailSafe(c.at(1), StringValue(c.at(3)))) {
      throw std::runtime_error("ns-3 refused the global value " + c[1] + " = '" + c[3] + "'");
    }
  } else if (op == "stopat") {                // time: the simulation ends then
    Simulator::Stop(Time(c.at(1)));
  } else if (op == "run") {
    Simulator::Run();
  } else if (op == "stop") {                  // on the simulator thread
    Simulator::Stop();
  } else if (op == "wake") {                  // any thread: the pump runs as an event
    Simulator::ScheduleWithContext(0xffffffff, Seconds(0), []() {
      if (g_pump) g_pump();
    });
  } else if (op == "destroy") {
    Simulator::Destroy();
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
    auto it = g_commands.find(op);
    if (it == g_commands.end()) throw std::runtime_error("unknown command " + op);
    return it->second(c);
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

// ctypes calls these with the GIL released. The result stays valid until the calling
// thread's next call.
extern "C" const char* nepi_ns3_exec(int argc, const char* const* argv) {
  static thread_local std::string result;
  result = nepi_ns3::Exec(std::vector<std::string>(argv, argv + argc));
  return result.c_str();
}

// The Python callable (a ctypes callback) that "wake" events run on the simulator thread.
extern "C" void nepi_ns3_set_pump(void (*pump)()) { nepi_ns3::g_pump = pump; }
