"""Finding binaries and testbed packages."""

import functools
import os
import shutil
import subprocess
from typing import Dict, List, Optional, Tuple

_BIN_DIRS = ["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]


def find_bin(name: str, extra_path: Optional[List[str]] = None) -> Optional[str]:
    path = os.environ.get("PATH", "").split(os.pathsep) + _BIN_DIRS + list(extra_path or [])
    return shutil.which(name, path=os.pathsep.join(p for p in path if p))


def find_bin_or_die(name: str, extra_path: Optional[List[str]] = None) -> str:
    found = find_bin(name, extra_path)
    if not found:
        raise RuntimeError("Cannot find `%s' command, impossible to continue." % name)
    return found


def execute(cmd: List[str]) -> None:
    backticks(cmd)


def backticks(cmd: List[str]) -> str:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        raise RuntimeError("%s failed (exit %d): %s"
                           % (" ".join(cmd), proc.returncode, proc.stderr.strip()))
    return proc.stdout


def _env_testbeds() -> Dict[str, str]:
    """NEPI 2's ``NEPI_TESTBEDS="id:module id2:module2"`` mapping."""
    mapping = {}
    for item in os.environ.get("NEPI_TESTBEDS", "").split():
        if ":" in item:
            tid, module = item.split(":", 1)
            if tid.strip() and module.strip():
                mapping[tid.strip()] = module.strip()
    return mapping


def _entry_point_testbeds() -> Dict[str, str]:
    return dict(_installed_entry_points())


@functools.lru_cache(maxsize=1)
def _installed_entry_points() -> Tuple[Tuple[str, str], ...]:
    """Read once per process: scanning every installed distribution costs ~10 ms, and
    validating one design looks testbeds up several times."""
    from importlib.metadata import entry_points
    try:
        eps = entry_points(group="nepi.testbeds")
    except TypeError:  # Python < 3.10
        eps = entry_points().get("nepi.testbeds", [])
    return tuple((ep.name, ep.value) for ep in eps)


def testbed_modules() -> Dict[str, str]:
    """Every known testbed id -> module: entry points, overridden by NEPI_TESTBEDS."""
    mapping = _entry_point_testbeds()
    mapping.update(_env_testbeds())
    return mapping


def find_testbed(testbed_id: str) -> str:
    """Module name of a testbed: NEPI_TESTBEDS, then entry points, then nepi.testbeds.<id>."""
    env = _env_testbeds()
    if testbed_id in env:
        return env[testbed_id]
    eps = _entry_point_testbeds()
    if testbed_id in eps:
        return eps[testbed_id]
    return "nepi.testbeds." + testbed_id.lower()


def cleanup_testbed(testbed_id: str, root_dir: str) -> None:
    """Remove what a dead controller of this testbed left behind (its ``cleanup`` hook)."""
    import importlib
    module = importlib.import_module(find_testbed(testbed_id))
    hook = getattr(module, "cleanup", None)
    if hook is not None:
        hook(root_dir)
