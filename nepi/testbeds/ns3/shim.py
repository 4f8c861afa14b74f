"""The C++ that drives ns-3 for the ns3 testbed, and how a testbed daemon loads it.

Driving ns-3 object by object from Python through its cppyy bindings is slow twice over:
``from ns import ns`` takes ~10 s (cling parses the ns-3 headers), and every call with a
new C++ signature then costs 10-40 ms of code generation. So the testbed does not use the
bindings: ``core.cc`` holds one registry of ns-3 objects keyed by nepi guid and one entry
point, ``Exec(command)``, that creates, wires, addresses, routes and traces them, reads or
writes attributes, and runs, stops and destroys the simulator. Python calls its C
function ``nepi_ns3_exec`` with ctypes (which releases the GIL meanwhile, so ``run`` does
not block the daemon's other threads); ``wake`` runs a Python callable (``set_pump``) as
a simulator event, which is how calls reach a running simulation.

The C++ is real source in ``cxx/`` (package data): ``declarations.h`` (the interface),
``core.cc``, and two optional parts that pull in more templates, ``rtt.cc`` (Ping's Rtt
trace sink) and ``wifi.cc`` (wifi devices built with ns-3's helpers, 802.11 frames to
pcap), which add their commands when first needed (``Native.need``).

Normally all of it is built once with g++ into a shared library cached in an owner-only
directory (``~/.cache/nepi``, or $NEPI_NS3_SHIM_CACHE), keyed by the source, the ns-3
wheel's libraries and the compiler; ctypes loads it (and, through it, the ns-3 libraries)
in well under a second, and the bindings are never imported. Without the library (no
compiler, or the first run: the build then starts in the background for the next
deployments, and is stopped if the testbed shuts down first) the bindings are imported
and cling compiles the same source, ~1-1.5 s on top of the import (NEPI_NS3_SHIM=cling
forces this). ``python -m nepi.testbeds.ns3.shim`` (``make install``) builds the library.

Values reaching ``Exec`` were validated by nepi first: several ns-3 parsers abort the
process on malformed input.
"""

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Optional, Sequence

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
PARTS = {"RTT": RTT, "WIFI": WIFI}     # optional: compiled with cling only when needed

MODULES = ("core", "network", "internet", "point-to-point", "csma", "wifi", "mobility",
           "propagation", "fd-net-device", "tap-bridge", "applications", "internet-apps",
           "traffic-control")


def library_source() -> str:
    return "".join('#include "ns3/%s-module.h"\n' % m for m in MODULES) + DECLARATIONS + \
        CORE + RTT + WIFI


# -- the loaded code ------------------------------------------------------------------

_EXEC = ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p))
_PUMP = ctypes.CFUNCTYPE(None)
_SET_PUMP = ctypes.CFUNCTYPE(None, _PUMP)
_REGISTER = ctypes.CFUNCTYPE(None)


class Native:
    """The shim's C entry points in this process, found by ``address(name)``;
    ``compile_part`` (cling only) compiles an optional part's source before its commands
    are added."""

    def __init__(self, mode: str, address: Callable[[str], int],
                 compile_part: Optional[Callable[[str], None]] = None) -> None:
        self.mode = mode
        self._address = address
        self._compile = compile_part
        self._exec = _EXEC(address("nepi_ns3_exec"))
        self._pump = None
        self._parts: set = set()

    def exec(self, fields: Sequence) -> str:
        """One command (see core.cc); RuntimeError with ns-3's message if it fails."""
        args = [str(f).encode("utf-8", "surrogateescape") for f in fields]
        result = self._exec(len(args), (ctypes.c_char_p * len(args))(*args))
        text = result.decode("utf-8", "replace")
        if text.startswith("\x01"):
            raise RuntimeError(text[1:])
        return text

    def set_pump(self, pump: Callable[[], None]) -> None:
        """``pump()`` is what a ``wake`` command runs on the simulator thread."""
        self._pump = _PUMP(pump)                  # referenced here as long as C++ may call it
        _SET_PUMP(self._address("nepi_ns3_set_pump"))(self._pump)

    def need(self, part: str) -> None:
        """Add the commands of an optional part (RTT, WIFI), compiling it if need be."""
        if part in self._parts:
            return
        if self._compile is not None:
            self._compile(PARTS[part])
        _REGISTER(self._address("nepi_ns3_register_" + part.lower()))()
        self._parts.add(part)


