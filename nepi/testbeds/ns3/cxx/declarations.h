// The shim's interface, ahead of core.cc: the C entry points Python calls with ctypes,
// and what the optional parts (rtt.cc, wifi.cc, compiled later with cling) use of the core.
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>
namespace nepi_ns3 {
typedef std::string (*Command)(const std::vector<std::string>& command);
std::string Exec(const std::vector<std::string>& command);
void AddCommand(const std::string& op, Command command);
ns3::Ptr<ns3::Object> Get(int guid);
void Put(int guid, ns3::Ptr<ns3::Object> object);
void AddTextStream(std::shared_ptr<std::ofstream> out);
ns3::Ptr<ns3::PcapFileWrapper> NewPcap(const std::string& path,
                                       ns3::PcapHelper::DataLinkType dlt);
}  // namespace nepi_ns3
extern "C" {
const char* nepi_ns3_exec(int argc, const char* const* argv);  // "\x01<message>": failed
void nepi_ns3_set_pump(void (*pump)());
void nepi_ns3_register_rtt();   // each part adds its commands
void nepi_ns3_register_wifi();
}
