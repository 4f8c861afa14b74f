// nepi's ns-3 shim, Ping Rtt trace part (compiled with cling only when a design uses it).
namespace nepi_ns3 {

// Ping "Rtt" trace: one line per echo reply, "+<now>ns\t+<rtt>ns" as NEPI 2 wrote them.
static void RttSink(std::shared_ptr<std::ofstream> out, uint16_t seq, ns3::Time rtt) {
  (*out) << "+" << ns3::Simulator::Now().GetNanoSeconds() << ".0ns\t+"
         << rtt.GetNanoSeconds() << ".0ns" << std::endl;
}

static std::string ConnectRtt(const std::vector<std::string>& c) {   // rtt guid path
  int guid = std::stoi(c.at(1));
  auto out = std::make_shared<std::ofstream>(c.at(2).c_str());
  AddTextStream(out);
  if (!Get(guid)->TraceConnectWithoutContext("Rtt", ns3::MakeBoundCallback(&RttSink, out))) {
    throw std::runtime_error("cannot hook the Rtt trace of application " + c[1]);
  }
  return "";
}

}  // namespace nepi_ns3

extern "C" void nepi_ns3_register_rtt() { nepi_ns3::AddCommand("rtt", &nepi_ns3::ConnectRtt); }
