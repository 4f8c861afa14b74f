"""Metadata of the ns3 testbed (ns-3 3.44; NEPI 2's 3.11 designs accepted).

Factories and connectors come from ``spec``; each factory's attributes are ns-3's own
(``typeids``, generated from TypeId information: names, types, defaults, ranges, choices,
help) plus the few NEPI-only ones. This module never imports ns-3.
"""

import functools
from typing import Dict, List

from nepi.core import metadata
from nepi.core.attributes import Attribute
from nepi.testbeds.ns3 import functions, spec, values
from nepi.testbeds.ns3.constants import COMPATIBLE_VERSIONS, TESTBED_ID, TESTBED_VERSION
from nepi.util import validation
from nepi.util.constants import DeploymentConfiguration as DC

_NEPI_TYPE = {"Boolean": Attribute.BOOL, "Uinteger": Attribute.INTEGER,
              "Integer": Attribute.INTEGER, "Double": Attribute.DOUBLE,
              "Enum": Attribute.ENUM}

# ns-3 attribute flags
ATTR_GET, ATTR_SET, ATTR_CONSTRUCT = 1, 2, 4

_NAMED_VALIDATIONS = {
    "bool": validation.is_bool,
    "enum": validation.is_enum,
    "double": validation.is_number,
    "ref_address": values.is_ref_address,
    "positive_integer": validation.is_integer_range(1, None),
    "waypoints": values.is_waypoints,
    "interface_name_or_empty": validation.is_interface_name_or_empty,
}

_KIND_FUNCTIONS = {
    "node": dict(create_function=functions.create_node,
                 configure_function=functions.configure_node),
    "device": dict(create_function=functions.create_object,
                   configure_function=functions.configure_device),
    "wifi_device": dict(create_function=functions.create_deferred,
                        configure_function=functions.configure_device),
    "wifi_phy": dict(create_function=functions.create_deferred,
                     configure_function=functions.configure_wifi_phy),
    "wifi_mac": dict(create_function=functions.create_deferred),
    "wifi_manager": dict(create_function=functions.create_deferred),
    "wifi_error": dict(create_function=functions.create_deferred),
    "mobility": dict(create_function=functions.create_mobility),
    "mobility_pair": dict(create_function=functions.create_nothing),
    "tunchannel": dict(create_function=functions.create_tunchannel),
    "application": dict(create_function=functions.create_object,
                        configure_function=functions.configure_application,
                        start_function=functions.start_application,
                        stop_function=functions.stop_application,
                        status_function=functions.status_application),
}


def _int_range(underlying: str):
    """'uint16_t 0:65535' -> (0, 65535)."""
    try:
        low, high = underlying.split(" ", 1)[1].split(":")
        low, high = int(low), int(high)
    except (IndexError, ValueError):
        return None
    return (low, high) if low <= high else None


def _double_range(underlying: str):
    try:
        low, high = underlying.split(" ", 1)[1].split(":")
        low, high = float(low), float(high)
    except (IndexError, ValueError):
        return None
    if low <= -1.7e308 and high >= 1.7e308:
        return None
    return (low, high)


