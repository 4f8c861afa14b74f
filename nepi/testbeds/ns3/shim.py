"""C++ compiled into the ns-3 process with cppyy.

Every cppyy call with a new C++ signature costs 10-40 ms of code generation, so the
deployment does not drive ns-3 object by object from Python: ``core.cc`` holds one registry
of ns-3 objects keyed by nepi guid and one entry point, ``Exec(command)``, that creates,
wires, addresses, routes and traces them and reads or writes attributes. It is compiled
once, right after the import. ``RunOnSim`` runs a Python callable as a simulator event
(ns-3 cannot schedule Python callables directly).

The C++ is real source in ``cxx/`` (package data). ``rtt.cc`` (Ping's Rtt trace sink) and
``wifi.cc`` (wifi device parts, 802.11 frames to pcap) pull in more templates: with cling
they are compiled only when a design uses them.

Compiling all this with cling takes ~1-1.5 s in every ns-3 process, so when a C++ compiler
is available the same source is built once into a shared library cached in an owner-only
directory (``~/.cache/nepi``, or $NEPI_NS3_SHIM_CACHE), keyed by the source, the ns-3
wheel and the compiler; loading it costs a few milliseconds. The build starts in the
background while ns-3 is imported (``start_build``); ``load`` uses the library when it is
there and falls back to cling otherwise (NEPI_NS3_SHIM=cling forces cling).
``python -m nepi.testbeds.ns3.shim`` builds it.

Values reaching ``Exec`` were validated by nepi first: several ns-3 parsers abort the
process on malformed input.
"""

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Optional

_logger = logging.getLogger("nepi.testbeds.ns3.shim")

# -- the C++ sources (package data) ----------------------------------------------------

CXX_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cxx")


def _source(name: str) -> str:
    with open(os.path.join(CXX_DIR, name), encoding="utf-8") as f:
        return f.read()


CORE = _source("core.cc")
RTT = _source("rtt.cc")
WIFI = _source("wifi.cc")
DECLARATIONS = _source("declarations.h")

# -- the compiled library -------------------------------------------------------------

MODULES = ("core", "network", "internet", "point-to-point", "csma", "wifi", "mobility",
           "propagation", "fd-net-device", "tap-bridge", "applications", "internet-apps",
           "traffic-control")

BUILD_TIMEOUT = 300.0
# How long a deployment waits, once ns-3 is imported, for a build started with the import.
BUILD_WAIT_AFTER_IMPORT = 20.0


def library_source() -> str:
    return "".join('#include "ns3/%s-module.h"\n' % m for m in MODULES) + CORE + RTT + WIFI


def ns3_prefix() -> Optional[str]:
    """The ns3 wheel's directory (include/, lib64/), found without importing ns-3."""
    import importlib.util
    spec = importlib.util.find_spec("ns3")
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _compiler() -> Optional[str]:
    return shutil.which(os.environ.get("CXX", "g++"))


def cache_dir() -> str:
    base = os.environ.get("NEPI_NS3_SHIM_CACHE")
    if not base:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or
                            os.path.join(os.path.expanduser("~"), ".cache"), "nepi")
    from nepi.rpc.security import ensure_private_dir
    return ensure_private_dir(base)


def _key(prefix: str, compiler: str) -> str:
    try:
        from importlib.metadata import version
        wheel = version("ns3")
    except Exception:
        wheel = "unknown"
    try:
        cc = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                            timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        cc = compiler
    digest = hashlib.sha256("\0".join([library_source(), wheel, prefix, cc, sys.version])
                            .encode()).hexdigest()[:16]
    return "%s-%s" % (wheel, digest)


def library_path() -> Optional[str]:
    """Where the library for this source, wheel and compiler is (or would be) cached."""
    prefix, compiler = ns3_prefix(), _compiler()
    if prefix is None or compiler is None:
        return None
    return os.path.join(cache_dir(), "ns3shim-%s.so" % _key(prefix, compiler))


