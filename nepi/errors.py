"""nepi's exception types. Each says what is wrong in words a researcher can act on."""

from typing import List, Optional


class NepiError(Exception):
    """Base of every error nepi raises on purpose."""


BRIEF_LIMIT = 80


def brief(value: object, limit: int = BRIEF_LIMIT, quote: bool = True) -> str:
    """``repr(value)`` (``str`` if not ``quote``) cut to ``limit`` characters, with the full
    length when cut.

    Error messages quote values from untrusted design files; a megabyte value must not be
    echoed back whole."""
    text = repr(value) if quote else str(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, (str, bytes)) else len(text)
    return "%s... (%d characters)" % (text[:limit], size)


def describe_element(guid: object, label: object = None, factory_id: object = None,
                     testbed: object = None, kind: str = "element") -> str:
    """How messages name a testbed or an element of a design:
    ``element 3 (label 'n1', Node, testbed 1 mock)``. Every part is optional (a guid that
    could not be read is left out); untrusted parts are cut with brief()."""
    text = kind if guid is None else "%s %s" % (kind, brief(guid, quote=False))
    details = []
    if label:
        details.append("label %s" % brief(label))
    if factory_id:
        details.append(brief(factory_id, quote=False))
    if testbed:
        details.append("testbed %s" % brief(testbed, quote=False))
    if details:
        text += " (" + ", ".join(details) + ")"
    return text


class AttributeValueError(NepiError, ValueError):
    """A value does not fit an attribute (type, range, allowed values or validation)."""


class XmlFormatError(NepiError, ValueError):
    """An experiment XML document is not something nepi can read."""

    def __init__(self, message: str, line: Optional[int] = None, source: Optional[str] = None):
        self.line = line
        self.source = source
        where = ""
        if source:
            where += source + ":"
        if line:
            where += "line %d:" % line
        super().__init__((where + " " if where else "") + message)


class Problem:
    """One thing wrong with a design, located by element and attribute."""

    def __init__(self, message: str, guid: Optional[int] = None, label: Optional[str] = None,
                 factory_id: Optional[str] = None, testbed: Optional[str] = None,
                 attribute: Optional[str] = None, blocking: bool = True):
        self.message = message
        self.guid = guid
        self.label = label
        self.factory_id = factory_id
        self.testbed = testbed
        self.attribute = attribute
        # A blocking problem prevents even loading the design into objects.
        self.blocking = blocking

    def location(self) -> str:
        if self.guid is None:
            return "experiment"
        return describe_element(self.guid, self.label, self.factory_id, self.testbed,
                                "testbed" if self.factory_id is None else "element")

    def __str__(self) -> str:
        attr = ", attribute %s" % brief(self.attribute) if self.attribute else ""
        return "%s%s: %s" % (self.location(), attr, self.message)

    def __repr__(self) -> str:
        return "Problem(%r)" % str(self)


class DesignError(NepiError, ValueError):
    """A design has problems; all of them are listed, each with its element."""

    def __init__(self, problems: List[Problem], headline: str = "invalid experiment design"):
        self.problems = list(problems)
        lines = ["%s: %d problem%s" % (headline, len(self.problems),
                                       "" if len(self.problems) == 1 else "s")]
        lines += ["  - " + str(p) for p in self.problems]
        super().__init__("\n".join(lines))


class DeploymentError(NepiError, RuntimeError):
    """Deployment failed; names the testbed, element and phase where it happened."""

    def __init__(self, message: str, testbed_guid: Optional[int] = None,
                 guid: Optional[int] = None, phase: Optional[str] = None):
        self.testbed_guid = testbed_guid
        self.guid = guid
        self.phase = phase
        super().__init__(message)


class RemoteError(NepiError):
    """A daemon raised an exception of a type that cannot cross the wire as itself."""


class ControllerUnreachableError(NepiError, ConnectionError):
    """A daemon does not answer: dead, hung, or refusing us."""
