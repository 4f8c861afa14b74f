"""``nepi``: work with experiment design files.

    nepi [--debug] validate FILE.xml [FILE.xml ...]
    nepi [--debug] show FILE.xml
    nepi [--debug] run FILE.xml --root-dir DIR [--duration S] [--timeout S] [-q]
    nepi [--debug] plot FILE.xml -o FILE.svg|.png|.pdf [--layout ENGINE] [--compact]

Each subcommand is one entry of COMMANDS (name -> Command): a help line, a function adding
its arguments to its parser, and a function running it and returning the exit code.
"""

import argparse
import logging
import sys
from typing import Callable, Dict, List, NamedTuple, Optional

from nepi.cli.common import (EXIT_OK, EXIT_PROBLEMS, EXPECTED_ERRORS, command_main,
                             command_parser, load_data, out, report_error)

PROG = "nepi"


class Command(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _plural(n: int, word: str) -> str:
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def _check(data) -> list:
    from nepi.core.checks import check_data
    return check_data(data)


# ---- validate ---------------------------------------------------------------------------

def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE.xml",
                        help="experiment design file(s) to check ('-' reads stdin)")


def cmd_validate(args: argparse.Namespace) -> int:
    """Check each design; report every problem. The worst exit code of all files wins."""
    worst = EXIT_OK
    for path in args.files:
        try:
            data = load_data(path)
            problems = _check(data)
        except EXPECTED_ERRORS as e:
            worst = max(worst, report_error(PROG, e, args.debug))
            continue
        if problems:
            worst = max(worst, EXIT_PROBLEMS)
            for problem in problems:
                out("%s: %s" % (path, problem))
        else:
            out("%s: OK (%s, %s)" % (path, _plural(len(data.testbed_guids()), "testbed"),
                                     _plural(len(data.box_guids()), "element")))
    return worst


# ---- show -------------------------------------------------------------------------------

def _show_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE.xml", help="experiment design file ('-' reads stdin)")


