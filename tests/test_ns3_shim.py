"""The ns-3 shim's C++ is real source shipped with the package, and the generated TypeId
table is exactly what the installed ns3 wheel gives (``make typeids``)."""

import filecmp
import importlib.util
import os
import subprocess
import sys

import pytest

from nepi.testbeds.ns3 import shim

needs_ns3 = pytest.mark.skipif(importlib.util.find_spec("ns") is None,
                               reason="the ns3 wheel is not installed (pip install ns3)")


def test_the_shim_sources_are_package_files():
    for name in ("core.cc", "rtt.cc", "wifi.cc", "declarations.h"):
        assert os.path.isfile(os.path.join(shim.CXX_DIR, name)), name
    source = shim.library_source()
    for part in (shim.CORE, shim.RTT, shim.WIFI):
        assert part in source
    assert "std::string Exec(const std::vector<std::string>& command)" in shim.CORE
    assert "std::string Exec(const std::vector<std::string>& command);" in shim.DECLARATIONS
    # shipped by setup.cfg's package data, so an installed nepi has them too
    with open(os.path.join(os.path.dirname(shim.CXX_DIR), "..", "..", "..", "setup.cfg")) as f:
        assert "nepi.testbeds.ns3 = cxx/*.cc, cxx/*.h" in f.read()


@needs_ns3
def test_regenerating_the_typeid_table_gives_the_committed_file(tmp_path):
    out = tmp_path / "typeids.py"
    proc = subprocess.run([sys.executable, "-m", "nepi.testbeds.ns3.gen_typeids", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    committed = os.path.join(os.path.dirname(shim.__file__), "typeids.py")
    assert filecmp.cmp(str(out), committed, shallow=False), \
        "nepi/testbeds/ns3/typeids.py is stale: run `make typeids` and commit it"
