"""Remote calls over Pyro5: secured daemons, client proxies, launching, manifest, liveness.

Importing this package registers how nepi's exceptions cross the wire and pins the
serializer to serpent.
"""

import Pyro5

from nepi.rpc import serialization  # noqa: F401

Pyro5.config.SERIALIZER = "serpent"
Pyro5.config.SERVERTYPE = "thread"
Pyro5.config.DETAILED_TRACEBACK = False

PROTOCOL = 1