def open_library(path: str) -> Native:
    """The compiled library and all of ns-3 with it (OSError if they cannot be loaded).

    dlopen'ed with lazy binding, as the bindings load ns-3: some ns-3 libraries refer to
    symbols nothing provides (config-store's GTK window), which ctypes.CDLL's RTLD_NOW
    refuses."""
    process = ctypes.CDLL(None)
    dlopen, dlerror = process.dlopen, process.dlerror    # looked up before: dlsym resets
    dlopen.restype, dlopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
    dlerror.restype = ctypes.c_char_p
    handle = dlopen(os.fsencode(path), os.RTLD_LAZY | os.RTLD_GLOBAL)
    if not handle:
        raise OSError("cannot load %s: %s" % (path, os.fsdecode(dlerror() or b"?")))
    lib = ctypes.CDLL(path, handle=handle)
    return Native("library",
                  lambda name: ctypes.cast(getattr(lib, name), ctypes.c_void_p).value)


def import_bindings() -> float:
    """``from ns import ns`` (cling, with the ns-3 headers and libraries); its duration."""
    import importlib
    started = time.monotonic()
    importlib.import_module("ns")               # loads ns-3 into cling: ``ns.ns``
    return time.monotonic() - started


def compile_with_cling() -> Native:
    """The shim compiled by cling in this process (needs ``import_bindings`` first)."""
    import cppyy
    import cppyy.ll

    def compile_(source: str) -> None:
        cppyy.cppdef("#pragma cling optimize(0)\n" + source)

    compile_(DECLARATIONS + CORE)
    return Native("cling", lambda name: cppyy.ll.addressof(getattr(cppyy.gbl, name)),
                  compile_)


# -- the compiled library -------------------------------------------------------------

BUILD_TIMEOUT = 300.0
STALE_AFTER = 30 * 86400.0     # a cached library not loaded for that long goes
# Every ns-3 library is a dependency (--no-as-needed): each registers its TypeIds when
# loaded, and without the bindings nothing else loads the ones the shim does not call.
FLAGS = ["-std=c++20", "-O2", "-fPIC", "-shared", "-w", "-Wl,--no-as-needed"]


def ns3_prefix() -> Optional[str]:
    """The ns3 wheel's directory (include/, lib64/), found without importing ns-3."""
    import importlib.util
    spec = importlib.util.find_spec("ns3")
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _libdir(prefix: str) -> Optional[str]:
    return next((os.path.join(prefix, d) for d in ("lib64", "lib")
                 if os.path.isdir(os.path.join(prefix, d))), None)


def _ns3_libraries(libdir: str) -> list:
    """All of ns-3's libraries but the test ones (which the bindings skip too)."""
    return sorted(f for f in os.listdir(libdir)
                  if f.startswith("libns3") and f.endswith(".so") and "test" not in f)


def _compiler() -> Optional[str]:
    return shutil.which(os.environ.get("CXX", "g++"))


def cache_dir() -> str:
    base = os.environ.get("NEPI_NS3_SHIM_CACHE")
    if not base:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or
                            os.path.join(os.path.expanduser("~"), ".cache"), "nepi")
    from nepi.rpc.security import ensure_private_dir
    return ensure_private_dir(base)


def _identity(path: str) -> str:
    st = os.stat(path)
    return "%s:%d:%d" % (os.path.realpath(path), st.st_size, st.st_mtime_ns)


