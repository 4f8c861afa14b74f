"""Testbed metadata: what a testbed declares (MetadataInfo), how nepi loads it (Metadata)
and the factories it offers (FactoriesProvider)."""

import getpass
import importlib
import itertools
from typing import Dict, List

from nepi.core.attributes import Attribute, AttributesMap
from nepi.core.connector import ConnectorType
from nepi.core.factory import Factory
from nepi.util import tags, validation
from nepi.util.constants import ATTR_NEPI_TESTBED_ENVIRONMENT_SETUP, AC, DC
from nepi.util.environ import find_testbed, testbed_modules


def controller_method(method: str):
    """A metadata function (create/start/status/connection code...) that calls the
    testbed controller's method of that name with the remaining arguments."""
    def call(testbed_instance, *args, **kwargs):
        return getattr(testbed_instance, method)(*args, **kwargs)
    call.__name__ = method
    return call


class Parallel:
    """Marks a factory in an order list whose elements are processed concurrently."""

    def __init__(self, factory: str, maxthreads: int = 64) -> None:
        self.factory = factory
        self.maxthreads = maxthreads

    def __repr__(self) -> str:
        return "Parallel(%r, %d)" % (self.factory, self.maxthreads)


class MetadataInfo:
    """Base of each testbed's ``metadata.MetadataInfo``; subclasses fill the tables."""

    @property
    def connector_types(self) -> Dict[str, dict]:
        raise NotImplementedError

    @property
    def connections(self) -> List[dict]:
        raise NotImplementedError

    @property
    def attributes(self) -> Dict[str, dict]:
        raise NotImplementedError

    @property
    def traces(self) -> Dict[str, dict]:
        raise NotImplementedError

    @property
    def create_order(self) -> list:
        raise NotImplementedError

    @property
    def configure_order(self) -> list:
        raise NotImplementedError

    @property
    def preconfigure_order(self) -> list:
        return self.configure_order

    @property
    def prestart_order(self) -> list:
        return self.configure_order

    @property
    def start_order(self) -> list:
        return self.configure_order

    @property
    def factories_info(self) -> Dict[str, dict]:
        raise NotImplementedError

    @property
    def testbed_attributes(self) -> Dict[str, dict]:
        raise NotImplementedError

    @property
    def testbed_id(self) -> str:
        raise NotImplementedError

    @property
    def testbed_version(self) -> str:
        raise NotImplementedError

    @property
    def supported_recovery_policies(self) -> List[str]:
        return [DC.POLICY_FAIL, DC.POLICY_RESTART]

    @property
    def compatible_versions(self) -> List[str]:
        """Older versions whose designs this testbed still deploys (e.g. NEPI 2's)."""
        return []


_DEPLOY = Attribute.ExecReadOnly | Attribute.ExecImmutable | Attribute.Metadata


def _dep(name, help, type, value=None, allowed=None, fn=validation.is_string):
    return dict(name=name, help=help, type=type, value=value, allowed=allowed,
                flags=_DEPLOY, validation_function=fn, category=AC.CATEGORY_DEPLOYMENT)


def deployment_attributes() -> Dict[str, dict]:
    """The 13 deployment attributes; the user default is read now, not at import."""
    return {
        "deployment_environment_setup": _dep(
            DC.DEPLOYMENT_ENVIRONMENT_SETUP,
            "Shell commands run before the controller starts (e.g. exports)", Attribute.STRING),
        "deployment_mode": _dep(
            DC.DEPLOYMENT_MODE, "Run the controller in this process (SINGLE) or as a daemon",
            Attribute.ENUM, DC.MODE_SINGLE_PROCESS, [DC.MODE_DAEMON, DC.MODE_SINGLE_PROCESS],
            validation.is_enum),
        "deployment_communication": _dep(
            DC.DEPLOYMENT_COMMUNICATION, "How a daemon is reached: locally or over SSH",
            Attribute.ENUM, DC.ACCESS_LOCAL, [DC.ACCESS_LOCAL, DC.ACCESS_SSH],
            validation.is_enum),
        "deployment_host": _dep(DC.DEPLOYMENT_HOST, "Host where the daemon runs",
                                Attribute.STRING, "localhost"),
        "deployment_user": _dep(DC.DEPLOYMENT_USER, "User the daemon runs as (SSH login)",
                                Attribute.STRING, getpass.getuser()),
        "deployment_key": _dep(DC.DEPLOYMENT_KEY, "SSH private key file", Attribute.STRING),
        "deployment_known_hosts": _dep(
            DC.DEPLOYMENT_KNOWN_HOSTS, "known_hosts file: when set, the host's key is checked "
            "strictly against it", Attribute.STRING),
        "deployment_port": _dep(DC.DEPLOYMENT_PORT, "SSH port", Attribute.INTEGER, 22,
                                fn=validation.is_integer),
        "root_directory": _dep(DC.ROOT_DIRECTORY, "Working directory of the controller",
                               Attribute.STRING, "."),
        "use_agent": _dep(DC.USE_AGENT, "Forward the SSH agent", Attribute.BOOL, False,
                          fn=validation.is_bool),
        "use_sudo": _dep(DC.USE_SUDO, "Run the daemon with sudo", Attribute.BOOL, False,
                         fn=validation.is_bool),
        "clean_root": _dep(DC.CLEAN_ROOT, "Empty the root directory before starting",
                           Attribute.BOOL, False, fn=validation.is_bool),
        "log_level": _dep(DC.LOG_LEVEL, "Daemon log level", Attribute.ENUM, DC.ERROR_LEVEL,
                          [DC.ERROR_LEVEL, DC.DEBUG_LEVEL], validation.is_enum),
        "recovery_policy": _dep(
            DC.RECOVERY_POLICY, "What to do when this controller is found dead",
            Attribute.ENUM, DC.POLICY_FAIL,
            [DC.POLICY_FAIL, DC.POLICY_RECOVER, DC.POLICY_RESTART], validation.is_enum),
    }


