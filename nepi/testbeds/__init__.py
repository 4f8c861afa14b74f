"""Built-in testbeds. Each sub-package exposes TESTBED_ID, TESTBED_VERSION, a ``metadata``
module with a MetadataInfo class, and (once it can execute) a TestbedController."""


def lazy_execute(package: str):
    """A testbed package's module ``__getattr__``: its TestbedController and cleanup hook
    come from ``<package>.execute``, imported only when a deployment needs them (so
    loading metadata stays cheap)."""
    def __getattr__(name):
        if name in ("TestbedController", "cleanup"):
            import importlib
            return getattr(importlib.import_module(package + ".execute"), name)
        raise AttributeError(name)
    return __getattr__
