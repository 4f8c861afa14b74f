"""Fuzz the design XML loader, the design checks and loading into the design model.

What ``nepi validate``, ``nepi show`` and ``ExperimentDescription.from_xml`` do with an
untrusted file: XmlExperimentParser.from_xml_to_data, the summary, check_data, then (when
nothing blocks) building the objects; a design that loads is written back and must load
again.

Two kinds of input reach it. An input starting with ``<`` or whitespace is the document
itself (libFuzzer mutates the seed files byte by byte). Any other input drives structured
mutations: it picks a seed document and edits its tree (set, drop or retype an attribute,
copy, move, rename or delete an element, add one of the known children, put a netref or an
odd number in a value), so that most inputs are well-formed and reach the checks and the
model instead of stopping at the XML parser.

    python tests/fuzz/fuzz_xml_loader.py build/fuzz/xml_loader tests/fuzz/corpus/xml_loader \
        -max_total_time=60
"""

import copy

import atheris
from lxml import etree

from harness import check_problems, main, seed_files

with atheris.instrument_imports():
    from nepi.cli.nepi_cmd import _Summary
    from nepi.core.checks import check_data
    from nepi.core.design import ExperimentDescription
    from nepi.util.parser._xml import XmlExperimentParser

SEEDS = [etree.fromstring(seed) for seed in seed_files("xml_loader")]
TAGS = sorted({node.tag for seed in SEEDS for node in seed.iter()})
NAMES = sorted({name for seed in SEEDS for node in seed.iter() for name in node.attrib})
VALUES = sorted({value for seed in SEEDS for node in seed.iter()
                 for value in node.attrib.values()})
TYPES = ["STRING", "BOOL", "INTEGER", "DOUBLE", "ENUM", "None", ""]
# Values that have broken parsers before: number edge cases, netrefs of every form,
# labels and guids that exist in the seeds, very long text.
ODD_VALUES = [
    "", "None", "True", "False", "0", "-1", "1", "2", "7", "65536", "-0", " 1 ", "1_0",
    "\u0661", "1e400", "nan", "inf", "-inf", "0x10", "9" * 5000,
    "{#[left].addr[0].[Address]#}", "{#[left].addr[9].[NetPrefix]#}",
    "{#[left].route[0].[NextHop]#}", "{#[left].[label]#}", "{#[GUID-4].[fake]#}",
    "{#[GUID-" + "9" * 5000 + "].[x]#}", "{#[left].addr[" + "9" * 5000 + "].[Address]#}",
    "{#[left].trace[fake].[path]#}", "{#[nolabel].[x]#}", "{#[left]", "{#}#",
    "10.0.0.1", "10.0.0.0", "::1", "fe80::1%eth0", "255.255.255.255", "10.9.0.1",
    "x" * 20000,
]


def _nodes(root):
    return [node for node in root.iter() if isinstance(node.tag, str)]


def _pick(fdp, items):
    return items[fdp.ConsumeIntInRange(0, len(items) - 1)]


def _value(fdp) -> str:
    if fdp.ConsumeBool():
        return _pick(fdp, ODD_VALUES + VALUES)
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 64))
    # only characters XML can hold: the raw-document mode covers the others
    return "".join(c for c in text if c in "\t\n\r" or " " <= c < "\ufffe")


def _mutate(fdp, root) -> None:
    """One structural edit of the tree ``root``, chosen by ``fdp``."""
    nodes = _nodes(root)
    node = _pick(fdp, nodes)
    action = fdp.ConsumeIntInRange(0, 9)
    if action == 0:                          # set an attribute
        node.set(_pick(fdp, NAMES), _value(fdp))
    elif action == 1 and node.attrib:       # drop an attribute
        del node.attrib[_pick(fdp, sorted(node.attrib))]
    elif action == 2 and node is not root:  # delete the element
        node.getparent().remove(node)
    elif action == 3 and node is not root:  # copy it next to itself
        node.getparent().append(copy.deepcopy(node))
    elif action == 4 and node is not root:  # move it under another element
        target = _pick(fdp, nodes)
        if node not in target.iterancestors() and target is not node:
            target.append(node)
    elif action == 5:                       # rename it
        node.tag = _pick(fdp, TAGS)
    elif action == 6:                       # add a child with attributes
        child = etree.SubElement(node, _pick(fdp, TAGS))
        for _ in range(fdp.ConsumeIntInRange(0, 4)):
            child.set(_pick(fdp, NAMES), _value(fdp))
    elif action == 7 and node.get("type") is not None:   # retype a typed value
        node.set("type", _pick(fdp, TYPES))
    elif action == 8 and node.get("value") is not None:  # splice a netref into a value
        node.set("value", node.get("value") + _pick(fdp, ODD_VALUES[20:29]))
    elif action == 9:                       # copy it under another element
        _pick(fdp, nodes).append(copy.deepcopy(node))


def structured_document(data: bytes) -> bytes:
    fdp = atheris.FuzzedDataProvider(data)
    root = copy.deepcopy(_pick(fdp, SEEDS))
    for _ in range(fdp.ConsumeIntInRange(1, 8)):
        _mutate(fdp, root)
    return etree.tostring(root)


def load(xml: bytes) -> None:
    """What `nepi validate`, `nepi show` and `from_xml` do; NepiError is the only accepted
    failure."""
    parser = XmlExperimentParser()
    data = parser.from_xml_to_data(xml, source="fuzz.xml")
    _Summary(data).lines()
    problems = check_data(data)
    check_problems(problems)
    if any(p.blocking for p in problems):
        return
    exp = ExperimentDescription()
    parser.from_data(exp, data)
    exp.problems()
    written = exp.to_xml()
    again = ExperimentDescription()
    try:
        again.from_xml(written)
    except Exception as e:
        raise AssertionError("a loaded design, written back, does not load again: %s\n%s"
                             % (e, written)) from e


def document(data: bytes) -> bytes:
    """The XML document an input stands for."""
    if data[:1] in (b"<", b" ", b"\n", b"\t", b"\r"):
        return data
    return structured_document(data)


def test_one_input(data: bytes) -> None:
    if data:
        load(document(data))


if __name__ == "__main__":
    main(test_one_input, lambda data: document(data).decode("utf-8", "replace"))