def _key(libdir: str, compiler: str) -> str:
    """Source, ns-3 libraries and compiler, by file identity: cheap enough to compute
    at every deployment (no compiler run, no package metadata scan)."""
    parts = [library_source(), " ".join(FLAGS), _identity(compiler)] + \
        [_identity(os.path.join(libdir, lib)) for lib in _ns3_libraries(libdir)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def library_path() -> Optional[str]:
    """Where the library for this source, wheel and compiler is (or would be) cached."""
    prefix, compiler = ns3_prefix(), _compiler()
    libdir = _libdir(prefix) if prefix else None
    if libdir is None or compiler is None:
        return None
    return os.path.join(cache_dir(), "ns3shim-%s.so" % _key(libdir, compiler))


def _remove_leftovers(path: str) -> None:
    """Libraries no deployment loaded for STALE_AFTER (another nepi installation sharing
    the cache may still use one: removing it at once would make the two rebuild in turn),
    and the work directories of builds killed half-way (older than any build can take:
    another process may be building right now)."""
    cache = os.path.dirname(path)
    for old in os.listdir(cache):
        full = os.path.join(cache, old)
        if not old.startswith("ns3shim-") or full == path:
            continue
        try:
            age = time.time() - os.stat(full).st_mtime
            if os.path.isdir(full) and age > 2 * BUILD_TIMEOUT:
                shutil.rmtree(full)
            elif old.endswith(".so") and age > STALE_AFTER:
                os.unlink(full)
        except OSError as e:
            _logger.warning("could not remove the superseded %s: %s", full, e)


def build(path: Optional[str] = None,
          started: Optional[Callable[[subprocess.Popen], None]] = None) -> Optional[str]:
    """Compile the library into the cache (atomically); its path, or None if impossible.
    ``started(popen)`` is told about the compiler process (so that it can be killed)."""
    path = path or library_path()
    if path is None:
        return None
    if os.path.exists(path):
        return path
    prefix, compiler = ns3_prefix(), _compiler()
    libdir = _libdir(prefix)
    workdir = tempfile.mkdtemp(prefix="ns3shim-", dir=os.path.dirname(path))
    try:
        source = os.path.join(workdir, "shim.cc")
        with open(source, "w") as f:
            f.write(library_source())
        output = os.path.join(workdir, "shim.so")
        cmd = [compiler] + FLAGS + \
            ["-I" + os.path.join(prefix, "include"), "-o", output, source, "-L" + libdir] + \
            ["-l" + lib[3:-3] for lib in _ns3_libraries(libdir)] + ["-Wl,-rpath," + libdir]
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
        if proc.returncode < 0:                 # killed: Build.cancel, at shutdown
            _logger.info("the ns-3 shim library build was stopped (signal %d)",
                         -proc.returncode)
            return None
        if proc.returncode != 0:
            _logger.warning("building the ns-3 shim library failed (exit %s): %s",
                            proc.returncode, (stderr or "")[-2000:])
            return None
        os.chmod(output, 0o600)
        os.replace(output, path)
        _logger.info("built the ns-3 shim library in %.1f s: %s",
                     time.monotonic() - begin, path)
        return path
    except (OSError, subprocess.SubprocessError) as e:
        _logger.warning("building the ns-3 shim library failed: %s", e)
        return None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if os.path.exists(path):
            _remove_leftovers(path)


class Build:
    """The cached library's path, or a build of it in the background (for the next
    deployments: this one does not wait for it, cling is quicker)."""

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

    def cancel(self) -> None:
        """Kill an unfinished compiler (nothing is left running after a testbed)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        if self._thread is not None:
            self._thread.join(10)


def _open_cached(path: str) -> Optional[Native]:
    try:
        native = open_library(path)
    except OSError as e:
        _logger.warning("cannot load %s (%s): compiling the shim with cling", path, e)
        return None
    try:
        os.utime(path)                           # in use: not stale (_remove_leftovers)
    except OSError:
        pass
    return native


def load(build_: Build) -> Native:
    """The shim in this process: the cached library when there is one, else the ns-3
    bindings (imported here) and whichever of the library (built meanwhile) or cling is
    ready first."""
    if build_.path is not None:
        native = _open_cached(build_.path)
        if native is not None:
            return native
        build_.path = None
    seconds = import_bindings()
    _logger.info("ns-3 bindings imported in %.3f s (at %.3f)", seconds, time.time())
    path = build_.path                           # finished during the import?
    native = _open_cached(path) if path is not None else None
    return native or compile_with_cling()


def main(argv: Optional[Sequence[str]] = None) -> int:
    path = build()
    if path is None:
        print("cannot build the ns-3 shim library (needs the ns3 wheel and a C++ compiler)",
              file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
