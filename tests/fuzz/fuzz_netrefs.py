"""Fuzz netref parsing (nepi.util.netrefs) and resolution (nepi.core.netref_resolution).

An input starting with ``{`` or ``#`` is one value: every netref function must agree on it
(a value that is a single netref is found as exactly that netref, its guid form names the
same thing, and so on). Any other input writes structured netrefs (labels and guids that
exist or not, every kind, indexes, fields, text around them, chains and cycles) into the
attributes, addresses and routes of a seed design, then runs the design checks and, when
nothing blocks, resolves them from the design the way deployment starts.

    python tests/fuzz/fuzz_netrefs.py build/fuzz/netrefs tests/fuzz/corpus/netrefs \
        -max_total_time=60
"""

import copy
import pprint

import atheris

from harness import check_problems, main, seed_files

with atheris.instrument_imports():
    from nepi.core.checks import check_data
    from nepi.core.design import ExperimentDescription, FactoriesProvider
    from nepi.core.netref_resolution import NetrefResolver, describe_location
    from nepi.errors import AttributeValueError
    from nepi.util import netrefs
    from nepi.util.parser._xml import XmlExperimentParser
    from nepi.util.parser.base import ExperimentParser

DESIGNS = [XmlExperimentParser().from_xml_to_data(seed)
           for seed in seed_files("xml_loader")]
PROVIDERS = {}
KINDS = ["", "addr", "route", "trace", "Addr", "x"]
FIELDS = sorted(set(netrefs.ADDRESS_FIELDS + netrefs.ROUTE_FIELDS + netrefs.TRACE_FIELDS))


def factory_of(data, guid):
    testbed_guid, factory_id = data.get_box_data(guid)
    testbed_id = data.get_testbed_data(testbed_guid)[0]
    if testbed_id not in PROVIDERS:
        PROVIDERS[testbed_id] = FactoriesProvider(testbed_id)
    return PROVIDERS[testbed_id].factory(factory_id)


def check_value_functions(value: str) -> None:
    """The netref functions agree with each other on ``value``."""
    refs = netrefs.find_netrefs(value)
    assert netrefs.has_netref(value) == bool(refs)
    if netrefs.is_single_netref(value):
        assert [r.text for r in refs] == [value], (value, refs)
    if "{#" not in value:
        assert netrefs.malformed_netref(value) is None
    for ref in refs:
        assert ref.text in value and netrefs.is_single_netref(ref.text), ref
        assert ref.guid is None or ref.guid >= 0, ref
        moved = netrefs.find_netrefs(netrefs.guid_form(ref, 7))
        assert [(r.guid, r.kind, r.index, r.attribute) for r in moved] \
            == [(7, ref.kind, ref.index, ref.attribute)], (ref, moved)


def _text(fdp, size: int) -> str:
    return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, size))


def _pick(fdp, items):
    return items[fdp.ConsumeIntInRange(0, len(items) - 1)]


def _netref(fdp, labels) -> str:
    choice = fdp.ConsumeIntInRange(0, 3)
    if choice == 0:
        label = _pick(fdp, labels)
    elif choice == 1:
        label = "GUID-%d" % fdp.ConsumeIntInRange(0, 12)
    elif choice == 2:
        label = "GUID-" + "9" * fdp.ConsumeIntInRange(1, 6000)
    else:
        label = _text(fdp, 12)
    kind = _pick(fdp, KINDS)
    if kind in ("addr", "route", "Addr"):
        index = str(fdp.ConsumeIntInRange(0, 3)) if fdp.ConsumeBool() \
            else "0" * fdp.ConsumeIntInRange(1, 6000) + "1"
    else:
        index = _pick(fdp, ["fake", "stdout", "pcap", ""]) if fdp.ConsumeBool() \
            else _text(fdp, 8)
    component = ".%s[%s]" % (kind, index) if kind else ""
    attribute = _pick(fdp, FIELDS + ["label", "test", "fake", "maxAddresses", "mtu",
                                     "bandwidth", "up", "name"]) if fdp.ConsumeBool() \
        else _text(fdp, 8)
    ref = "{#[%s]%s.[%s]#}" % (label, component, attribute)
    if fdp.ConsumeIntInRange(0, 3) == 0:
        ref = _text(fdp, 8) + ref + _text(fdp, 8)
    return ref


def _location(fdp, data, guid):
    """Where in element ``guid`` the netref goes: an attribute, address or route field."""
    where = fdp.ConsumeIntInRange(0, 3)
    entry = data.data[guid]
    if where == 1 and entry.get("addresses"):
        return _pick(fdp, entry["addresses"]), _pick(fdp, list(netrefs.ADDRESS_FIELDS))
    if where == 2 and entry.get("routes"):
        return _pick(fdp, entry["routes"]), _pick(fdp, list(netrefs.ROUTE_FIELDS))
    if where == 3:
        return entry.setdefault("attributes", {}), "label"
    names = [a.name for a in factory_of(data, guid).box_attributes.attributes]
    return entry.setdefault("attributes", {}), _pick(fdp, names)


def design_with_netrefs(fdp):
    data = copy.deepcopy(_pick(fdp, DESIGNS))
    boxes = data.box_guids()
    for _ in range(fdp.ConsumeIntInRange(1, 8)):
        labels = [v for g in data.guids for n, v in data.get_attribute_data(g)
                  if n == "label"] or ["left"]
        place, field = _location(fdp, data, _pick(fdp, boxes))
        if field == "label":
            place[field] = _text(fdp, 6) if fdp.ConsumeBool() else _pick(fdp, labels)
        else:
            place[field] = _netref(fdp, labels)
    return data


def attribute_type(data):
    """What deployment uses to convert a resolved value (ExperimentController's)."""
    def lookup(guid, name):
        if not data.is_box_data(guid):
            return None
        amap = factory_of(data, guid).box_attributes
        return amap.get_attribute_type(name) if amap.has_attribute(name) else None
    return lookup


def resolve(data) -> None:
    """check_data, then what deployment and `from_xml` do with a design that passes."""
    problems = check_data(data)
    check_problems(problems)
    if any(p.blocking for p in problems):
        return
    ExperimentParser().from_data(ExperimentDescription(), copy.deepcopy(data))
    resolver = NetrefResolver(data, attribute_type(data))
    resolver.resolve(resolver.static_getter)
    for _guid, location, _value in resolver.pending():
        describe_location(location)


def test_one_input(data: bytes) -> None:
    if data[:1] in (b"{", b"#"):
        check_value_functions(data.decode("utf-8", "replace"))
    elif data:
        resolve(design_with_netrefs(atheris.FuzzedDataProvider(data)))


def show(data: bytes) -> str:
    """The value, or the design (as XML), an input stands for."""
    if data[:1] in (b"{", b"#"):
        return data.decode("utf-8", "replace")
    design = design_with_netrefs(atheris.FuzzedDataProvider(data))
    try:
        return XmlExperimentParser().data_to_xml(design)
    except AttributeValueError:    # a character XML cannot hold: show the data itself
        return pprint.pformat(design.data)


if __name__ == "__main__":
    main(test_one_input, show)
