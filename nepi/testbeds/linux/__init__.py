"""The linux testbed: each Node is a Linux host reached over OpenSSH, running NEPI 2
PlanetLab-style applications (sources, build, install, depends, stdin) detached in a
per-experiment folder of the SSH user's home (see execute.py)."""

from nepi.testbeds import lazy_execute
from nepi.testbeds.linux.constants import TESTBED_ID, TESTBED_VERSION  # noqa: F401

__getattr__ = lazy_execute(__name__)
