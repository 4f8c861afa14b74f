"""Regenerate ``typeids.py`` from ns-3's own TypeId information.

    python -m nepi.testbeds.ns3.gen_typeids [OUTPUT]

Importing ns-3 takes about ten seconds, and design validation must not pay that, so the
attribute names, value types, flags, initial values, ranges/choices and help texts of every
TypeId the testbed uses (``spec.FACTORIES``) are written once into a plain Python table.
Run it again after upgrading the ``ns3`` wheel and commit the result.

Attributes nepi cannot expose as a value are left out: object containers, pointers to other
objects (they are made by connections), callbacks, and obsolete attributes. Pointers to a
random variable or a position allocator stay: they are given as ns-3 object strings such as
``ns3::UniformRandomVariable[Min=0|Max=1]``.
"""

import os
import pprint
import re
import sys

# Pointer attributes whose value is an object nepi can describe by a string.
OBJECT_BASES = ("ns3::RandomVariableStream", "ns3::PositionAllocator")
SKIPPED_TYPES = ("ObjectPtrContainer", "Callback", "Pair", "Waypoint", "ObjectFactory")


def value_type(checker) -> str:
    """'ns3::EnumValue<ns3::Ping::VerboseMode>' -> 'Enum'."""
    name = str(checker.GetValueTypeName())
    name = name.split("<", 1)[0]
    if name.startswith("ns3::"):
        name = name[5:]
    if name.endswith("Value"):
        name = name[:-5]
    return name


def text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def pointer_base(underlying: str):
    m = re.match(r"ns3::Ptr<\s*(ns3::\w+)\s*>", underlying)
    return m.group(1) if m and m.group(1) in OBJECT_BASES else None


def attributes_of(ns, typeid_name: str) -> list:
    tid = ns.TypeId.LookupByName(typeid_name)
    rows, seen = [], set()
    while True:
        for i in range(tid.GetAttributeN()):
            info = tid.GetAttribute(i)
            name = text(info.name)
            if name in seen:
                continue
            seen.add(name)
            checker = info.checker
            vtype = value_type(checker)
            support = int(info.supportLevel)
            if support == 2 or vtype in SKIPPED_TYPES:            # OBSOLETE
                continue
            underlying = text(checker.GetUnderlyingTypeInformation()) \
                if checker.HasUnderlyingTypeInformation() else ""
            initial = text(info.initialValue.SerializeToString(checker))
            if vtype == "Pointer":
                base = pointer_base(underlying)
                if base is None:
                    continue
                vtype = "Object:" + base
            if vtype == "AttributeContainer" and name != "ChannelSettings":
                continue
            help_text = " ".join(text(info.help).split())
            if support == 1:
                help_text += " (deprecated in ns-3: %s)" % " ".join(
                    text(info.supportMsg).split())
            rows.append((name, vtype, int(info.flags), support, initial, underlying,
                         help_text))
        parent = tid.GetParent()
        if tid.GetName() in ("ns3::Object", "ns3::ObjectBase") or parent == tid:
            break
        tid = parent
    return rows


def object_types(ns) -> dict:
    """For each object base: every constructible subtype -> {attribute: value type}."""
    result = {base: {} for base in OBJECT_BASES}
    bases = {base: ns.TypeId.LookupByName(base) for base in OBJECT_BASES}
    for i in range(ns.TypeId.GetRegisteredN()):
        tid = ns.TypeId.GetRegistered(i)
        if not tid.HasConstructor():
            continue
        for base, btid in bases.items():
            if tid != btid and tid.IsChildOf(btid):
                attrs = {}
                t = tid
                while True:
                    for j in range(t.GetAttributeN()):
                        info = t.GetAttribute(j)
                        attrs.setdefault(text(info.name), value_type(info.checker))
                    if t == btid or t.GetName() == "ns3::Object":
                        break
                    t = t.GetParent()
                result[base][text(tid.GetName())] = attrs
    return result


def wifi_modes(ns) -> list:
    modes = set()
    for cls_name in ("DsssPhy", "ErpOfdmPhy", "OfdmPhy", "HtPhy", "VhtPhy", "HePhy",
                     "EhtPhy"):
        cls = getattr(ns, cls_name, None)
        if cls is None:
            continue
        for attr in dir(cls):
            if re.match(r"^Get\w*(Rate\w*Mbps\w*|Mcs\d+)$", attr):
                try:
                    modes.add(text(getattr(cls, attr)().GetUniqueName()))
                except Exception as e:       # a getter that needs arguments: not a mode
                    print("skipping %s.%s: %s" % (cls_name, attr, e), file=sys.stderr)
    return sorted(modes)


def generate(path: str) -> None:
    from ns import ns
    from nepi.testbeds.ns3 import spec
    typeids = sorted({f["typeid"] for f in spec.FACTORIES.values() if f["typeid"]})
    table = {}
    for name in typeids:
        found = ns.TypeId()
        if not ns.TypeId.LookupByNameFailSafe(name, found):
            raise SystemExit("ns-3 has no TypeId %s" % name)
        table[name] = attributes_of(ns, name)
    from importlib.metadata import PackageNotFoundError, version as dist_version
    try:
        version = dist_version("ns3")
    except PackageNotFoundError:         # ns-3 imported from a source build
        version = "unknown"
    with open(path, "w") as f:
        f.write('"""Generated by nepi/testbeds/ns3/gen_typeids.py from ns-3 %s: do not '
                'edit.\n\nTYPEIDS: TypeId -> [(attribute, value type, flags, support level, '
                'initial value,\n         underlying type, help)], most derived class first.\n'
                'OBJECT_TYPES: object base -> {subtype: {attribute: value type}}.\n'
                'WIFI_MODES: every wifi mode name.\n"""\n\n' % version)
        f.write("NS3_VERSION = %r\n\n" % version)
        f.write("TYPEIDS = ")
        f.write(pprint.pformat(table, width=100))
        f.write("\n\nOBJECT_TYPES = ")
        f.write(pprint.pformat(object_types(ns), width=100))
        f.write("\n\nWIFI_MODES = ")
        f.write(pprint.pformat(wifi_modes(ns), width=100))
        f.write("\n")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                             "typeids.py")
    generate(path)
    print("wrote %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