def proxy_attributes() -> Dict[str, dict]:
    """The experiment controller's access attributes: the deployment ones, ``recover``,
    and what reaching a remote nepid over TLS takes (communication TLS, the host and port
    of its ``--listen``, and this client's files made by ``nepid certs``)."""
    attrs = deployment_attributes()
    attrs["recover"] = _dep(DC.RECOVER, "Reconnect to running controllers instead of launching",
                            Attribute.BOOL, False, fn=validation.is_bool)
    attrs["deployment_communication"] = _dep(
        DC.DEPLOYMENT_COMMUNICATION, "How nepid is reached: locally, over SSH, or over TCP "
        "with mutual TLS (deployment_host, deployment_port, tls_*)", Attribute.ENUM,
        DC.ACCESS_LOCAL, [DC.ACCESS_LOCAL, DC.ACCESS_SSH, DC.ACCESS_TLS], validation.is_enum)
    attrs["tls_ca"] = _dep(DC.TLS_CA, "TLS: CA certificate nepid's server certificate is "
                           "checked against (ca.crt of `nepid certs`)", Attribute.STRING)
    attrs["tls_cert"] = _dep(DC.TLS_CERT, "TLS: this client's certificate "
                             "(clients/NAME.crt of `nepid certs`)", Attribute.STRING)
    attrs["tls_key"] = _dep(DC.TLS_KEY, "TLS: this client's private key "
                            "(clients/NAME.key of `nepid certs`)", Attribute.STRING)
    return attrs


def standard_testbed_attributes() -> Dict[str, dict]:
    attrs = {
        "home_directory": dict(name="homeDirectory", help="Home directory of the testbed",
                               type=Attribute.STRING, value="", flags=_DEPLOY,
                               validation_function=validation.is_string),
        "label": dict(name="label", help="A unique identifier for referring to this testbed",
                      type=Attribute.STRING, flags=_DEPLOY,
                      validation_function=validation.is_string),
    }
    attrs.update(deployment_attributes())
    return attrs


STANDARD_BOX_ATTRIBUTES = {
    "label": dict(name="label", help="A unique identifier for referring to this box",
                  type=Attribute.STRING, flags=_DEPLOY,
                  validation_function=validation.is_string),
}

STANDARD_TAGGED_ATTRIBUTES_DEFINITIONS = {
    "maxAddresses": dict(name="maxAddresses",
                         help="The maximum allowed number of addresses",
                         type=Attribute.INTEGER, value=1,
                         flags=Attribute.DesignReadOnly | Attribute.ExecInvisible
                         | Attribute.Metadata,
                         validation_function=validation.is_integer),
}

STANDARD_TAGGED_BOX_ATTRIBUTES = {
    tags.ALLOW_ADDRESSES: ["maxAddresses"],
    tags.HAS_ADDRESSES: ["maxAddresses"],
}

_TUN = Attribute.DesignInvisible | Attribute.ExecInvisible | Attribute.ExecImmutable \
    | Attribute.Metadata

