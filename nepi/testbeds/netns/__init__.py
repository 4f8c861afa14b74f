"""The netns testbed: nodes are Linux network namespaces (see execute.py)."""

from nepi.testbeds import lazy_execute
from nepi.testbeds.netns.constants import TESTBED_ID, TESTBED_VERSION  # noqa: F401

__getattr__ = lazy_execute(__name__)
