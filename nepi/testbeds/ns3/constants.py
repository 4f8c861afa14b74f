TESTBED_ID = "ns3"
TESTBED_VERSION = "3.44"
# NEPI 2 designs say 3.11 (its patched ns-3); they load and deploy on 3.44.
COMPATIBLE_VERSIONS = ["3.11"]
