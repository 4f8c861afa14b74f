"""What the fuzz harnesses share: which outcomes are acceptable, and how they are started.

An input may only end in success or in one of nepi's documented errors (NepiError and
subclasses: XmlFormatError, DesignError, AttributeValueError...). Anything else escaping the
code under test (KeyError, TypeError, RecursionError, an lxml exception...) is a finding, and
so is an error message that echoes an unbounded part of the input. libFuzzer reports hangs
(``-timeout``) and memory blow-ups (``-rss_limit_mb``) itself.
"""

import os
import sys
from typing import Callable, Iterable, List

import atheris

with atheris.instrument_imports():
    from nepi.errors import DesignError, NepiError

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# No line of an error message may be longer than this: messages quote bad values cut short.
MAX_MESSAGE_LINE = 1000


def check_message(error: BaseException) -> None:
    """Fail when a documented error quotes an input value at unbounded length."""
    lines = str(error).split("\n")
    if isinstance(error, DesignError):
        lines += [str(p) for p in error.problems]
    for line in lines:
        if len(line) > MAX_MESSAGE_LINE:
            raise AssertionError("error message line of %d characters (limit %d): %s..."
                                 % (len(line), MAX_MESSAGE_LINE, line[:200]))


def check_problems(problems: Iterable) -> None:
    """Fail when a validation problem echoes an input value at unbounded length."""
    for problem in problems:
        text = str(problem)
        if len(text) > MAX_MESSAGE_LINE:
            raise AssertionError("problem of %d characters (limit %d): %s..."
                                 % (len(text), MAX_MESSAGE_LINE, text[:200]))


def accepting_nepi_errors(func: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """``func`` as a libFuzzer target where NepiError counts as a clean refusal."""
    def target(data: bytes) -> None:
        try:
            func(data)
        except NepiError as e:
            check_message(e)
    return target


def seed_files(name: str) -> List[bytes]:
    """The contents of the seed corpus ``tests/fuzz/corpus/<name>``."""
    folder = os.path.join(CORPUS, name)
    seeds = []
    for entry in sorted(os.listdir(folder)):
        with open(os.path.join(folder, entry), "rb") as f:
            seeds.append(f.read())
    return seeds


def main(func: Callable[[bytes], None], render: Callable[[bytes], str]) -> None:
    """Run libFuzzer on ``func`` with the command line's options and corpus folders.

    ``--show FILE`` instead prints what ``render`` makes of a saved input (the document or
    value the code under test received), to turn a crash into a regression test."""
    if sys.argv[1:2] == ["--show"]:
        with open(sys.argv[2], "rb") as f:
            print(render(f.read()))
        return
    atheris.Setup(sys.argv, accepting_nepi_errors(func))
    atheris.Fuzz()