def ns3_attribute_definition(row, flags_override=None) -> dict:
    """A nepi attribute definition for one ns-3 TypeId attribute row."""
    name, vtype, ns_flags, support, initial, underlying, help_text = row
    nepi_type = _NEPI_TYPE.get(vtype, Attribute.STRING)
    definition = dict(name=name, help=help_text or name, type=nepi_type,
                      value=values.default_value(vtype, initial), ns3_type=vtype,
                      ns3_flags=ns_flags)
    if nepi_type == Attribute.BOOL:
        definition["validation_function"] = validation.is_bool
    elif nepi_type == Attribute.INTEGER:
        rng = _int_range(underlying)
        definition["validation_function"] = validation.is_integer_range(*rng) if rng \
            else validation.is_integer
    elif nepi_type == Attribute.DOUBLE:
        rng = _double_range(underlying)
        definition["validation_function"] = validation.is_number_range(*rng) if rng \
            else validation.is_number
    elif nepi_type == Attribute.ENUM:
        allowed = [v for v in underlying.split("|") if v]
        allowed += [old for old, new in values.LEGACY_ENUMS.get(name, {}).items()
                    if new in allowed]
        definition["allowed"] = allowed
        definition["validation_function"] = validation.is_enum
        if definition["value"] not in allowed:
            definition["value"] = None
    elif vtype.startswith("Object:"):
        definition["validation_function"] = values.object_validator(vtype[7:])
    else:
        definition["validation_function"] = values.VALIDATORS.get(vtype,
                                                                  validation.is_string)
    flags = Attribute.NoFlags
    if not ns_flags & (ATTR_SET | ATTR_CONSTRUCT):
        flags = Attribute.DesignReadOnly | Attribute.ExecReadOnly
    elif not ns_flags & ATTR_SET:
        flags = Attribute.ExecReadOnly | Attribute.ExecImmutable
    if flags_override is not None:
        flags = flags_override
    definition["flags"] = flags
    return definition


def _extra_definition(attr_id: str) -> dict:
    if attr_id == "fd_tun_cipher":
        d = dict(spec.FD_TUN_CIPHER)
    else:
        d = dict(spec.EXTRA_ATTRIBUTES[attr_id])
    d["type"] = getattr(Attribute, d["type"])
    d["validation_function"] = _NAMED_VALIDATIONS[d.pop("validation")]
    d.setdefault("flags", Attribute.NoFlags)
    return d


@functools.lru_cache(maxsize=None)
def tables():
    """(attributes by id, box attribute ids per factory, ns-3 info per factory/attribute).

    Computed once per process: the typeid table is large and Metadata() is built often."""
    from nepi.testbeds.ns3.typeids import TYPEIDS
    attributes: Dict[str, dict] = {}
    box_ids: Dict[str, List[str]] = {}
    ns3_info: Dict[str, Dict[str, dict]] = {}
    for factory_id, fspec in spec.FACTORIES.items():
        ids, info = [], {}
        if fspec["typeid"]:
            for row in TYPEIDS[fspec["typeid"]]:
                if row[0] in fspec["exclude"]:
                    continue
                definition = ns3_attribute_definition(row, fspec["flags"].get(row[0]))
                if row[0] in fspec["defaults"]:
                    definition["value"] = fspec["defaults"][row[0]]
                if row[0] in fspec["validations"]:
                    definition["validation_function"] = \
                        _NAMED_VALIDATIONS[fspec["validations"][row[0]]]
                attr_id = "%s#%s" % (factory_id, row[0])
                info[row[0]] = dict(type=definition.pop("ns3_type"),
                                    flags=definition.pop("ns3_flags"))
                attributes[attr_id] = definition
                ids.append(attr_id)
        for extra in fspec["extra"]:
            if extra.startswith("tun_"):
                ids.append(extra)                 # nepi's standard tunnel attributes
                continue
            definition = _extra_definition(extra)
            attr_id = "%s#%s" % (factory_id, definition["name"])
            attributes[attr_id] = definition
            ids.append(attr_id)
            if "alias" in definition:
                info[definition["name"]] = dict(alias=definition.pop("alias"))
        box_ids[factory_id] = ids
        ns3_info[factory_id] = info
    return attributes, box_ids, ns3_info


def ns3_attribute_info(factory_id: str, name: str):
    """{'type': ns-3 value type, 'flags': ns-3 flags} or {'alias': target}, or None."""
    return tables()[2].get(factory_id, {}).get(name)


def _expand_factories(item):
    return tuple(item) if isinstance(item, (list, tuple)) else (item,)