def _value(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _assignments(items) -> str:
    return ", ".join("%s=%s" % (name, _value(value)) for name, value in sorted(items))


def _testbed_defaults(testbed_id: str) -> Dict[str, object]:
    """Default value of each testbed attribute, or {} if the testbed cannot be loaded."""
    try:
        from nepi.core.metadata import Metadata
        amap = Metadata(testbed_id).testbed_attributes()
    except Exception as e:   # unknown or broken testbed: reported by the checks
        logging.getLogger("nepi.cli").debug("no defaults of testbed %s: %s", testbed_id, e)
        return {}
    return {attr.name: attr.value for attr in amap.attributes}


class _Summary:
    """Readable text of an ExperimentData, section by section."""

    def __init__(self, data) -> None:
        self.data = data

    def label(self, guid: int) -> Optional[str]:
        if guid not in self.data.data:
            return None
        label = self.data.get_attribute_data(guid, "label")
        return label if isinstance(label, str) and label else None

    def name(self, guid: int) -> str:
        label = self.label(guid)
        return "%d (%s)" % (guid, label) if label else str(guid)

    def testbed_id(self, testbed_guid: int) -> str:
        if self.data.is_testbed_data(testbed_guid):
            return self.data.get_testbed_data(testbed_guid)[0]
        return "?"

    def lines(self) -> List[str]:
        lines: List[str] = []
        for section in (self.testbeds, self.elements, self.connections, self.addresses,
                        self.routes, self.traces):
            title, body = section()
            lines.append("%s:" % title)
            lines.extend("  " + line for line in (body or ["(none)"]))
        return lines

    def testbeds(self):
        body = []
        for guid in self.data.testbed_guids():
            testbed_id, version = self.data.get_testbed_data(guid)
            defaults = _testbed_defaults(testbed_id)
            attrs = [(n, v) for n, v in self.data.get_attribute_data(guid)
                     if n != "label" and v is not None and (n not in defaults
                                                           or defaults[n] != v)]
            line = "%d  %s %s" % (guid, testbed_id, version)
            if self.label(guid):
                line += "  label %r" % self.label(guid)
            if attrs:
                line += "  " + _assignments(attrs)
            body.append(line)
        return "Testbeds", body

    def elements(self):
        groups: Dict[tuple, List[int]] = {}
        for guid in self.data.box_guids():
            testbed_guid, factory_id = self.data.get_box_data(guid)
            groups.setdefault((testbed_guid, factory_id), []).append(guid)
        body = []
        for (testbed_guid, factory_id), guids in groups.items():
            body.append("%s in testbed %d (%s), %s:" % (factory_id, testbed_guid,
                                                        self.testbed_id(testbed_guid),
                                                        _plural(len(guids), "element")))
            for guid in guids:
                attrs = [(n, v) for n, v in self.data.get_attribute_data(guid)
                         if n != "label" and v is not None]
                set_attrs = dict(attrs)
                fattrs = [(n, v) for n, v in self.data.get_factory_attribute_data(guid)
                          if v is not None and set_attrs.get(n, object()) != v]
                line = "  %d" % guid
                if self.label(guid):
                    line += "  label %r" % self.label(guid)
                if attrs:
                    line += "  " + _assignments(attrs)
                if fattrs:
                    line += "  factory: " + _assignments(fattrs)
                body.append(line)
        return "Elements", body

    def connections(self):
        seen = set()
        body = []
        for guid in self.data.box_guids():
            for connector, other_guid, other_connector in self.data.get_connection_data(guid):
                key = frozenset([(guid, connector), (other_guid, other_connector)])
                if key in seen:
                    continue
                seen.add(key)
                line = "%d.%s <-> %s.%s" % (guid, connector, other_guid, other_connector)
                labels = (self.label(guid), self.label(other_guid))
                if any(labels):
                    line += "  (%s <-> %s)" % tuple(l or "-" for l in labels)
                if not self.data.is_box_data(other_guid):
                    line += "  [no element %s]" % other_guid
                else:
                    mine = self.data.get_box_data(guid)[0]
                    theirs = self.data.get_box_data(other_guid)[0]
                    if mine != theirs:
                        line += "  [cross-testbed: %s <-> %s]" % (self.testbed_id(mine),
                                                                 self.testbed_id(theirs))
                body.append(line)
        return "Connections", body

    def addresses(self):
        body = []
        for guid in self.data.box_guids():
            for address, prefix, broadcast in self.data.get_address_data(guid):
                line = "%s: %s/%s" % (self.name(guid), address, prefix)
                if broadcast:
                    line += " broadcast %s" % broadcast
                body.append(line)
        return "Addresses", body

    def routes(self):
        body = []
        for guid in self.data.box_guids():
            for dest, prefix, nexthop, metric, device in self.data.get_route_data(guid):
                line = "%s: %s/%s" % (self.name(guid), dest, prefix)
                if nexthop:
                    line += " via %s" % nexthop
                if device:
                    line += " dev %s" % device
                line += " metric %s" % metric
                body.append(line)
        return "Routes", body

    def traces(self):
        body = ["%s: %s" % (self.name(guid), ", ".join(self.data.get_trace_data(guid)))
                for guid in self.data.box_guids() if self.data.get_trace_data(guid)]
        return "Traces", body


def cmd_show(args: argparse.Namespace) -> int:
    """Print a design; its problems, if any, come last (showing it still succeeds)."""
    data = load_data(args.file)
    out("Experiment %s: %s, %s" % (args.file, _plural(len(data.testbed_guids()), "testbed"),
                                   _plural(len(data.box_guids()), "element")))
    for line in _Summary(data).lines():
        out(line)
    problems = _check(data)
    if problems:
        out("Problems:")
        for problem in problems:
            out("  %s" % problem)
    return EXIT_OK


# ---- the command ------------------------------------------------------------------------

COMMANDS: Dict[str, Command] = {
    "validate": Command("check experiment designs and list every problem",
                        _validate_arguments, cmd_validate),
    "show": Command("print a readable summary of an experiment design",
                    _show_arguments, cmd_show),
    "run": Command("deploy an experiment in this process, wait for its applications, "
                   "copy its traces and shut it down",
                   lambda parser: _run_module().add_arguments(parser),
                   lambda args: _run_module().cmd_run(args)),
    "plot": Command("draw the topology of an experiment design (testbeds, nodes, "
                    "interfaces and addresses, links) to FILE.svg, .png or .pdf",
                    lambda parser: _pictures_module().add_plot_arguments(parser),
                    lambda args: _pictures_module().cmd_plot(args)),
}


def _pictures_module():
    from nepi.cli import pictures
    return pictures


def _run_module():
    from nepi.cli import run_cmd
    return run_cmd


def build_parser() -> argparse.ArgumentParser:
    return command_parser(PROG, "Network Experiment Programming Interface: work with "
                                "experiment design files.", COMMANDS)


def main(argv: Optional[List[str]] = None) -> int:
    return command_main(PROG, build_parser(), COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