STANDARD_BOX_ATTRIBUTE_DEFINITIONS = {
    "tun_proto": dict(name="tun_proto", help="TUNneling protocol used",
                      type=Attribute.STRING, flags=_TUN,
                      validation_function=validation.is_string),
    "tun_key": dict(name="tun_key", help="NEPI 2 tunnel key: set in a design, the link key of "
                    "the TunChannel is derived from it (HKDF); unset, the experiment controller "
                    "makes a random one",
                    type=Attribute.STRING, flags=_TUN, validation_function=validation.is_string),
    "tun_addr": dict(name="tun_addr", help="Address (IP, unix socket, whatever) of the tunnel",
                     type=Attribute.STRING, flags=_TUN,
                     validation_function=validation.is_string),
    "tun_port": dict(name="tun_port", help="IP port of the tunnel endpoint",
                     type=Attribute.INTEGER, flags=_TUN,
                     validation_function=validation.is_integer),
    "tun_cipher": dict(name="tun_cipher", help="Cipher used for the tunnel: the same on both "
                       "ends; any value but PLAIN authenticates and encrypts each frame "
                       "(AES-256-GCM), PLAIN carries frames unauthenticated",
                       type=Attribute.ENUM, value="AES",
                       allowed=["AES", "Blowfish", "DES3", "DES", "PLAIN"],
                       flags=Attribute.ExecImmutable | Attribute.Metadata,
                       validation_function=validation.is_enum),
    "tun_stats": dict(name="tun_stats", help="TunChannel counters, live: frames in/out, "
                      "dropped, forged, replayed, malformed, oversized, rejected connections",
                      type=Attribute.STRING,
                      flags=Attribute.DesignInvisible | Attribute.DesignReadOnly
                      | Attribute.ExecReadOnly | Attribute.ExecImmutable | Attribute.Metadata,
                      validation_function=validation.is_string),
    ATTR_NEPI_TESTBED_ENVIRONMENT_SETUP: dict(
        name=ATTR_NEPI_TESTBED_ENVIRONMENT_SETUP,
        help="Commands to set up the environment needed to run NEPI testbeds",
        type=Attribute.STRING, flags=_TUN, validation_function=validation.is_string),
}


def _add_definition(amap_add, definition: dict) -> None:
    amap_add(definition["name"], definition["help"], definition["type"],
             definition.get("value"), definition.get("range"), definition.get("allowed"),
             definition.get("flags", Attribute.NoFlags),
             definition["validation_function"], definition.get("category"))


def _expand(triple) -> list:
    """(T, (A, B), "x") -> [(T, A, "x"), (T, B, "x")]."""
    parts = [list(p) if isinstance(p, (list, tuple, set, frozenset)) else [p] for p in triple]
    return list(itertools.product(*parts))


