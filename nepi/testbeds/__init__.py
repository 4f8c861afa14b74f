"""Built-in testbeds. Each sub-package exposes TESTBED_ID, TESTBED_VERSION, a ``metadata``
module with a MetadataInfo class, and (once it can execute) a TestbedController."""
