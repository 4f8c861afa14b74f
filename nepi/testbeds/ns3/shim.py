"""C++ helpers compiled into the ns-3 process with cppyy (ns-3 cannot call Python
callables directly from its scheduler or trace sources).

Compiling costs time (the trace helpers pull in wifi and pcap templates: ~0.9 s), so each
part is compiled when first needed: CORE with the import, RTT and WIFI_PCAP on demand."""

CORE = r"""
#include <functional>
#include <fstream>
#include <memory>
#include <string>

namespace nepi_ns3 {

// Run a Python callable on the simulator thread, as soon as possible.
void RunOnSim(std::function<void()> f) {
  ns3::Simulator::ScheduleWithContext(0xffffffff, ns3::Seconds(0), [f]() { f(); });
}

void StopNow() {
  ns3::Simulator::ScheduleWithContext(0xffffffff, ns3::Seconds(0),
                                      []() { ns3::Simulator::Stop(); });
}

void CloseStream(std::shared_ptr<std::ofstream> out) {
  if (out && out->is_open()) { out->flush(); out->close(); }
}

void FlushStream(std::shared_ptr<std::ofstream> out) {
  if (out && out->is_open()) { out->flush(); }
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

std::shared_ptr<std::ofstream> ConnectRtt(ns3::Ptr<ns3::Application> app,
                                          const std::string& path) {
  auto out = std::make_shared<std::ofstream>(path.c_str());
  app->TraceConnectWithoutContext("Rtt", ns3::MakeBoundCallback(&RttSink, out));
  return out;
}

}  // namespace nepi_ns3
"""

WIFI_PCAP = r"""
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

bool ConnectWifiPcap(ns3::Ptr<ns3::WifiPhy> phy, ns3::Ptr<ns3::PcapFileWrapper> file) {
  bool rx = phy->TraceConnectWithoutContext("MonitorSnifferRx",
                                            ns3::MakeBoundCallback(&WifiRx, file));
  bool tx = phy->TraceConnectWithoutContext("MonitorSnifferTx",
                                            ns3::MakeBoundCallback(&WifiTx, file));
  return rx && tx;
}

}  // namespace nepi_ns3
"""