class Metadata:
    """A testbed's metadata as nepi objects: attribute maps, factories, orders."""

    def __init__(self, testbed_id: str) -> None:
        self._testbed_id = testbed_id
        self._module_name = find_testbed(testbed_id)
        try:
            module = importlib.import_module(self._module_name + ".metadata")
        except ModuleNotFoundError as e:
            if e.name and (self._module_name.startswith(e.name)
                           or e.name == self._module_name + ".metadata"):
                raise ValueError("unknown testbed %r (no module %s; known testbeds: %s)"
                                 % (testbed_id, self._module_name + ".metadata",
                                    ", ".join(sorted(known_testbeds())) or "none")) from None
            raise
        self._info = module.MetadataInfo()
        if self._info.testbed_id != testbed_id:
            raise RuntimeError("Bad testbed id. Asked for %s, got %s"
                               % (testbed_id, self._info.testbed_id))

    testbed_id = property(lambda self: self._testbed_id)
    testbed_version = property(lambda self: self._info.testbed_version)
    info = property(lambda self: self._info)

    def accepts_version(self, version: str) -> bool:
        return version == self.testbed_version or version in self._info.compatible_versions

    def _complete_order(self, order: list) -> list:
        """The order list, then every factory it does not name (none is silently skipped)."""
        named = {o.factory if isinstance(o, Parallel) else o for o in order}
        return list(order) + [f for f in self._info.factories_info if f not in named]

    create_order = property(lambda self: self._complete_order(self._info.create_order))
    configure_order = property(lambda self: self._complete_order(self._info.configure_order))
    preconfigure_order = property(
        lambda self: self._complete_order(self._info.preconfigure_order))
    prestart_order = property(lambda self: self._complete_order(self._info.prestart_order))
    start_order = property(lambda self: self._complete_order(self._info.start_order))

    @property
    def supported_recovery_policies(self) -> List[str]:
        return self._info.supported_recovery_policies

    def testbed_attributes(self) -> AttributesMap:
        amap = AttributesMap()
        definitions = standard_testbed_attributes()
        definitions.update(self._info.testbed_attributes)
        for definition in definitions.values():
            _add_definition(amap.add_attribute, definition)
        return amap

    def build_factories(self) -> List[Factory]:
        info = self._info
        from_index: Dict[tuple, list] = {}
        to_index: Dict[tuple, list] = {}
        for conn in info.connections:
            for f in _expand(conn["from"]):
                for t in _expand(conn["to"]):
                    entry = (conn.get("can_cross", False), conn.get("init_code"),
                             conn.get("compl_code"))
                    from_index.setdefault(f, []).append((t,) + entry)
                    to_index.setdefault(t, []).append((f,) + entry)
        factories = []
        for factory_id, finfo in info.factories_info.items():
            factory = Factory(factory_id,
                              finfo.get("create_function"), finfo.get("start_function"),
                              finfo.get("stop_function"), finfo.get("status_function"),
                              finfo.get("configure_function"),
                              finfo.get("preconfigure_function"),
                              finfo.get("prestart_function"),
                              help=finfo["help"], category=finfo["category"])
            for tag in finfo.get("tags", []):
                factory.add_tag(tag)
            self._add_attributes(factory, finfo)
            for trace_id in finfo.get("traces", []):
                trace = info.traces[trace_id]
                factory.add_trace(trace["name"], trace["help"])
            for cid in finfo.get("connector_types", []):
                ct = info.connector_types[cid]
                ctype = ConnectorType(self._testbed_id, factory_id, ct["name"], ct["help"],
                                      ct.get("max", -1), ct.get("min", 0))
                key = (self._testbed_id, factory_id, ct["name"])
                for (far, can_cross, init, compl) in to_index.get(key, []):
                    ctype.add_from_connection(far[0], far[1], far[2], can_cross, init, compl)
                for (far, can_cross, init, compl) in from_index.get(key, []):
                    ctype.add_to_connection(far[0], far[1], far[2], can_cross, init, compl)
                factory.add_connector_type(ctype)
            factories.append(factory)
        return factories

    def _add_attributes(self, factory: Factory, finfo: dict) -> None:
        info = self._info
        tagged: Dict[str, dict] = {}
        for tag in finfo.get("tags", []):
            for attr_id in STANDARD_TAGGED_BOX_ATTRIBUTES.get(tag, []):
                tagged[attr_id] = STANDARD_TAGGED_ATTRIBUTES_DEFINITIONS[attr_id]
        box_defs = dict(tagged)
        for attr_id in finfo.get("box_attributes", []):
            if attr_id in info.attributes:
                box_defs[attr_id] = info.attributes[attr_id]
            else:
                box_defs[attr_id] = STANDARD_BOX_ATTRIBUTE_DEFINITIONS[attr_id]
        box_defs.update(STANDARD_BOX_ATTRIBUTES)
        for definition in box_defs.values():
            _add_definition(factory.add_box_attribute, definition)
        factory_defs = dict(tagged)
        for attr_id in finfo.get("factory_attributes", []):
            factory_defs[attr_id] = info.attributes[attr_id]
        for definition in factory_defs.values():
            _add_definition(factory.add_attribute, definition)


class FactoriesProvider:
    """The factories of one testbed, built from its metadata: what a design creates boxes
    from and what checks judge a design by (NEPI 2 imports it from nepi.core.design)."""

    def __init__(self, testbed_id: str) -> None:
        metadata = Metadata(testbed_id)
        self._testbed_id = testbed_id
        self._testbed_version = metadata.testbed_version
        self._factories = {f.factory_id: f for f in metadata.build_factories()}

    testbed_id = property(lambda self: self._testbed_id)
    testbed_version = property(lambda self: self._testbed_version)

    @property
    def factories(self) -> List[Factory]:
        return list(self._factories.values())

    def factory(self, factory_id: str) -> Factory:
        try:
            return self._factories[factory_id]
        except KeyError:
            raise KeyError("testbed %s has no factory %r (known: %s)"
                           % (self._testbed_id, factory_id,
                              ", ".join(sorted(self._factories)))) from None

    def has_factory(self, factory_id: str) -> bool:
        return factory_id in self._factories

    def add_factory(self, factory: Factory) -> None:
        self._factories[factory.factory_id] = factory

    def remove_factory(self, factory_id: str) -> None:
        del self._factories[factory_id]


def known_testbeds() -> List[str]:
    return list(testbed_modules())
