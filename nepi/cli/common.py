"""Helpers shared by the ``nepi`` and ``nepid`` commands.

Reading an experiment file, printing untrusted text safely, and turning the errors a user
can act on into one clear line on stderr (a traceback only with ``--debug``).
"""

import argparse
import os
import sys
import traceback
from typing import Callable, List, Optional

from nepi.errors import NepiError

EXIT_OK = 0
EXIT_PROBLEMS = 1     # the input has problems (invalid design, malformed XML, failed run)
EXIT_USAGE = 2        # bad command line or an unreadable file
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141   # 128 + SIGPIPE, what a shell reports for a writer killed by it


class CliError(Exception):
    """A failure already worded for the user; ``exit_code`` is what the command returns."""

    def __init__(self, message: str, exit_code: int = EXIT_PROBLEMS) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def printable(text) -> str:
    """``text`` with control characters escaped: experiment files are untrusted input and
    must not be able to send terminal escape sequences. Newlines are kept."""
    text = str(text)
    if text.isprintable():
        return text
    return "\n".join("".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
                     for line in text.split("\n"))


def out(line: str = "") -> None:
    print(printable(line))


def err(line: str) -> None:
    print(printable(line), file=sys.stderr)


def read_file(path: str) -> bytes:
    """The bytes of ``path`` (``-`` is stdin); CliError(exit 2) if it cannot be read.

    Reads at most one byte more than the XML parser accepts, so that a huge file is
    refused by the parser with a clear message instead of filling the memory.
    """
    from nepi.util.parser._xml import MAX_XML_BYTES
    try:
        if path == "-":
            return sys.stdin.buffer.read(MAX_XML_BYTES + 1)
        with open(path, "rb") as f:
            return f.read(MAX_XML_BYTES + 1)
    except OSError as e:
        raise CliError("cannot read %s: %s" % (path, e.strerror or e), EXIT_USAGE) from e


def load_data(path: str):
    """Read and parse an experiment XML file into ExperimentData (not yet validated).

    Raises CliError if the file cannot be read, XmlFormatError if it is not a valid
    experiment document (the message names the file and line).
    """
    return load_xml(path)[1]


def load_xml(path: str):
    """``(xml bytes, ExperimentData)`` of an experiment file (not yet validated)."""
    from nepi.util.parser._xml import XmlExperimentParser
    xml = read_file(path)
    data = XmlExperimentParser().from_xml_to_data(xml, source="<stdin>" if path == "-"
                                                  else path)
    return xml, data


def check_design(path: str, data) -> List[str]:
    """Every problem of a loaded design, one line each, prefixed with the file name
    (what ``nepi validate`` prints); empty if the design is valid."""
    from nepi.core.checks import check_data
    return ["%s: %s" % (path, problem) for problem in check_data(data)]


def load_valid_design(path: str):
    """``(xml, data)`` of a design without problems; else print them and return None."""
    xml, data = load_xml(path)
    problems = check_design(path, data)
    for line in problems:
        out(line)
    return None if problems else (xml, data)


def command_parser(prog: str, description: str, commands: dict,
                   common: Optional[Callable] = None) -> argparse.ArgumentParser:
    """A parser with one subcommand per entry of ``commands`` (name -> Command)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_debug_option(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in commands.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        add_debug_option(sub, suppress_default=True)   # `--debug` after the command too
        if common is not None:
            common(sub)
        command.add_arguments(sub)
    return parser


def command_main(prog: str, parser: argparse.ArgumentParser, commands: dict,
                 argv: Optional[List[str]] = None) -> int:
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    command = commands[args.command]
    return run_main(prog, lambda: guarded(prog, args.debug, lambda: command.run(args)))


def add_debug_option(parser: argparse.ArgumentParser, suppress_default: bool = False) -> None:
    """``--debug``: show tracebacks. With ``suppress_default`` the option can be repeated on
    subcommand parsers without overwriting a value given before the subcommand."""
    kwargs = {"default": argparse.SUPPRESS} if suppress_default else {"default": False}
    parser.add_argument("--debug", action="store_true",
                        help="show Python tracebacks for errors", **kwargs)


def report_error(prog: str, exc: BaseException, debug: bool) -> int:
    """Print ``exc`` for the user (traceback first when debugging); the exit code to use."""
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    if isinstance(exc, CliError):
        code = exc.exit_code
        message = str(exc)
    elif isinstance(exc, OSError):
        code = EXIT_USAGE
        where = " %s" % exc.filename if getattr(exc, "filename", None) else ""
        message = "cannot access%s: %s" % (where, exc.strerror or exc)
    else:
        code = EXIT_PROBLEMS
        message = str(exc)
    err("%s: %s" % (prog, message))
    return code


# Errors a user can act on: one clear message, no traceback unless --debug.
EXPECTED_ERRORS = (CliError, NepiError, OSError)


def guarded(prog: str, debug: bool, func: Callable[[], Optional[int]]) -> int:
    """Run ``func`` and return its exit code, reporting expected errors cleanly.

    Any other exception is a bug in nepi and keeps its traceback.
    """
    try:
        return func() or EXIT_OK
    except BrokenPipeError:
        raise   # the reader went away (``| head``): handled by run_main, not an error
    except EXPECTED_ERRORS as e:
        return report_error(prog, e, debug)
    except KeyboardInterrupt:
        err("%s: interrupted" % prog)
        return EXIT_INTERRUPTED


def run_main(prog: str, main: Callable[[], int]) -> int:
    """Wrap a command's main: a closed stdout pipe (``nepi show x | head``) is not an error."""
    try:
        code = main()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # Python would complain again when flushing stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


# ---- readable values --------------------------------------------------------------------

def _status_names(cls) -> dict:
    return {value: name[len("STATUS_"):].lower().replace("_", "-")
            for name, value in vars(cls).items()
            if name.startswith("STATUS_") and isinstance(value, int)}


def testbed_status_name(status) -> str:
    """``6`` -> ``started`` (nepi.util.constants.TestbedStatus)."""
    from nepi.util.constants import TestbedStatus
    names = _status_names(TestbedStatus)
    names[TestbedStatus.STATUS_ZERO] = "not-deployed"
    return names.get(status, "unknown (%s)" % status)


def application_status_name(status) -> str:
    """``2`` -> ``finished`` (nepi.util.constants.ApplicationStatus)."""
    from nepi.util.constants import ApplicationStatus
    return _status_names(ApplicationStatus).get(status, "unknown (%s)" % status)


def human_duration(seconds) -> str:
    """``3725.2`` -> ``1h 02m 05s``."""
    if seconds is None:
        return "?"
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return "%dh %02dm %02ds" % (hours, minutes, secs)
    if minutes:
        return "%dm %02ds" % (minutes, secs)
    return "%ds" % secs


def plural(n: int, word: str) -> str:
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def allow_root_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-root", action="append", default=[], metavar="PATH",
                        help="let the design's testbeds keep files under PATH, outside "
                             "the root dir (repeatable)")
