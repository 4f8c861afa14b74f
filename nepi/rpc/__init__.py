"""The runtime layer: daemons and their clients over Pyro5 (secured), launching them
locally or over SSH (the testbed launchers handed to experiment controllers), liveness,
the one cleanup of a root dir, and what the commands do to root dirs and nepid.

Importing this package registers how nepi's exceptions cross the wire (serpent class
hooks). It does not touch Pyro5's global config: nepi's daemons (nepi.rpc.server) and
proxies (nepi.rpc.client) carry their own settings -- serpent only, their own transport,
no detailed tracebacks -- so a program using Pyro5 for something else keeps its own.
"""

from nepi.rpc import serialization  # noqa: F401

PROTOCOL = 1