def build(path: Optional[str] = None, started=None) -> Optional[str]:
    """Compile the library into the cache (atomically); its path, or None if impossible.
    ``started(popen)`` is told about the compiler process (so that it can be killed)."""
    path = path or library_path()
    if path is None:
        return None
    if os.path.exists(path):
        return path
    prefix, compiler = ns3_prefix(), _compiler()
    libdir = next((os.path.join(prefix, d) for d in ("lib64", "lib")
                   if os.path.isdir(os.path.join(prefix, d))), None)
    if libdir is None:
        return None
    libs = sorted(f for f in os.listdir(libdir) if f.startswith("libns3") and f.endswith(".so"))
    workdir = tempfile.mkdtemp(prefix="ns3shim-", dir=os.path.dirname(path))
    try:
        source = os.path.join(workdir, "shim.cc")
        with open(source, "w") as f:
            f.write(library_source())
        output = os.path.join(workdir, "shim.so")
        cmd = [compiler, "-std=c++20", "-O2", "-fPIC", "-shared", "-w",
               "-I" + os.path.join(prefix, "include"), "-o", output, source,
               "-L" + libdir] + ["-l" + lib[3:-3] for lib in libs] + \
              ["-Wl,-rpath," + libdir]
        begin = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        if started is not None:
            started(proc)
        try:
            _, stderr = proc.communicate(timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        if proc.returncode != 0:
            _logger.warning("building the ns-3 shim library failed (exit %s): %s",
                            proc.returncode, (stderr or "")[-2000:])
            return None
        os.chmod(output, 0o600)
        os.replace(output, path)
        for old in os.listdir(os.path.dirname(path)):      # superseded builds
            if old.startswith("ns3shim-") and old.endswith(".so") and \
                    old != os.path.basename(path):
                try:
                    os.unlink(os.path.join(os.path.dirname(path), old))
                except OSError as e:
                    _logger.warning("could not remove the superseded %s: %s", old, e)
        _logger.info("built the ns-3 shim library in %.1f s: %s",
                     time.monotonic() - begin, path)
        return path
    except (OSError, subprocess.SubprocessError) as e:
        _logger.warning("building the ns-3 shim library failed: %s", e)
        return None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class Build:
    """A background build (started before importing ns-3, so both run at once)."""

    def __init__(self) -> None:
        self.path: Optional[str] = None
        self._thread: Optional[threading.Thread] = None
        self._proc: Optional[subprocess.Popen] = None
        if os.environ.get("NEPI_NS3_SHIM") == "cling":
            return                               # asked not to use the compiled library
        try:
            target = library_path()
        except Exception as e:                  # no usable cache directory
            _logger.info("no ns-3 shim library cache: %s", e)
            target = None
        if target is None:
            return
        if os.path.exists(target):
            self.path = target
            return
        self._thread = threading.Thread(target=self._run, args=(target,),
                                        name="ns3-shim-build", daemon=True)
        self._thread.start()

    def _run(self, target: str) -> None:
        self.path = build(target, started=lambda proc: setattr(self, "_proc", proc))

    def wait(self, timeout: float = BUILD_WAIT_AFTER_IMPORT) -> Optional[str]:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                _logger.info("the ns-3 shim library is still being built: using cling now")
                return None
        return self.path

    def cancel(self) -> None:
        """Kill an unfinished compiler (nothing is left running after a testbed)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        if self._thread is not None:
            self._thread.join(10)


def load(cppyy, build_: Optional[Build] = None) -> str:
    """Make nepi_ns3 available in this ns-3 process: 'library' or 'cling'."""
    path = build_.wait() if build_ is not None else None
    if path and os.path.exists(path):
        try:
            cppyy.load_library(path)
            cppyy.cppdef(DECLARATIONS)
            return "library"
        except Exception as e:
            _logger.warning("cannot load %s (%s): compiling the shim with cling", path, e)
    cppyy.cppdef("#pragma cling optimize(0)\n" + CORE)
    return "cling"


def main(argv=None) -> int:
    path = build()
    if path is None:
        print("cannot build the ns-3 shim library (needs the ns3 wheel and a C++ compiler)",
              file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