TESTBED_ATTRIBUTES = {
    "simu_impl_type": dict(
        name="SimulatorImplementationType",
        help="The object class to use as the simulator implementation",
        type=Attribute.ENUM, value="ns3::DefaultSimulatorImpl",
        allowed=["ns3::DefaultSimulatorImpl", "ns3::RealtimeSimulatorImpl"],
        flags=Attribute.ExecReadOnly | Attribute.ExecImmutable,
        validation_function=validation.is_enum),
    "sched_impl_type": dict(
        name="SchedulerType", help="The object class to use as the scheduler implementation",
        type=Attribute.ENUM, value="ns3::MapScheduler",
        allowed=["ns3::MapScheduler", "ns3::HeapScheduler", "ns3::ListScheduler",
                 "ns3::CalendarScheduler"],
        flags=Attribute.ExecReadOnly | Attribute.ExecImmutable,
        validation_function=validation.is_enum),
    "checksum": dict(
        name="ChecksumEnabled",
        help="A global switch to enable all checksums for all protocols (needed when "
             "packets reach the real world)",
        type=Attribute.BOOL, value=False,
        flags=Attribute.ExecReadOnly | Attribute.ExecImmutable,
        validation_function=validation.is_bool),
    "stop_time": dict(
        name="StopTime", help="Simulation time at which the simulator stops (e.g. '20s'); "
        "by default it runs until no event is left", type=Attribute.STRING,
        flags=Attribute.ExecReadOnly | Attribute.ExecImmutable,
        validation_function=values.is_time),
    "global_routing": dict(
        name="GlobalRouting",
        help="Compute routes for every node with ns-3 global routing "
             "(Ipv4GlobalRoutingHelper::PopulateRoutingTables) in addition to the "
             "design's static routes",
        type=Attribute.BOOL, value=False,
        flags=Attribute.ExecReadOnly | Attribute.ExecImmutable,
        validation_function=validation.is_bool),
}


class MetadataInfo(metadata.MetadataInfo):
    @property
    def testbed_id(self):
        return TESTBED_ID

    @property
    def testbed_version(self):
        return TESTBED_VERSION

    @property
    def compatible_versions(self):
        return list(COMPATIBLE_VERSIONS)

    @property
    def supported_recovery_policies(self):
        return [DC.POLICY_FAIL, DC.POLICY_RESTART]

    @property
    def connector_types(self):
        return spec.CONNECTOR_TYPES

    @property
    def connections(self):
        result = []
        for (ffrom, cfrom), (fto, cto), init, compl in spec.CONNECTIONS:
            result.append({"from": (TESTBED_ID, _expand_factories(ffrom), cfrom),
                           "to": (TESTBED_ID, _expand_factories(fto), cto),
                           "init_code": getattr(functions, init) if init else None,
                           "compl_code": getattr(functions, compl) if compl else None,
                           "can_cross": False})
        for (ffrom, cfrom), (tb, fto, cto), init, compl in spec.CROSS_CONNECTIONS:
            result.append({"from": (TESTBED_ID, _expand_factories(ffrom), cfrom),
                           "to": (tb, _expand_factories(fto), cto),
                           "init_code": getattr(functions, init) if init else None,
                           "compl_code": getattr(functions, compl) if compl else None,
                           "can_cross": True})
        return result

    @property
    def attributes(self):
        return tables()[0]

    @property
    def traces(self):
        return spec.TRACES

    @property
    def create_order(self):
        return list(spec.CREATE_ORDER)

    @property
    def configure_order(self):
        return list(spec.CONFIGURE_ORDER)

    @property
    def prestart_order(self):
        return []

    @property
    def preconfigure_order(self):
        return []

    @property
    def start_order(self):
        return list(spec.APPLICATIONS)

    @property
    def factories_info(self):
        _, box_ids, _ = tables()
        info = {}
        for factory_id, fspec in spec.FACTORIES.items():
            entry = dict(help=fspec["help"], category=fspec["category"],
                         box_attributes=list(box_ids[factory_id]), tags=list(fspec["tags"]),
                         connector_types=list(fspec["connectors"]),
                         traces=list(fspec["traces"]))
            entry.update(_KIND_FUNCTIONS.get(fspec["kind"],
                                             dict(create_function=functions.create_object)))
            info[factory_id] = entry
        return info

    @property
    def testbed_attributes(self):
        return TESTBED_ATTRIBUTES
