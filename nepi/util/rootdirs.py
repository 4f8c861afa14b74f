"""Where a testbed may keep its files: inside the experiment's root dir, unless the person
running the experiment allowed another place. A design comes from someone else; its
``rootDirectory`` must not make nepi write, chmod or delete files elsewhere."""

import os
from typing import Iterable, List, Optional

from nepi.util.rootfiles import RESERVED_DIRS as RESERVED, default_testbed_root


def _inside(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def resolve_testbed_root(experiment_root: str, value: Optional[str], testbed_guid: int,
                         allowed_roots: Iterable[str] = ()) -> str:
    """The absolute testbed root dir for a design's ``rootDirectory`` value.

    Relative values are taken from the experiment root; unset or "." gives
    ``testbeds/<guid>``. Symbolic links are resolved before checking, so a link inside
    the root dir cannot lead out of it. Raises ValueError saying what is allowed."""
    base = os.path.realpath(experiment_root)
    if value in (None, "", "."):
        return default_testbed_root(base, testbed_guid)
    if "\0" in value:
        raise ValueError("a path cannot contain NUL characters")
    candidate = os.path.realpath(os.path.join(base, value))
    allowed = [os.path.realpath(a) for a in allowed_roots]
    if any(_inside(candidate, a) for a in allowed):
        return candidate
    if candidate == base:
        raise ValueError("%r is the experiment root dir itself; a testbed needs a folder "
                         "of its own" % value)
    if not _inside(candidate, base):
        raise ValueError("%r resolves to %s, outside the experiment root dir %s; testbed "
                         "root dirs must lie inside it unless allowed explicitly "
                         "(--allow-root PATH, or allowed_roots=[...] in the API)"
                         % (value, candidate, base))
    top = os.path.relpath(candidate, base).split(os.sep)[0]
    if top in RESERVED:
        raise ValueError("%r lies in %s/, which nepi keeps for itself" % (value, top))
    return candidate


def normalise_allowed(allowed_roots: Optional[Iterable[str]]) -> List[str]:
    """Absolute, existing-or-not, symlink-resolved allowed roots (CLI and API input)."""
    result = []
    for path in allowed_roots or ():
        if not isinstance(path, str) or not path or "\0" in path:
            raise ValueError("allowed root %r is not a path" % (path,))
        real = os.path.realpath(os.path.abspath(path))
        if real == os.sep:
            raise ValueError("allowing / as a testbed root would allow every path")
        if real not in result:
            result.append(real)
    return result
