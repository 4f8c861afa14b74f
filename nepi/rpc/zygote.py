"""Daemons in milliseconds: fork them from a process that has already imported nepi.

``python -m nepi.rpc.daemon_main`` pays an interpreter start-up and every import (about
0.2 s) before the daemon can answer. A fork of a process that holds those modules pays a
few milliseconds. Forking is only safe from a single-threaded process (a thread holding a
lock at fork time leaves it held forever in the child), so:

- the *zygote*: ``preload()`` forks a child of its owner (nepid, an in-process experiment
  controller, a script) that imports the daemon modules and then waits on a socket pair
  (an owner already running threads starts it as ``python -m nepi.rpc.zygote`` instead).
  Asked to launch, it forks a worker; it lives in its own session, and dies with its
  owner (socket closed, PR_SET_PDEATHSIG);
- a process that is single-threaded when it launches (``nepid start``, ``nepi.rpc.remote
  launch`` over SSH) forks the worker itself;
- otherwise, or when the daemon's environment would change what Python imports (other
  PYTHON* variables, a PYTHONPATH entry not on sys.path), ``python -m`` as before.

The worker becomes the daemon exactly as ``python -m nepi.rpc.daemon_main ARGS`` would:
same arguments and environment, python-daemon detaching it (double fork, own session, pid
file, stdio to its log, no inherited descriptors), and a process title that reads as that
command line. It never returns into the code it was forked from: it ends with os._exit,
so no atexit hook of the forking process (e.g. removing a temporary root dir) runs twice.
Set NEPI_NO_ZYGOTE=1 to always start daemons with ``python -m``.
"""

import atexit
import ctypes
import gc
import importlib
import io
import json
import logging
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from typing import Dict, List, Optional, Sequence, Tuple

_logger = logging.getLogger("nepi.rpc.zygote")

DAEMON_MODULE = "nepi.rpc.daemon_main"
PRELOAD = ("daemon", "nepi.rpc.daemon_main", "nepi.rpc.testbed_service",
           "nepi.rpc.ec_service", "nepi.rpc.tls")
_PR_SET_PDEATHSIG = 1
_REPLY_TIMEOUT = 60.0

Result = Tuple[int, str]          # the launch's exit status and what it wrote to stderr
_kept: list = []                  # objects of the forking process that must never be freed


def disabled() -> bool:
    return os.environ.get("NEPI_NO_ZYGOTE", "") not in ("", "0")


def single_threaded() -> bool:
    return threading.active_count() == 1 and \
        threading.current_thread() is threading.main_thread()


def nepi_home() -> str:
    """The directory this process's nepi package was imported from."""
    import nepi
    return os.path.dirname(os.path.dirname(os.path.abspath(nepi.__file__)))


def python_path_env(env: Dict[str, str]) -> Dict[str, str]:
    """``env`` with nepi's own directory on PYTHONPATH, so that a ``python -m`` daemon
    imports this same nepi (an editable install finds it through an import hook that a
    new interpreter with another environment may not have)."""
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if nepi_home() not in parts:
        parts.append(nepi_home())
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def _same_python(env: Dict[str, str]) -> bool:
    """Would ``python -m`` with ``env`` import, and configure at import (Pyro5 reads
    PYRO_* then), what this process has?"""
    def interpreter(variables):
        return {k: v for k, v in variables.items() if k.startswith(("PYTHON", "PYRO_"))}
    here, there = interpreter(os.environ), interpreter(env)
    here.pop("PYTHONPATH", None)
    wanted = [p for p in there.pop("PYTHONPATH", "").split(os.pathsep) if p]
    # what this process imports from: sys.path ('' is the working directory) and where
    # nepi itself came from (an editable install finds it through an import hook)
    on_path = {os.path.abspath(p or os.curdir) for p in sys.path}
    on_path.add(nepi_home())
    return here == there and all(os.path.abspath(p) in on_path for p in wanted)


