"""manifest.json, for the runtime layer: the Manifest lives with the experiment controller
(nepi.core.manifest, persistence of the root dir); this name is kept for rpc users."""

from nepi.core.manifest import EC_KEY, Manifest, testbed_key

__all__ = ["EC_KEY", "Manifest", "testbed_key"]
