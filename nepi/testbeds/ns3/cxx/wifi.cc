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