def _argv_room() -> int:
    """Bytes the kernel keeps for this process's original arguments (arg_end - arg_start,
    fields 48 and 49 of /proc/self/stat)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[46]) - int(fields[45])      # counted from field 3 (state)
    except (OSError, IndexError, ValueError):
        return 0


def _set_title(title: str) -> bool:
    """Show ``title`` as this process's command line; False if it does not fit (the room
    is what the first process of this fork lineage had for its arguments and, while
    unmodified, its environment) or setproctitle is missing.

    The title is padded with spaces beyond the original argument area: the kernel then
    shows it as one string up to its end, which tools split on spaces (psutil, ps);
    left NUL-padded inside that area it would read as one argument plus empty ones."""
    try:
        import setproctitle
    except ImportError:
        return False
    setproctitle.setproctitle(title.ljust(_argv_room()))
    try:
        with open("/proc/self/cmdline", "rb") as f:
            shown = f.read()
    except OSError:
        return False
    return shown.rstrip(b"\0").rstrip(b" ") == title.encode()


def _title(argv: List[str]) -> str:
    return " ".join([sys.executable, "-m", DAEMON_MODULE] + list(argv))


def _stdio(stderr_fd: Optional[int] = None) -> None:
    """stdin and stdout on /dev/null, stderr on ``stderr_fd`` (or /dev/null), and fresh
    sys.std* on them: the forking process may have replaced those (pytest's capture).
    Whatever they were, they stay referenced, so that freeing them never closes a
    descriptor number that has been reused since."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(stderr_fd if fd == 2 and stderr_fd is not None else null, fd)
    os.close(null)
    if stderr_fd is not None:
        os.close(stderr_fd)
    _kept.append((sys.stdin, sys.stdout, sys.stderr))
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)


def _close_inherited(keep: int) -> None:
    """Close every descriptor of the forking process but ``keep`` (and stdio). Its heap
    is frozen first: garbage of the forking process is never collected here, so no file
    object of its closes a descriptor number we reuse."""
    gc.freeze()
    maxfd = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    os.closerange(3, keep)
    os.closerange(keep + 1, maxfd)
    _stdio()


def _reset_process_state() -> None:
    """Forget what belongs to the process we were forked from: its signal handlers and
    its log handlers (the daemon installs its own)."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1,
                signal.SIGUSR2, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.setitimer(signal.ITIMER_REAL, 0)
    root = logging.getLogger()
    root.handlers[:] = []
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            logger.handlers[:] = []


def _worker(argv: List[str], env: Dict[str, str], cwd: str, stderr_fd: int) -> None:
    """In the forked worker: become ``python -m nepi.rpc.daemon_main ARGV``; never returns
    (the daemon it turns into ends here too, once it has served)."""
    status = 1
    try:
        gc.freeze()
        # first: setproctitle needs the C environment as the process began
        titled = _set_title(_title(argv))
        _stdio(stderr_fd)
        _reset_process_state()
        try:
            os.chdir(cwd)
        except OSError:
            pass                  # the daemon moves to its root dir anyway
        if not titled:            # ps, cleanup tools and users find daemons by their
            os.execve(sys.executable,            # command line: rather pay for python -m
                      [sys.executable, "-m", DAEMON_MODULE] + list(argv), env)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [DAEMON_MODULE] + list(argv)
        # by name: this module launches daemons and sits below the daemon's own module
        status = importlib.import_module(DAEMON_MODULE).main(list(argv))
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, (int, type(None))):
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


def _fork_worker(argv: List[str], env: Dict[str, str], cwd: str,
                 close_in_child: Optional[socket.socket] = None,
                 timeout: float = _REPLY_TIMEOUT) -> Result:
    """Fork a worker and wait until it has detached (or failed): its status and stderr."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        if close_in_child is not None:
            os.close(close_in_child.detach())
        _worker(argv, env, cwd, write_end)
    os.close(write_end)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:     # until every copy of the write end is closed: the daemon detached
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                chunks.append(b"(no answer within %.0f s)" % timeout)
                break
            data = os.read(read_end, 65536)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(read_end)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def _zygote_main(sock: socket.socket, owner: int, first: Sequence[str]) -> None:
    """The zygote's life: preload, then one launch per request until the owner is gone."""
    try:
        os.setsid()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != owner:       # the owner died before prctl took effect
            os._exit(0)
        _close_inherited(sock.fileno())
        _reset_process_state()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _set_title("nepi-zygote (daemon launcher of pid %d)" % owner)
        steps = _preload_steps(first)
        reader = sock.makefile("rb")
        while True:
            # preload while nobody asks; a request is served first (its worker imports
            # what it still needs), the preloading goes on after
            while not _pending(sock):
                step = next(steps, None)
                if step is None:
                    break
                try:
                    step()
                except Exception:       # a broken testbed fails in its own daemon, loudly
                    pass
                if threading.active_count() > 1:  # an import started a thread: forking
                    os._exit(0)                   # is no longer safe; owners fall back
            line = reader.readline()
            if not line:
                break
            request = json.loads(line)
            if not _same_python(request["env"]):
                reply = None              # the owner starts that one another way
            else:
                try:
                    reply = _fork_worker(request["argv"], request["env"], request["cwd"],
                                         close_in_child=sock)
                except OSError as e:
                    reply = (1, "nepi-zygote could not fork: %s" % e)
            sock.sendall(json.dumps(reply).encode() + b"\n")
    except BaseException:
        pass
    finally:
        os._exit(0)


