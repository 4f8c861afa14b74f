// What Python sees of the compiled shim library (declared to cling after loading it).
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
