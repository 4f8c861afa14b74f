"""The XML's fast paths give what its careful paths give: the text writer the bytes of the
lxml tree writer, the streaming reader the data of the whole-tree reader (which also
names the first fault of a bad document)."""

import pytest

from helpers import FIXTURES_DIR, TESTS_DIR
from mock_experiments import make_test_experiment
from nepi.util.parser._xml import XmlExperimentParser, _Reader, _TextWriter, parse_document

CORPUS = sorted((TESTS_DIR / "fuzz" / "corpus" / "xml_loader").glob("*")) + \
    sorted((TESTS_DIR / "fuzz" / "regressions").glob("*.xml"))
FIXTURES = sorted(FIXTURES_DIR.glob("*.xml"))

ODD_VALUES = ["quote \" apostrophe ' amp & lt < gt >", "tab\tnew\nline\rcr", "ünïcödé ✓",
              "  spaces  ", "", "]]>", 0, -1, 2 ** 62, 1e-300, -0.5, 3.0, True, False]


def documents():
    docs = [pytest.param(p.read_bytes(), id=p.name) for p in FIXTURES]
    docs += [pytest.param(p.read_bytes(), id="corpus-" + p.name) for p in CORPUS]
    return docs


def same_data(a, b):
    assert a.data == b.data
    assert a.lines == b.lines


@pytest.mark.parametrize("xml", documents())
def test_streaming_reader_reads_what_the_tree_reader_reads(xml):
    try:
        careful = _Reader(None).read(parse_document(xml, None))
    except Exception:
        careful = None          # a bad document: the stream must not accept it either
    fast = _Reader.stream(xml, None)
    if careful is None:
        assert fast is None
    elif fast is not None:      # None: left to the careful reader, which is allowed
        same_data(fast, careful)


@pytest.mark.parametrize("xml", [p for p in documents() if "corpus" not in p.id])
def test_text_writer_writes_the_tree_writers_bytes(xml):
    parser = XmlExperimentParser()
    data = parser.from_xml_to_data(xml)
    assert _TextWriter(data).document() == parser._tree_to_xml(data)


def test_odd_values_are_written_alike_and_read_back():
    exp, desc = make_test_experiment("mock")[:2]
    node = desc.create("Node")
    parser = XmlExperimentParser()
    data = parser.to_data(exp)
    for i, value in enumerate(ODD_VALUES):
        data.add_attribute_data(node.guid, "odd%d" % i, value)
    text = _TextWriter(data).document()
    assert text == parser._tree_to_xml(data)
    back = parser.from_xml_to_data(text)
    same_data(back, _Reader(None).read(parse_document(text.encode(), None)))
    for i, value in enumerate(ODD_VALUES):
        read = back.get_attribute_data(node.guid, "odd%d" % i)
        assert read == value and type(read) is type(value), (value, read)