def _preload_steps(first: Sequence[str] = ()):
    """What a daemon would import before answering: the daemon modules, then each
    installed testbed's controller module, cheapest first, netns (pyroute2: ~0.3 s) last,
    so a request arriving meanwhile waits for at most what it would import anyway; the
    testbeds in ``first`` (those of the design about to be deployed) before all others.
    Never ns-3's simulator itself, which belongs to the one daemon that runs it."""
    for name in PRELOAD:
        yield lambda name=name: __import__(name)
    from nepi.util.environ import testbed_modules
    modules = testbed_modules()
    order = {t: i for i, t in enumerate(first)}
    for testbed_id in sorted(modules, key=lambda t: (order.get(t, len(order)), t == "netns",
                                                     t)):
        def load(module_name=modules[testbed_id]):
            import importlib
            module = importlib.import_module(module_name)
            getattr(module, "DaemonTestbedController", None) or module.TestbedController
        yield load


def _pending(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


class Zygote:
    """The owner's handle on its zygote process."""

    def __init__(self, first: Sequence[str] = ()) -> None:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        owner = os.getpid()
        if single_threaded():          # a copy of this process, modules and all
            pid = os.fork()
            if pid == 0:
                parent_end.close()
                _zygote_main(child_end, owner, first)
        else:                          # forking a threaded process is unsafe: a new one
            pid = subprocess.Popen(
                [sys.executable, "-m", __name__, str(owner), str(child_end.fileno())]
                + list(first), pass_fds=[child_end.fileno()], stdin=subprocess.DEVNULL,
                env=python_path_env(dict(os.environ))).pid
        child_end.close()
        self.pid = pid
        self.owner = owner
        self._sock = parent_end
        self._reader = parent_end.makefile("rb")
        self._lock = threading.Lock()
        self.alive = True

    def spawn(self, argv: List[str], env: Dict[str, str],
              timeout: float = _REPLY_TIMEOUT) -> Optional[Result]:
        """Launch a daemon through the zygote; None if the zygote is gone or ``env`` asks
        for a Python setup other than the zygote's."""
        request = json.dumps({"argv": list(argv), "env": dict(env), "cwd": os.getcwd()})
        with self._lock:
            if not self.alive:
                return None
            try:
                self._sock.settimeout(timeout)
                self._sock.sendall(request.encode() + b"\n")
                line = self._reader.readline()
            except OSError as e:
                _logger.warning("the daemon launcher (pid %d) is not answering: %s",
                                self.pid, e)
                line = b""
            if not line:
                self.close()
                return None
            reply = json.loads(line)
            return None if reply is None else (reply[0], reply[1])

    def close(self) -> None:
        """Let the zygote go (end of file on its socket) and reap it."""
        self.alive = False
        try:
            self._reader.close()
            self._sock.close()
        except OSError:
            pass
        deadline = time.monotonic() + 2.0
        while True:
            try:
                done, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return                  # already reaped
            if done:
                return
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                return
            time.sleep(0.002)


_zygote: Optional[Zygote] = None
_zygote_lock = threading.Lock()


def preload(first: Sequence[str] = ()) -> Optional[Zygote]:
    """This process's zygote, forked now if there is none and it is safe to fork; it
    preloads the testbeds ``first`` before the others."""
    global _zygote
    with _zygote_lock:
        if _zygote is None and not disabled():
            try:
                _zygote = Zygote(first)
            except OSError as e:
                _logger.warning("no daemon launcher process (%s): daemons start with "
                                "python -m", e)
        return _zygote


def shutdown() -> None:
    """Stop this process's zygote (nepid on its way out; also at exit)."""
    global _zygote
    with _zygote_lock:
        if _zygote is not None:
            _zygote.close()
        _zygote = None


def spawn(argv: List[str], env: Dict[str, str],
          timeout: float = _REPLY_TIMEOUT) -> Optional[Result]:
    """Launch ``python -m nepi.rpc.daemon_main ARGV`` the fast way: through this process's
    zygote, or by forking this process if it is single-threaded. None when neither is
    possible or ``env`` asks for another Python setup (the caller then runs python -m)."""
    if disabled():
        return None
    zygote = _zygote
    if zygote is not None:
        result = zygote.spawn(argv, env, timeout)
        if result is not None:
            return result
    if single_threaded() and _same_python(env):
        return _fork_worker(argv, env, os.getcwd(), timeout=timeout)
    return None


def _forget_inherited() -> None:
    """In any forked child: the parent's zygote is not ours, and the lock guarding it may
    have been held by the forking thread (preload forks while holding it)."""
    global _zygote, _zygote_lock
    _zygote, _zygote_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_inherited)
atexit.register(shutdown)

if __name__ == "__main__":     # started by a multi-threaded owner: OWNER_PID FD [TESTBED...]
    _zygote_main(socket.socket(fileno=int(sys.argv[2])), int(sys.argv[1]), sys.argv[3:])
