"""``nepid exec`` and ``nepid shell``: a command, or an interactive shell, inside a node of
the running experiment (netns: in its namespace; linux: on its host), through nepid and
the node's testbed daemon, so it works after a nepid restart and over --connect too.

    nepid exec --root-dir D NODE -- CMD [ARGS...]    output streamed, CMD's exit status
    nepid shell --root-dir D NODE                     a terminal there (exit or ^D ends it)
"""

import base64
import os
import signal
import sys
import threading
from typing import Callable

from nepi.cli.common import EXIT_USAGE, CliError

READ_WAIT = 0.5          # exec: how long one read waits for output
SHELL_WAIT = 0.03        # shell: short, so typing feels immediate
SHELLS = ["/bin/bash", "-i"]


def add_exec_arguments(parser) -> None:
    parser.add_argument("node", metavar="NODE", help="label or guid of the node")
    parser.add_argument("argv", nargs="+", metavar="CMD",
                        help="the command and its arguments (after --)")


def add_shell_arguments(parser) -> None:
    parser.add_argument("node", metavar="NODE", help="label or guid of the node")


def _attached(args, target: Callable):
    proxy, root_dir = target(args)
    if proxy is None:
        raise CliError("nepid is not running in %s: there is no live experiment to run "
                       "commands in" % root_dir)
    return proxy


def _start(proxy, node: str, argv, pty: bool, rows: int = 24, cols: int = 80) -> dict:
    try:
        return proxy.exec_start(node, argv, pty, rows, cols)
    except (KeyError, ValueError, NotImplementedError, RuntimeError) as e:
        raise CliError(str(e), EXIT_USAGE) from e


def run_exec(args, target: Callable) -> int:
    proxy = _attached(args, target)
    try:
        handle = _start(proxy, args.node, args.argv, pty=False)
        if sys.stdin.isatty():
            proxy.exec_write(handle, "")               # nothing piped in: no input
        else:
            threading.Thread(target=_feed_stdin, args=(proxy, handle), daemon=True).start()
        streams = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
        try:
            while True:
                chunk = proxy.exec_read(handle, READ_WAIT)
                for name, stream in streams.items():
                    data = base64.b64decode(chunk.get(name) or "")
                    if data:
                        stream.write(data)
                        stream.flush()
                if chunk.get("exit") is not None:
                    return _status(chunk["exit"])
        except KeyboardInterrupt:
            proxy.exec_close(handle)
            return 130
    finally:
        proxy.close()


def _feed_stdin(proxy, handle) -> None:
    """Our piped input to the command, then end of input."""
    try:
        while True:
            data = os.read(sys.stdin.fileno(), 65536)
            if not data:
                break
            proxy.exec_write(handle, base64.b64encode(data).decode("ascii"))
        proxy.exec_write(handle, "")
    except Exception:            # the command ended (its input closed): nothing to feed
        pass


def _status(code: int) -> int:
    """A command killed by a signal exits 128 + the signal, as shells report it."""
    return 128 - code if code < 0 else code


def run_shell(args, target: Callable) -> int:
    import termios
    import tty
    if not sys.stdin.isatty():
        raise CliError("`nepid shell` needs a terminal; use `nepid exec NODE -- CMD` for "
                       "commands with piped input", EXIT_USAGE)
    proxy = _attached(args, target)
    fd = sys.stdin.fileno()
    rows, cols = _size(fd)
    try:
        handle = _start(proxy, args.node, SHELLS, pty=True, rows=rows, cols=cols)
        saved = termios.tcgetattr(fd)
        previous = signal.signal(signal.SIGWINCH,
                                 lambda *_: proxy.exec_resize(handle, *_size(fd)))
        tty.setraw(fd)
        threading.Thread(target=_keys, args=(proxy, handle, fd), daemon=True).start()
        try:
            while True:
                chunk = proxy.exec_read(handle, SHELL_WAIT)
                data = base64.b64decode(chunk.get("stdout") or "")
                if data:
                    os.write(sys.stdout.fileno(), data)
                if chunk.get("exit") is not None:
                    return _status(chunk["exit"])
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
            signal.signal(signal.SIGWINCH, previous)
    finally:
        proxy.close()


def _keys(proxy, handle, fd: int) -> None:
    try:
        while True:
            data = os.read(fd, 1024)
            if not data:
                return
            proxy.exec_write(handle, base64.b64encode(data).decode("ascii"))
    except Exception:            # the shell ended
        return


def _size(fd: int):
    try:
        size = os.get_terminal_size(fd)
        return size.lines, size.columns
    except OSError:
        return 24, 80
