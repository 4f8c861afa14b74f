// nepi's ns-3 shim, Ping Rtt trace part (compiled with cling only when a design uses it).
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
