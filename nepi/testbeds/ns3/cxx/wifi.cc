// nepi's ns-3 shim, wifi part (compiled with cling only when a design uses it).
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

static std::string ConnectWifiPcap(const std::vector<std::string>& c) {  // wifipcap phy path
  ns3::Ptr<ns3::PcapFileWrapper> file = NewPcap(c.at(2), ns3::PcapHelper::DLT_IEEE802_11);
  ns3::Ptr<ns3::Object> p = Get(std::stoi(c.at(1)));
  bool rx = p->TraceConnectWithoutContext("MonitorSnifferRx",
                                          ns3::MakeBoundCallback(&WifiRx, file));
  bool tx = p->TraceConnectWithoutContext("MonitorSnifferTx",
                                          ns3::MakeBoundCallback(&WifiTx, file));
  if (!rx || !tx) {
    throw std::runtime_error("cannot hook the wifi PHY " + c[1] + " sniffer traces");
  }
  return "";
}

// One box's construct-time attributes for a helper: "typeid n [name text]*n" from c[i]
// on, each parsed with its checker (the helpers would abort on a bad value).
struct HelperPart {
  std::string typeId;
  std::vector<std::pair<std::string, ns3::Ptr<ns3::AttributeValue>>> attributes;
};

static HelperPart ReadPart(const std::vector<std::string>& c, size_t& i) {
  HelperPart part;
  part.typeId = c.at(i++);
  size_t n = std::stoul(c.at(i++));
  ns3::TypeId tid;
  if (n > 0 && !ns3::TypeId::LookupByNameFailSafe(part.typeId, &tid)) {
    throw std::runtime_error("ns-3 has no TypeId '" + part.typeId + "'");
  }
  for (size_t k = 0; k < n; ++k, i += 2) {
    const std::string& name = c.at(i);
    const std::string& text = c.at(i + 1);
    ns3::TypeId::AttributeInformation info;
    if (!tid.LookupAttributeByName(name, &info)) {
      throw std::runtime_error(part.typeId + " has no attribute " + name);
    }
    ns3::Ptr<ns3::AttributeValue> v = info.checker->Create();
    if (!v->DeserializeFromString(text, info.checker)) {
      throw std::runtime_error("ns-3 cannot parse '" + text + "' as the " + name + " of " +
                               part.typeId);
    }
    part.attributes.emplace_back(name, v);
  }
  return part;
}

// The helpers keep the MAC's and the station manager's factories to themselves.
struct OpenMacHelper : ns3::WifiMacHelper {
  void Set(const std::string& name, const ns3::AttributeValue& v) { m_mac.Set(name, v); }
};
struct OpenWifiHelper : ns3::WifiHelper {
  void SetManager(const HelperPart& part) {
    SetRemoteStationManager(part.typeId);
    for (auto& a : part.attributes) {
      for (auto& f : m_stationManager) f.Set(a.first, *a.second);
    }
  }
};

static ns3::WifiStandard StandardNamed(const std::string& name) {
  static const std::map<std::string, ns3::WifiStandard> standards = {
      {"WIFI_STANDARD_80211a", ns3::WIFI_STANDARD_80211a},
      {"WIFI_STANDARD_80211b", ns3::WIFI_STANDARD_80211b},
      {"WIFI_STANDARD_80211g", ns3::WIFI_STANDARD_80211g},
      {"WIFI_STANDARD_80211p", ns3::WIFI_STANDARD_80211p},
      {"WIFI_STANDARD_80211n", ns3::WIFI_STANDARD_80211n},
      {"WIFI_STANDARD_80211ac", ns3::WIFI_STANDARD_80211ac},
      {"WIFI_STANDARD_80211ad", ns3::WIFI_STANDARD_80211ad},
      {"WIFI_STANDARD_80211ax", ns3::WIFI_STANDARD_80211ax},
      {"WIFI_STANDARD_80211be", ns3::WIFI_STANDARD_80211be}};
  auto it = standards.find(name);
  if (it == standards.end()) throw std::runtime_error("unknown wifi standard " + name);
  return it->second;
}

// A wifi device built by ns-3's helpers from nepi's PHY, MAC and manager boxes (raw wifi
// objects cannot be wired in 3.44); its parts join the registry.
// wifi node dev phy mac manager|-1 channel|-1 standard error-model-typeid|""
//      <phy part> <mac part> <manager part>      (see ReadPart; "" 0 for no manager)
static std::string InstallWifi(const std::vector<std::string>& c) {
  int node = std::stoi(c.at(1)), dev = std::stoi(c.at(2)), phy = std::stoi(c.at(3));
  int mac = std::stoi(c.at(4)), manager = std::stoi(c.at(5)), chan = std::stoi(c.at(6));
  size_t i = 9;
  HelperPart phyPart = ReadPart(c, i), macPart = ReadPart(c, i), managerPart = ReadPart(c, i);
  ns3::YansWifiPhyHelper phyHelper;
  phyHelper.SetChannel(chan >= 0 ? Get(chan)->GetObject<ns3::YansWifiChannel>()
                                 : ns3::YansWifiChannelHelper::Default().Create());
  if (!c.at(8).empty()) phyHelper.SetErrorRateModel(c[8]);
  for (auto& a : phyPart.attributes) phyHelper.Set(a.first, *a.second);
  OpenMacHelper macHelper;
  macHelper.SetType(macPart.typeId);
  for (auto& a : macPart.attributes) macHelper.Set(a.first, *a.second);
  OpenWifiHelper wifi;
  wifi.SetStandard(StandardNamed(c.at(7)));
  if (manager >= 0) wifi.SetManager(managerPart);
  ns3::Ptr<ns3::WifiNetDevice> wd = wifi.Install(phyHelper, macHelper,
                                                 Get(node)->GetObject<ns3::Node>())
                                        .Get(0)->GetObject<ns3::WifiNetDevice>();
  Put(dev, wd);
  Put(phy, wd->GetPhy());
  Put(mac, wd->GetMac());
  if (manager >= 0) Put(manager, wd->GetRemoteStationManager());
  return "";
}

}  // namespace nepi_ns3

extern "C" void nepi_ns3_register_wifi() {
  nepi_ns3::AddCommand("wifi", &nepi_ns3::InstallWifi);
  nepi_ns3::AddCommand("wifipcap", &nepi_ns3::ConnectWifiPcap);
}
